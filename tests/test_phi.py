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
