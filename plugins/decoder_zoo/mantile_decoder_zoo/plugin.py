"""The ``mantile`` entry point of mantile-decoder-zoo: hook implementations only (records are
built inside the hooks; nothing here imports torch)."""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_model_layouts", "mantile_layer_types", "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """One reader for every zoo model_type (key spellings -> the standard ones + ``_zoo`` facts)."""
    from .families import CONFIG_READERS

    return CONFIG_READERS


@hookimpl
def mantile_model_layouts():
    """The zoo's decoder stacks (parallel blocks, post-norms, learned positions, module names)."""
    from .families import LAYOUTS

    return LAYOUTS


@hookimpl
def mantile_layer_types():
    """LayerNorms, attention, MLPs, MoE, LM heads and Granite's multipliers of the zoo families."""
    from .families import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_validation_cases():
    """transformers' own tiny models of each family against the zoo's figures (torch)."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
