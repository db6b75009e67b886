"""Gated DeltaNet, the linear attention of Qwen3-Next and Qwen3.5 / 3.6 (``linear_attention``
layers).

Shapes: hidden H, key heads Hk, value heads Hv (a multiple of Hk; q and k are shared by
Hv/Hk value heads), key head dim dk, value head dim dv, conv kernel K. key_dim = Hk·dk,
value_dim = Hv·dv, conv_dim = 2·key_dim + value_dim. Under tensor parallelism (vLLM's
GatedDeltaNet) heads split over ``tp``: Hkl = Hk/tp, Hvl = Hv/tp; in_proj is column-parallel,
out_proj row-parallel and all-reduced.

Parameters (unsharded; Qwen3-Next fuses in_proj_qkvz and in_proj_ba, Qwen3.5 splits them into
in_proj_qkv, in_proj_z, in_proj_b, in_proj_a: the same count)::

    in_proj q, k, v, z     H·(2·key_dim + 2·value_dim)
    in_proj b, a           H·2Hv
    conv1d (no bias)       conv_dim·K
    dt_bias, A_log         2·Hv
    norm (gated RMSNorm)   dv     (one weight shared by all heads)
    out_proj               value_dim·H

Per token: q, k, v = SiLU(conv(·)); q, k L2-normalised, q scaled by dk^−½; β = σ(b);
g = −exp(A_log)·softplus(a + dt_bias) (a log decay); then per value head the gated delta rule
on a state S of dk×dv::

    S ← exp(g)·S;  S ← S + k ⊗ β(v − Sᵀk);  o = Sᵀq

and out = out_proj(RMSNorm(o)·SiLU(z)).

GEMM FLOPs of the projections: ``2·T·H·(2·kdl + 2·vdl + 2·Hvl) + 2·T·vdl·H`` (kdl, vdl the
local key / value widths).

The scan. A one-token step runs the recurrent rule (vLLM ``fused_recurrent_gated_delta_rule``,
elementwise): per value head decay dk·dv + 1, Sᵀk 2·dk·dv, delta 3·dv, rank-1 update 2·dk·dv,
Sᵀq 2·dk·dv. A longer step runs the chunked WY form of flash-linear-attention's
``chunk_gated_delta_rule`` (chunk C = 64, as vLLM runs it; Yang et al. 2024, "Gated Delta
Networks", §3). Per chunk of L tokens (the last may be shorter) and value head::

    A = (β·K)·Kᵀ ∘ decay, strictly lower       2·L²·dk
    (I + A)⁻¹ by forward substitution           (L−1)·L·(2L−1)/3   elementwise
    U = T·(β·V), W = T·(β·K·exp(g))             2·L²·dv + 2·L²·dk
    V' = U − W·S                                2·L·dk·dv
    intra-chunk Q·Kᵀ ∘ decay                    2·L²·dk
    O = (Q·exp(g))·S + (QKᵀ)·V'                 2·L·dk·dv + 2·L²·dv
    S ← exp(g_L)·S + (K·decay)ᵀ·V'              2·L·dk·dv

so per sequence of S tokens ``matmul = Hvl·((6·dk + 4·dv)·ΣL² + 6·dk·dv·S)`` with
ΣL² = (S//C)·C² + (S%C)², and the substitution, decays and masks elementwise (below).
fla inverts the L×L system block-wise (16×16 blocks merged); the count here is that of the
forward substitution Hugging Face's torch fallback runs, the same order of work.

Elementwise in the chunked form per chunk and value head: the substitution above, decay
matrices 3·L² (subtract, exp, mask-multiply, twice: 6·L²), β·k, β·v and exp(g)·k
(L·(2dk + dv)), the state decay dk·dv. Around the scan, per token: conv (2K−1)·conv_dim_l and
SiLU 4·conv_dim_l, L2 norms 3·(2·kdl) and the q scale kdl, β 3·Hvl, g 5·Hvl, output norm
4·vdl and gate 5·vdl.

Recurrent state per sequence and device: conv ``conv_dim_l·(K−1)`` in the model dtype + delta
state ``Hvl·dk·dv`` in the state dtype (Qwen3.5 declares ``mamba_ssm_dtype: float32``),
independent of the context.
"""

from __future__ import annotations

import attrs

from mantile_core.dtypes import DType, matrices_nbytes
from mantile_core.layers import Layer
from mantile_core.layers.base import require_divides
from mantile_core.workload import LayerCost, Step

from .common import (NORM_FLOPS, SIGMOID_FLOPS, SILU_FLOPS, SOFTPLUS_FLOPS, chunk_count,
                     chunk_square_sum, conv_flops_per_channel, is_recurrent_step, state_dtype, state_facts)

__all__ = ["GatedDeltaNet", "CHUNK", "delta_matmul_flops", "substitution_flops", "recurrent_flops_per_head"]

CHUNK = 64  # flash-linear-attention's chunk_gated_delta_rule block (BT = 64), as vLLM runs it


def delta_matmul_flops(tokens, chunk: int, heads: int, key_dim: int, value_dim: int):
    """GEMM FLOPs of the chunked gated delta rule of one ``tokens``-long sequence over
    ``heads`` local value heads: heads·((6dk + 4dv)·ΣL² + 6·dk·dv·tokens)."""
    squares = chunk_square_sum(tokens, chunk)
    return heads * ((6 * key_dim + 4 * value_dim) * squares + 6 * key_dim * value_dim * tokens)


