"""The estimating path never imports torch, whichever plugins are installed.

Each check runs in a fresh interpreter (this test process may have imported torch already) and
inspects ``sys.modules`` afterwards: loading every installed plugin, estimating every bundled
model that the installed plugins make estimable (and the example Mamba model when its plugin
is installed), and the CLI commands other than ``validate``. In the torch-free tox environments
torch is not even installed; in the others it is, and still must not be imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mamba_mixer" / "config.json"

PROBE = r"""
import contextlib, io, json, sys
import mantile_core
from mantile_core.errors import MissingPluginError
from mantile_core.cli import main

pm = mantile_core.get_plugin_manager()
registries = pm.registries  # calls every hook of every installed plugin
estimated, needs_plugins = [], []
from mantile_core.model import bundled_models
names = bundled_models()
try:
    import mantile_mamba  # the example plugin, when installed
    try:  # mantile-recurrent also claims model_type mamba: with both, a Mamba config is a conflict
        import mantile_recurrent
    except ModuleNotFoundError:
        names.append(sys.argv[1])
except ModuleNotFoundError:
    pass
for name in names:
    try:
        model = mantile_core.load_model(name)
    except MissingPluginError:
        needs_plugins.append(name)
        continue
    for tp in (1, 2):
        try:
            mantile_core.estimate(model, "h100", tp=tp, batch=4, input_len=512, output_len=64).to_dict()
        except mantile_core.ParallelismError:
            pass
    estimated.append(name)
with contextlib.redirect_stdout(io.StringIO()):
    for argv in (["estimate", "llama-3.1-8b", "--json"], ["layers", "qwen3-8b"], ["plugins", "--json"],
                 ["hardware"]):
        assert main(argv) == 0, argv
print(json.dumps({
    "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
    "transformers": "transformers" in sys.modules,
    "plugins": sorted(i.distribution for i in pm.infos),
    "estimated": estimated,
    "needs_plugins": needs_plugins,
}))
"""


def probe() -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_estimating_imports_no_torch():
    report = probe()
    assert report["torch"] == [], f"torch imported on the estimating path: {report['torch'][:5]}"
    assert report["transformers"] is False
    # the models the core estimates without any plugin were estimated
    assert {"llama-3.1-8b", "llama-3.1-70b", "qwen3-8b", "mixtral-8x7b"} <= set(report["estimated"])
    # every model skipped for a missing plugin is one that needs a plugin that is not installed
    installed = set(report["plugins"])
    if {"mantile-gpt-oss-attention", "mantile-rope-yarn", "mantile-swa-cache"} <= installed:
        assert "gpt-oss-120b" in report["estimated"]
    else:
        assert "gpt-oss-120b" in report["needs_plugins"]
    recurrent = {"qwen3-next-80b-a3b", "falcon-mamba-7b", "jamba-v0.1", "nemotron-3-super"}
    if "mantile-recurrent" in installed:
        assert recurrent <= set(report["estimated"])
    else:
        assert recurrent <= set(report["needs_plugins"])
    if "mantile-mamba" in installed and "mantile-recurrent" not in installed:
        assert str(EXAMPLE) in report["estimated"]


def test_importing_the_core_alone_is_light():
    code = "import json, sys, mantile_core; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert "torch" not in loaded and "mantile_core" in loaded
