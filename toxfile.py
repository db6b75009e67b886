"""tox inline plugin (tox loads ``toxfile.py`` from the project root): let tox find every
CPython that pyenv installed, not only the one pyenv makes global.

pyenv's shims answer ``python3.12`` only for the versions named in ``PYENV_VERSION`` (or the
global version file), so on a machine whose global Python is 3.11 the ``py310`` / ``py312`` /
``py313`` environments would report "could not find python interpreter". When ``PYENV_ROOT``
is set and ``PYENV_VERSION`` is not, this names every installed version, the global one first
(so a plain ``python`` still means what it did). tox.ini passes both variables to the
interpreter discovery. Without pyenv it does nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tox.plugin import impl


def pyenv_versions(root: Path) -> list[str]:
    """Installed CPython versions under ``root``/versions, the global one first."""
    versions = sorted((p.name for p in (root / "versions").glob("*")
                       if re.fullmatch(r"\d+\.\d+\.\d+", p.name) and (p / "bin").is_dir()),
                      key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)
    global_file = root / "version"
    first = global_file.read_text().split() if global_file.is_file() else []
    return [v for v in first if v in versions] + [v for v in versions if v not in first]


@impl
def tox_add_core_config(core_conf, state) -> None:  # noqa: ARG001 (tox's hook signature)
    root = os.environ.get("PYENV_ROOT") or _root_from_path()
    if not root or os.environ.get("PYENV_VERSION") or not Path(root, "versions").is_dir():
        return
    versions = pyenv_versions(Path(root))
    if versions:
        os.environ["PYENV_ROOT"] = root
        os.environ["PYENV_VERSION"] = ":".join(versions)


def _root_from_path() -> str | None:
    """pyenv's root when its shims directory is on PATH but PYENV_ROOT is unset."""
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry.rstrip("/").endswith("/shims") and Path(entry).parent.joinpath("versions").is_dir():
            return str(Path(entry).parent)
    return None
