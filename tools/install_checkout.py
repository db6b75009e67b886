"""Install distributions of this checkout, editable, into the running Python, and nothing named
``mantile-*`` from a package index.

Usage (tox runs it in ``commands_pre``; it works the same in any virtual environment)::

    python tools/install_checkout.py [--no-torch] .[test] plugins/gpt_oss_attention[torch]

Each argument is a directory of this checkout holding a pyproject.toml, with optional extras.
The script

1. follows every ``mantile-*`` requirement (of the distributions and of the extras asked for)
   to the checkout's own directory of that name, checking that the local version satisfies the
   requirement's range, so a missing or incompatible sibling is an error here, never a download;
2. installs those directories with ``pip install --no-deps --editable`` (pip cannot go to an
   index for them), then the third-party requirements they declare with a normal
   ``pip install`` (none of which is a ``mantile-*`` name);
3. guards the result: every installed ``mantile-*`` distribution must be an editable install
   of a directory inside this checkout and be one the arguments asked for, ``pip check`` must
   pass, and with ``--no-torch`` torch must not be installed at all.

Exit status 0 on success, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "mantile-"
SEARCH = (".", "plugins/*", "examples/*")


class InstallError(Exception):
    """A request this script refuses (missing sibling, incompatible range, failed guard)."""


def local_distributions() -> dict[str, dict]:
    """Canonical name -> {path, version, dependencies, extras} for every pyproject.toml of the
    checkout (the root, plugins/*, examples/*)."""
    found: dict[str, dict] = {}
    for pattern in SEARCH:
        for directory in [ROOT] if pattern == "." else sorted(ROOT.glob(pattern)):
            pyproject = directory / "pyproject.toml"
            if not pyproject.is_file():
                continue
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
            if "name" not in project:
                continue
            found[canonicalize_name(project["name"])] = {
                "path": directory.resolve(),
                "version": project.get("version", "0"),
                "dependencies": list(project.get("dependencies", [])),
                "extras": {canonicalize_name(k): list(v) for k, v in project.get("optional-dependencies", {}).items()},
            }
    return found


def parse_target(text: str, dists: dict[str, dict]) -> tuple[str, set[str]]:
    """``plugins/rope_yarn[torch]`` -> (canonical name, {"torch"})."""
    match = re.fullmatch(r"(?P<path>[^\[\]]+)(\[(?P<extras>[^\]]*)\])?", text.strip())
    if not match:
        raise InstallError(f"cannot read target {text!r}: expected a directory with optional [extras]")
    path = (ROOT / match["path"]).resolve()
    extras = {canonicalize_name(e) for e in (match["extras"] or "").split(",") if e.strip()}
    for name, dist in dists.items():
        if dist["path"] == path:
            unknown = extras - set(dist["extras"])
            if unknown:
                raise InstallError(f"{name} has no extra {sorted(unknown)[0]!r} (it has: {', '.join(sorted(dist['extras'])) or 'none'})")
            return name, extras
    raise InstallError(f"{match['path']!r} is not a distribution of this checkout (no pyproject.toml with a [project] name)")


def resolve(targets: list[tuple[str, set[str]]], dists: dict[str, dict]) -> tuple[dict[str, set[str]], list[str]]:
    """Close the targets over their ``mantile-*`` requirements; returns (local name -> extras,
    third-party requirement strings). Markers are evaluated for the running Python."""
    wanted: dict[str, set[str]] = {}
    third_party: list[str] = []
    queue = list(targets)
    while queue:
        name, extras = queue.pop()
        seen = wanted.get(name)
        if seen is not None and extras <= seen:
            continue
        wanted[name] = (seen or set()) | extras
        dist = dists[name]
        groups = [("", dist["dependencies"])] + [(e, dist["extras"][e]) for e in sorted(extras)]
        for extra, requirements in groups:
            for text in requirements:
                req = Requirement(text)
                if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                    continue
                req_name = canonicalize_name(req.name)
                if not req_name.startswith(PREFIX):
                    req.marker = None  # already evaluated for this Python
                    third_party.append(str(req))
                    continue
                sibling = dists.get(req_name)
                if sibling is None:
                    raise InstallError(f"{name} requires {req}, which is not in this checkout: "
                                       f"refusing to fetch a mantile package from an index")
                if req.specifier and not req.specifier.contains(sibling["version"], prereleases=True):
                    raise InstallError(f"{name} requires {req} but the checkout's {req_name} is version "
                                       f"{sibling['version']}: bump one of them")
                queue.append((req_name, {canonicalize_name(e) for e in req.extras}))
    return wanted, sorted(set(third_party))


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def installed_mantile() -> dict[str, Path | None]:
    """Canonical name -> the editable source directory (None when not an editable install)."""
    out: dict[str, Path | None] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if not name.startswith(PREFIX):
            continue
        source = None
        text = dist.read_text("direct_url.json")
        if text:
            info = json.loads(text)
            if info.get("dir_info", {}).get("editable") and info.get("url", "").startswith("file:"):
                source = Path(unquote(urlparse(info["url"]).path)).resolve()
        out[name] = source
    return out


def guard(wanted: dict[str, set[str]], dists: dict[str, dict], no_torch: bool) -> None:
    """Fail unless exactly the wanted mantile distributions are installed, each editable from
    this checkout; ``pip check`` passes; torch is absent when ``no_torch``."""
    installed = installed_mantile()
    for name, source in sorted(installed.items()):
        if name not in wanted:
            raise InstallError(f"{name} is installed but was not asked for (a reused environment? "
                               f"recreate it: tox -r -e ENV)")
        if source != dists[name]["path"]:
            where = "not an editable install" if source is None else f"installed from {source}"
            raise InstallError(f"{name} is {where}, not the checkout's {dists[name]['path']}")
    missing = sorted(set(wanted) - set(installed))
    if missing:
        raise InstallError(f"{', '.join(missing)} did not install")
    pip("check")
    if no_torch:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            raise InstallError("torch is installed in an environment that must not have it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="checkout directories with optional [extras], e.g. .[test]")
    parser.add_argument("--no-torch", action="store_true", help="fail if torch ends up installed")
    args = parser.parse_args(argv)
    try:
        dists = local_distributions()
        targets = [parse_target(t, dists) for t in args.targets]
        wanted, third_party = resolve(targets, dists)
        if args.no_torch and any(canonicalize_name(Requirement(r).name) == "torch" for r in third_party):
            raise InstallError("--no-torch was given but a target asks for torch (drop its [torch] extra)")
        editables = [arg for name in sorted(wanted) for arg in ("--editable", str(dists[name]["path"]))]
        pip("install", "--quiet", "--no-deps", *editables)
        if third_party:
            pip("install", "--quiet", *third_party)
        guard(wanted, dists, args.no_torch)
    except InstallError as exc:
        print(f"install_checkout: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"install_checkout: error: {' '.join(exc.cmd[1:])} exited {exc.returncode}", file=sys.stderr)
        return 1
    done = [f"{name}[{','.join(sorted(extras))}]" if extras else name for name, extras in sorted(wanted.items())]
    print(f"install_checkout: installed {', '.join(done)} editable from {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
