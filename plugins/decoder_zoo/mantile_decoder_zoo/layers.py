"""The few layer classes the zoo adds on top of the core's (everything else is the core's
Attention, MLP / GatedMLP, MoE, LayerNorm, RMSNorm, PositionEmbedding and LMHead, configured).

:class:`ZooAttention` — the core's GQA attention (MQA is kv_heads = 1; fused qkv weights count
the same as separate ones) plus, each off by default:

- ``alibi`` (MPT, Falcon-RW, Bloom): no RoPE (rotary_dim 0); the bias slope·(j − i) is added to
  every attended logit: :data:`ALIBI_FLOPS_PER_PAIR` per (query, key) pair per local head. The
  slopes are a buffer, not parameters; the KV cache is the plain one (no rotation to undo).
- ``clip_qkv`` (DBRX, OLMo, OLMoE): q, k and v clamped to ±clip: 2 FLOPs (min, max) per
  element of the q/k/v projections' outputs.
- ``qk_norm_full`` (OLMoE, OLMo-2, MiniMax-M2): RMSNorm over the whole q projection
  (heads·dh) and the whole k projection (kv_heads·dh) instead of per head: (heads + kv_heads)·dh
  weights, sharded with the heads; 4 FLOPs per element; under tp > 1 the per-token sums of
  squares of q and k are all-reduced (2 float32 values per token, one collective).
- ``qk_layernorm`` (Phi with qk_layernorm, Cohere use_qk_norm): a LayerNorm per head on q and
  k, with bias (Phi, 4·dh weights: weight and bias for q and k, shared over heads) or without
  (Cohere, per-head weights: (heads + kv_heads)·dh). 7 (with bias) or 6 FLOPs per element.
- ``v_scale`` (MiMo-V2-Flash attention_value_scale): v multiplied by a constant: 1 FLOP per v
  element.

:class:`ScaledLMHead` — logits multiplied (Cohere ``logit_scale``) or divided (Granite
``logits_scaling``) by a constant: one FLOP per local logit, no parameters.

:class:`Scale` (kind "scale") — a constant multiplier on a hidden-sized tensor, no parameters
(Granite's ``embedding_multiplier`` after the embedding, ``residual_multiplier`` on each
attention and MLP output): one FLOP per element, T·H per device (each rank scales the full
reduced tensor).

:func:`shared_reduce` — Falcon's parallel block under tensor parallelism: vLLM sums the
attention and MLP outputs and all-reduces once (``reduce_row_parallel_results`` is false for
parallel_attn / new_decoder_architecture), so the MLP carries no collective of its own: the
attention's T·H all-reduce is the block's only one.

:class:`Fp32RouterMoE` — mantile-mla's DeepSeek MoE with the router weight (E × H) stored in
float32 (MiMo-V2-Flash).
"""

from __future__ import annotations

import attrs
from mantile_core.dtypes import DTYPES
from mantile_core.layers import Attention, Layer, LMHead
from mantile_core.layers.attention import QK_NORM_FLOPS_PER_ELEMENT
from mantile_core.layers.simple import LAYERNORM_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step

__all__ = ["ZooAttention", "ScaledLMHead", "Scale", "Fp32RouterMoE", "shared_reduce", "ALIBI_FLOPS_PER_PAIR", "CLIP_FLOPS_PER_ELEMENT",
           "NORM_STAT_BYTES"]

ALIBI_FLOPS_PER_PAIR = 1  # the precomputed slope·distance bias added to the logit
CLIP_FLOPS_PER_ELEMENT = 2  # clamp: min and max
NORM_STAT_BYTES = 4  # a float32 sum of squares per token, all-reduced for a full-width norm under tp


