"""mantile-llama4: Llama 4 Scout / Maverick against transformers' meta-device totals
(tests/data/hf_collection/expected_totals.json, never Mantile's output) and hand arithmetic;
chunked layers' KV bounded by the chunk; NoPE global layers; interleaved MoE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mantile_llama4")
pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.errors import ConfigError, MissingPluginError  # noqa: E402
from mantile_core.model import read_model_config  # noqa: E402

EXPECTED = json.loads((Path(__file__).parent / "data" / "hf_collection" / "expected_totals.json").read_text())


def by_hand(experts: int, step: int) -> int:
    """Embedding + untied head, 48 layers of attention (40 q / 8 kv heads x 128) and 2 norms, MoE
    layers (router H·E, E experts and one shared expert of 3·H·8192) every ``step``-th layer,
    dense SwiGLU (3·H·16384) elsewhere, final norm."""
    hidden, vocab, layers = 5120, 202_048, 48
    attention = hidden * (40 + 2 * 8) * 128 + 40 * 128 * hidden
    moe = hidden * experts + experts * 3 * hidden * 8192 + 3 * hidden * 8192
    dense = 3 * hidden * 16_384
    moe_layers = len(range(step - 1, layers, step))
    return (2 * vocab * hidden + layers * (attention + 2 * hidden) + moe_layers * moe
            + (layers - moe_layers) * dense + hidden)


def test_totals():
    scout = EXPECTED["configs"]["meta-llama--Llama-4-Scout-17B-16E-Instruct"]["text_params"]
    maverick = EXPECTED["configs"]["meta-llama--Llama-4-Maverick-17B-128E-Instruct"]["text_params"]
    assert (scout, maverick) == (107_769_861_120, 400_711_848_960)
    assert by_hand(16, 1) == scout and by_hand(128, 2) == maverick
    assert mantile_core.load_model("llama-4-scout").params() == scout
    assert mantile_core.load_model("llama-4-maverick").params() == maverick


def test_layer_kinds():
    scout = mantile_core.load_model("llama-4-scout")
    attention = [lay for lay in scout.layers if lay.kind == "attention"]
    nope = [lay.index for lay in attention if lay.rotary_dim == 0]
    assert nope == list(range(3, 48, 4))  # every 4th layer: NoPE and global
    assert all(lay.chunk is None and lay.mask == "causal" and lay.temperature for lay in attention if lay.index in nope)
    assert all(lay.chunk == 8192 and lay.mask == "chunked" and lay.l2_qk_norm for lay in attention
               if lay.index not in nope)
    assert sum(lay.kind == "moe" for lay in scout.layers) == 48
    maverick = mantile_core.load_model("llama-4-maverick")
    assert [lay.index for lay in maverick.layers if lay.kind == "moe"] == list(range(1, 48, 2))
    assert sum(lay.kind == "mlp" for lay in maverick.layers) == 24
    assert not any(lay.l2_qk_norm for lay in maverick.layers if lay.kind == "attention")  # use_qk_norm false


def test_scout_chunked_layers_hold_at_most_8192_positions():
    model = mantile_core.load_model("llama-4-scout")
    row = 2 * 8 * 128 * 2  # K and V, 8 KV heads x 128, bf16
    for input_len, context in ((20_000, 30_000), (8192, 8191), (100_000, 131_071)):
        doc = mantile_core.estimate(model, "h200", tp=8, input_len=input_len, output_len=16, context=context).to_dict()
        held = {}
        for layer in doc["layers"]:
            if layer["kind"] == "attention":
                held.setdefault(layer["index"] % 4 == 3, set()).add(
                    (layer["prefill"]["kv_cache_bytes"], layer["decode"]["kv_cache_bytes"]))
        local = row // 8  # tp 8: one KV head per device
        (chunked,), (glob,) = held[False], held[True]
        assert chunked == (local * ((input_len - 1) % 8192 + 1), local * (context % 8192 + 1))
        assert max(chunked) <= local * 8192
        assert glob == (local * input_len, local * (context + 1))
    paged = mantile_core.estimate(model, "h200", tp=8, input_len=20_000, output_len=16, kv_policy="paged").to_dict()
    assert paged["kv_policy"] == {"causal": "causal", "chunked": "chunked-paged"}


def test_llama3_rope_with_equal_band_factors_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = mantile_core.load_model("llama-4-scout").config
    ours = mantile_core.rope_scaling(config.rope_parameters, 128, config.max_position_embeddings)
    raw = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "llama-4-scout.json").read_text())
    hf = transformers.Llama4TextConfig(**raw["text_config"])
    theirs, factor = ROPE_INIT_FUNCTIONS["llama3"](hf, "cpu")
    assert torch.allclose(torch.as_tensor(ours.inv_freq, dtype=torch.float32), theirs, rtol=1e-6, atol=0)
    assert factor == ours.attention_factor == 1.0


def test_reader_errors_and_missing_plugin(mantile_plugins, capsys):
    raw = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "llama-4-scout.json").read_text())
    text = raw["text_config"]
    for bad, key in (({"no_rope_layers": [1, 0]}, "no_rope_layers"), ({"moe_layers": [99]}, "moe_layers"),
                     ({"hidden_act": "gelu"}, "hidden_act"), ({"interleave_moe_layer_step": 0}, "interleave")):
        with pytest.raises(ConfigError, match=key) as info:
            read_model_config({**text, **bad}, "bad")
        assert "\n" not in str(info.value)
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="mantile-llama4"):
        mantile_core.load_model("llama-4-scout")
    assert main(["estimate", "llama-4-maverick"]) == 2
    assert "mantile-llama4" in capsys.readouterr().err


def test_estimate_says_how_chunked_layers_keep_kv(capsys):
    assert main(["estimate", "llama-4-scout", "--tp", "8", "--input-len", "100", "--output-len", "4"]) == 0
    out = capsys.readouterr().out
    assert "KV cache: chunked layers keep only their current 8192-token chunk; full layers keep the whole context" in out
    assert main(["estimate", "llama-4-scout", "--tp", "8", "--input-len", "100", "--output-len", "4",
                 "--kv-policy", "paged"]) == 0
    assert "chunked layers keep the 16-token blocks from their current 8192-token chunk's start" in capsys.readouterr().out
