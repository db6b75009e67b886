"""Argument types shared by the commands: bounded integers and finite floats that argparse
reports as one line ("mantile: error: argument --batch: must be an integer from 1 to
1,048,576 (got '1099511627776')") with exit status 2."""

from __future__ import annotations

import argparse
import math

from ..limits import BOUNDS

__all__ = ["bounded_int", "positive_float"]


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40] + "...")


def bounded_int(name: str, minimum: int | None = None, maximum: int | None = None):
    """An argparse ``type`` reading an integer within ``BOUNDS[name]`` (or the bounds given)."""
    low, high = BOUNDS.get(name, (1, None))
    low = low if minimum is None else minimum
    high = high if maximum is None else maximum
    span = f"from {low:,} to {high:,}" if high is not None else f"of at least {low:,}"

    def read(text: str) -> int:
        try:
            value = int(text.strip()) if len(text) <= 40 else None
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {span} (got {_shown(text)})")
        return value

    read.__name__ = "integer"  # argparse names the type in its own messages
    return read


def positive_float(text: str) -> float:
    """An argparse ``type`` reading a finite number > 0."""
    try:
        value = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number (got {_shown(text)})")
    return value
