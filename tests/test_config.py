"""config.json parsing: the forms published configs take, and the errors bad ones get."""

from __future__ import annotations

import json

import pytest

import mantile_core
from mantile_core.config import parse_config
from mantile_core.errors import ConfigError, UnknownModelError

BASE = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 8,
        "num_key_value_heads": 2, "vocab_size": 100, "intermediate_size": 128}


def cfg(**extra):
    return parse_config({**BASE, **extra}, name="t")


def test_head_dim_derived_or_given():
    assert cfg().head_dim == 8
    assert cfg(head_dim=16).head_dim == 16


def test_old_rope_scaling_and_new_rope_parameters_agree():
    old = cfg(rope_theta=5e5, rope_scaling={"type": "linear", "factor": 2.0})
    new = cfg(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5})
    assert old.rope_parameters == new.rope_parameters == {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}
    assert cfg().rope_parameters == {"rope_type": "default", "rope_theta": 10000.0}


def test_layer_types_give_windows():
    c = cfg(sliding_window=16, layer_types=["sliding_attention", "full_attention"] * 2)
    assert c.windows == (16, None, 16, None)


def test_sliding_window_with_use_sliding_window():
    assert cfg(sliding_window=32).windows == (32,) * 4  # Mistral: no flag, every layer
    assert cfg(sliding_window=32, use_sliding_window=False).windows == (None,) * 4  # Qwen2.5 as published
    assert cfg(sliding_window=32, use_sliding_window=True, max_window_layers=2).windows == (None, None, 32, 32)


def test_bundled_configs_read_their_windows():
    qwen = mantile_core.load_model("qwen2.5-7b").config
    assert set(qwen.windows) == {None}


def test_quantization_config_keeps_unconverted_modules():
    c = cfg(quantization_config={"quant_method": "mxfp4",
                                 "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]})
    assert c.weight_dtype("model.layers.3.self_attn").name == "bf16"
    assert c.weight_dtype("model.layers.3.mlp.experts").name == "mxfp4"
    assert c.weight_dtype("lm_head").name == "bf16"
    assert c.weight_dtype("model.layers.3.mlp.experts", quantizable=False).name == "bf16"


def test_moe_keys_spellings():
    assert cfg(num_local_experts=8, num_experts_per_tok=2).num_experts == 8
    qwen = cfg(num_experts=16, num_experts_per_tok=4, moe_intermediate_size=32)
    assert (qwen.num_experts, qwen.moe_intermediate_size) == (16, 32)


@pytest.mark.parametrize("change,message", [
    ({"hidden_size": None}, "required key 'hidden_size' is missing"),
    ({"num_key_value_heads": 3}, "num_attention_heads=8 must be a multiple of num_key_value_heads=3"),
    ({"vocab_size": -3}, r"'vocab_size' must be an integer in \[1, 16777216\] \(got -3\)"),
    ({"vocab_size": 2**70}, r"'vocab_size' must be an integer in \[1, 16777216\] \(got 1180591620717411303424\)"),
    ({"num_experts": 8, "num_experts_per_tok": -1}, r"'num_experts_per_tok' must be an integer in \[0, 65536\] \(got -1\)"),
    ({"tie_word_embeddings": "false"}, r"'tie_word_embeddings' must be true or false \(got 'false'\)"),
    ({"sliding_window": 0.5}, r"'sliding_window' must be an integer in \[1, 1099511627776\] \(got 0.5\)"),
    ({"rope_theta": "abc"}, r"'rope_theta' must be a finite number > 0 \(got 'abc'\)"),
    ({"rope_theta": float("nan")}, r"'rope_theta' must be a finite number > 0 \(got nan\)"),
    ({"layer_types": 5}, r"'layer_types' must be a list \(got 5\)"),
    ({"hidden_size": 64.5}, r"'hidden_size' must be an integer in \[1, 16777216\] \(got 64.5\)"),
    ({"hidden_size": True}, r"'hidden_size' must be an integer"),
    ({"max_position_embeddings": 0}, r"'max_position_embeddings' must be an integer in \[1, "),
    ({"rope_scaling": "yarn"}, r"'rope_scaling' must be an object \(got 'yarn'\)"),
    ({"rope_scaling": {"rope_type": "linear", "factor": float("inf")}}, r"'factor' must be a finite number"),
    ({"torch_dtype": "float7"}, r"'torch_dtype': unknown dtype 'float7'"),
    ({"quantization_config": [1]}, r"'quantization_config' must be an object"),
    ({"num_hidden_layers": "four"}, "'num_hidden_layers' must be an integer"),
    ({"model_type": None}, "required key 'model_type' is missing"),
    ({"layer_types": ["full_attention"]}, "layer_types has 1 entries"),
    ({"quantization_config": {"quant_method": "awq"}}, "quantization method 'awq' is not supported"),
])
def test_bad_configs(change, message):
    data = {**BASE, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        parse_config(data, name="t")


def test_integral_float_reads_as_int_and_shared_expert_zero_means_none():
    c = cfg(hidden_size=64.0, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
            shared_expert_intermediate_size=0)
    assert c.hidden_size == 64 and isinstance(c.hidden_size, int)
    assert c.shared_expert_intermediate_size is None


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        mantile_core.load_model(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        mantile_core.load_model(tmp_path / "nope" / "config.json")
    with pytest.raises(UnknownModelError, match="unknown model 'gpt-9'"):
        mantile_core.load_model("gpt-9")


def test_directory_with_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BASE))
    assert mantile_core.load_model(tmp_path).params() > 0


def test_top_level_original_max_position_joins_rope_parameters():
    c = cfg(rope_scaling={"rope_type": "linear", "factor": 2.0}, original_max_position_embeddings=4096)
    assert c.rope_parameters["original_max_position_embeddings"] == 4096
    assert "original_max_position_embeddings" not in cfg(original_max_position_embeddings=4096).rope_parameters


def test_layer_flags_are_json_booleans(mantile_plugins, tmp_path):
    """attention_bias / mlp_bias read by the core's layers: the string "false" is refused, not true."""
    mantile_plugins()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**BASE, "attention_bias": "false"}))
    with pytest.raises(ConfigError, match=r"'attention_bias' must be true or false \(got 'false'\)"):
        mantile_core.load_model(path)