def substitution_flops(length):
    """Forward substitution of one L×L unit-lower system: Σ_{i<L} 2i² = (L−1)L(2L−1)/3."""
    return (length - 1) * length * (2 * length - 1) // 3


def recurrent_flops_per_head(key_dim: int, value_dim: int) -> int:
    """One recurrent update per value head: decay dk·dv + 1, Sᵀk 2dk·dv, delta 3dv, update
    2dk·dv, Sᵀq 2dk·dv."""
    return 7 * key_dim * value_dim + 1 + 3 * value_dim


@attrs.frozen(kw_only=True)
class GatedDeltaNet(Layer):
    """A Gated DeltaNet layer; ``weight_dtype`` stores the projections, ``dtype`` the conv,
    dt_bias, A_log and norm, ``ssm_dtype`` (None: the model's) the delta state."""

    kind: str = "linear_attention"
    hidden: int
    key_heads: int
    value_heads: int
    key_dim: int
    value_dim: int
    conv_kernel: int
    weight_dtype: DType
    dtype: DType
    chunk: int = CHUNK
    ssm_dtype: DType | None = None
    fused_inputs: bool = False  # Qwen3-Next's in_proj_qkvz + in_proj_ba; Qwen3.5 splits them in four

    def _widths(self, tp) -> tuple[int, int, int]:
        """(local key width, local value width, local value heads)."""
        return self.key_heads // tp * self.key_dim, self.value_heads // tp * self.value_dim, self.value_heads // tp

    def _matrix_params(self, tp) -> int:
        kd, vd, hv = self._widths(tp)
        return self.hidden * (2 * kd + 2 * vd + 2 * hv) + vd * self.hidden

    def _matrices(self, tp) -> list[tuple[int, int, int]]:
        """(count, rows, cols) of the input projections (fused or split) and out_proj H × vd."""
        kd, vd, hv = self._widths(tp)
        h = self.hidden
        if self.fused_inputs:
            inputs = [(1, 2 * kd + 2 * vd, h), (1, 2 * hv, h)]
        else:
            inputs = [(1, 2 * kd + vd, h), (1, vd, h), (2, hv, h)]
        return inputs + [(1, h, vd)]

    def _other_params(self, tp) -> int:
        kd, vd, hv = self._widths(tp)
        return (2 * kd + vd) * self.conv_kernel + 2 * hv + self.value_dim

    def params(self) -> int:
        return self._matrix_params(1) + self._other_params(1)

    def weight_bytes(self) -> int:
        return matrices_nbytes(self.weight_dtype, self._matrices(1)) + self.dtype.nbytes(self._other_params(1))

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "linear_num_key_heads", self.key_heads)
        require_divides("tp", tp, "linear_num_value_heads", self.value_heads)

    def describe(self) -> dict:
        return {"mixer": "gated_deltanet", "key_heads": self.key_heads, "value_heads": self.value_heads,
                "key_head_dim": self.key_dim, "value_head_dim": self.value_dim, "conv_kernel": self.conv_kernel,
                "chunk_size": self.chunk,
                "recurrent_state": state_facts(
                    (2 * self.key_heads * self.key_dim + self.value_heads * self.value_dim) * (self.conv_kernel - 1),
                    self.value_heads * self.key_dim * self.value_dim, self.ssm_dtype)}

    def state_bytes(self, step: Step, batch) -> int:
        """Conv conv_dim_l·(K−1) (model dtype) + delta state Hvl·dk·dv (state dtype)."""
        kd, vd, hv = self._widths(step.tp)
        return (step.act_dtype.nbytes(batch * (2 * kd + vd) * (self.conv_kernel - 1))
                + state_dtype(step, self.ssm_dtype).nbytes(batch * hv * self.key_dim * self.value_dim))

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden, tp = step.tokens, self.hidden, step.tp
        kd, vd, hv = self._widths(tp)
        dk, dv, new = self.key_dim, self.value_dim, step.new_tokens
        conv = 2 * kd + vd
        projection = 2 * tokens * hidden * (2 * kd + 2 * vd + 2 * hv) + 2 * tokens * vd * hidden
        recurrent = is_recurrent_step(step)
        chunked = 1 - recurrent
        full, rest = new // self.chunk, new % self.chunk
        squares = chunk_square_sum(new, self.chunk)
        scan_matmul = chunked * step.batch * delta_matmul_flops(new, self.chunk, hv, dk, dv)
        scan_elementwise = (
            recurrent * tokens * hv * recurrent_flops_per_head(dk, dv)
            + chunked * step.batch * hv * (full * substitution_flops(self.chunk) + substitution_flops(rest)
                                           + 6 * squares + new * (2 * dk + dv)
                                           + dk * dv * chunk_count(new, self.chunk))
        )
        around = tokens * (conv * (conv_flops_per_channel(self.conv_kernel, False) + SILU_FLOPS) + 7 * kd
                           + hv * (SIGMOID_FLOPS + 2 + SOFTPLUS_FLOPS) + vd * (NORM_FLOPS + SILU_FLOPS + 1))
        matmul = projection + scan_matmul
        resident = matrices_nbytes(self.weight_dtype, self._matrices(tp)) + self.dtype.nbytes(self._other_params(tp))
        state = self.state_bytes(step, step.batch)
        parallel = tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + scan_elementwise + around,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            recurrent_state_bytes=state,
            kv_read_bytes=state * (step.cached > 0),
            kv_write_bytes=state,
            activation_bytes=act.nbytes(tokens * (2 * kd + 2 * vd + 2 * hv + conv + vd + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=6 + 3 * chunked + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )
