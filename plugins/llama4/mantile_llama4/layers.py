"""Llama 4 layer types: attention and MoE as small subclasses of the core's.

Per device, T = batch·new_tokens, hl = heads/tp, kvl = local KV heads, dh = head_dim:

- attention (:class:`Llama4Attention`): the core's GQA (no biases). RoPE layers are chunked
  (``chunk`` = ``attention_chunk_size``: mask "chunked", pairs and KV from the chunked cache
  policy) and apply a weightless L2 norm to q and k when ``use_qk_norm`` (3 FLOPs per element:
  square, sum, scale; 0 params); NoPE layers (``rotary_dim`` 0: no RoPE FLOPs) attend the whole
  context and, with ``attn_temperature_tuning``, scale queries by
  ``log1p(floor((p+1)/floor_scale))·attn_scale + 1``: 4 FLOPs per token for the scale plus
  1 per query element;
- MoE (:class:`Llama4MoE`): the core's MoE with the shared expert ungated (Llama 4 adds the
  shared expert's output unweighted) and sigmoid top-k routing: the router's top-k and a
  sigmoid on the chosen logits (the core's 3 FLOPs per router logit), the routed input scaled by
  its score (the core's k·H per token);
- dense layers: the core's SwiGLU MLP of ``intermediate_size_mlp``.
"""

from __future__ import annotations

import attrs

from mantile_core.layers import Attention, GatedMLP, MoE, local_kv_heads
from mantile_core.layers.standard import attention_kwargs, moe_kwargs
from mantile_core.records import LayerSlot, LayerType
from mantile_core.workload import Step

from .config import MODEL_TYPES

__all__ = ["Llama4Attention", "Llama4MoE", "LAYER_TYPES", "L2_NORM_FLOPS_PER_ELEMENT",
           "TEMPERATURE_FLOPS_PER_TOKEN"]

L2_NORM_FLOPS_PER_ELEMENT = 3
TEMPERATURE_FLOPS_PER_TOKEN = 4  # +1, /floor_scale and floor, log1p, ·attn_scale + 1 (fused)


@attrs.frozen(kw_only=True)
class Llama4Attention(Attention):
    """GQA, chunked with RoPE or global without (NoPE); ``l2_qk_norm`` and ``temperature``
    add the elementwise terms in the module docstring."""

    l2_qk_norm: bool = False
    temperature: bool = False

    def extra_flops(self, step: Step, heads_local, pairs):
        kv_local = local_kv_heads(self.kv_heads, step.tp)
        norm = L2_NORM_FLOPS_PER_ELEMENT * step.tokens * (heads_local + kv_local) * self.head_dim * self.l2_qk_norm
        temp = (TEMPERATURE_FLOPS_PER_TOKEN * step.tokens + step.tokens * heads_local * self.head_dim) * self.temperature
        return norm + temp

    def describe(self) -> dict:
        return super().describe() | {"rope": bool(self.rotary_dim), "l2_qk_norm": self.l2_qk_norm,
                                     "temperature_tuning": self.temperature}


@attrs.frozen(kw_only=True)
class Llama4MoE(MoE):
    """Router (no bias) with sigmoid top-k, E SwiGLU experts, one ungated shared expert."""

    def describe(self) -> dict:
        return super().describe() | {"routing": "sigmoid top-k", "shared_intermediate": self.shared_intermediate}


def build_attention(config, slot: LayerSlot) -> Llama4Attention:
    i = slot.index
    use_rope = bool(config.get("llama4_rope_layers")[i])
    chunked = config.get("llama4_layer_types")[i] == "chunked_attention"
    kwargs = attention_kwargs(config, slot)
    if not use_rope:
        kwargs["rotary_dim"] = 0
    return Llama4Attention(**kwargs, chunk=config.get("attention_chunk_size") if chunked else None,
                           l2_qk_norm=bool(config.get("use_qk_norm")) and use_rope,
                           temperature=bool(config.get("attn_temperature_tuning")) and not use_rope)


def build_moe(config, slot: LayerSlot) -> Llama4MoE:
    return Llama4MoE(**moe_kwargs(config, slot), shared_intermediate=config.shared_expert_intermediate_size,
                     shared_gate=False)


def build_mlp(config, slot: LayerSlot) -> GatedMLP:
    return GatedMLP(name=slot.name, index=slot.index, hidden=config.hidden_size,
                    intermediate=config.intermediate_size, weight_dtype=config.weight_dtype(slot.name),
                    bias_dtype=config.dtype)


LAYER_TYPES = [
    LayerType("llama4-attention", "attention", build_attention, MODEL_TYPES,
              description="GQA: chunked RoPE layers (L2 q/k norm), NoPE global layers (temperature tuning)"),
    LayerType("llama4-moe", "moe", build_moe, MODEL_TYPES,
              description="sigmoid top-k router, SwiGLU experts, ungated shared expert"),
    LayerType("llama4-mlp", "mlp", build_mlp, MODEL_TYPES, description="dense SwiGLU MLP (intermediate_size_mlp)"),
]
