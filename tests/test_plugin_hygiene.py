"""Plugin hygiene through the real entry-point discovery, without pip.

The fixture puts fake distributions (``tests/data/fake_dists/*``: a ``*.dist-info`` with
METADATA and entry_points.txt next to the module) on ``sys.path``, so ``importlib.metadata``
finds them exactly as it finds installed plugins: a good one, one whose import fails and one
that claims a name the good one owns. Nothing is installed; the manager is rebuilt per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import mantile_core
from mantile_core.cli import main
from mantile_core.errors import PluginConflictError
from mantile_core.plugins import get_plugin_manager, reset_plugin_manager

FAKE = Path(__file__).parent / "data" / "fake_dists"
FAKE_CONFIG = str(FAKE / "fake-mixer.json")


@pytest.fixture
def fake_dists(monkeypatch):
    """Call with directory names under fake_dists/ to put those distributions on sys.path."""
    monkeypatch.delenv("MANTILE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("MANTILE_LOAD_PLUGINS", raising=False)

    def add(*names: str) -> None:
        for name in names:
            monkeypatch.syspath_prepend(str(FAKE / name))
        reset_plugin_manager()

    yield add
    for module in [m for m in sys.modules if m.startswith("mantile_fake_")]:
        del sys.modules[module]
    reset_plugin_manager()


def load_quietly():
    """The manager, with load-failure warnings recorded instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = get_plugin_manager()
    return pm, [str(w.message) for w in caught]


def external(pm) -> dict[str, object]:
    """Distribution -> PluginInfo of the fake plugins the manager saw."""
    return {i.distribution: i for i in pm.infos if i.distribution.startswith("mantile-fake-")}


def test_good_plugin_found_through_its_dist_info(fake_dists):
    fake_dists("good")
    pm, messages = load_quietly()
    info = external(pm)["mantile-fake-good"]
    assert (info.name, info.version, info.error) == ("fake_good", "1.0", None)
    assert pm.registries.owners[("layer_types", "fake-mixer")] == "mantile-fake-good"
    model = mantile_core.load_model(FAKE_CONFIG)
    assert [layer.type for layer in model.layers if layer.kind == "mixer"] == ["fake-mixer", "fake-mixer"]
    # 2 sequences of 8 tokens through a 64 x 64 matrix: 2·16·64·64 FLOPs per mixer
    rows = mantile_core.estimate(model, "h100", batch=2, input_len=8, output_len=2).to_dict()["layers"]
    assert [r["prefill"]["matmul_flops"] for r in rows if r["kind"] == "mixer"] == [2 * 16 * 64 * 64] * 2
    assert not [m for m in messages if "fake" in m]


def test_broken_plugin_is_reported_and_skipped(fake_dists):
    fake_dists("good", "broken")
    pm, messages = load_quietly()
    infos = external(pm)
    broken = infos["mantile-fake-broken"]
    assert broken.version == "2.0"
    assert broken.error == "ModuleNotFoundError: No module named 'mantile_fake_missing_dependency'"
    assert [m for m in messages if "mantile-fake-broken" in m] == [
        "mantile plugin 'fake_broken' from mantile-fake-broken failed to load and is skipped "
        "(ModuleNotFoundError: No module named 'mantile_fake_missing_dependency')"]
    assert pm.failures == [broken]
    # the others load and work
    assert infos["mantile-fake-good"].error is None
    assert mantile_core.load_model(FAKE_CONFIG).params() == 100 * 64 + 2 * 64 * 64 + 100 * 64
    assert mantile_core.estimate(mantile_core.load_model("llama-3.1-8b"), "h100").to_dict()["ttft_ms"] > 0


def test_plugins_json_reports_the_failed_one_with_its_error(fake_dists, capsys):
    fake_dists("good", "broken")
    load_quietly()
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_dist = {p["distribution"]: p for p in doc["plugins"]}
    assert by_dist["mantile-fake-broken"] == {
        "name": "fake_broken", "distribution": "mantile-fake-broken", "version": "2.0",
        "error": "ModuleNotFoundError: No module named 'mantile_fake_missing_dependency'", "provides": {}}
    assert by_dist["mantile-fake-good"]["provides"] == {"layer_types": ["fake-mixer"], "layouts": ["fake-mixer"]}
    assert by_dist["mantile-fake-good"]["error"] is None
    assert doc["conflict"] is None
    assert main(["plugins"]) == 0
    assert "FAILED: ModuleNotFoundError" in capsys.readouterr().out


