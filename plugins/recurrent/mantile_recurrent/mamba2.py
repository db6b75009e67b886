"""Mamba-2 mixer with the chunked SSD scan (``mamba2``, Nemotron-H / Nemotron-3 Mamba layers).

Shapes: hidden H, heads nh, head dim P, intermediate I = nh·P, groups G, state N, conv kernel
K, chunk Q (``chunk_size``). conv_dim = I + 2·G·N. Under tensor parallelism (vLLM's
MambaMixer2) heads split over ``tp`` (nhl = nh/tp, Il = I/tp) and so do groups when ``tp``
divides G (Gl = G/tp); a single group is replicated (Gl = 1). in_proj is column-parallel,
out_proj row-parallel and all-reduced.

Parameters (unsharded)::

    in_proj      H → 2I + 2GN + nh     H·(2I+2GN+nh)   (+ bias if use_bias)
    conv1d       depthwise             conv_dim·K      (+ conv_dim if use_conv_bias)
    dt_bias, A_log, D                  3·nh
    norm         gated RMSNorm         I               (per group of I/G channels)
    out_proj     I → H                 I·H             (+ H if use_bias)

GEMM FLOPs of the projections: ``2·T·H·(2Il + 2GlN + nhl) + 2·T·Il·H``.

The scan. A step where every sequence adds one token runs the recurrent update
(``selective_state_update``, elementwise): per local head ``h = exp(Δ·A)·h + (Δ·x)⊗B``,
``y = h·C + D·x``: 2 + P + 2PN + 2PN + 2PN + 2P FLOPs, no GEMM. A longer step runs the
chunked SSD algorithm of Mamba-2 (Dao & Gu 2024, §6; the ``mamba_chunk_scan_combined``
Triton kernels of mamba_ssm that vLLM runs: ``_bmm_chunk_fwd``, ``_chunk_state_fwd``,
``_chunk_scan_fwd``). Per sequence of S new tokens cut into chunks of Q (the last shorter),
with ΣL² = (S//Q)·Q² + (S%Q)²:

    CB = C·Bᵀ in each chunk           2·N·ΣL²     per local group
    diagonal blocks (CB∘decay)·(Δx)   2·P·ΣL²     per local head
    chunk states Bᵀ·(decay·Δx)        2·N·P·S     per local head
    off-diagonal C·state              2·N·P·S     per local head

The diagonal blocks are counted whole (L×L, masked), as the torch reference computes them;
the Triton kernel skips tiles above the diagonal, so it runs between half and all of that
term. Elementwise in the chunked form: the decay matrix exp(segsum) 2 FLOPs and the mask
multiply 1 per (i, j) entry per head (3·nhl·ΣL²), Δ·x and the chunk-state decay 2·Il per
token, D·x 2·Il per token, and the state passing 2·P·N per chunk per head.

Around the scan, per token: conv (2K−1 + bias)·conv_dim_l, SiLU 4·conv_dim_l, Δ bias and
softplus 4·nhl, gate SiLU(z)·y 5·Il, gated RMSNorm 4·Il.

Recurrent state per sequence and device: conv ``(Il + 2·Gl·N)·(K−1)`` in the model dtype + SSM
``nhl·P·N`` in the state dtype (Nemotron-H declares float32), independent of the context.
"""

from __future__ import annotations

import attrs

from mantile_core.dtypes import DType, matrices_nbytes
from mantile_core.errors import ParallelismError
from mantile_core.layers import Layer
from mantile_core.layers.base import require_divides
from mantile_core.workload import LayerCost, Step

from .common import (NORM_FLOPS, SILU_FLOPS, SOFTPLUS_FLOPS, chunk_count, chunk_square_sum,
                     conv_flops_per_channel, is_recurrent_step, state_dtype, state_facts)

__all__ = ["Mamba2Mixer", "ssd_matmul_flops", "recurrent_flops_per_head"]


def ssd_matmul_flops(tokens, chunk: int, heads: int, groups: int, head_dim: int, state: int):
    """GEMM FLOPs of the chunked SSD scan of one ``tokens``-long sequence over ``heads`` local
    heads and ``groups`` local groups: 2N·ΣL²·G + heads·(2P·ΣL² + 4·N·P·tokens)."""
    squares = chunk_square_sum(tokens, chunk)
    return groups * 2 * state * squares + heads * (2 * head_dim * squares + 4 * state * head_dim * tokens)


def recurrent_flops_per_head(head_dim: int, state: int) -> int:
    """Elementwise FLOPs of one recurrent update per head: exp(Δ·A) 2, Δ·x P, (Δx)⊗B PN,
    dA·h + dBx 2PN, Σ h·C 2PN (PN multiplies, PN adds, counted as 2PN), D·x + y 2P."""
    return 2 + head_dim + 5 * head_dim * state + 2 * head_dim


