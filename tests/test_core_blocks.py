"""The core's generalised decoder building blocks (non-gated MLP with a named activation,
LayerNorm with / without bias / affine, learned positions, LM head bias, decoder layouts)
against arithmetic written out here by hand."""

from __future__ import annotations

import pytest

from mantile_core.cache import CAUSAL_POLICY
from mantile_core.config import parse_config
from mantile_core.dtypes import get_dtype
from mantile_core.errors import ConfigError
from mantile_core.layers import GatedMLP, LayerNorm, LMHead, MLP, PositionEmbedding, RMSNorm
from mantile_core.layers.mlp import ACTIVATION_FLOPS, activation_name
from mantile_core.layers.standard import DecoderLayout, decoder_slots
from mantile_core.workload import Step

BF16, FP32 = get_dtype("bf16"), get_dtype("fp32")


def step(batch, new, cached=0, tp=1):
    return Step(batch=batch, new_tokens=new, cached=cached, tp=tp, policies={"causal": CAUSAL_POLICY})


def test_activation_flops_as_documented():
    # silu: exp, +1, reciprocal, ·x; gelu (erf): ·(1/√2), erf, +1, ·x, ·0.5;
    # tanh approximation: x³ (2 mul), ·0.044715, +x, ·√(2/π), tanh, +1, ·x, ·0.5
    assert ACTIVATION_FLOPS == {"silu": 4, "gelu": 5, "gelu_tanh": 9, "quick_gelu": 5, "relu": 1, "relu2": 2}
    assert activation_name("gelu_new") == activation_name("gelu_pytorch_tanh") == "gelu_tanh"
    with pytest.raises(ConfigError, match="hidden_act='mish' is not a supported activation"):
        activation_name("mish")


@pytest.mark.parametrize("tp", [1, 4])
def test_gpt2_mlp_non_gated_gelu_tanh_with_biases(tp):
    # GPT-2 small: c_fc 768 -> 3072 (+bias), gelu_new, c_proj 3072 -> 768 (+bias)
    mlp = MLP(hidden=768, intermediate=3072, weight_dtype=BF16, bias_dtype=BF16, bias=True, activation="gelu_tanh")
    assert mlp.params() == 768 * 3072 + 3072 + 3072 * 768 + 768
    assert mlp.weight_bytes() == 2 * mlp.params()
    c = mlp.cost(step(2, 10, tp=tp))
    tokens, il = 20, 3072 // tp
    matmul = 2 * tokens * 768 * il + 2 * tokens * il * 768
    assert c.matmul_flops == matmul
    assert c.flops == matmul + 9 * tokens * il + tokens * (il + 768)
    assert c.resident_weight_bytes == 2 * (2 * 768 * il + il + 768)
    assert c.activation_bytes == 2 * tokens * (2 * il + 768)


def test_gated_mlp_geglu_counts_the_product_with_up():
    mlp = GatedMLP(hidden=64, intermediate=256, weight_dtype=BF16, bias_dtype=BF16, activation="gelu_tanh")
    assert mlp.params() == 3 * 64 * 256
    c = mlp.cost(step(1, 8))
    assert c.flops == 2 * 8 * 64 * 512 + 2 * 8 * 256 * 64 + (9 + 1) * 8 * 256
    with pytest.raises(ValueError, match="'activation' must be one of"):
        GatedMLP(hidden=64, intermediate=256, weight_dtype=BF16, bias_dtype=BF16, activation="tanh")


@pytest.mark.parametrize("bias,affine,params,per_element", [(True, True, 2 * 512, 7), (False, True, 512, 6),
                                                            (True, False, 0, 5)])
def test_layernorm_variants(bias, affine, params, per_element):
    norm = LayerNorm(hidden=512, dtype=BF16, bias=bias, affine=affine)
    assert norm.params() == params and norm.weight_bytes() == 2 * params
    assert norm.cost(step(3, 5)).flops == per_element * 15 * 512
    assert RMSNorm(hidden=512, dtype=BF16).cost(step(3, 5)).flops == 4 * 15 * 512


def test_position_embedding_gathers_and_adds_one_row_per_token():
    wpe = PositionEmbedding(positions=1024, hidden=768, dtype=FP32)
    assert wpe.params() == 1024 * 768 and wpe.weight_bytes() == 4 * 1024 * 768
    c = wpe.cost(step(2, 7, tp=4))  # replicated: tp changes nothing
    assert c.flops == 14 * 768 and c.weight_bytes == 4 * 14 * 768
    assert c.resident_weight_bytes == 4 * 1024 * 768 and c.comm_bytes == 0


@pytest.mark.parametrize("tp", [1, 3])
def test_lm_head_bias(tp):
    head = LMHead(vocab=51200, hidden=2560, dtype=BF16, bias=True)
    assert head.params() == 51200 * 2560 + 51200
    rows = -(-51200 // tp)
    c = head.cost(step(4, 1, 100, tp=tp))
    assert c.flops == 2 * 4 * 2560 * rows + 4 * rows
    assert c.resident_weight_bytes == 2 * (rows * 2560 + rows)
    tied = LMHead(vocab=100, hidden=8, dtype=BF16, tied=True, bias=True)
    assert tied.params() == 100 and tied.cost(step(1, 1, tp=tp)).resident_weight_bytes == 2 * -(-100 // tp)


def test_decoder_slots_shapes():
    config = parse_config({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                           "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100})
    parallel = DecoderLayout(embedding="transformer.wte", positions="transformer.wpe", layers="transformer.h",
                             block=(("norm", "ln_1"), ("attention", "attn"), ("mlp", "mlp")),
                             final_norm="transformer.ln_f")
    slots = decoder_slots(config, parallel)
    assert [s.kind for s in slots] == ["embedding", "position_embedding"] + ["norm", "attention", "mlp"] * 2 + [
        "norm", "lm_head"]
    assert slots[4].name == "transformer.h.0.mlp" and slots[4].index == 0
    no_final = decoder_slots(config, DecoderLayout(final_norm=None))
    assert [s.kind for s in no_final][-2:] == ["mlp", "lm_head"]


@pytest.mark.parametrize("tp", [1, 4])
def test_attention_with_a_smaller_value_head_dim(tp):
    # MiMo-V2-Flash-like: 8 heads, 2 KV heads, q/k head 24, v head 16, hidden 64
    from mantile_core.layers import Attention

    attn = Attention(hidden=64, heads=8, kv_heads=2, head_dim=24, v_head_dim=16, rotary_dim=8,
                     weight_dtype=BF16, bias_dtype=BF16)
    assert attn.params() == 64 * 8 * 24 + 64 * 2 * 24 + 64 * 2 * 16 + 8 * 16 * 64
    c = attn.cost(step(2, 5, 3, tp=tp))
    hl, kvl, tokens = 8 // tp, max(2 // tp, 1), 10
    pairs = 2 * (5 * 3 + 5 * 6 // 2)
    projection = 2 * tokens * 64 * (hl * 24 + kvl * 24 + kvl * 16) + 2 * tokens * hl * 16 * 64
    attention = (2 * 24 + 2 * 16) * hl * pairs
    assert c.matmul_flops == projection + attention and c.attention_flops == attention
    assert c.flops == projection + attention + 3 * tokens * (hl + kvl) * 8 + 5 * hl * pairs + tokens * hl * 16
    assert c.kv_cache_bytes == 2 * 2 * kvl * 8 * (24 + 16)  # batch 2, 8 positions written, K 24 + V 16
