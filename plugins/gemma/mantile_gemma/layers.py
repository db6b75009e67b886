"""Gemma layer types: what Gemma 2 / 3 change in the core's layers, each a small subclass.

Per device, T = batch·new_tokens tokens, H = hidden, hl = local query heads, pairs = the
(query, key) pairs the layer's cache policy attends (sliding layers: the window), V_l =
ceil(vocab/tp) local vocabulary rows, I_l = intermediate/tp:

- embedding (:class:`GemmaEmbedding`): the core's gather, then ``· sqrt(H)`` (the normaliser,
  rounded to the activation dtype): + T·H FLOPs;
- norm (:class:`GemmaRMSNorm`): ``x / rms(x) · (1 + w)``: the core's 4 FLOPs per element plus
  H for ``1 + w`` (computed once per call); params H, as the core's RMSNorm;
- attention (:class:`GemmaAttention`): the core's GQA (no biases; Gemma 3 adds q/k RMSNorm over
  head_dim, 2·head_dim params) with scores scaled by ``query_pre_attn_scalar^-1/2`` instead of
  ``head_dim^-1/2`` (same cost) and, when ``attn_logit_softcapping`` is set (Gemma 2: 50),
  ``3·hl·pairs`` soft-capping FLOPs (:mod:`.softcap`); RoPE per layer: sliding layers rotate
  with the local base (``rope_local_base_freq``), full layers with the global rope parameters;
- MLP: the core's :class:`~mantile_core.layers.GatedMLP` (3·H·I params) with
  ``activation="gelu_tanh"``, GeGLU: ``gelu_tanh(gate) · up``,
  :data:`GELU_TANH_FLOPS_PER_ELEMENT` + 1 FLOPs per intermediate element;
- LM head (:class:`GemmaLMHead`): tied to the embedding (0 params) and, when
  ``final_logit_softcapping`` is set (Gemma 2: 30), + 3·batch·V_l FLOPs.
"""

from __future__ import annotations

import attrs

from mantile_core.layers import Attention, Embedding, GatedMLP, LMHead, RMSNorm
from mantile_core.layers.mlp import ACTIVATION_FLOPS
from mantile_core.layers.simple import NORM_FLOPS_PER_ELEMENT
from mantile_core.layers.standard import attention_kwargs
from mantile_core.records import LayerSlot, LayerType
from mantile_core.rope import rotary_dim
from mantile_core.workload import LayerCost, Step

from .softcap import softcap_flops

__all__ = [
    "GemmaEmbedding", "GemmaRMSNorm", "GemmaAttention", "GemmaLMHead",
    "GELU_TANH_FLOPS_PER_ELEMENT", "GEMMA_MODEL_TYPES", "LAYER_TYPES", "layer_rope",
]

GEMMA_MODEL_TYPES = frozenset({"gemma2", "gemma3_text", "gemma4_text"})

GELU_TANH_FLOPS_PER_ELEMENT = ACTIVATION_FLOPS["gelu_tanh"]
"""9, the core's count of ``0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))``; the GeGLU product
with up adds 1."""


@attrs.frozen(kw_only=True)
class GemmaEmbedding(Embedding):
    """Token embedding scaled by sqrt(hidden): the core's gather + T·H multiplies."""

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        return attrs.evolve(base, flops=base.flops + step.tokens * self.hidden)

    def describe(self) -> dict:
        return {"scale": "sqrt(hidden)"}


@attrs.frozen(kw_only=True)
class GemmaRMSNorm(RMSNorm):
    """Gemma RMSNorm ``x / rms(x) · (1 + w)``: 4 FLOPs per element + H for ``1 + w``."""

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        return attrs.evolve(base, flops=NORM_FLOPS_PER_ELEMENT * step.tokens * self.hidden + self.hidden)


@attrs.frozen(kw_only=True)
class GemmaAttention(Attention):
    """Core GQA with Gemma's score scale ``query_scalar^-1/2`` and optional logit soft-cap."""

    logit_softcap: float | None = None
    query_scalar: float | None = None

    def extra_flops(self, step: Step, heads_local, pairs):
        """Soft-capping: 3 FLOPs per attended (query, key) logit per local query head."""
        return softcap_flops(self.logit_softcap, heads_local * pairs)

    def describe(self) -> dict:
        return super().describe() | {"softcap": self.logit_softcap, "query_pre_attn_scalar": self.query_scalar,
                                     "rotary_dim": self.rotary_dim}


