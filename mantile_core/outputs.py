"""Output files: no command writes over one of its own inputs, over an existing file without
``--force``, or leaves a half-written file.

:func:`check_outputs` runs before any work: every output path must differ from every input
of the command (same resolved path, or the same file through a link: ``os.path.samefile``)
and from the other outputs, must not be a directory, must have an existing parent directory,
and must not exist unless ``force``. :func:`atomic_output` then writes through a temporary
file in the same directory, moved over the target with ``os.replace`` only once complete (an
error midway leaves the target as it was).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from .errors import InputError

__all__ = ["STDOUT", "check_outputs", "atomic_output", "model_inputs"]

STDOUT = "-"


def _shown(path: str) -> str:
    return repr(path if len(path) <= 120 else path[:120] + "...")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, ValueError, RuntimeError):
        return False


def model_inputs(model: str) -> list[Path]:
    """The files a MODEL argument reads when it is a path: the file, or DIR/config.json."""
    try:
        path = Path(model)
        if path.is_dir():
            return [path / "config.json"]
        if path.is_file():
            return [path]
    except (OSError, ValueError):
        pass
    return []


def check_outputs(outputs: Mapping[str, str | None], inputs: Iterable[str | Path], *, force: bool) -> None:
    """Refuse, before any work, an output (flag -> path; None or "-" skipped) that is one of
    ``inputs``, that another output also names, that is a directory or lies in a missing
    directory, or that exists while ``force`` is false. InputError naming the flag."""
    inputs = [Path(p) for p in inputs]
    seen: dict[str, Path] = {}
    for flag, target in outputs.items():
        if target is None or target == STDOUT:
            continue
        if not target or "\x00" in target or len(target) > 4096:
            raise InputError(f"{flag} {_shown(target)} is not a usable file name")
        path = Path(target)
        for source in inputs:
            if _same(path, source):
                raise InputError(f"{flag} {_shown(target)} is an input of this command ({_shown(str(source))}): "
                                 "refusing to write over it; give another file")
        for other_flag, other in seen.items():
            if _same(path, other):
                raise InputError(f"{flag} and {other_flag} both name {_shown(target)}: give each its own file")
        seen[flag] = path
        try:
            if path.is_dir():
                raise InputError(f"{flag} {_shown(target)} is a directory: give a file name")
            parent = path.parent if str(path.parent) else Path(".")
            if not parent.is_dir():
                raise InputError(f"{flag} {_shown(target)}: the directory {_shown(str(parent))} does not exist")
            exists = path.exists() or path.is_symlink()
        except OSError as exc:
            raise InputError(f"{flag} {_shown(target)}: {exc.strerror or exc}") from None
        if exists and not force:
            raise InputError(f"{flag} {_shown(target)} exists: give --force to overwrite it")


@contextlib.contextmanager
def atomic_output(target: str, *, binary: bool = False, flag: str = "output") -> Iterator:
    """Yield a handle (text, UTF-8, or binary) writing a temporary file next to ``target``,
    moved over it with ``os.replace`` when the block ends without error; removed otherwise.
    ``target`` "-" yields stdout itself (flushed, never closed)."""
    import sys

    if target == STDOUT:
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_path(target, flag=flag) as temp:  # its OSError handling covers open and writes
        with open(temp, "wb") if binary else open(temp, "w", encoding="utf-8", newline="") as handle:
            yield handle


@contextlib.contextmanager
def atomic_path(target: str, *, flag: str = "output") -> Iterator[str]:
    """Yield a temporary path next to ``target`` (same suffix, for writers that take a file
    name, e.g. matplotlib's savefig), moved over ``target`` once the block ends without error."""
    path = Path(target)
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.",
                                    suffix=".part" + path.suffix)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot write {flag} {_shown(target)}: {exc.strerror or exc}") from None
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        _remove(temp)
        raise InputError(f"cannot write {flag} {_shown(target)}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(temp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
