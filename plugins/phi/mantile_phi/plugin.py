"""The ``phi`` entry point of mantile-phi: hook implementations only (no torch)."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_layer_types", "mantile_validation_cases"]


@hookimpl
def mantile_layer_types():
    """phi3 attention (fused qkv) and MLP (fused gate_up); phimoe LayerNorm, biased attention,
    sparsemixer MoE and biased LM head."""
    from .layers import LAYER_TYPES
    from .phimoe import LAYER_TYPES as PHIMOE_TYPES

    return LAYER_TYPES + PHIMOE_TYPES


@hookimpl
def mantile_validation_cases():
    """Parameter counts of phi3 and phimoe = transformers' models on the meta device."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
