"""The ``mantile`` entry point of mantile-mla: hook implementations only.

Config reading from :mod:`.config`, layer types and layout from :mod:`.layers` (no torch);
validation cases from :mod:`.validation`, whose checks import torch only when run.
"""

from __future__ import annotations

from mantile_core import hookimpl

__all__ = ["mantile_config_readers", "mantile_layer_types", "mantile_model_layouts", "mantile_validation_cases"]


@hookimpl
def mantile_config_readers():
    """The deepseek_v2 / deepseek_v3 / kimi_k2 / DSA reader and the deepseek_v4 reader."""
    try:
        from mantile_core.records import ConfigReader
    except ImportError:  # a core without the config-reader hook
        return []
    from .config import MODEL_TYPES, read_deepseek
    from .v4_config import V4_MODEL_TYPES, read_deepseek_v4

    return [ConfigReader("deepseek", MODEL_TYPES, read=read_deepseek,
                         description="DeepSeek-V2/V3/R1, Kimi-K2: MLA and DeepSeek-MoE keys"),
            ConfigReader("deepseek-v4", V4_MODEL_TYPES, read=read_deepseek_v4,
                         description="DeepSeek-V4: compressed attention schedule, hyper-connections, hash routing, "
                                     "fp4 experts")]


@hookimpl
def mantile_layer_types():
    """mla-attention, deepseek-mlp, deepseek-moe; DeepSeek-V4's attention, MoE, hyper-connection, norm."""
    from .layers import LAYER_TYPES
    from .v4_layers import V4_LAYER_TYPES

    return LAYER_TYPES + V4_LAYER_TYPES


@hookimpl
def mantile_model_layouts():
    """The DeepSeek stack (dense prefix, MoE pattern) and DeepSeek-V4's (hyper-connections); MTP apart."""
    from .layers import LAYOUTS
    from .v4_layers import V4_LAYOUTS

    return LAYOUTS + V4_LAYOUTS


@hookimpl
def mantile_validation_cases():
    """Torch checks of MLA: numerics against transformers, FLOPs, latent KV bytes, params."""
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
