"""Configs of attention-free architectures (Mamba, RWKV) parse: they declare no attention heads.

Such a model needs a plugin for its layout and layers (the example plugin in
examples/mamba_mixer provides Mamba's); a standard decoder config that lacks the key still
fails with the missing-key error, when its attention layers are built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mantile_core
from mantile_core.config import parse_config
from mantile_core.errors import ConfigError, MissingPluginError

MAMBA = Path(__file__).resolve().parent.parent / "examples" / "mamba_mixer" / "config.json"


def test_mamba_config_parses_with_no_heads():
    config = parse_config(json.loads(MAMBA.read_text()), name="mamba-130m")
    assert (config.num_heads, config.num_kv_heads, config.head_dim) == (0, 0, 0)
    assert (config.hidden_size, config.num_layers, config.intermediate_size) == (768, 24, 1536)
    assert config.windows == (None,) * 24


def test_standard_model_without_heads_still_names_the_key(mantile_plugins, tmp_path):
    mantile_plugins()
    data = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100,
            "intermediate_size": 128}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="required key 'num_attention_heads' is missing"):
        mantile_core.load_model(path)


def test_mamba_without_its_plugin_is_a_missing_plugin_error(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="model_type 'mamba'"):
        mantile_core.load_model(MAMBA)
