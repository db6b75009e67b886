"""The ``mantile`` entry point of mantile-gpt-oss-attention: hook implementations only.

Layer types come from :mod:`.layers` (no torch); validation cases from :mod:`.validation`,
whose checks import torch only when run.
"""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_layer_types", "mantile_validation_cases"]


@hookimpl
def mantile_layer_types():
    """gpt-oss-attention (kind "attention") and gpt-oss-moe (kind "moe") for gpt_oss."""
    from .layers import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_validation_cases():
    """Torch checks of the GPT-OSS attention: numerics against transformers, FLOPs, bytes."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
