"""The ``gemma`` entry point of mantile-gemma: hook implementations only (no torch)."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_model_layouts", "mantile_layer_types", "mantile_rope_scalings",
           "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """gemma2, gemma3_text: transformers' defaults filled in, local/global rope, layer_types."""
    from .config import READERS

    return READERS


@hookimpl
def mantile_model_layouts():
    """Four norms per block."""
    from .layout import LAYOUTS

    return LAYOUTS


@hookimpl
def mantile_layer_types():
    """Scaled embedding, (1 + w) RMSNorm, soft-capped attention, GeGLU MLP, soft-capped head."""
    from .layers import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_rope_scalings():
    """rope_type "proportional" (Gemma 4's global layers)."""
    from .rope import PROPORTIONAL_SCALING

    return [PROPORTIONAL_SCALING]


@hookimpl
def mantile_validation_cases():
    """Torch checks against transformers' Gemma 2 / 3 modules."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
