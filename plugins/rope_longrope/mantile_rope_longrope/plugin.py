"""Entry point of mantile-rope-longrope: rope_type "longrope" and its validation cases."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_rope_scalings", "mantile_validation_cases"]


@hookimpl
def mantile_rope_scalings():
    from .longrope import LONGROPE_SCALING

    return [LONGROPE_SCALING]


@hookimpl
def mantile_validation_cases():
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
