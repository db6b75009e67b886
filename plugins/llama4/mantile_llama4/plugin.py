"""The ``llama4`` entry point of mantile-llama4: hook implementations only (no torch)."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_model_layouts", "mantile_layer_types", "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """llama4_text: interleaved MoE, NoPE layers, chunked layers in the core's spelling."""
    from .config import READERS

    return READERS


@hookimpl
def mantile_model_layouts():
    from .layout import LAYOUTS

    return LAYOUTS


@hookimpl
def mantile_layer_types():
    from .layers import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_validation_cases():
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
