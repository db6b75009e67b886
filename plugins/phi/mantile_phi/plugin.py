"""The ``phi`` entry point of mantile-phi: hook implementations only (no torch)."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_layer_types"]


@hookimpl
def mantile_layer_types():
    """phi3 attention (fused qkv) and MLP (fused gate_up)."""
    from .layers import LAYER_TYPES

    return LAYER_TYPES
