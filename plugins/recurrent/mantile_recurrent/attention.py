"""The attention layers of the hybrid models, as variants of the core's
:class:`~mantile_core.layers.Attention`.

- :class:`GatedAttention` (Qwen3-Next, Qwen3.5 / 3.6 ``full_attention`` layers): q_proj
  produces the query and an output gate of the same width (H → 2·heads·dh), q/k RMSNorm on
  the head dim, partial RoPE (``partial_rotary_factor`` 0.25: 64 of 256 dims), and the output
  multiplied by σ(gate) before o_proj. Beyond the core's attention it adds ``H·heads·dh``
  parameters, ``2·T·H·hl·dh`` GEMM FLOPs and 4 FLOPs per gated element (σ: 3, product: 1).
- Jamba and Nemotron-H attention: the core's attention without positional embedding
  (``rotary_dim`` 0: no RoPE FLOPs, no RoPE table), no biases, no q/k norm.

KV cache, as in the core: ``2·batch·kvl·resident·dh·bytes`` on these layers only.
"""

from __future__ import annotations

import attrs

from mantile_core.layers import Attention
from mantile_core.workload import LayerCost, Step

from .common import SIGMOID_FLOPS

__all__ = ["GatedAttention", "GATE_FLOPS_PER_ELEMENT"]

GATE_FLOPS_PER_ELEMENT = SIGMOID_FLOPS + 1


@attrs.frozen(kw_only=True)
class GatedAttention(Attention):
    """Attention whose q_proj also yields a per-element output gate, σ(gate)·attention."""

    qk_norm: bool = True

    def _weight_elements(self, hl, kvl):
        return super()._weight_elements(hl, kvl) + self.hidden * hl * self.head_dim

    def _weight_matrices(self, hl, kvl):
        """q_proj (query and gate: 2·hl·dh × H), k and v (kvl·dh × H), o_proj (H × hl·dh)."""
        dh = self.head_dim
        return [(1, 2 * hl * dh, self.hidden), (2, kvl * dh, self.hidden), (1, self.hidden, hl * dh)]

    def describe(self) -> dict:
        return super().describe() | {"output_gate": True, "rotary_dim": self.rotary_dim}

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        gated = step.tokens * (self.heads // step.tp) * self.head_dim
        gate_matmul = 2 * gated * self.hidden
        return attrs.evolve(
            base,
            flops=base.flops + gate_matmul + GATE_FLOPS_PER_ELEMENT * gated,
            matmul_flops=base.matmul_flops + gate_matmul,
            activation_bytes=base.activation_bytes + step.act_dtype.nbytes(gated),
        )
