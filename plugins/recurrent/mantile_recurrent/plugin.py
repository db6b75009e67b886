"""The ``mantile`` entry point of mantile-recurrent: hook implementations only.

Config readers and block rules come from :mod:`.families`, layouts and layer types from
:mod:`.models` (no torch); validation cases from :mod:`.validation`, whose checks import torch
only when run.
"""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_model_layouts", "mantile_layer_types", "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """One reader per family: mamba / falcon_mamba, mamba2, jamba, the Qwen hybrids, nemotron_h."""
    from mantile_core.records import ConfigReader

    from .families import READERS

    return [ConfigReader(name, types, read=read, description=text) for name, (types, read, text) in READERS.items()]


@hookimpl
def mantile_model_layouts():
    """The backbone (Mamba, Mamba-2, Nemotron-H), Jamba and Qwen-hybrid layouts."""
    from .models import LAYOUTS

    return LAYOUTS


@hookimpl
def mantile_layer_types():
    """Mamba-1, Mamba-2, Gated DeltaNet, the hybrids' attention / MLP / MoE, the LM head."""
    from .models import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_validation_cases():
    """Torch checks: chunked scans equal the recurrent steps, state bytes from the tensors,
    FLOPs counted, numerics against transformers."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
