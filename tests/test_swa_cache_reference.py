"""The torch reference of mantile-swa-cache: ring-buffer KV cache, sliding mask, GQA attention
with sinks; attending over the ring equals full-cache attention with the exact mask, and the
bytes and mask entries equal the analytic counts."""

from __future__ import annotations

import pytest

pytest.importorskip("mantile_swa_cache")
torch = pytest.importorskip("torch")

from mantile_core.cli import main  # noqa: E402
from mantile_swa_cache import plugin as swa_plugin  # noqa: E402
from mantile_swa_cache.counts import window_pairs, window_positions  # noqa: E402
from mantile_swa_cache.reference import (  # noqa: E402
    RingKVCache,
    attention,
    full_cache_attention,
    sliding_mask,
    windowed_attention,
)

TOLERANCE = 1e-5


def test_sliding_mask_matches_transformers():
    masking = pytest.importorskip("transformers.masking_utils")
    q = torch.arange(0, 40).reshape(-1, 1)
    k = torch.arange(0, 40).reshape(1, -1)
    for window in (1, 3, 8, 64):
        theirs = masking.sliding_window_causal_mask_function(window)(0, 0, q, k)
        assert torch.equal(sliding_mask(torch.arange(40), torch.arange(40), window), theirs)
    assert torch.equal(sliding_mask(torch.arange(40), torch.arange(40), None), masking.causal_mask_function(0, 0, q, k))


def test_sliding_mask_definition():
    mask = sliding_mask(torch.tensor([5, 9]), torch.arange(10), 3)
    assert mask.dtype == torch.bool
    assert mask[0].nonzero().flatten().tolist() == [3, 4, 5]
    assert mask[1].nonzero().flatten().tolist() == [7, 8, 9]


def test_attention_without_sinks_matches_sdpa():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 8, 5, 16, generator=g)
    k = torch.randn(2, 2, 11, 16, generator=g)
    v = torch.randn(2, 2, 11, 16, generator=g)
    mask = sliding_mask(torch.arange(6, 11), torch.arange(11), 4)
    ours = attention(q, k, v, mask)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, dim=1), v.repeat_interleave(4, dim=1), attn_mask=mask)
    assert float((ours - theirs).abs().max()) <= TOLERANCE


def test_attention_sinks_scale_by_sigmoid_of_lse_minus_sink():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 4, 6, 8, generator=g, dtype=torch.float64)
    k = torch.randn(1, 2, 6, 8, generator=g, dtype=torch.float64)
    v = torch.randn(1, 2, 6, 8, generator=g, dtype=torch.float64)
    sinks = torch.randn(4, generator=g, dtype=torch.float64)
    mask = sliding_mask(torch.arange(6), torch.arange(6), 3)
    plain = attention(q, k, v, mask)
    logits = (q @ k.repeat_interleave(2, dim=1).transpose(-1, -2)) / 8 ** 0.5
    lse = torch.logsumexp(logits.masked_fill(~mask, float("-inf")), dim=-1, keepdim=True)
    expected = plain * torch.sigmoid(lse - sinks.reshape(1, 4, 1, 1))
    assert float((attention(q, k, v, mask, sinks=sinks) - expected).abs().max()) <= 1e-12


def test_ring_cache_slots_positions_and_nbytes():
    cache = RingKVCache(3, 2, 8, 4, torch.bfloat16)
    assert cache.nbytes == 2 * 3 * 2 * 8 * 4 * 2
    for chunk in (5, 1, 6, 1):  # 13 tokens: positions 5..12 held
        k = torch.arange(cache.length, cache.length + chunk, dtype=torch.float32).reshape(1, 1, -1, 1).expand(3, 2, chunk, 4)
        cache.write(k, -k)
    keys, values, positions = cache.resident()
    assert positions.tolist() == list(range(5, 13))
    assert keys[0, 0, :, 0].tolist() == [float(p) for p in range(5, 13)]
    assert torch.equal(values, -keys)
    assert cache.nbytes == 2 * 3 * 2 * 8 * 4 * 2  # fixed whatever was written
    with pytest.raises(ValueError):
        cache.write(k, k, start=3)


