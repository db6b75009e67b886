"""Bounds on the sizes Mantile accepts, checked once where a value enters (CLI flag or API
argument), so no arithmetic downstream can overflow a float, wrap a 64-bit integer or run for
minutes.

The bounds are far beyond any real deployment (batch 2^20 sequences, 2^24-token prompts and
outputs, 4096-way parallelism) and keep exact figures of every bundled model well inside
64-bit integers. Two limits bound work rather than physics and can be raised:

- ``MANTILE_MAX_POINTS`` (``mantile sweep --max-points``): the most grid points one sweep
  evaluates (default :data:`DEFAULT_MAX_POINTS`; memory is about 250 bytes a point);
- ``MANTILE_MAX_WAVES``: the most waves (prompts / batch) a benchmark of ``--prompts``
  prompts is modelled with (default :data:`DEFAULT_MAX_WAVES`; time is linear in it).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy

from .errors import InputError

__all__ = [
    "MAX_PARALLEL",
    "MAX_BATCH",
    "MAX_TOKENS",
    "MAX_KV_BLOCK",
    "MAX_ROWS",
    "DEFAULT_MAX_POINTS",
    "DEFAULT_MAX_WAVES",
    "INT64_HEADROOM",
    "BOUNDS",
    "check_int",
    "check_positive_float",
    "max_points",
    "max_waves",
    "check_waves",
]

MAX_PARALLEL = 4096
"""Most devices a tensor- or expert-parallel group may span (``--tp``, ``--ep``)."""

MAX_BATCH = 1 << 20
"""Most concurrent sequences (``--batch``)."""

MAX_TOKENS = 1 << 24
"""Most tokens of a prompt, an output or a decode context (``--input-len``, ``--output-len``,
``--context``): 16,777,216."""

MAX_KV_BLOCK = 1 << 20
"""Largest paged-KV block in tokens (``--kv-block``)."""

MAX_ROWS = 1 << 20
"""Most frontier rows printed per accelerator (``sweep --rows``)."""

DEFAULT_MAX_POINTS = 5_000_000
"""Default for the most points one sweep evaluates (``MANTILE_MAX_POINTS``, ``--max-points``)."""

DEFAULT_MAX_WAVES = 1000
"""Default for the most benchmark waves, prompts / batch (``MANTILE_MAX_WAVES``)."""

INT64_HEADROOM = 1 << 60
"""A sweep refuses a grid whose largest exact figure reaches this (8× below 2^63: room for
intermediate products)."""

# argument name -> (minimum, maximum): the bounds of every size the API and the CLI take
BOUNDS: dict[str, tuple[int, int]] = {
    "tp": (1, MAX_PARALLEL),
    "ep": (1, MAX_PARALLEL),
    "dp": (1, MAX_PARALLEL),
    "batch": (1, MAX_BATCH),
    "input_len": (1, MAX_TOKENS),
    "output_len": (1, MAX_TOKENS),
    "context": (0, MAX_TOKENS),
    "kv_block": (1, MAX_KV_BLOCK),
    "prompts": (1, 1 << 40),
    "chunk": (1, 1 << 30),
    "rows": (0, MAX_ROWS),
}


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
              label: str | None = None) -> int:
    """``value`` as a Python int when it is an integer (not a bool) within [minimum, maximum]
    (default: ``BOUNDS[name]``); else InputError "'batch' must be an integer from 1 to
    1,048,576 (got 1099511627776)". ``label`` replaces the quoted name (a CLI flag)."""
    low, high = BOUNDS.get(name, (1, None))
    low = low if minimum is None else minimum
    high = high if maximum is None else maximum
    what = label or repr(name)
    span = f"from {low:,} to {high:,}" if high is not None else f"of at least {low:,}"
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
        raise InputError(f"{what} must be an integer {span} (got {_short(value)})")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise InputError(f"{what} must be an integer {span} (got {_short(value)})")
    return value


def check_positive_float(name: str, value: Any, *, label: str | None = None) -> float:
    """``value`` as a finite float > 0, else InputError naming it."""
    what = label or repr(name)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a positive finite number (got {_short(value)})") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise InputError(f"{what} must be a positive finite number (got {_short(value)})")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(text) > 30:
        return f"an integer of {len(text)} digits"
    return text if len(text) <= 60 else text[:60] + "..."


def _env_int(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip().replace("_", "").replace(",", "")
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise InputError(f"{variable} must be a positive integer (got {os.environ[variable]!r})")
    return int(text)


def max_points(override: int | None = None) -> int:
    """The sweep grid limit: ``override`` (``--max-points``), else ``MANTILE_MAX_POINTS``, else
    DEFAULT_MAX_POINTS."""
    if override is not None:
        return check_int("max_points", override, 1, None)
    return _env_int("MANTILE_MAX_POINTS", DEFAULT_MAX_POINTS)


def max_waves() -> int:
    """The benchmark wave limit: ``MANTILE_MAX_WAVES``, else DEFAULT_MAX_WAVES."""
    return _env_int("MANTILE_MAX_WAVES", DEFAULT_MAX_WAVES)


def check_waves(prompts: int, smallest_batch: int) -> None:
    """InputError when ``prompts`` / ``smallest_batch`` waves exceed :func:`max_waves`."""
    limit = max_waves()
    waves = -(-prompts // smallest_batch)
    if waves > limit:
        raise InputError(
            f"'prompts' {prompts:,} at batch {smallest_batch:,} is a benchmark of {waves:,} waves; at most "
            f"{limit:,} are modelled (give fewer prompts, or raise MANTILE_MAX_WAVES)")