def _cli(args: list[str], *dirs: str, **env: str) -> subprocess.CompletedProcess:
    """``mantile ARGS`` in a fresh interpreter whose sys.path holds the given fake dists."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MANTILE_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(FAKE / d) for d in dirs] + [environ.get("PYTHONPATH", "")])
    environ.update(env)
    code = "import sys; from mantile_core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ,
                          timeout=120)


def test_broken_plugin_in_a_fresh_process_is_one_warning_line():
    result = _cli(["plugins", "--json"], "good", "broken")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "mantile: warning: mantile plugin 'fake_broken' from mantile-fake-broken failed to load and is "
        "skipped (ModuleNotFoundError: No module named 'mantile_fake_missing_dependency')"]
    plugins = json.loads(result.stdout)["plugins"]
    assert [p["error"] for p in plugins if p["distribution"] == "mantile-fake-broken"] == [
        "ModuleNotFoundError: No module named 'mantile_fake_missing_dependency'"]
    estimate = _cli(["estimate", FAKE_CONFIG, "--json"], "good", "broken")
    assert estimate.returncode == 0 and json.loads(estimate.stdout)["layers"][1]["type"] == "fake-mixer"


def test_two_plugins_claiming_one_name_fail_naming_both(fake_dists, capsys):
    fake_dists("good", "conflict")
    pm, _ = load_quietly()
    with pytest.raises(PluginConflictError) as excinfo:
        pm.registries
    message = str(excinfo.value)
    assert "'fake-mixer'" in message
    assert "mantile-fake-good" in message and "mantile-fake-conflict" in message
    # the CLI: `plugins` lists both and the conflict, and exits 2; `estimate` is one line, exit 2
    assert main(["plugins", "--json"]) == 0
    assert "mantile-fake-conflict" in json.loads(capsys.readouterr().out)["conflict"]
    assert main(["plugins"]) == 2
    assert main(["estimate", FAKE_CONFIG]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mantile-fake-good" in err[0] and "mantile-fake-conflict" in err[0]


@pytest.mark.parametrize("value", ["1", "all"])
def test_disable_plugins_turns_every_external_plugin_off(fake_dists, monkeypatch, value):
    fake_dists("good", "broken", "conflict")
    monkeypatch.setenv("MANTILE_DISABLE_PLUGINS", value)
    pm, messages = load_quietly()
    assert [i.distribution for i in pm.infos] == ["mantile-core"]
    assert messages == []
    assert "fake-mixer" not in pm.registries.layer_types
    assert mantile_core.estimate(mantile_core.load_model("llama-3.1-8b"), "h100").to_dict()["ttft_ms"] > 0


def test_disable_plugins_by_distribution_or_entry_point_name(fake_dists, monkeypatch):
    fake_dists("good", "broken", "conflict")
    monkeypatch.setenv("MANTILE_DISABLE_PLUGINS", "mantile-fake-conflict, fake_broken")
    pm, messages = load_quietly()
    assert set(external(pm)) == {"mantile-fake-good"}
    assert pm.failures == [] and not [m for m in messages if "fake" in m]
    assert pm.registries.owners[("layer_types", "fake-mixer")] == "mantile-fake-good"


def test_load_plugins_keeps_only_the_named_ones(fake_dists, monkeypatch):
    fake_dists("good", "broken", "conflict")
    monkeypatch.setenv("MANTILE_LOAD_PLUGINS", "fake_good")
    pm, _ = load_quietly()
    assert [i.distribution for i in pm.infos] == ["mantile-core", "mantile-fake-good"]
    monkeypatch.setenv("MANTILE_LOAD_PLUGINS", "")
    reset_plugin_manager()
    pm, _ = load_quietly()
    assert [i.distribution for i in pm.infos] == ["mantile-core"]


def test_disable_in_a_fresh_process():
    result = _cli(["plugins", "--json"], "good", "broken", "conflict", MANTILE_DISABLE_PLUGINS="1")
    assert result.returncode == 0 and result.stderr == ""
    assert [p["distribution"] for p in json.loads(result.stdout)["plugins"]] == ["mantile-core"]


# hostile plugins (tests/data/fake_dists/hostile/README.md): entry point -> the error reported
HOSTILE = {
    "mantile-fake-raising": "its mantile_layer_types hook raised RuntimeError: hostile hook",
    "mantile-fake-junk": "its mantile_layer_types hook returned int '42', not a LayerType",
    "mantile-fake-scalar": "its mantile_cache_policies hook returned int, not a list of records",
    "mantile-fake-badrecord": "its mantile_layer_types hook raised TypeError: 'name' must be a non-empty string (got 5)",
    "mantile-fake-badhardware": "its mantile_hardware hook returned a bad HardwareSpec: fakegpu: "
                                "peak_flops['bf16'] must be a positive finite number (got nan)",
    "mantile-fake-hookprinter": "its mantile_rope_scalings hook printed to stdout ('hello from a hook')",
    "mantile-fake-importprinter": "printed to stdout at import ('hello from an import')",
    "mantile-fake-fdwriter": "its mantile_rope_scalings hook printed to stdout ('raw bytes from a hook')",
    "mantile-fake-fdimport": "printed to stdout at import ('raw bytes from an import')",
    "mantile-fake-exiter": "SystemExit: 3",
    "mantile-fake-baseexc": "Hostile: not an Exception",
    "mantile-fake-badimpl": "PluginValidationError: Plugin 'fake_badimpl' for hook 'mantile_layer_types'",
}


def test_hostile_plugins_are_reported_and_skipped_and_json_stays_clean(fake_dists, capsys):
    fake_dists("good", "hostile")
    assert main(["plugins", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # nothing a plugin printed got into the document
    errors = {p["distribution"]: p["error"] for p in doc["plugins"]}
    for distribution, error in HOSTILE.items():
        assert errors[distribution].startswith(error), distribution
        assert f"from {distribution} " in err, distribution  # the one-line warning
    assert errors["mantile-fake-good"] is None
    assert {p["distribution"]: p["provides"] for p in doc["plugins"]}["mantile-fake-hookprinter"] == {}
    # the good plugin and the core keep working, and estimate --json parses
    assert main(["estimate", FAKE_CONFIG, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][1]["type"] == "fake-mixer"
    assert "fakegpu" not in get_plugin_manager().registries.hardware
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert "FAILED: SystemExit: 3" in table and "FAILED: its mantile_layer_types hook raised" in table


def test_hostile_plugins_in_a_fresh_process_warn_on_stderr_only():
    result = _cli(["estimate", "llama-3.2-1b", "--json"], "good", "hostile")
    assert result.returncode == 0
    assert json.loads(result.stdout)["model"] == "llama-3.2-1b"
    lines = result.stderr.splitlines()
    assert len(lines) == len(HOSTILE) and all(line.startswith("mantile: warning: mantile plugin ") for line in lines)
