"""mantile-phi and mantile-rope-longrope: Phi-3-mini-4k against its published total (and by
hand), its sliding window on every layer, LongRoPE's attention factor by hand and inv_freq
against transformers. Config source: tests/data/phi/SOURCES.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("mantile_phi")
pytest.importorskip("mantile_rope_longrope")

import mantile_core  # noqa: E402
from mantile_core.errors import ConfigError, MissingPluginError  # noqa: E402
from mantile_rope_longrope.longrope import longrope_inv_freq  # noqa: E402

MINI_4K = Path(__file__).parent / "data" / "phi" / "phi-3-mini-4k-instruct.json"


def test_phi3_mini_total():
    """microsoft/Phi-3-mini-4k-instruct safetensors total 3,821,079,552; by hand: untied
    embedding and head, per layer fused qkv + o (32 heads x 96 = hidden), fused gate_up + down,
    2 RMSNorms, final norm."""
    hidden, inter, layers, vocab = 3072, 8192, 32, 32064
    by_hand = 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inter + 2 * hidden) + hidden
    assert by_hand == 3_821_079_552
    assert mantile_core.load_model(MINI_4K).params() == 3_821_079_552
    assert mantile_core.load_model("phi-3-mini-4k").params() == 3_821_079_552


def test_every_layer_slides_over_2047():
    model = mantile_core.load_model(MINI_4K)
    assert set(model.config.windows) == {2047}
    doc = mantile_core.estimate(model, "h100", input_len=4000, output_len=8).to_dict()
    row = 2 * 32 * 96 * 2
    held = {layer["prefill"]["kv_cache_bytes"] for layer in doc["layers"] if layer["kind"] == "attention"}
    assert held == {2047 * row}


ROPE = {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 4096,
        "short_factor": [1.0 + 0.01 * j for j in range(48)], "long_factor": [1.0 + 0.9 * j for j in range(48)]}


def test_longrope_by_hand():
    short = longrope_inv_freq(ROPE, 96, 131072)
    long = longrope_inv_freq(ROPE, 96, 131072, seq_len=5000)
    assert short.attention_factor == long.attention_factor == math.sqrt(1 + math.log(32) / math.log(4096))
    j = 7
    assert short.inv_freq[j] == pytest.approx(1 / ((1 + 0.01 * j) * 10000 ** (2 * j / 96)), rel=1e-15)
    assert long.inv_freq[j] == pytest.approx(1 / ((1 + 0.9 * j) * 10000 ** (2 * j / 96)), rel=1e-15)
    assert longrope_inv_freq({**ROPE, "attention_factor": 1.5}, 96, 131072).attention_factor == 1.5
    assert longrope_inv_freq(ROPE, 96, 4096).attention_factor == 1.0  # factor 1


def test_longrope_equals_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = transformers.Phi3Config(hidden_size=384, num_attention_heads=4, num_key_value_heads=4,
                                     max_position_embeddings=131072, original_max_position_embeddings=4096,
                                     rope_parameters=dict(ROPE))
    for seq_len in (None, 5000):
        theirs, factor = ROPE_INIT_FUNCTIONS["longrope"](config, "cpu", seq_len=seq_len)
        ours = longrope_inv_freq(ROPE, 96, 131072, seq_len)
        assert torch.allclose(torch.as_tensor(ours.inv_freq, dtype=torch.float32), theirs, rtol=1e-6, atol=0)
        assert ours.attention_factor == pytest.approx(factor, rel=1e-15)


def test_longrope_config_errors(tmp_path):
    raw = json.loads(MINI_4K.read_text())
    raw.update(max_position_embeddings=131072, rope_scaling={**ROPE, "short_factor": [1.0] * 47})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="short_factor.*48") as info:
        mantile_core.load_model(path)
    assert "\n" not in str(info.value)
    raw["rope_scaling"] = {k: v for k, v in ROPE.items()}
    path.write_text(json.dumps(raw))
    model = mantile_core.load_model(path)
    assert next(lay for lay in model.layers if lay.kind == "attention").rope_type == "longrope"


def test_missing_plugins_named(mantile_plugins, tmp_path):
    raw = json.loads(MINI_4K.read_text())
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="mantile-phi"):
        mantile_core.load_model(MINI_4K)
    from mantile_phi import plugin as phi_plugin
    from mantile_swa_cache import plugin as swa_plugin

    mantile_plugins(phi_plugin, swa_plugin)
    raw.update(max_position_embeddings=131072, rope_scaling=dict(ROPE))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(MissingPluginError, match="mantile-rope-longrope"):
        mantile_core.load_model(path)


# --- Phi-3.5-MoE (phimoe) ----------------------------------------------------------------------
MOE = Path(__file__).parent / "data" / "phi" / "phi-3.5-moe-instruct.json"
H, I, L, V, E, HEADS, KV, DH = 4096, 6400, 32, 32064, 16, 32, 8, 128
ATTENTION = H * (HEADS + 2 * KV) * DH + HEADS * DH * H + (HEADS + 2 * KV) * DH + H  # q/k/v/o + their biases
MOE_BLOCK = H * E + E * 3 * H * I  # bias-free router, 16 SwiGLU experts
NORMS = 2 * 2 * H  # two LayerNorms with weight and bias
PHIMOE_TOTAL = L * (ATTENTION + MOE_BLOCK + NORMS) + 2 * V * H + V + 2 * H  # untied embed/head, head bias, final LN


def test_phimoe_total_by_hand_and_transformers():
    """microsoft/Phi-3.5-MoE-instruct: 41,873,153,344 by hand (above) and by transformers 5.24's
    PhimoeForCausalLM on the meta device."""
    assert PHIMOE_TOTAL == 41_873_153_344
    assert mantile_core.load_model(MOE).params() == PHIMOE_TOTAL
    assert mantile_core.load_model("phi-3.5-moe").params() == PHIMOE_TOTAL
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        config = transformers.AutoConfig.for_model(**json.loads(MOE.read_text()))
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config)
    finally:
        logging.set_verbosity(level)
    assert type(model).__name__ == "PhimoeForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 41_873_153_344


def test_phimoe_layers():
    model = mantile_core.load_model(MOE)
    by_type = {}
    for layer in model.layers:
        by_type.setdefault(layer.type, set()).add(layer.params())
    assert by_type == {"embedding": {V * H}, "phimoe-layernorm": {2 * H}, "phimoe-attention": {ATTENTION},
                       "phimoe-moe": {MOE_BLOCK}, "phimoe-lm-head": {V * H + V}}
    assert sum(layer.type == "phimoe-layernorm" for layer in model.layers) == 2 * L + 1
    assert set(model.config.windows) == {131072}
    assert model.config.rope_parameters["rope_type"] == "longrope"


def test_phimoe_biases_follow_the_flags(tmp_path):
    raw = json.loads(MOE.read_text())
    raw.update(attention_bias=False, lm_head_bias=False)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    assert mantile_core.load_model(path).params() == PHIMOE_TOTAL - L * ((HEADS + 2 * KV) * DH + H) - V


def test_sparsemixer_router_flops():
    """Sparsemixer: two passes of 11 FLOPs per router logit (max, |s|, clamp, subtract, divide,
    compare, mask, a 4-FLOP softmax) in place of the core's 3 for softmax top-k."""
    import attrs
    from mantile_core.layers import MoE
    from mantile_core.workload import Step

    layer = next(lay for lay in mantile_core.load_model(MOE).layers if lay.kind == "moe")
    core = MoE(**{f.name: getattr(layer, f.name) for f in attrs.fields(MoE)})
    for tokens, cached in ((1, 3000), (2000, 0)):
        step = Step(batch=4, new_tokens=tokens, cached=cached, act_dtype="bf16", kv_dtype="bf16", policies={})
        ours, theirs = layer.cost(step), core.cost(step)
        assert ours.flops - theirs.flops == 4 * tokens * E * (2 * 11 - 3)
        assert ours.matmul_flops == theirs.matmul_flops
        assert ours.weight_bytes == theirs.weight_bytes


def test_phimoe_refuses_other_top_k(tmp_path):
    raw = json.loads(MOE.read_text())
    raw["num_experts_per_tok"] = 1
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="exactly 2 experts") as info:
        mantile_core.load_model(path)
    assert "\n" not in str(info.value)


def test_phimoe_estimate_cli(capsys):
    from mantile_core.cli import main

    assert main(["estimate", "phi-3.5-moe", "--hardware", "h100", "--tp", "2", "--batch", "4", "--input-len",
                 "8000", "--output-len", "16", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = 2 * 4 * (KV // 2) * DH * 2  # K and V, batch 4, 4 KV heads per device, bf16
    held = {layer["prefill"]["kv_cache_bytes"] for layer in doc["layers"] if layer["kind"] == "attention"}
    assert held == {8000 * row}  # the 131072 window holds the whole prompt


def test_phimoe_missing_plugin_named(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="model_type 'phimoe' needs mantile-phi"):
        mantile_core.load_model(MOE)


def test_validation_cases_pass():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mantile_phi.validation import VALIDATION_CASES

    for case in VALIDATION_CASES:
        outcome = case.run()
        assert outcome.passed and not outcome.skipped, (case.name, outcome.detail)
