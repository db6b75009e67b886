"""Install hints name checkout directories that exist and hold the distribution they name
(no ``mantile-*`` package is published on an index yet)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from mantile_core.cache import MASK_PLUGINS
from mantile_core.install_hints import CHECKOUT_PATHS, CHECKOUT_REQUIRES, checkout_path, install_hint
from mantile_core.model import MODEL_TYPE_PLUGINS
from mantile_core.rope import ROPE_PLUGINS

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT_DIRS = [ROOT] + sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml")) \
    + sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))


def _name(directory: Path) -> str:
    return tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]


HINTED = sorted(set(CHECKOUT_PATHS) | set(MODEL_TYPE_PLUGINS.values()) | set(MASK_PLUGINS.values())
                | set(ROPE_PLUGINS.values()))


@pytest.mark.parametrize("distribution", HINTED)
def test_every_hinted_path_holds_that_distribution(distribution):
    path = ROOT / checkout_path(distribution)
    assert (path / "pyproject.toml").is_file(), f"{distribution}: {checkout_path(distribution)} has no pyproject.toml"
    assert _name(path) == distribution


@pytest.mark.parametrize("directory", CHECKOUT_DIRS, ids=lambda d: str(d.relative_to(ROOT)) or ".")
def test_every_checkout_distribution_is_hinted_at_its_directory(directory):
    assert (ROOT / checkout_path(_name(directory))).resolve() == directory.resolve()


@pytest.mark.parametrize("directory", CHECKOUT_DIRS, ids=lambda d: str(d.relative_to(ROOT)) or ".")
def test_checkout_requires_matches_the_pyprojects(directory):
    from packaging.requirements import Requirement

    project = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needs = {Requirement(r).name for r in project.get("dependencies", [])}
    needs = {n for n in needs if n.startswith("mantile-") and n != "mantile-core"}
    assert set(CHECKOUT_REQUIRES.get(project["name"], ())) == needs


def test_hint_text():
    assert install_hint("mantile-swa-cache", "mantile-rope-yarn", "mantile-rope-yarn") == \
        "pip install ./plugins/swa_cache ./plugins/rope_yarn (from the Mantile checkout)"
    assert install_hint("mantile-gpt-oss-attention", "mantile-swa-cache") == \
        "pip install ./plugins/rope_yarn ./plugins/swa_cache ./plugins/gpt_oss_attention (from the Mantile checkout)"
    assert install_hint("mantile-core", extra="plot") == "pip install './[plot]' (from the Mantile checkout)"
    assert checkout_path("mantile-some-new-thing") == "./plugins/some_new_thing"


def test_no_hint_names_an_index_package():
    """No message or document tells a user to pip install a mantile-* name from an index."""
    pattern = re.compile(r"pip install [^\n`]*?(?<![./\w])'?\"?mantile-[a-z]")
    offenders = []
    for path in [*ROOT.glob("mantile_core/**/*.py"), *ROOT.glob("plugins/*/**/*.py"), *ROOT.glob("examples/*/**/*.py"),
                 *ROOT.glob("plugins/*/README.md"), *ROOT.glob("examples/*/README.md"), *ROOT.glob("docs/*.md"),
                 ROOT / "README.md"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("directory", CHECKOUT_DIRS, ids=lambda d: str(d.relative_to(ROOT)) or ".")
def test_pyproject_license_is_an_spdx_expression(directory):
    """``license = "Apache-2.0"`` (PEP 639) with a setuptools that reads it: the table form
    ``license = { text = ... }`` makes setuptools >= 77 warn at every build."""
    data = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(data["project"]["license"], str)
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools == "setuptools>=77"
