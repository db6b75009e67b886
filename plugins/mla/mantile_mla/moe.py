"""DeepSeek MoE: the core's :class:`~mantile_core.layers.MoE` with DeepSeek's router and
always-active shared experts; and the dense MLP of the first ``first_k_dense_replace`` layers
(the core's :class:`~mantile_core.layers.GatedMLP`).

- experts: ``n_routed_experts`` gated experts of ``moe_intermediate_size`` (the core's count:
  2·T·k·3·H·I/tp matmul, expert weights in the quantization format: fp8 block-scaled for
  DeepSeek-V3 / Kimi-K2);
- shared experts: one gated MLP of ``n_shared_experts · moe_intermediate_size``, run on every
  token, no gate, sharded by tp, stored like the experts (``mlp.shared_experts`` is quantized);
- router ``mlp.gate`` (E × H, checkpoint dtype) and, for topk_method noaux_tc
  (DeepSeek-V3, Kimi-K2), ``e_score_correction_bias``: E float32 values, counted as parameters
  (the checkpoints store them; transformers holds them as a buffer) and added to the sigmoid
  scores for the choice only (the core's ``router_bias`` term: 1 FLOP per logit);
- routing FLOPs beyond the core's 3 per logit (softmax / top-k): grouped top-k adds, per
  token, 2 per group (sum of the group's top-2 scores) when n_group > 1; the chosen weights
  are normalised (2·k: sum and divide, when norm_topk_prob) and scaled by
  routed_scaling_factor (k).
"""

from __future__ import annotations

import attrs
from mantile_core.dtypes import DTYPES
from mantile_core.layers import MoE
from mantile_core.workload import LayerCost, Step

__all__ = ["DeepSeekMoE", "DeepSeekV4MoE", "GROUP_SCORE_FLOPS_PER_GROUP", "CORRECTION_BIAS_DTYPE", "HASH_ID_BYTES",
           "SQRTSOFTPLUS_EXTRA_FLOPS_PER_LOGIT", "CLAMP_FLOPS_PER_ELEMENT"]

GROUP_SCORE_FLOPS_PER_GROUP = 2  # the sum of the group's two best scores, and their comparison
CORRECTION_BIAS_DTYPE = DTYPES["fp32"]  # e_score_correction_bias is stored in float32


@attrs.frozen(kw_only=True)
class DeepSeekMoE(MoE):
    """Routed experts + shared experts (``shared_intermediate`` = n_shared·I, no gate) with
    DeepSeek's grouped top-k router; ``router_bias`` is the e_score_correction_bias."""

    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = False
    scoring_func: str = "softmax"
    n_shared_experts: int = 0

    def _dense_bytes(self, shared_inter):
        """Router weight in dense_dtype, e_score_correction_bias in float32, shared experts
        in shared_dtype."""
        base = super()._dense_bytes(shared_inter)
        if not self.router_bias:
            return base
        return base - self.dense_dtype.nbytes(self.experts) + CORRECTION_BIAS_DTYPE.nbytes(self.experts)

    def buffer_params(self) -> int:
        """The e_score_correction_bias (E values): a buffer in transformers, stored in the checkpoint."""
        return self.experts * self.router_bias

    def routing_flops(self, step: Step):
        """Per-token routing work beyond the core's count (see the module docstring)."""
        tokens = step.tokens
        grouped = GROUP_SCORE_FLOPS_PER_GROUP * self.n_group * (self.n_group > 1)
        return tokens * (grouped + self.top_k * (1 + 2 * self.norm_topk_prob))

    def describe(self) -> dict:
        return super().describe() | {"shared_experts": self.n_shared_experts, "n_group": self.n_group,
                                     "topk_group": self.topk_group, "scoring": self.scoring_func,
                                     "routed_scaling_factor": self.routed_scaling_factor,
                                     "e_score_correction_bias": self.router_bias}

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        return attrs.evolve(base, flops=base.flops + self.routing_flops(step))


HASH_ID_BYTES = 8
"""``tid2eid`` holds expert ids as int64 (transformers' buffer): 8 bytes each."""

SQRTSOFTPLUS_EXTRA_FLOPS_PER_LOGIT = 2
"""sqrt(softplus(x)) beyond the core's 3 per logit: softplus is exp, +1, log (3) and sqrt (1),
against the 2 of a sigmoid-like score the core's 3 already hold with the top-k comparison."""

CLAMP_FLOPS_PER_ELEMENT = 3
"""Clamped SwiGLU (DeepSeek-V4, GPT-OSS-like): gate clamped from above (1), up both ways (2)."""


@attrs.frozen(kw_only=True)
class DeepSeekV4MoE(DeepSeekMoE):
    """DeepSeek-V4's MoE: DeepSeek MoE with one shared MLP, SwiGLU clamped at ``swiglu_limit``
    on every expert and the shared MLP, ``scoring_func`` sqrtsoftplus, and on a hash-routed
    layer (``hash_vocab`` > 0) the frozen ``tid2eid`` table (vocab × top_k int64 expert ids,
    counted as parameters: the checkpoint stores it) choosing the experts instead of a top-k
    (the router GEMM still scores them, for their weights) and no e_score_correction_bias."""

    hash_vocab: int = 0
    swiglu_limit: float = 10.0

    def _hash_ids(self) -> int:
        return self.hash_vocab * self.top_k

    def params(self) -> int:
        return super().params() + self._hash_ids()

    def buffer_params(self) -> int:
        """The tid2eid table (or the e_score_correction_bias): buffers in transformers, stored
        in the checkpoint."""
        return super().buffer_params() + self._hash_ids()

    def weight_bytes(self) -> int:
        return super().weight_bytes() + HASH_ID_BYTES * self._hash_ids()

    def describe(self) -> dict:
        return super().describe() | {"routing": "hash (tid2eid)" if self.hash_vocab else "top-k",
                                     "swiglu_limit": self.swiglu_limit}

    def routing_flops(self, step: Step):
        """DeepSeek's normalisation and scaling; sqrtsoftplus scores; the clamps of the routed
        and shared experts' SwiGLU; a hash layer looks its experts up (no top-k comparison)."""
        tokens = step.tokens
        score = (SQRTSOFTPLUS_EXTRA_FLOPS_PER_LOGIT if self.scoring_func == "sqrtsoftplus" else 0) - bool(self.hash_vocab)
        world = step.tp * step.dp
        clamp = CLAMP_FLOPS_PER_ELEMENT * (tokens * step.dp * self.top_k * self.intermediate // world
                                           + tokens * self.shared_intermediate // step.tp)
        return super().routing_flops(step) + tokens * self.experts * score + clamp

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        table = HASH_ID_BYTES * self._hash_ids()
        return attrs.evolve(base, weight_bytes=base.weight_bytes + HASH_ID_BYTES * step.tokens * self.top_k * bool(table),
                            resident_weight_bytes=base.resident_weight_bytes + table)
