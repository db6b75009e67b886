"""Mamba-1 selective state-space mixer (``mamba``, ``falcon_mamba``, Jamba's Mamba layers).

Shapes: hidden H, intermediate I (= expand·H), state N, conv kernel K, time-step rank R. Under
tensor parallelism (vLLM's MambaMixer) the I channels split over ``tp``, Il = I/tp: in_proj and
dt_proj column-parallel, x_proj and out_proj row-parallel, each followed by an all-reduce.
T = batch·new_tokens tokens per step; counts per device.

Parameters (unsharded)::

    in_proj   H → 2I        2I·H      (+ 2I bias if use_bias)
    conv1d    depthwise     I·K       (+ I bias if use_conv_bias)
    x_proj    I → R+2N      I·(R+2N)
    dt_proj   R → I         R·I + I   (always has a bias)
    A_log, D                I·N + I
    out_proj  I → H         I·H       (+ H bias if use_bias)
    B/C/Δ norms             R + 2N    only Jamba (weighted RMSNorms); Falcon-Mamba's are
                                      weightless (0 parameters)

GEMM FLOPs: ``2·T·(H·2Il + Il·(R+2N) + R·Il + Il·H)``. The selective scan is elementwise in
prefill and decode alike (the CUDA/Triton kernels scan each channel; there is no chunked
matmul form for Mamba-1), per token and local channel:

    causal conv        2K−1 (+1 bias)
    SiLU               4
    Δ bias, softplus   1 + 3
    selective scan     7N + 2    exp(Δ·A): 2N; Δ·x: 1; (Δ·x)·B: N; h = dA·h + dBx: 2N;
                                 y = Σ h·C: 2N−1; y + D·x: 2
    gate y·SiLU(z)     5

plus, per token, 4 FLOPs per element of the B, C and Δ RMSNorms (R + 2N elements; 3 for the
weightless ones) and the projection biases when ``use_bias``. ``A = −exp(A_log)`` is computed
once at load.

Recurrent state per sequence and device: conv ``Il·(K−1)`` in the model dtype + SSM ``Il·N``
in the state dtype (see :mod:`.common`), independent of the context. A step writes it once and
reads it when the sequence has one (``cached > 0``).
"""

from __future__ import annotations

import attrs

from mantile_core.dtypes import DType, matrices_nbytes
from mantile_core.layers import Layer
from mantile_core.layers.base import require_divides
from mantile_core.workload import LayerCost, Step

from .common import NORM_FLOPS, SILU_FLOPS, SOFTPLUS_FLOPS, conv_flops_per_channel, state_dtype, state_facts

__all__ = ["Mamba1Mixer", "scan_flops_per_channel", "GATE_FLOPS", "NORMS"]

GATE_FLOPS = SILU_FLOPS + 1  # y · silu(z)
NORMS = ("", "weightless", "weighted")  # B/C/Δ RMSNorms: none (Mamba), Falcon-Mamba, Jamba


def scan_flops_per_channel(state: int) -> int:
    """Selective-scan FLOPs per token per channel for ``state`` = N: 7N + 2."""
    return 7 * state + 2


@attrs.frozen(kw_only=True)
class Mamba1Mixer(Layer):
    """A Mamba-1 mixer; ``weight_dtype`` stores the four projection matrices, ``dtype`` the
    conv, A_log, D, norms and biases, ``ssm_dtype`` (None: the model's) the SSM state."""

    kind: str = "mamba"
    hidden: int
    intermediate: int
    state: int
    conv_kernel: int
    dt_rank: int
    weight_dtype: DType
    dtype: DType
    use_bias: bool = False
    conv_bias: bool = True
    bcdt_norm: str = attrs.field(default="", validator=attrs.validators.in_(NORMS))
    ssm_dtype: DType | None = None

    def _matrix_params(self, inter) -> int:
        h, n, r = self.hidden, self.state, self.dt_rank
        return 2 * inter * h + inter * (r + 2 * n) + r * inter + inter * h

    def _matrices(self, inter) -> list[tuple[int, int, int]]:
        """(count, rows, cols): in_proj 2Il × H, x_proj (R+2N) × Il, dt_proj Il × R, out_proj H × Il."""
        h, n, r = self.hidden, self.state, self.dt_rank
        return [(1, 2 * inter, h), (1, r + 2 * n, inter), (1, inter, r), (1, h, inter)]

    def _other_params(self, inter) -> int:
        norms = (self.dt_rank + 2 * self.state) * (self.bcdt_norm == "weighted")
        return (inter * self.conv_kernel + self.conv_bias * inter + inter + inter * self.state + inter
                + self.use_bias * (2 * inter + self.hidden) + norms)

    def params(self) -> int:
        return self._matrix_params(self.intermediate) + self._other_params(self.intermediate)

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._matrices(self.intermediate))
                + self.dtype.nbytes(self._other_params(self.intermediate)))

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "intermediate_size", self.intermediate)

    def describe(self) -> dict:
        return {"mixer": "mamba", "state_size": self.state, "conv_kernel": self.conv_kernel,
                "intermediate": self.intermediate, "time_step_rank": self.dt_rank,
                "bcdt_norm": self.bcdt_norm or None,
                "recurrent_state": state_facts(self.intermediate * (self.conv_kernel - 1),
                                               self.intermediate * self.state, self.ssm_dtype)}

    def elementwise_flops_per_channel(self) -> int:
        """Per token per local channel: conv + SiLU + Δ bias + softplus + scan + gate."""
        return (conv_flops_per_channel(self.conv_kernel, self.conv_bias) + SILU_FLOPS + 1 + SOFTPLUS_FLOPS
                + scan_flops_per_channel(self.state) + GATE_FLOPS)

    def norm_flops_per_token(self) -> int:
        """The B, C and Δ RMSNorms: 4 FLOPs per element (3 without weights), R + 2N elements."""
        per = {"": 0, "weightless": NORM_FLOPS - 1, "weighted": NORM_FLOPS}[self.bcdt_norm]
        return per * (self.dt_rank + 2 * self.state)

    def state_bytes(self, step: Step, batch) -> int:
        """Conv Il·(K−1) (model dtype) + SSM Il·N (state dtype) for ``batch`` sequences."""
        inter = self.intermediate // step.tp
        return (step.act_dtype.nbytes(batch * inter * (self.conv_kernel - 1))
                + state_dtype(step, self.ssm_dtype).nbytes(batch * inter * self.state))

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden, tp = step.tokens, self.hidden, step.tp
        inter = self.intermediate // tp
        n, r = self.state, self.dt_rank
        matmul = 2 * tokens * (hidden * 2 * inter + inter * (r + 2 * n) + r * inter + inter * hidden)
        elementwise = (tokens * inter * self.elementwise_flops_per_channel() + tokens * self.norm_flops_per_token()
                       + self.use_bias * tokens * (2 * inter + hidden))
        resident = matrices_nbytes(self.weight_dtype, self._matrices(inter)) + self.dtype.nbytes(self._other_params(inter))
        state = self.state_bytes(step, step.batch)
        parallel = tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            recurrent_state_bytes=state,
            kv_read_bytes=state * (step.cached > 0),
            kv_write_bytes=state,
            activation_bytes=act.nbytes(tokens * (5 * inter + r + 2 * n + hidden)),
            comm_bytes=act.nbytes(tokens * (r + 2 * n + hidden)) * parallel,
            collectives=2 * parallel,
            kernels=6 + (self.bcdt_norm != "") + 2 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )
