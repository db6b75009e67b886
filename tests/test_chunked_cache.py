"""Chunked-attention KV policies of mantile-swa-cache (Llama 4's ``attention_chunk_size``):
counts against brute-force enumeration from the definition, ``--kv-policy`` selecting the same
retention for sliding and chunked layers, and the core attention layer's cost under them."""

from __future__ import annotations

import numpy
import pytest

pytest.importorskip("mantile_swa_cache")

from mantile_core.cache import select_policies  # noqa: E402
from mantile_core.dtypes import get_dtype  # noqa: E402
from mantile_core.errors import InputError  # noqa: E402
from mantile_core.layers import Attention  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_swa_cache import counts  # noqa: E402
from mantile_swa_cache import plugin as swa_plugin  # noqa: E402
from mantile_swa_cache.policies import CHUNKED_FULL, CHUNKED_PAGED, CHUNKED_RING  # noqa: E402


@pytest.fixture
def swa(mantile_plugins):
    return mantile_plugins(swa_plugin, distribution="mantile-swa-cache")


def visible(i: int, chunk: int) -> int:
    """Keys j <= i in i's chunk, enumerated."""
    return sum(1 for j in range(i + 1) if j // chunk == i // chunk)


@pytest.mark.parametrize("chunk", [1, 3, 8, 16])
def test_pairs_and_positions_brute_force(chunk):
    for cached in range(0, 3 * chunk + 2):
        for new in range(0, 2 * chunk + 3):
            assert counts.chunk_pairs(new, cached, chunk) == sum(visible(i, chunk) for i in range(cached, cached + new))
    for tokens in range(0, 4 * chunk + 1):
        expect = visible(tokens - 1, chunk) if tokens else 0
        assert counts.chunk_positions(tokens, chunk) == expect
        assert CHUNKED_RING.read_positions(tokens, chunk) == expect


def test_paged_blocks_brute_force():
    chunk, block = 32, 8
    for tokens in range(1, 5 * chunk):
        p = tokens - 1
        start = (p // chunk) * chunk
        blocks = {j // block for j in range(start, p + 1)}
        assert counts.chunk_paged_blocks(tokens, chunk, block) == len(blocks)
        assert CHUNKED_PAGED.resident_positions(tokens, chunk, block) == len(blocks) * block
    assert counts.chunk_paged_blocks(0, chunk, block) == 0


def test_vectorised_equals_scalar():
    tokens = numpy.arange(0, 100, dtype=numpy.int64)
    out = counts.chunk_positions(tokens, 16)
    assert out.tolist() == [counts.chunk_positions(int(t), 16) for t in tokens]
    pairs = counts.chunk_pairs(tokens, tokens, 16)
    assert pairs.tolist() == [counts.chunk_pairs(int(t), int(t), 16) for t in tokens]


def test_kv_policy_selects_one_retention_for_both_masks(swa):
    policies = swa.registries.cache_policies
    chosen = select_policies(policies, {"causal", "sliding", "chunked"})
    assert {m: p.name for m, p in chosen.items()} == {"causal": "causal", "sliding": "ring", "chunked": "chunked-ring"}
    for retention, sliding, chunked in (("paged", "paged", "chunked-paged"), ("full", "full", "chunked-full"),
                                        ("ring", "ring", "chunked-ring")):
        chosen = select_policies(policies, {"sliding", "chunked"}, retention)
        assert (chosen["sliding"].name, chosen["chunked"].name) == (sliding, chunked)
    chosen = select_policies(policies, {"sliding", "chunked"}, "chunked-full")
    assert (chosen["sliding"].name, chosen["chunked"].name) == ("ring", "chunked-full")
    with pytest.raises(InputError, match="chunked-ring"):
        select_policies(policies, {"chunked"}, "rolling")


def test_chunked_layer_cost():
    """A chunked layer (C = 8192, Llama-4 Scout's shape: 40 heads, 8 KV heads x 128, bf16) holds
    at most C positions: KV after a 20000-token prompt = 2·8·128·2 bytes × (20000 − 2·8192)."""
    bf16 = get_dtype("bf16")
    layer = Attention(hidden=5120, heads=40, kv_heads=8, head_dim=128, rotary_dim=128, weight_dtype=bf16,
                      bias_dtype=bf16, chunk=8192)
    assert layer.mask == "chunked" and layer.describe()["chunk"] == 8192
    row = 2 * 8 * 128 * 2
    policies = {"chunked": CHUNKED_RING}
    prefill = layer.cost(Step(batch=1, new_tokens=20000, cached=0, policies=policies))
    assert prefill.kv_cache_bytes == row * (20000 - 16384)
    # pairs: two whole chunks T(8192) each, then T(3616)
    pairs = 2 * 8192 * 8193 // 2 + 3616 * 3617 // 2
    assert prefill.attention_flops == 4 * 128 * 40 * pairs
    for context in (8190, 8191, 8192, 100_000, 10_485_759):
        decode = layer.cost(Step(batch=1, new_tokens=1, cached=context, policies=policies))
        assert decode.kv_cache_bytes == row * ((context % 8192) + 1) <= row * 8192
    full = layer.cost(Step(batch=1, new_tokens=1, cached=100_000, policies={"chunked": CHUNKED_FULL}))
    assert full.kv_cache_bytes == row * 100_001