@attrs.frozen(kw_only=True)
class ZooAttention(Attention):
    """The core attention with the optional mechanisms of the module docstring."""

    alibi: bool = False
    clip_qkv: bool = False
    qk_norm_full: bool = False
    qk_layernorm: bool = False
    qk_layernorm_bias: bool = False
    v_scale: bool = False

    def _qk_layernorm_elements(self, hl, kvl) -> int:
        if not self.qk_layernorm:
            return 0
        if self.qk_layernorm_bias:  # Phi: one LayerNorm(head_dim) each for q and k, shared by heads
            return 4 * self.head_dim
        return (hl + kvl) * self.head_dim  # Cohere: per-head weights

    def _small_elements(self, hl, kvl):
        return (super()._small_elements(hl, kvl) + self.qk_norm_full * (hl + kvl) * self.head_dim
                + self._qk_layernorm_elements(hl, kvl))

    def extra_flops(self, step: Step, heads_local, pairs):
        from mantile_core.layers import local_kv_heads

        tokens, dh = step.tokens, self.head_dim
        kvl = local_kv_heads(self.kv_heads, step.tp)
        qk = tokens * (heads_local + kvl) * dh
        layernorm = LAYERNORM_FLOPS_PER_ELEMENT + 1 + self.qk_layernorm_bias
        return (ALIBI_FLOPS_PER_PAIR * heads_local * pairs * self.alibi
                + CLIP_FLOPS_PER_ELEMENT * tokens * (heads_local * dh + kvl * (dh + self.value_dim)) * self.clip_qkv
                + QK_NORM_FLOPS_PER_ELEMENT * qk * self.qk_norm_full
                + layernorm * qk * self.qk_layernorm
                + tokens * kvl * self.value_dim * self.v_scale)

    def extra_kernels(self) -> int:
        return self.clip_qkv + self.qk_norm_full + self.qk_layernorm + self.v_scale

    def describe(self) -> dict:
        out = super().describe()
        for flag in ("alibi", "clip_qkv", "qk_norm_full", "qk_layernorm", "v_scale"):
            if getattr(self, flag):
                out[flag] = True
        if self.alibi:
            out["rope_type"] = None
        return out

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        if not self.qk_norm_full:
            return base
        parallel = step.tp > 1
        stats = NORM_STAT_BYTES * 2 * step.tokens * parallel
        return attrs.evolve(base, comm_bytes=base.comm_bytes + stats, collectives=base.collectives + parallel)


@attrs.frozen(kw_only=True)
class ScaledLMHead(LMHead):
    """The core LM head with the logits scaled by a constant (``scale``): + batch·rows FLOPs."""

    scale: float = 1.0

    def describe(self) -> dict:
        return {"logit_scale": self.scale}

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        rows = (self.vocab + step.tp - 1) // step.tp
        return attrs.evolve(base, flops=base.flops + step.batch * rows)


@attrs.frozen(kw_only=True)
class Scale(Layer):
    """A constant multiplier on a hidden-sized activation (Granite's multipliers): no
    parameters, one FLOP per element, T·H."""

    kind: str = "scale"
    hidden: int
    factor: float
    what: str = ""

    def params(self) -> int:
        return 0

    def weight_bytes(self) -> int:
        return 0

    def describe(self) -> dict:
        return {"multiplier": self.what, "factor": self.factor}

    def cost(self, step: Step) -> LayerCost:
        elements = step.tokens * self.hidden
        return LayerCost(flops=elements, activation_bytes=step.act_dtype.nbytes(elements), kernels=1)


def shared_reduce(cls):
    """A subclass of MLP class ``cls`` whose output is all-reduced together with the attention's
    (no collective, no comm bytes, one kernel fewer under tp > 1)."""

    @attrs.frozen(kw_only=True)
    class SharedReduce(cls):
        def describe(self) -> dict:
            return super().describe() | {"all_reduce": "with attention"}

        def cost(self, step: Step) -> LayerCost:
            base = super().cost(step)
            return attrs.evolve(base, comm_bytes=0 * base.comm_bytes, collectives=0 * base.collectives,
                                kernels=base.kernels - base.collectives)

    SharedReduce.__name__ = SharedReduce.__qualname__ = f"SharedReduce{cls.__name__}"
    return SharedReduce


def _deepseek_moe():
    from mantile_mla.moe import DeepSeekMoE

    return DeepSeekMoE


@attrs.frozen(kw_only=True)
class Fp32RouterMoE(_deepseek_moe()):
    """DeepSeek MoE whose router weight is float32: E·H·4 bytes instead of the checkpoint
    dtype's."""

    def _dense_bytes(self, shared_inter):
        router = self.hidden * self.experts
        return super()._dense_bytes(shared_inter) - self.dense_dtype.nbytes(router) + DTYPES["fp32"].nbytes(router)

    def describe(self) -> dict:
        return super().describe() | {"router_dtype": "fp32"}
