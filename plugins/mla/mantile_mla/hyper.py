"""Manifold-constrained hyper-connections (DeepSeek-V4's ``attn_hc`` / ``ffn_hc`` and the final
``hc_head``; transformers' ``DeepseekV4HyperConnection`` / ``DeepseekV4HyperHead``).

The residual stream is n = ``hc_mult`` copies of the hidden vector (n·H values per token).
Before each sublayer (attention, MoE) an HC module reads the n streams, RMS-normalises their
concatenation (no weight), projects it with ``fn`` ((2+n)·n × n·H) to n "pre" weights, n
"post" weights and an n × n "comb" matrix (``base`` (2+n)·n and ``scale`` 3 shift and scale
them), collapses the streams with pre into the sublayer's input, and afterwards writes
post ⊗ output + combᵀ · streams back as the new n streams. comb is made doubly stochastic by
``hc_sinkhorn_iters`` Sinkhorn iterations. The head (``hc_head``) collapses the streams once
more before the final norm: ``hc_fn`` n × n·H, ``hc_base`` n, ``hc_scale`` 1.

Parameters: (2+n)·n·n·H + (2+n)·n + 3 per module (head: n·n·H + n + 1), all float32,
replicated on every tp rank. FLOPs per device, T tokens, k = (2+n)·n mixing weights:

- GEMMs: 2·T·n·H·k (fn) + 2·T·n·n·H (combᵀ · streams); head: 2·T·n·H·n;
- elementwise: the norm 4·T·n·H, scale and base 2·T·k, sigmoids of pre and post 4·T·2n and
  post's ×2 T·n, comb's softmax 5·T·n², Sinkhorn 2·T·n²·(2·iters − 1) (sum and divide per
  column, then per row and column each further iteration), collapse 2·T·n·H, post ⊗ output
  and the add 2·T·n·H; head: norm 4·T·n·H, scale, base and sigmoid 6·T·n, collapse 2·T·n·H.
"""

from __future__ import annotations

import attrs
from mantile_core.dtypes import DType
from mantile_core.layers import Layer
from mantile_core.layers.simple import NORM_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step

__all__ = ["HyperConnection", "SIGMOID_FLOPS"]

SIGMOID_FLOPS = 4  # negate, exp, +1, reciprocal


@attrs.frozen(kw_only=True)
class HyperConnection(Layer):
    """One HC module (``head`` False) or the final collapse (``head`` True)."""

    kind: str = "hyper_connection"
    hidden: int
    streams: int
    sinkhorn_iters: int = 20
    head: bool = False
    dtype: DType

    @property
    def mixes(self) -> int:
        """Mixing weights per token: (2+n)·n (pre, post, comb), n for the head."""
        n = self.streams
        return n if self.head else (2 + n) * n

    def params(self) -> int:
        n = self.streams
        return self.mixes * n * self.hidden + self.mixes + (1 if self.head else 3)

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.params())

    def describe(self) -> dict:
        return {"streams": self.streams, "head": self.head, "sinkhorn_iters": 0 if self.head else self.sinkhorn_iters,
                "residual_values_per_token": self.streams * self.hidden}

    def flop_terms(self, step: Step) -> dict:
        t, n, h, k = step.tokens, self.streams, self.hidden, self.mixes
        if self.head:
            return {"mix": 2 * t * n * h * n, "combine": 0,
                    "elementwise": NORM_FLOPS_PER_ELEMENT * t * n * h + (2 + SIGMOID_FLOPS) * t * n + 2 * t * n * h}
        sinkhorn = 2 * t * n * n * (2 * self.sinkhorn_iters - 1)
        return {"mix": 2 * t * n * h * k, "combine": 2 * t * n * n * h,
                "elementwise": (NORM_FLOPS_PER_ELEMENT * t * n * h + 2 * t * k + SIGMOID_FLOPS * t * 2 * n + t * n
                                + 5 * t * n * n + sinkhorn + 2 * t * n * h + 2 * t * n * h)}

    def cost(self, step: Step) -> LayerCost:
        terms = self.flop_terms(step)
        matmul = terms["mix"] + terms["combine"]
        t, n, h = step.tokens, self.streams, self.hidden
        weights = self.weight_bytes()
        written = t * h + t * self.mixes + (0 if self.head else t * n * h)
        return LayerCost(
            flops=matmul + terms["elementwise"],
            matmul_flops=matmul,
            weight_bytes=weights,
            resident_weight_bytes=weights,
            activation_bytes=step.act_dtype.nbytes(written),
            kernels=2 if self.head else 4,
            gemm_dtype=self.dtype.compute_name,
        )
