"""mantile-gemma: Gemma 2 / 3 against published totals, transformers' configs and hand
arithmetic (never Mantile's own output). Configs: mantile_core/data/models/SOURCES.md and
tests/data/gemma/SOURCES.md."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

pytest.importorskip("mantile_gemma")
pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.errors import ConfigError, MissingPluginError  # noqa: E402
from mantile_core.model import read_model_config  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_swa_cache.policies import RING  # noqa: E402

DATA = Path(__file__).parent / "data" / "gemma"
GEMMA3_1B = DATA / "gemma-3-1b-it.json"


def gemma2_9b_params() -> int:
    """By hand: embedding V·H (tied head), per layer q/k/v/o + GeGLU + 4 norms, final norm."""
    hidden, layers, heads, kv, dh, inter, vocab = 3584, 42, 16, 8, 256, 14336, 256_000
    attention = hidden * (heads + 2 * kv) * dh + heads * dh * hidden
    per_layer = attention + 3 * hidden * inter + 4 * hidden
    return vocab * hidden + layers * per_layer + hidden


def test_published_totals():
    # google/gemma-2-9b(-it) safetensors total 9,241,705,984 (also by hand, above)
    assert gemma2_9b_params() == 9_241_705_984
    assert mantile_core.load_model("gemma-2-9b").params() == 9_241_705_984
    # google/gemma-3-1b-it safetensors total 999,885,952 (transformers' Gemma3ForCausalLM: same)
    assert mantile_core.load_model(GEMMA3_1B).params() == 999_885_952
    # google/gemma-3-27b-it: published 27,432,406,640 = text 27,009,346,304 + SigLIP vision tower
    # 416,866,032 + projector 6,194,304 (transformers 5.24 Gemma3ForConditionalGeneration on the
    # meta device, split by module); the estimate covers the text model
    assert 27_009_346_304 + 416_866_032 + 6_194_304 == 27_432_406_640
    assert mantile_core.load_model("gemma-3-27b").params() == 27_009_346_304


def test_gemma2_9b_kv_at_8000_tokens():
    """21 global layers hold the whole 8000-token prompt, 21 sliding layers 4096 (ring)."""
    model = mantile_core.load_model("gemma-2-9b")
    doc = mantile_core.estimate(model, "h200", input_len=8000, output_len=2).to_dict()
    row = 2 * 8 * 256 * 2  # K and V, 8 KV heads x 256, bf16
    held = sorted(layer["prefill"]["kv_cache_bytes"] // row for layer in doc["layers"] if layer["kind"] == "attention")
    assert held == [4096] * 21 + [8000] * 21
    assert doc["kv_policy"] == {"causal": "causal", "sliding": "ring"}


def test_layer_types_and_rope_match_transformers():
    transformers = pytest.importorskip("transformers")
    raw = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "gemma-3-27b.json").read_text())
    hf = transformers.Gemma3TextConfig(**raw["text_config"])
    config = mantile_core.load_model("gemma-3-27b").config
    assert [("sliding_attention" if w else "full_attention") for w in config.windows] == hf.layer_types
    assert config.windows.count(None) == 10 and set(config.windows) == {1024, None}
    model = mantile_core.load_model("gemma-3-27b")
    attention = [lay for lay in model.layers if lay.kind == "attention"]
    assert {(lay.window, lay.rope_type) for lay in attention} == {(1024, "default"), (None, "linear")}
    assert hf.rope_parameters["full_attention"]["rope_type"] == "linear"
    assert config.get("rope_local_parameters")["rope_theta"] == hf.rope_parameters["sliding_attention"]["rope_theta"]
    assert config.rope_parameters["rope_theta"] == hf.rope_parameters["full_attention"]["rope_theta"] == 1e6
    hf2 = transformers.Gemma2Config(**json.loads((Path(mantile_core.__file__).parent / "data" / "models"
                                                  / "gemma-2-9b.json").read_text()))
    windows = mantile_core.load_model("gemma-2-9b").config.windows
    assert [("sliding_attention" if w else "full_attention") for w in windows] == hf2.layer_types


def test_softcap_and_geglu_flops():
    """Gemma 2 attention adds 3·heads·pairs soft-capping FLOPs; the head 3·B·V; GeGLU counts 10
    per intermediate element (SwiGLU: 5); the embedding T·H for the sqrt(H) scale."""
    model = mantile_core.load_model("gemma-2-9b")
    step = Step(batch=2, new_tokens=100, cached=0, policies={"sliding": RING})
    attention = next(lay for lay in model.layers if lay.kind == "attention")
    plain = attrs.evolve(attention, logit_softcap=None)
    pairs = 2 * 100 * 101 // 2
    assert attention.cost(step).flops - plain.cost(step).flops == 3 * 16 * pairs
    head = next(lay for lay in model.layers if lay.kind == "lm_head")
    assert head.cost(step).flops == 2 * 2 * 3584 * 256_000 + 3 * 2 * 256_000
    assert head.params() == 0
    mlp = next(lay for lay in model.layers if lay.kind == "mlp")
    tokens = 200
    assert mlp.cost(step).flops == 2 * tokens * 3584 * 2 * 14336 + 2 * tokens * 14336 * 3584 + 10 * tokens * 14336
    embedding = model.layers[0]
    assert embedding.cost(step).flops == tokens * 3584
    norms = [lay for lay in model.layers if lay.kind == "norm"]
    assert len(norms) == 4 * 42 + 1
    assert norms[0].cost(step).flops == 4 * tokens * 3584 + 3584


def test_gemma3_has_qk_norm_and_no_softcap():
    model = mantile_core.load_model(GEMMA3_1B)
    attention = [lay for lay in model.layers if lay.kind == "attention"]
    assert all(lay.qk_norm and lay.logit_softcap is None for lay in attention)
    assert [lay.window for lay in attention].count(None) == 4  # layers 5, 11, 17, 23
    assert next(lay for lay in model.layers if lay.kind == "lm_head").softcap is None


def test_reader_errors_are_one_line():
    base = json.loads(GEMMA3_1B.read_text())
    for bad, key in (({"final_logit_softcapping": -1}, "final_logit_softcapping"),
                     ({"hidden_activation": "relu"}, "hidden_activation"),
                     ({"sliding_window_pattern": 0}, "sliding_window_pattern"),
                     ({"layer_types": ["sliding_attention"]}, "layer_types")):
        with pytest.raises(ConfigError, match=key) as info:
            read_model_config({**base, **bad}, "bad")
        assert "\n" not in str(info.value)


def test_missing_plugin_named(mantile_plugins, capsys):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="mantile-gemma"):
        mantile_core.load_model("gemma-2-9b")
    assert main(["layers", "gemma-3-27b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mantile-gemma" in err
