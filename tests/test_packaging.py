"""The checkout's distributions are consistent with each other and with tox.ini, read from their
pyproject.toml files (nothing is built or installed here; tox and the wheel builds do that).

- each has a name, its own version, a readme file that exists (the build needs it), and a
  ``torch`` extra that is exactly ``torch==2.13.0`` (the CPU wheel this project tests with);
- each plugin requires mantile-core with a bounded range that admits the checkout's core, and
  every ``mantile-*`` requirement names a sibling whose version the range admits;
- each plugin registers exactly one entry point in the group ``mantile`` whose module exists;
- tox.ini installs every plugin alone, and everything together in the ``all`` environment.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the core depends on tomli there
    import tomli as tomllib

packaging = pytest.importorskip("packaging")
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402
from packaging.version import Version  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIRS = [ROOT] + sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml")) \
    + sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))
PLUGIN_DIRS = [d for d in DIRS if d != ROOT]


def project(directory: Path) -> dict:
    return tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))["project"]


VERSIONS = {canonicalize_name(project(d)["name"]): Version(project(d)["version"]) for d in DIRS}


def rel(directory: Path) -> str:
    return str(directory.relative_to(ROOT)) or "."


@pytest.mark.parametrize("directory", DIRS, ids=rel)
def test_distribution_metadata(directory):
    meta = project(directory)
    assert canonicalize_name(meta["name"]).startswith("mantile-")
    Version(meta["version"])  # a valid version of its own
    assert (directory / meta["readme"]).is_file(), f"{rel(directory)}: readme {meta['readme']} is missing"
    assert meta["optional-dependencies"]["torch"] == ["torch==2.13.0"]
    for text in meta.get("dependencies", []):
        assert canonicalize_name(Requirement(text).name) != "torch", "torch belongs in the [torch] extra"


@pytest.mark.parametrize("directory", PLUGIN_DIRS, ids=rel)
def test_plugin_requires_a_compatible_core_range(directory):
    requirements = [Requirement(t) for t in project(directory)["dependencies"]]
    core = [r for r in requirements if canonicalize_name(r.name) == "mantile-core"]
    assert len(core) == 1, "a plugin depends on mantile-core"
    spec = core[0].specifier
    assert spec.contains(VERSIONS["mantile-core"]), f"{spec} does not admit the checkout's core"
    assert any(s.operator in ("<", "<=", "~=", "==") for s in spec), f"{spec} has no upper bound"
    for req in requirements:
        name = canonicalize_name(req.name)
        if name.startswith("mantile-"):
            assert name in VERSIONS, f"{name} is not a distribution of this checkout"
            assert req.specifier.contains(VERSIONS[name]), f"{req} does not admit {VERSIONS[name]}"


@pytest.mark.parametrize("directory", PLUGIN_DIRS, ids=rel)
def test_plugin_entry_point(directory):
    points = project(directory)["entry-points"]["mantile"]
    assert len(points) == 1
    module = next(iter(points.values()))
    path = directory / Path(*module.split("."))
    assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{module} does not exist"


def test_tox_installs_every_plugin_alone_and_all_together():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")

    def targets(env: str) -> list[str]:
        line = tox[f"testenv:{env}"].get("commands_pre", "")
        if "install_checkout.py" not in line:
            return []
        return [t.split("[")[0] for t in line.split("install_checkout.py", 1)[1].split() if not t.startswith("--")]

    envs = [s.split(":", 1)[1] for s in tox.sections() if s.startswith("testenv:")]
    for directory in PLUGIN_DIRS:
        alone = [e for e in envs if targets(e) == [".", rel(directory)]]
        assert alone, f"no tox environment installs {rel(directory)} alone next to the core"
        assert rel(directory) in targets("all")
    assert targets("core") == ["."]


def _installer():
    """tools/install_checkout.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("install_checkout", ROOT / "tools" / "install_checkout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installer_pulls_in_local_siblings_only():
    inst = _installer()
    dists = inst.local_distributions()
    wanted, third_party = inst.resolve([inst.parse_target("plugins/gpt_oss_attention[torch]", dists)], dists)
    assert set(wanted) == {"mantile-core", "mantile-rope-yarn", "mantile-swa-cache", "mantile-gpt-oss-attention"}
    assert wanted["mantile-gpt-oss-attention"] == {"torch"}
    assert "torch==2.13.0" in third_party
    assert not [r for r in third_party if canonicalize_name(Requirement(r).name).startswith("mantile-")]


def test_installer_refuses_what_the_checkout_cannot_provide():
    inst = _installer()
    dists = inst.local_distributions()
    dists["mantile-swa-cache"]["dependencies"].append("mantile-not-here>=1")
    with pytest.raises(inst.InstallError, match="not in this checkout: refusing to fetch"):
        inst.resolve([inst.parse_target("plugins/swa_cache", dists)], dists)
    dists = inst.local_distributions()
    dists["mantile-core"]["version"] = "0.2.0"
    with pytest.raises(inst.InstallError, match="mantile-core is version 0.2.0: bump one of them"):
        inst.resolve([inst.parse_target("plugins/swa_cache", dists)], dists)
    with pytest.raises(inst.InstallError, match="has no extra 'nope'"):
        inst.parse_target("plugins/swa_cache[nope]", dists)
