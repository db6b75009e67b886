"""GPT-OSS layer types: the attention (biases, sinks, width != hidden) and the MoE (biased
router and experts, SwiGLU with clamp), built from a gpt_oss config through the core's
layer-construction hook.

Attention, per device, T = batch·new_tokens query tokens, hl = heads/tp, kvl = local KV heads
(kv_heads/tp, or 1 replicated when tp > kv_heads), dh = head_dim, H = hidden, pairs = the
(query, key) pairs the layer's cache policy attends (sliding policies come from whatever
plugin provides the "sliding" mask, e.g. mantile-swa-cache):

- matmul: 2·T·H·(hl + 2·kvl)·dh (q/k/v, width hl·dh may differ from H) + 2·T·hl·dh·H (o_proj)
  + 4·dh·hl·pairs (QKᵀ and PV);
- elementwise: bias adds T·(hl·dh + 2·kvl·dh + H) (the o_proj bias once, on one rank),
  RoPE 3·T·(hl + kvl)·rotary_dim, softmax 5·hl·pairs + T·hl·dh, and the sinks
  :data:`SINK_FLOPS_PER_QUERY_HEAD`·T·hl;
- params: the four weights, four biases and ``heads`` sinks (sharded with the heads), all in
  the checkpoint dtype (GPT-OSS lists ``model.layers.*.self_attn`` in modules_to_not_convert);
- KV cache: 2·batch·kvl·resident·dh·bytes, resident positions from the policy (sinks are
  parameters, never cached).

MoE: the core's :class:`~mantile_core.layers.MoE` with router and expert biases; only the
activation differs (see :data:`SWIGLU_CLAMP_FLOPS_PER_ELEMENT`).
"""

from __future__ import annotations

import attrs

from mantile_core import checks
from mantile_core.layers import Attention, MoE
from mantile_core.layers.mlp import ACT_FLOPS_PER_ELEMENT
from mantile_core.layers.standard import attention_kwargs, moe_kwargs
from mantile_core.records import LayerSlot, LayerType
from mantile_core.workload import LayerCost, Step

__all__ = [
    "GptOssAttention",
    "GptOssMoE",
    "SINK_FLOPS_PER_QUERY_HEAD",
    "SWIGLU_CLAMP_FLOPS_PER_ELEMENT",
    "SWIGLU_ALPHA",
    "MODEL_TYPES",
    "LAYER_TYPES",
    "build_attention",
    "build_moe",
]

MODEL_TYPES = frozenset({"gpt_oss"})

SINK_FLOPS_PER_QUERY_HEAD = 4
"""The sink is one more logit in each (query, head) softmax row, unscaled and never multiplied
by V: compare with the row max (1), subtract the max (1), exp (1), add to the denominator (1)."""

SWIGLU_CLAMP_FLOPS_PER_ELEMENT = 10
"""Per expert intermediate element: clamp gate from above (1), clamp up both ways (2),
gate·alpha (1), sigmoid (3: exp, +1, reciprocal), gate·sigmoid (1), up + 1 (1), product (1).
The core's plain SwiGLU counts 5 (sigmoid 3, ·gate 1, ·up 1)."""

SWIGLU_ALPHA = 1.702
DEFAULT_SWIGLU_LIMIT = 7.0


@attrs.frozen(kw_only=True)
class GptOssAttention(Attention):
    """GPT-OSS self-attention: core GQA with q/k/v/o biases plus one learned sink logit per
    query head that joins the softmax denominator. ``window`` None is a full layer, an int a
    sliding one (window includes the query itself)."""

    q_bias: bool = True
    k_bias: bool = True
    v_bias: bool = True
    o_bias: bool = True

    def extra_params(self, heads_local) -> int:
        """The sinks: one parameter per local query head (they shard with the heads)."""
        return heads_local

    def extra_flops(self, step: Step, heads_local, pairs):
        """Sink work: SINK_FLOPS_PER_QUERY_HEAD per query token per local head, 4·T·hl."""
        return SINK_FLOPS_PER_QUERY_HEAD * step.tokens * heads_local

    def describe(self) -> dict:
        return super().describe() | {"width": self.width, "sinks": self.heads}


@attrs.frozen(kw_only=True)
class GptOssMoE(MoE):
    """GPT-OSS MoE: router hidden → E with bias, top-k, softmax over the k chosen logits
    (counted as the core's 3 FLOPs per router logit); experts with an interleaved gate_up
    projection hidden → 2I and down I → hidden, both biased; activation
    ``(clamp(up, ±limit) + 1) · g·sigmoid(alpha·g)`` with ``g = clamp(gate, max=limit)``,
    :data:`SWIGLU_CLAMP_FLOPS_PER_ELEMENT` FLOPs per intermediate element instead of 5."""

    router_bias: bool = True
    expert_bias: bool = True
    swiglu_limit: float = DEFAULT_SWIGLU_LIMIT
    swiglu_alpha: float = SWIGLU_ALPHA

    def describe(self) -> dict:
        return super().describe() | {"activation": "swiglu-clamp", "swiglu_limit": self.swiglu_limit}

    def cost(self, step: Step) -> LayerCost:
        """The core MoE cost with the activation's FLOPs at 10 per element:
        + (10 − 5)·T·k·I/tp over the core's count."""
        base = super().cost(step)
        routed = step.tokens * self.top_k
        core_act = ACT_FLOPS_PER_ELEMENT * routed * self.intermediate // step.tp
        clamp_act = SWIGLU_CLAMP_FLOPS_PER_ELEMENT * routed * self.intermediate // step.tp
        return attrs.evolve(base, flops=base.flops - core_act + clamp_act)


def build_attention(config, slot: LayerSlot) -> GptOssAttention:
    """The attention of decoder layer ``slot.index``: sliding or full per ``layer_types``;
    biases per ``attention_bias`` (GPT-OSS: true)."""
    bias = checks.get_bool(config.raw, "attention_bias", config.where, default=True)
    return GptOssAttention(**attention_kwargs(config, slot), q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias)


def build_moe(config, slot: LayerSlot) -> GptOssMoE:
    """The MoE of decoder layer ``slot.index``: ``num_local_experts`` experts, top
    ``num_experts_per_tok``, experts in the quantization format unless excluded (mxfp4 for
    the released checkpoints), router and biases in the checkpoint dtype."""
    return GptOssMoE(**moe_kwargs(config, slot), swiglu_limit=checks.get_float(config.raw, "swiglu_limit", config.where,
                                                                          default=DEFAULT_SWIGLU_LIMIT, positive=True))


LAYER_TYPES = [
    LayerType("gpt-oss-attention", "attention", build_attention, MODEL_TYPES,
              description="GPT-OSS attention: q/k/v/o biases, per-head sinks, width heads·head_dim, "
                          "sliding/full per layer_types"),
    LayerType("gpt-oss-moe", "moe", build_moe, MODEL_TYPES,
              description="GPT-OSS MoE: biased router and experts, SwiGLU with clamp, mxfp4 experts"),
]
