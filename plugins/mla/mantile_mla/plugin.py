"""The ``mantile`` entry point of mantile-mla: hook implementations only.

Config reading from :mod:`.config`, layer types and layout from :mod:`.layers` (no torch);
validation cases from :mod:`.validation`, whose checks import torch only when run.
"""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_layer_types", "mantile_model_layouts", "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """The deepseek_v2 / deepseek_v3 / kimi_k2 reader: MLA and DeepSeek-MoE keys checked."""
    try:
        from mantile_core.records import ConfigReader
    except ImportError:  # a core without the config-reader hook
        return []
    from .config import MODEL_TYPES, read_deepseek

    return [ConfigReader("deepseek", MODEL_TYPES, read=read_deepseek,
                         description="DeepSeek-V2/V3/R1, Kimi-K2: MLA and DeepSeek-MoE keys")]


@hookimpl
def mantile_layer_types():
    """mla-attention, deepseek-mlp and deepseek-moe for deepseek_v2, deepseek_v3, kimi_k2."""
    from .layers import LAYER_TYPES

    return LAYER_TYPES


@hookimpl
def mantile_model_layouts():
    """The DeepSeek stack (dense prefix, MoE pattern) with the MTP module reported apart."""
    from .layers import LAYOUTS

    return LAYOUTS


@hookimpl
def mantile_validation_cases():
    """Torch checks of MLA: numerics against transformers, FLOPs, latent KV bytes, params."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
