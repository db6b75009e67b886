"""Checked accessors for config.json values: every key is read, type-checked and range-checked
once, at the boundary, by one of these functions.

Types follow transformers' configs as published in JSON: integers are JSON integers (an
integral float such as ``4096.0`` is accepted as 4096; ``0.5`` or ``true`` is not), floats are
finite numbers, booleans are JSON ``true``/``false`` only (never the string ``"false"``),
strings are non-empty. Each failure is a :class:`~mantile_core.errors.ConfigError` naming the
key, the value and what was expected, e.g.::

    config 'x': 'num_experts_per_tok' must be an integer >= 1 (got -1)

Plugins read their own keys with the same functions (``get_int(raw, "kv_lora_rank", where)``).
A missing key, or one set to null, takes ``default``; with no default it is an error.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from .errors import ConfigError

__all__ = [
    "REQUIRED",
    "MAX_DIM",
    "MAX_LAYERS",
    "MAX_POSITIONS",
    "get_int",
    "get_float",
    "get_bool",
    "get_str",
    "get_int_list",
    "get_str_list",
    "get_mapping",
    "check_int",
]

MAX_DIM = 2**24  # hidden, intermediate, head_dim, vocab: the largest published is ~2**18
MAX_LAYERS = 10_000
MAX_POSITIONS = 2**40  # context lengths (tokens)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _missing(data: Mapping, key: str) -> bool:
    return key not in data or data[key] is None


def _absent(key: str, where: str, default: Any) -> Any:
    if default is REQUIRED:
        raise ConfigError(f"{where}: required key {key!r} is missing")
    return default


def check_int(value: Any, key: str, where: str, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an int within [minimum, maximum]; ConfigError naming ``key`` otherwise."""
    bounds = _bounds_text(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key!r} must be an integer{bounds} (got {_short(value)})")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ConfigError(f"{where}: {key!r} must be an integer{bounds} (got {_short(value)})")
        value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{where}: {key!r} must be an integer{bounds} (got {_short(value)})")
    return value


def _bounds_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def get_int(data: Mapping, key: str, where: str, default: Any = REQUIRED, *, minimum: int | None = 1,
            maximum: int | None = MAX_DIM) -> Any:
    """An integer key within [minimum, maximum] (default: positive, at most 2**24)."""
    if _missing(data, key):
        return _absent(key, where, default)
    return check_int(data[key], key, where, minimum=minimum, maximum=maximum)


def get_float(data: Mapping, key: str, where: str, default: Any = REQUIRED, *, minimum: float | None = None,
              maximum: float | None = None, positive: bool = False) -> Any:
    """A finite number (JSON int or float) within the bounds; ``positive`` excludes zero."""
    if _missing(data, key):
        return _absent(key, where, default)
    value = data[key]
    what = "a finite number" + (" > 0" if positive else "") + _bounds_text(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key!r} must be {what} (got {_short(value)})")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError(f"{where}: {key!r} must be {what} (got {_short(value)})") from None
    if (not math.isfinite(number) or (positive and number <= 0)
            or (minimum is not None and number < minimum) or (maximum is not None and number > maximum)):
        raise ConfigError(f"{where}: {key!r} must be {what} (got {_short(value)})")
    return number


def get_bool(data: Mapping, key: str, where: str, default: Any = REQUIRED) -> Any:
    """A JSON boolean: ``true`` or ``false`` (a string or a number is an error)."""
    if _missing(data, key):
        return _absent(key, where, default)
    value = data[key]
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key!r} must be true or false (got {_short(value)})")
    return value


def get_str(data: Mapping, key: str, where: str, default: Any = REQUIRED, *,
            choices: Iterable[str] | None = None) -> Any:
    """A non-empty string, one of ``choices`` when given."""
    if _missing(data, key):
        return _absent(key, where, default)
    value = data[key]
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ConfigError(f"{where}: {key!r} must be a non-empty string (got {_short(value)})")
    if choices is not None:
        allowed = sorted(choices)
        if value not in allowed:
            raise ConfigError(f"{where}: {key!r} must be one of {', '.join(allowed)} (got {_short(value)})")
    return value


def _get_list(data: Mapping, key: str, where: str, default: Any, length: int | None) -> Any:
    if _missing(data, key):
        return _absent(key, where, default)
    value = data[key]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: {key!r} must be a list (got {_short(value)})")
    if length is not None and len(value) != length:
        raise ConfigError(f"{where}: {key!r} must have {length} entries (got {len(value)})")
    return value


def get_int_list(data: Mapping, key: str, where: str, default: Any = REQUIRED, *, length: int | None = None,
                 minimum: int | None = 0, maximum: int | None = MAX_POSITIONS) -> Any:
    """A list of integers, each within the bounds, of ``length`` entries when given."""
    value = _get_list(data, key, where, default, length)
    if value is default and _missing(data, key):
        return value
    return tuple(check_int(v, f"{key}[{i}]", where, minimum=minimum, maximum=maximum) for i, v in enumerate(value))


def get_str_list(data: Mapping, key: str, where: str, default: Any = REQUIRED, *, length: int | None = None,
                 choices: Iterable[str] | None = None) -> Any:
    """A list of strings (each one of ``choices`` when given), of ``length`` entries when given."""
    value = _get_list(data, key, where, default, length)
    if value is default and _missing(data, key):
        return value
    return tuple(get_str({f"{key}[{i}]": v}, f"{key}[{i}]", where, choices=choices) for i, v in enumerate(value))


def get_mapping(data: Mapping, key: str, where: str, default: Any = REQUIRED) -> Any:
    """A JSON object (dict)."""
    if _missing(data, key):
        return _absent(key, where, default)
    value = data[key]
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key!r} must be an object (got {_short(value)})")
    return value
