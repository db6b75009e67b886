"""The model_type is recognised before any other key; config readers normalise a family's
spelling; `mantile models` lists what the installed plugins support."""

from __future__ import annotations

import json

import pytest

import mantile_core
from mantile_core import checks, hookimpl
from mantile_core.cli import main
from mantile_core.errors import ConfigError, MissingPluginError, PluginConflictError, UnsupportedModelError
from mantile_core.model import supported_model_types
from mantile_core.records import ConfigReader

# GPT-2 small's published config.json (huggingface.co/openai-community/gpt2), the keys it has
GPT2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
        "vocab_size": 50257, "n_inner": None, "activation_function": "gelu_new"}


def _write(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_unknown_model_type_is_named_before_any_key(mantile_plugins, tmp_path):
    mantile_plugins()
    with pytest.raises(UnsupportedModelError) as info:
        mantile_core.load_model(_write(tmp_path, {"model_type": "frobnicator"}))
    message = str(info.value)
    assert "model_type 'frobnicator' is not supported by the installed plugins" in message
    assert "mantile-core: " in message and "llama" in message and "see `mantile models`" in message
    assert "required key" not in message and "\n" not in message


def test_gpt2_without_its_plugin_never_blames_a_key(mantile_plugins, tmp_path, capsys):
    mantile_plugins()
    assert main(["estimate", str(_write(tmp_path, GPT2)), "--hardware", "h100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model_type 'gpt2'" in err and "hidden_size" not in err and len(err.splitlines()) == 1


def test_known_plugin_type_names_the_plugin(mantile_plugins, tmp_path):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="model_type 'gpt_oss' needs mantile-gpt-oss-attention"):
        mantile_core.load_model("gpt-oss-20b")


def _read_gpt2(raw, where):
    """GPT-2 spelling -> standard keys (what a zoo plugin does)."""
    hidden = checks.get_int(raw, "n_embd", where)
    return {**raw, "hidden_size": hidden, "num_hidden_layers": checks.get_int(raw, "n_layer", where),
            "num_attention_heads": checks.get_int(raw, "n_head", where),
            "intermediate_size": checks.get_int(raw, "n_inner", where, default=4 * hidden),
            "max_position_embeddings": checks.get_int(raw, "n_positions", where, maximum=checks.MAX_POSITIONS),
            "model_type": "llama"}


class Gpt2Reader:
    @hookimpl
    def mantile_config_readers(self):
        return [ConfigReader("gpt2-reader", {"gpt2"}, _read_gpt2, "GPT-2 key spellings")]


def test_reader_normalises_the_spelling(mantile_plugins, tmp_path):
    mantile_plugins(Gpt2Reader())
    assert "gpt2" in supported_model_types()
    assert supported_model_types()["gpt2"] == ("test-plugin",)
    config = mantile_core.load_model(_write(tmp_path, GPT2)).config
    # 4·768 intermediate (n_inner null), 12 heads of 64
    assert (config.hidden_size, config.num_layers, config.intermediate_size, config.head_dim) == (768, 12, 3072, 64)
    assert config.max_position_embeddings == 1024


def test_reader_checks_its_own_keys(mantile_plugins, tmp_path):
    mantile_plugins(Gpt2Reader())
    with pytest.raises(ConfigError, match=r"'n_embd' must be an integer in \[1, 16777216\] \(got '768'\)"):
        mantile_core.load_model(_write(tmp_path, {**GPT2, "n_embd": "768"}))


class BrokenReader:
    @hookimpl
    def mantile_config_readers(self):
        return [ConfigReader("broken", {"gpt2"}, lambda raw, where: raw["no such key"])]


def test_a_failing_reader_is_one_line_naming_it(mantile_plugins, tmp_path):
    mantile_plugins(BrokenReader(), distribution="mantile-broken")
    with pytest.raises(ConfigError, match=r"the 'broken' config reader \(mantile-broken\) failed: KeyError"):
        mantile_core.load_model(_write(tmp_path, GPT2))


class OtherGpt2Reader:
    @hookimpl
    def mantile_config_readers(self):
        return [ConfigReader("other-gpt2", {"gpt2"}, _read_gpt2)]


def test_two_readers_of_one_model_type_conflict(mantile_plugins):
    pm = mantile_plugins(Gpt2Reader())
    pm.register_plugin(OtherGpt2Reader(), "other", "mantile-other")
    with pytest.raises(PluginConflictError, match="model_type 'gpt2' is read by both"):
        pm.registries


def test_models_command_lists_types_and_bundled(mantile_plugins, capsys):
    mantile_plugins(Gpt2Reader())
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    types = {m["model_type"]: m["provided_by"] for m in doc["model_types"]}
    assert types["llama"] == ["mantile-core"] and types["gpt2"] == ["test-plugin"]
    assert {"model_type": "gpt_oss", "plugin": "mantile-gpt-oss-attention"} in doc["not_installed"]
    bundled = {b["name"]: b for b in doc["bundled"]}
    assert bundled["llama-3.1-8b"]["supported"] and not bundled["gpt-oss-120b"]["supported"]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "model_type" in out and "gpt2" in out and "llama-3.1-8b" in out