@attrs.frozen(kw_only=True)
class Mamba2Mixer(Layer):
    """A Mamba-2 mixer; ``weight_dtype`` stores in_proj and out_proj, ``dtype`` the conv,
    dt_bias, A_log, D, norm and biases, ``ssm_dtype`` (None: the model's) the SSM state."""

    kind: str = "mamba2"
    hidden: int
    heads: int
    head_dim: int
    groups: int
    state: int
    conv_kernel: int
    chunk: int
    weight_dtype: DType
    dtype: DType
    use_bias: bool = False
    conv_bias: bool = True
    ssm_dtype: DType | None = None

    @property
    def intermediate(self) -> int:
        return self.heads * self.head_dim

    def _local(self, tp) -> tuple[int, int]:
        """(local heads, local groups) on ``tp`` devices."""
        divides = self.groups % tp == 0  # else a single group, replicated (check_parallelism)
        return self.heads // tp, (self.groups // tp) * divides + 1 - divides

    def _proj_width(self, heads, groups) -> int:
        return 2 * heads * self.head_dim + 2 * groups * self.state + heads

    def _conv_dim(self, heads, groups) -> int:
        return heads * self.head_dim + 2 * groups * self.state

    def _matrix_params(self, heads, groups) -> int:
        return self.hidden * self._proj_width(heads, groups) + heads * self.head_dim * self.hidden

    def _matrices(self, heads, groups) -> list[tuple[int, int, int]]:
        """(count, rows, cols): in_proj (2Il + 2GlN + nhl) × H, out_proj H × Il."""
        return [(1, self._proj_width(heads, groups), self.hidden), (1, self.hidden, heads * self.head_dim)]

    def _other_params(self, heads, groups) -> int:
        conv = self._conv_dim(heads, groups)
        return (conv * self.conv_kernel + self.conv_bias * conv + 3 * heads + heads * self.head_dim
                + self.use_bias * (self._proj_width(heads, groups) + self.hidden))

    def params(self) -> int:
        return self._matrix_params(self.heads, self.groups) + self._other_params(self.heads, self.groups)

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._matrices(self.heads, self.groups))
                + self.dtype.nbytes(self._other_params(self.heads, self.groups)))

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "the Mamba-2 head count", self.heads)
        if self.groups % tp and self.groups != 1:
            raise ParallelismError(f"'tp' must divide n_groups={self.groups} (or n_groups be 1) (got {tp})")

    def describe(self) -> dict:
        return {"mixer": "mamba2", "heads": self.heads, "head_dim": self.head_dim, "groups": self.groups,
                "state_size": self.state, "conv_kernel": self.conv_kernel, "chunk_size": self.chunk,
                "recurrent_state": state_facts(self._conv_dim(self.heads, self.groups) * (self.conv_kernel - 1),
                                               self.heads * self.head_dim * self.state, self.ssm_dtype)}

    def state_bytes(self, step: Step, batch) -> int:
        """Conv (Il + 2GlN)·(K−1) (model dtype) + SSM nhl·P·N (state dtype), ``batch`` sequences."""
        heads, groups = self._local(step.tp)
        return (step.act_dtype.nbytes(batch * self._conv_dim(heads, groups) * (self.conv_kernel - 1))
                + state_dtype(step, self.ssm_dtype).nbytes(batch * heads * self.head_dim * self.state))

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden, tp = step.tokens, self.hidden, step.tp
        heads, groups = self._local(tp)
        inter, p, n = heads * self.head_dim, self.head_dim, self.state
        conv = self._conv_dim(heads, groups)
        projection = 2 * tokens * hidden * self._proj_width(heads, groups) + 2 * tokens * inter * hidden
        recurrent = is_recurrent_step(step)
        chunked = 1 - recurrent
        new = step.new_tokens
        squares = chunk_square_sum(new, self.chunk)
        scan_matmul = chunked * step.batch * ssd_matmul_flops(new, self.chunk, heads, groups, p, n)
        scan_elementwise = (
            recurrent * tokens * heads * recurrent_flops_per_head(p, n)
            + chunked * step.batch * (3 * heads * squares + 4 * inter * new
                                      + 2 * p * n * heads * chunk_count(new, self.chunk))
        )
        around = tokens * (conv * (conv_flops_per_channel(self.conv_kernel, self.conv_bias) + SILU_FLOPS)
                           + heads * (1 + SOFTPLUS_FLOPS) + inter * (SILU_FLOPS + 1 + NORM_FLOPS))
        bias = self.use_bias * tokens * (self._proj_width(heads, groups) + hidden)
        matmul = projection + scan_matmul
        resident = (matrices_nbytes(self.weight_dtype, self._matrices(heads, groups))
                    + self.dtype.nbytes(self._other_params(heads, groups)))
        state = self.state_bytes(step, step.batch)
        parallel = tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + scan_elementwise + around + bias,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            recurrent_state_bytes=state,
            kv_read_bytes=state * (step.cached > 0),
            kv_write_bytes=state,
            activation_bytes=act.nbytes(tokens * (self._proj_width(heads, groups) + conv + 2 * inter + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=6 + 2 * chunked + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )
