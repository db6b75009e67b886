"""Entry point of mantile-rope-yarn (group ``mantile``, name ``rope_yarn``): registers
rope_type "yarn" and this plugin's validation cases. Importing it imports neither torch nor
numpy; the records are built when the core first asks."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_rope_scalings", "mantile_validation_cases"]


@hookimpl
def mantile_rope_scalings():
    from .yarn import YARN_SCALING

    return [YARN_SCALING]


@hookimpl
def mantile_validation_cases():
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
