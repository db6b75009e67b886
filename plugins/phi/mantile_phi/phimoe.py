"""Phi-3.5-MoE (``phimoe``): Mixtral's decoder stack with Phi's LayerNorm, biases and router.

transformers 5.24 writes it as a diff of Mixtral (``modular_phimoe.py``); here it is the core's
standard stack (embedding; per block input norm, attention, post-attention norm, MoE; final norm;
LM head) with four layer types of its own, each a core layer configured:

- norms: :class:`~mantile_core.layers.LayerNorm` with weight and bias (``2·H`` parameters;
  ``rms_norm_eps`` is its epsilon despite the name), every block norm and the final norm;
- attention: the core's GQA :class:`~mantile_core.layers.Attention` with q/k/v/o biases when
  ``attention_bias`` (Phi-3.5-MoE: true, ``(heads + 2·kv)·dh + H`` bias parameters); every
  layer slides when ``sliding_window`` is set (transformers builds one sliding mask for the
  model; Phi-3.5-MoE's 131072 is its whole context), served by mantile-swa-cache; the
  ``longrope`` RoPE from mantile-rope-longrope (the ``short_mscale`` / ``long_mscale`` that
  replace its attention factor scale cos and sin: no count changes);
- MoE: the core's :class:`~mantile_core.layers.MoE` (router ``H·E`` without bias, E SwiGLU
  experts of ``intermediate_size``, the fused gate_up the same count) routed by
  **sparsemixer** (:class:`SparseMixerMoE`); router and input jitter act in training only;
- LM head: the core's :class:`~mantile_core.layers.LMHead`, untied, with a ``V`` bias when
  ``lm_head_bias`` (Phi-3.5-MoE: true).

Sparsemixer at inference (transformers' ``sparsemixer``, ``training=False``) picks the two
experts in two passes over the E router logits; each pass, per logit: the running max (1),
``|s|`` clamped to the max (2), ``(max − s) / factor`` (2), the ``> 2·jitter`` test (1),
masking (1) and a softmax over the masked logits (max subtracted, exp, sum, divide: 4) —
:data:`SPARSEMIXER_FLOPS_PER_LOGIT_PASS` = 11, so 22 per logit in place of the core's
softmax top-k 3 (``ROUTER_FLOPS_PER_LOGIT``). It always selects exactly two experts, so
``num_experts_per_tok`` other than 2 is refused.

Phi-3.5-MoE: 32 × (attention 41,953,280 + MoE 1,258,356,736 + norms 16,384) + embedding and
head 2 × 131,334,144 + head bias 32,064 + final norm 8,192 = 41,873,153,344 parameters.
"""

from __future__ import annotations

import attrs
from mantile_core import checks
from mantile_core.config import ModelConfig
from mantile_core.errors import ConfigError
from mantile_core.layers import Attention, LayerNorm, LMHead, MoE
from mantile_core.layers.mlp import ROUTER_FLOPS_PER_LOGIT, activation_name
from mantile_core.layers.standard import attention_kwargs, moe_kwargs
from mantile_core.records import LayerSlot, LayerType
from mantile_core.workload import LayerCost, Step

__all__ = ["PHIMOE", "SparseMixerMoE", "SPARSEMIXER_FLOPS_PER_LOGIT_PASS", "SPARSEMIXER_TOP_K", "LAYER_TYPES"]

PHIMOE = frozenset({"phimoe"})
SPARSEMIXER_FLOPS_PER_LOGIT_PASS = 11  # max, |s|, clamp, subtract, divide, compare, mask, softmax (4)
SPARSEMIXER_TOP_K = 2  # transformers' sparsemixer selects exactly two experts


@attrs.frozen(kw_only=True)
class SparseMixerMoE(MoE):
    """The core MoE routed by sparsemixer: ``top_k`` passes of
    SPARSEMIXER_FLOPS_PER_LOGIT_PASS FLOPs per router logit instead of the core's
    ROUTER_FLOPS_PER_LOGIT."""

    def routing_flops(self, step: Step) -> int:
        """Router elementwise FLOPs beyond the core's: T·E·(11·k − 3)."""
        per_logit = SPARSEMIXER_FLOPS_PER_LOGIT_PASS * self.top_k - ROUTER_FLOPS_PER_LOGIT
        return step.tokens * self.experts * per_logit

    def describe(self) -> dict:
        return super().describe() | {"routing": "sparsemixer"}

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        return attrs.evolve(base, flops=base.flops + self.routing_flops(step))


def build_norm(config: ModelConfig, slot: LayerSlot) -> LayerNorm:
    return LayerNorm(name=slot.name, index=slot.index, hidden=config.hidden_size, dtype=config.dtype, bias=True)


def build_attention(config: ModelConfig, slot: LayerSlot) -> Attention:
    bias = checks.get_bool(config.raw, "attention_bias", config.where, default=False)
    return Attention(**attention_kwargs(config, slot), q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias)


def build_moe(config: ModelConfig, slot: LayerSlot) -> SparseMixerMoE:
    if config.experts_per_token != SPARSEMIXER_TOP_K:
        raise ConfigError(f"{config.where}: phimoe's sparsemixer routes every token to exactly "
                          f"{SPARSEMIXER_TOP_K} experts ('num_experts_per_tok' is {config.experts_per_token})")
    act = checks.get_str(config.raw, "hidden_act", config.where, default="silu")
    return SparseMixerMoE(**moe_kwargs(config, slot), activation=activation_name(act, config.where))


def build_lm_head(config: ModelConfig, slot: LayerSlot) -> LMHead:
    return LMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.head_dtype(slot.name), tied=config.tie_word_embeddings,
                  bias=checks.get_bool(config.raw, "lm_head_bias", config.where, default=False),
                  bias_dtype=config.dtype)


LAYER_TYPES = [
    LayerType("phimoe-layernorm", "norm", build_norm, PHIMOE, description="LayerNorm with weight and bias"),
    LayerType("phimoe-attention", "attention", build_attention, PHIMOE,
              description="GQA with q/k/v/o biases (attention_bias), sliding window on every layer when set"),
    LayerType("phimoe-moe", "moe", build_moe, PHIMOE,
              description="SwiGLU experts, bias-free router, sparsemixer top-2 routing"),
    LayerType("phimoe-lm-head", "lm_head", build_lm_head, PHIMOE, description="untied LM head with lm_head_bias"),
]
