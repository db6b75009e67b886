"""Phi-3 layer types: the core's GQA attention and SwiGLU MLP under Phi-3's fused names.

- attention: ``qkv_proj`` H → (heads + 2·kv)·dh and ``o_proj``: the core's count,
  ``H·(heads + 2·kv)·dh + heads·dh·H`` parameters, no biases; every layer slides when
  ``sliding_window`` is set (the core's config rule for configs without a gate);
- MLP: ``gate_up_proj`` H → 2I and ``down_proj``: ``3·H·I`` parameters, SwiGLU (5 FLOPs per
  intermediate element), the core's :class:`~mantile_core.layers.GatedMLP`.
"""

from __future__ import annotations

from mantile_core import checks
from mantile_core.errors import ConfigError
from mantile_core.layers import Attention, GatedMLP
from mantile_core.layers.standard import attention_kwargs
from mantile_core.records import LayerSlot, LayerType

__all__ = ["LAYER_TYPES", "PHI3"]

PHI3 = frozenset({"phi3"})


def build_attention(config, slot: LayerSlot) -> Attention:
    if checks.get_bool(config.raw, "attention_bias", config.where, default=False):
        raise ConfigError(f"{config.where}: phi3 with attention_bias true is not a published Phi-3 (no biases)")
    return Attention(**attention_kwargs(config, slot))


def build_mlp(config, slot: LayerSlot) -> GatedMLP:
    act = checks.get_str(config.raw, "hidden_act", config.where, default="silu")
    if act != "silu":
        raise ConfigError(f"{config.where}: 'hidden_act' {act!r} is not supported for phi3 (silu)")
    return GatedMLP(name=slot.name, index=slot.index, hidden=config.hidden_size,
                    intermediate=config.intermediate_size, weight_dtype=config.weight_dtype(slot.name),
                    bias_dtype=config.dtype)


LAYER_TYPES = [
    LayerType("phi3-attention", "attention", build_attention, PHI3,
              description="GQA with fused qkv_proj (same count), sliding window on every layer when set"),
    LayerType("phi3-mlp", "mlp", build_mlp, PHI3, description="SwiGLU with fused gate_up_proj (same count)"),
]
