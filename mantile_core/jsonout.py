"""JSON out: every document Mantile writes is strict JSON (RFC 8259), never ``NaN`` or
``Infinity``: a non-finite figure is an :class:`~mantile_core.errors.InputError` naming where
it is, before anything is written."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InputError

__all__ = ["dumps", "non_finite_path", "check_finite"]


def non_finite_path(document: Any) -> str | None:
    """The path of the first non-finite float in ``document`` ("layers[3].prefill.time_ms"),
    or None when every number is finite."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return (path or "<document>") + f" = {value!r}"
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}" if path else str(key), item) for key, item in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def check_finite(document: Any, what: str = "the JSON document") -> None:
    """InputError when ``document`` holds NaN or an infinity."""
    path = non_finite_path(document)
    if path is not None:
        raise InputError(f"{what} would hold a non-finite number ({path}): the inputs are out of the "
                         "model's range; JSON has no NaN or Infinity")


def dumps(document: Any, *, indent: int | None = 2) -> str:
    """``json.dumps(document, allow_nan=False)``; a non-finite number is an InputError naming
    its path instead of invalid JSON."""
    try:
        return json.dumps(document, indent=indent, allow_nan=False)
    except ValueError:
        check_finite(document)
        raise
