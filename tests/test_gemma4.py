"""Gemma 4 (mantile-gemma) against transformers' meta-device totals for the published configs
(tests/data/hf_collection/expected_totals.json, never Mantile's output) and hand arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

pytest.importorskip("mantile_gemma")
pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.cache import CAUSAL_POLICY  # noqa: E402
from mantile_core.errors import ConfigError  # noqa: E402
from mantile_core.model import build_layers, read_model_config  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_swa_cache.policies import RING  # noqa: E402

COLLECTION = Path(__file__).parent / "data" / "hf_collection"
EXPECTED = json.loads((COLLECTION / "expected_totals.json").read_text())["configs"]
A4B = COLLECTION / "google--gemma-4-26B-A4B_config.json"


def a4b_by_hand() -> int:
    """25 sliding layers (16 q heads, 8 KV heads x 256) and 5 global ones (512-dim heads, 2 KV
    heads, k = v: no v_proj), q/k norms; a GeGLU MLP of 2112 and a MoE block (router 2816x128
    + scale 2816 + per-expert scale 128 + 3 norms, 128 experts of 3·2816·704) in every layer;
    4 norms per layer; tied embedding; final norm."""
    hidden, vocab = 2816, 262_144
    sliding = hidden * (16 + 2 * 8) * 256 + 16 * 256 * hidden + 2 * 256
    full = hidden * (16 + 2) * 512 + 16 * 512 * hidden + 2 * 512
    mlp = 3 * hidden * 2112
    moe = hidden * 128 + hidden + 128 + 3 * hidden + 128 * 3 * hidden * 704
    rest = mlp + moe + 4 * hidden
    return 25 * (sliding + rest) + 5 * (full + rest) + vocab * hidden + hidden


def test_totals_equal_transformers():
    """transformers' parameters plus the one stored ``layer_scalar`` buffer per layer (30 and
    60), which Mantile counts as parameters (``buffer_params``)."""
    assert EXPECTED["google--gemma-4-26B-A4B"]["text_params"] == a4b_by_hand() == 25_233_141_760
    a4b = mantile_core.load_model(A4B)
    assert (a4b.params(), a4b.buffer_params()) == (25_233_141_760 + 30, 30)
    assert EXPECTED["nvidia--Gemma-4-31B-IT-NVFP4"]["text_params"] == 30_697_345_280
    dense = mantile_core.load_model("gemma-4-31b")
    assert (dense.params(), dense.buffer_params()) == (30_697_345_280 + 60, 60)


def test_per_layer_shapes_and_kv():
    model = mantile_core.load_model("gemma-4-31b")
    attention = [lay for lay in model.layers if lay.kind == "attention"]
    full = [lay for lay in attention if lay.window is None]
    assert [lay.index for lay in full] == list(range(5, 60, 6))
    assert {(lay.head_dim, lay.kv_heads, lay.k_eq_v, lay.rotary_dim, lay.rope_type) for lay in full} == {
        (512, 4, True, 128, "proportional")}
    assert {(lay.head_dim, lay.kv_heads, lay.k_eq_v, lay.rotary_dim, lay.window) for lay in attention
            if lay.window} == {(256, 16, False, 256, 1024)}
    doc = mantile_core.estimate(model, "b200", input_len=8000, output_len=4).to_dict()
    held = sorted({layer["prefill"]["kv_cache_bytes"] for layer in doc["layers"] if layer["kind"] == "attention"})
    assert held == [2 * 16 * 256 * 2 * 1024, 2 * 4 * 512 * 2 * 8000]  # sliding capped, global full
    head = next(lay for lay in model.layers if lay.kind == "lm_head")
    assert head.softcap == 30.0 and head.tied


def test_k_eq_v_removes_the_v_gemm():
    model = mantile_core.load_model("gemma-4-31b")
    full = next(lay for lay in model.layers if lay.kind == "attention" and lay.window is None)
    step = Step(batch=1, new_tokens=10, cached=0, policies={"sliding": RING, "causal": CAUSAL_POLICY})

    with_v = attrs.evolve(full, k_eq_v=False)
    assert with_v.cost(step).matmul_flops - full.cost(step).matmul_flops == 2 * 10 * 5376 * 4 * 512
    assert with_v.params() - full.params() == 5376 * 4 * 512


def test_proportional_rope_equals_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    raw = json.loads(A4B.read_text())
    hf = transformers.Gemma4TextConfig(**raw["text_config"])
    theirs, factor = ROPE_INIT_FUNCTIONS["proportional"](hf, "cpu", layer_type="full_attention")
    ours = mantile_core.rope_scaling(hf.rope_parameters["full_attention"], 512, 262_144)
    assert len(ours.inv_freq) == 64 and theirs.shape[0] == 256
    assert torch.allclose(torch.as_tensor(ours.inv_freq, dtype=torch.float32), theirs[:64], rtol=1e-6, atol=0)
    assert bool((theirs[64:] == 0).all()) and factor == ours.attention_factor == 1.0


def test_unsupported_gemma4_features_are_refused():
    text = json.loads(A4B.read_text())["text_config"]
    for bad, what in (({"hidden_size_per_layer_input": 256}, "per-layer input"),
                      ({"num_kv_shared_layers": 10}, "KV sharing")):
        with pytest.raises(ConfigError, match=what) as info:
            read_model_config({**text, **bad}, "bad")
        assert "\n" not in str(info.value)


def test_moe_block_beside_the_dense_mlp():
    config = read_model_config(json.loads(A4B.read_text()), "a4b")
    layers = build_layers(config)
    block = [lay.kind for lay in layers if lay.index == 0]
    assert block == ["norm", "attention", "norm", "norm", "mlp", "moe", "norm"]
    moe = next(lay for lay in layers if lay.kind == "moe")
    assert (moe.experts, moe.top_k, moe.intermediate) == (128, 8, 704)