@attrs.frozen(kw_only=True)
class GemmaLMHead(LMHead):
    """LM head with optional final-logit soft-cap: + 3·batch·ceil(V/tp) FLOPs."""

    softcap: float | None = None

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        rows = (self.vocab + step.tp - 1) // step.tp
        return attrs.evolve(base, flops=base.flops + softcap_flops(self.softcap, step.batch * rows))

    def describe(self) -> dict:
        return {"tied": self.tied, "softcap": self.softcap}


def layer_rope(config, index: int) -> dict:
    """The rope parameters of decoder layer ``index``: the local ones (``rope_local_parameters``,
    set by :mod:`.config` from ``rope_local_base_freq`` / ``rope_parameters.sliding_attention``)
    for sliding layers, the model's for full layers."""
    local = config.get("rope_local_parameters")
    if config.windows[index] is not None and local:
        return dict(local)
    return config.rope_parameters


def build_embedding(config, slot: LayerSlot) -> GemmaEmbedding:
    return GemmaEmbedding(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                          dtype=config.weight_dtype(slot.name, quantizable=False))


def build_norm(config, slot: LayerSlot) -> GemmaRMSNorm:
    return GemmaRMSNorm(name=slot.name, index=slot.index, hidden=config.hidden_size, dtype=config.dtype)


def build_attention(config, slot: LayerSlot) -> GemmaAttention:
    """Sliding or full per ``layer_types``; q/k norm for Gemma 3 and 4; RoPE per layer type;
    Gemma 4's per-layer head_dim, KV heads and k = v."""
    rope = layer_rope(config, slot.index)
    if config.model_type == "gemma4_text":
        from .gemma4 import Gemma4Attention

        i = slot.index
        head_dim = config.get("gemma4_head_dims")[i]
        kwargs = attention_kwargs(config, slot) | {
            "head_dim": head_dim, "kv_heads": config.get("gemma4_kv_heads")[i],
            "rotary_dim": rotary_dim(rope, head_dim), "rope_type": rope.get("rope_type", "default")}
        return Gemma4Attention(**kwargs, qk_norm=True, k_eq_v=config.get("gemma4_k_eq_v")[i])
    kwargs = attention_kwargs(config, slot) | {
        "rotary_dim": rotary_dim(rope, config.head_dim), "rope_type": rope.get("rope_type", "default")}
    return GemmaAttention(**kwargs, qk_norm=config.model_type == "gemma3_text",
                          logit_softcap=config.get("attn_logit_softcapping"),
                          query_scalar=config.get("query_pre_attn_scalar"))


def build_moe(config, slot: LayerSlot):
    """Gemma 4's MoE block (router, GeGLU experts, three norms), beside the dense MLP."""
    from mantile_core.layers.standard import moe_kwargs

    from .gemma4 import Gemma4MoE

    return Gemma4MoE(**moe_kwargs(config, slot))


def build_mlp(config, slot: LayerSlot) -> GatedMLP:
    """The core's gated MLP with the tanh GELU (GeGLU; :mod:`.config` admits only the tanh GELU)."""
    return GatedMLP(name=slot.name, index=slot.index, hidden=config.hidden_size,
                    intermediate=config.intermediate_size, weight_dtype=config.weight_dtype(slot.name),
                    bias_dtype=config.dtype, activation="gelu_tanh")


def build_lm_head(config, slot: LayerSlot) -> GemmaLMHead:
    return GemmaLMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                       dtype=config.weight_dtype(slot.name, quantizable=False), tied=config.tie_word_embeddings,
                       softcap=config.get("final_logit_softcapping"))


LAYER_TYPES = [
    LayerType("gemma-embedding", "embedding", build_embedding, GEMMA_MODEL_TYPES,
              description="token embedding scaled by sqrt(hidden)"),
    LayerType("gemma-rmsnorm", "norm", build_norm, GEMMA_MODEL_TYPES, description="RMSNorm with (1 + w)"),
    LayerType("gemma-attention", "attention", build_attention, GEMMA_MODEL_TYPES,
              description="GQA with query_pre_attn_scalar, logit soft-cap, local/global RoPE, q/k norm (Gemma 3)"),
    LayerType("gemma-mlp", "mlp", build_mlp, GEMMA_MODEL_TYPES, description="GeGLU (gelu_pytorch_tanh) MLP"),
    LayerType("gemma4-moe", "moe", build_moe, frozenset({"gemma4_text"}),
              description="Gemma 4 MoE block beside the dense MLP: scaled router, GeGLU experts, three norms"),
    LayerType("gemma-lm-head", "lm_head", build_lm_head, GEMMA_MODEL_TYPES,
              description="LM head tied to the embedding, final-logit soft-cap"),
]