def test_ring_keeps_last_window_of_long_chunk():
    cache = RingKVCache(1, 1, 4, 1)
    k = torch.arange(10, dtype=torch.float32).reshape(1, 1, 10, 1)
    cache.write(k, k)
    keys, _, positions = cache.resident()
    assert positions.tolist() == [6, 7, 8, 9] and keys.flatten().tolist() == [6.0, 7.0, 8.0, 9.0]


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (8, 2), (6, 1)])
@pytest.mark.parametrize("window", [1, 7, 16])
@pytest.mark.parametrize("schedule", [(1,) * 24, (20, 1, 1, 1), (5, 9, 30, 1, 2, 1), (40, 40, 1)])
@pytest.mark.parametrize("with_sinks", [False, True])
def test_ring_equals_full_cache(heads, kv_heads, window, schedule, with_sinks):
    g = torch.Generator().manual_seed(hash((heads, kv_heads, window, schedule, with_sinks)) % 2**31)
    batch, dim = 2, 8
    sinks = torch.randn(heads, generator=g) if with_sinks else None
    cache = RingKVCache(batch, kv_heads, window, dim)
    k_all = torch.empty(batch, kv_heads, 0, dim)
    v_all = torch.empty(batch, kv_heads, 0, dim)
    for new in schedule:
        cached = cache.length
        q = torch.randn(batch, heads, new, dim, generator=g)
        k = torch.randn(batch, kv_heads, new, dim, generator=g)
        v = torch.randn(batch, kv_heads, new, dim, generator=g)
        k_all, v_all = torch.cat([k_all, k], 2), torch.cat([v_all, v], 2)
        ring, mask = windowed_attention(cache, q, k, v, sinks=sinks)
        full = full_cache_attention(q, k_all, v_all, window, sinks=sinks)
        assert float((ring - full).abs().max()) <= TOLERANCE
        # the mask it applied has exactly the analytic pair count
        assert int(mask.sum()) == window_pairs(new, cached, window)
        assert cache.resident()[2].numel() == window_positions(cache.length, window)
        if new == 1:  # decode attends over the W slots alone
            assert mask.shape == (1, window_positions(cache.length, window))


def test_gpt_oss_shapes_decode_and_prefill():
    """GPT-OSS sliding layer shapes (64 query heads, 8 KV heads, 64 dims, W = 128, sinks):
    a 300-token prefill then decode steps, ring vs full cache; bf16 ring bytes = 128·2048."""
    g = torch.Generator().manual_seed(3)
    heads, kv_heads, dim, window = 64, 8, 64, 128
    sinks = torch.randn(heads, generator=g)
    cache = RingKVCache(1, kv_heads, window, dim)
    k_all = torch.empty(1, kv_heads, 0, dim)
    v_all = torch.empty(1, kv_heads, 0, dim)
    for new in (300, 1, 1, 1):
        cached = cache.length
        q = torch.randn(1, heads, new, dim, generator=g)
        k = torch.randn(1, kv_heads, new, dim, generator=g)
        v = torch.randn(1, kv_heads, new, dim, generator=g)
        k_all, v_all = torch.cat([k_all, k], 2), torch.cat([v_all, v], 2)
        ring, mask = windowed_attention(cache, q, k, v, sinks=sinks)
        assert float((ring - full_cache_attention(q, k_all, v_all, window, sinks=sinks)).abs().max()) <= TOLERANCE
        assert int(mask.sum()) == window_pairs(new, cached, window)
    assert int(mask.sum()) == 128
    assert RingKVCache(1, kv_heads, window, dim, torch.bfloat16).nbytes == 128 * 2048


def test_prefill_4096_mask_entries():
    cache = RingKVCache(1, 1, 128, 1)
    zeros = torch.zeros(1, 1, 4096, 1)
    _, mask = windowed_attention(cache, zeros, zeros, zeros)
    assert int(mask.sum()) == 4096 * 128 - 128 * 127 // 2 == 516_160


def test_validation_cases_pass(mantile_plugins, capsys):
    mantile_plugins(swa_plugin, distribution="mantile-swa-cache")
    assert main(["validate", "--json", "-k", "swa-cache"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in doc["cases"]] == [
        "swa-cache-chunked-equals-full", "swa-cache-chunked-mask-pairs", "swa-cache-chunked-resident",
        "swa-cache-mask-pairs", "swa-cache-ring-bytes", "swa-cache-ring-equals-full"]
    assert all(c["status"] == "passed" for c in doc["cases"]) and doc["failed"] == 0
