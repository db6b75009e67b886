"""Every built-in layer's FLOPs and bytes against arithmetic written out here by hand."""

from __future__ import annotations

import pytest

import mantile_core
from mantile_core.cache import CAUSAL_POLICY
from mantile_core.dtypes import get_dtype
from mantile_core.errors import ParallelismError
from mantile_core.workload import Step

BF16 = get_dtype("bf16")


def step(batch, new, cached, tp=1, ep=1):
    return Step(batch=batch, new_tokens=new, cached=cached, tp=tp, ep=ep, policies={"causal": CAUSAL_POLICY})


def layer_of(model, kind, index=0):
    return next(layer for layer in model.layers if layer.kind == kind and (layer.index == index or layer.index is None))


@pytest.fixture(scope="module")
def llama():
    return mantile_core.load_model("llama-3.1-8b")  # H 4096, 32 heads, 8 KV heads, dh 128, I 14336


@pytest.mark.parametrize("tp,hl,kvl", [(1, 32, 8), (2, 16, 4), (16, 2, 1), (32, 1, 1)])
def test_gqa_attention_prefill(llama, tp, hl, kvl):
    attn = layer_of(llama, "attention")
    c = attn.cost(step(2, 100, 0, tp))
    tokens, pairs = 200, 2 * (100 * 101 // 2)
    projections = 2 * tokens * 4096 * (hl * 128 + 2 * kvl * 128) + 2 * tokens * (hl * 128) * 4096
    attention = 4 * 128 * hl * pairs
    assert c.matmul_flops == projections + attention
    assert c.attention_flops == attention
    rope = 3 * tokens * (hl + kvl) * 128
    softmax = 5 * hl * pairs + tokens * hl * 128
    assert c.flops == projections + attention + rope + softmax
    weights = 2 * (4096 * hl * 128 + 2 * 4096 * kvl * 128 + hl * 128 * 4096)
    assert c.weight_bytes == c.resident_weight_bytes == weights
    assert c.kv_cache_bytes == 2 * 2 * kvl * 100 * 128 * 2
    assert c.kv_write_bytes == 2 * tokens * kvl * 128 * 2
    assert c.comm_bytes == (tokens * 4096 * 2 if tp > 1 else 0)


def test_gqa_attention_decode_reads_whole_context(llama):
    attn = layer_of(llama, "attention")
    c = attn.cost(step(8, 1, 2047, tp=1))
    assert c.attention_flops == 4 * 128 * 32 * 8 * 2048
    assert c.kv_cache_bytes == c.kv_read_bytes == 2 * 8 * 8 * 2048 * 128 * 2


def test_chunk_after_cached_tokens_counts_pairs(llama):
    attn = layer_of(llama, "attention")
    # 3 queries at positions 10, 11, 12 see 11, 12, 13 keys.
    assert attn.cost(step(1, 3, 10)).attention_flops == 4 * 128 * 32 * (11 + 12 + 13)


def test_qwen2_attention_has_qkv_biases_only():
    attn = layer_of(mantile_core.load_model("qwen2.5-7b"), "attention")
    h, kv = 3584, 4 * 128
    assert attn.params() == (h * h + h) + 2 * (h * kv + kv) + h * h
    c = attn.cost(step(1, 10, 0))
    bias_adds = 10 * (h + 2 * kv)
    rope, softmax = 3 * 10 * (28 + 4) * 128, 5 * 28 * 55 + 10 * 28 * 128
    assert c.flops - c.matmul_flops == bias_adds + rope + softmax


def test_qwen3_attention_has_qk_norm():
    attn = layer_of(mantile_core.load_model("qwen3-8b"), "attention")
    h = 4096
    assert attn.params() == h * 32 * 128 + 2 * h * 8 * 128 + 32 * 128 * h + 2 * 128


def test_gated_mlp(llama):
    mlp = layer_of(llama, "mlp")
    assert mlp.params() == 3 * 4096 * 14336
    c = mlp.cost(step(4, 1, 100, tp=2))
    inter = 14336 // 2
    assert c.matmul_flops == 2 * 4 * 4096 * 2 * inter + 2 * 4 * inter * 4096
    assert c.flops == c.matmul_flops + 5 * 4 * inter
    assert c.weight_bytes == 2 * 3 * 4096 * inter
    assert c.comm_bytes == 4 * 4096 * 2


def test_norm_embedding_and_head(llama):
    norm = layer_of(llama, "norm")
    c = norm.cost(step(3, 5, 0))
    assert c.flops == 4 * 15 * 4096 and c.weight_bytes == 4096 * 2
    emb = layer_of(llama, "embedding")
    c = emb.cost(step(3, 5, 0, tp=4))
    assert c.resident_weight_bytes == 128256 // 4 * 4096 * 2
    assert c.weight_bytes == 15 * 4096 * 2 and c.comm_bytes == 15 * 4096 * 2
    head = layer_of(llama, "lm_head")
    c = head.cost(step(3, 5, 0, tp=4))  # logits only for the last position of each sequence
    assert c.matmul_flops == 2 * 3 * 4096 * (128256 // 4)
    assert c.weight_bytes == c.resident_weight_bytes == (128256 // 4) * 4096 * 2
    assert c.comm_bytes == 3 * 128256 * 2


def test_moe_decode_reads_expected_active_experts():
    moe = layer_of(mantile_core.load_model("mixtral-8x7b"), "moe")  # 8 experts, top 2, I 14336
    expert = 3 * 4096 * 14336
    assert moe.params() == 4096 * 8 + 8 * expert
    c = moe.cost(step(4, 1, 500))
    active = 8 * (1 - (1 - 2 / 8) ** 4)  # 5.46875 experts
    assert c.weight_bytes == 4096 * 8 * 2 + round(active * expert * 2)
    assert c.resident_weight_bytes == 4096 * 8 * 2 + 8 * expert * 2
    assert c.matmul_flops == 2 * 4 * 4096 * 8 + 2 * 4 * 2 * expert


def test_moe_expert_parallel_shards_experts():
    moe = layer_of(mantile_core.load_model("qwen3-30b-a3b"), "moe")  # 128 experts, top 8, I 768
    c = moe.cost(step(1, 1, 10, tp=4, ep=4))
    expert = 3 * 2048 * 768 * 2
    assert c.resident_weight_bytes == 2048 * 128 * 2 + 32 * expert
    c = moe.cost(step(1, 1, 10, tp=4, ep=2))  # 64 experts per group, each split 2 ways
    assert c.resident_weight_bytes == 2048 * 128 * 2 + 64 * expert // 2
    with pytest.raises(ParallelismError, match="'ep' must divide tp=4"):
        moe.check_parallelism(4, 3)


def test_mxfp4_bytes_include_scales():
    mx = get_dtype("mxfp4")
    assert mx.nbytes(32) == 16 + 1
    assert mx.nbytes(2880 * 5760) == 2880 * 5760 * 17 // 32
    assert get_dtype("nvfp4").nbytes(16) == 8 + 1
    assert mx.bits_per_element == 4.25
