"""The Mamba (selective state-space) mixer as a Mantile layer: exact parameters, FLOPs, bytes and
recurrent-state bytes.

Shapes (Hugging Face ``MambaConfig``): hidden H, intermediate I (= expand·H), state N
(``state_size``), convolution kernel K (``conv_kernel``), time-step rank R (``time_step_rank``).
Under tensor parallelism (vLLM's layout) the I channels are split over ``tp`` devices, Il = I/tp:
in_proj and dt_proj are column-parallel, x_proj and out_proj row-parallel (each followed by an
all-reduce). T = batch·new_tokens tokens in the step. Counts are per device.

Parameters (unsharded)::

    in_proj   H → 2I        2I·H      (+ 2I bias if use_bias)
    conv1d    depthwise     I·K       (+ I bias if use_conv_bias)
    x_proj    I → R+2N      I·(R+2N)
    dt_proj   R → I         R·I + I   (always has a bias)
    A_log, D                I·N + I
    out_proj  I → H         I·H       (+ H bias if use_bias)

GEMM FLOPs (``matmul_flops``, what torch's FlopCounterMode counts for the reference):
``2·T·(H·2Il + Il·(R+2N) + R·Il + Il·H)``.

Elementwise FLOPs per token and local channel (bias adds counted where present):

    causal conv        2K−1 (+1 bias)    K multiplies, K−1 adds
    SiLU               4
    Δ bias, softplus   1 + 3             log(1 + exp(x)): exp, add, log
    selective scan     7N + 2            exp(Δ·A): 2N; Δ·x: 1; (Δ·x)·B: N;
                                         h = dA·h + dBx: 2N; y = Σ h·C: 2N−1; y + D·x: 2
    gate y·SiLU(z)     5

plus ``2·T·Il`` for the in_proj bias and ``T·H`` for the out_proj bias (rank 0 adds it) when
``use_bias``. ``A = −exp(A_log)`` is computed once when the weights load (vLLM does), not per step.

The recurrent state replaces the KV cache: per sequence a convolution state of the last K−1
inputs and an SSM state of N values per channel, ``Il·(K−1+N)`` elements in the KV dtype,
whatever the context (vLLM keeps K−1 convolution inputs; Hugging Face's cache keeps K). A step
writes the state once; it reads it only when there is one (``cached > 0``).

Activations written per token: ``2Il`` (x, z) + ``Il`` (conv, SiLU) + ``R+2N`` (Δ, B, C) +
``Il`` (Δ) + ``Il`` (gated y) + ``H`` (output). Kernels: in_proj, conv, x_proj, dt_proj, the
fused scan (softplus, D skip and gate inside), out_proj, and the two all-reduces when tp > 1.
"""

from __future__ import annotations

import attrs

from mantile_core.dtypes import DType
from mantile_core.layers import Layer
from mantile_core.layers.base import require_divides
from mantile_core.workload import LayerCost, Step

__all__ = ["MambaMixer", "SILU_FLOPS", "SOFTPLUS_FLOPS", "GATE_FLOPS", "scan_flops_per_channel"]

SILU_FLOPS = 4  # x·sigmoid(x): negate, exp, add, divide (the core counts SiLU as 4 too)
SOFTPLUS_FLOPS = 3  # log(1 + exp(x))
GATE_FLOPS = SILU_FLOPS + 1  # y · silu(z)


def scan_flops_per_channel(state: int) -> int:
    """Selective-scan FLOPs per token per channel for ``state`` = N: 7N + 2 (see module doc)."""
    return 7 * state + 2


@attrs.frozen(kw_only=True)
class MambaMixer(Layer):
    """A Mamba-1 mixer (in_proj, causal depthwise conv, selective scan, gate, out_proj).

    ``weight_dtype`` stores the four projection matrices; ``dtype`` the conv, A_log, D and
    every bias.
    """

    kind: str = "mixer"
    hidden: int
    intermediate: int
    state: int
    conv_kernel: int
    dt_rank: int
    weight_dtype: DType
    dtype: DType
    use_bias: bool = False
    conv_bias: bool = True

    # --- parameters -----------------------------------------------------------------------
    def _matrix_params(self, inter) -> int:
        """Elements of in_proj, x_proj, dt_proj and out_proj weights for ``inter`` channels."""
        h, n, r = self.hidden, self.state, self.dt_rank
        return 2 * inter * h + inter * (r + 2 * n) + r * inter + inter * h

    def _other_params(self, inter) -> int:
        """conv (+ bias), dt bias, A_log, D and the projection biases, for ``inter`` channels."""
        return (inter * self.conv_kernel + self.conv_bias * inter + inter + inter * self.state + inter
                + self.use_bias * (2 * inter + self.hidden))

    def params(self) -> int:
        return self._matrix_params(self.intermediate) + self._other_params(self.intermediate)

    def weight_bytes(self) -> int:
        return (self.weight_dtype.nbytes(self._matrix_params(self.intermediate))
                + self.dtype.nbytes(self._other_params(self.intermediate)))

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "intermediate_size", self.intermediate)

    def describe(self) -> dict:
        return {"state_size": self.state, "conv_kernel": self.conv_kernel, "intermediate": self.intermediate,
                "time_step_rank": self.dt_rank}

    # --- cost -----------------------------------------------------------------------------
    def elementwise_flops_per_channel(self) -> int:
        """Elementwise FLOPs per token per local channel: (2K−1+bias) + 4 + 4 + (7N+2) + 5."""
        conv = 2 * self.conv_kernel - 1 + self.conv_bias
        return conv + SILU_FLOPS + 1 + SOFTPLUS_FLOPS + scan_flops_per_channel(self.state) + GATE_FLOPS

    def state_elements(self, tp) -> int:
        """Recurrent-state elements per sequence per device: Il·(K−1+N)."""
        return self.intermediate // tp * (self.conv_kernel - 1 + self.state)

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden, tp = step.tokens, self.hidden, step.tp
        inter = self.intermediate // tp
        n, r = self.state, self.dt_rank
        matmul = 2 * tokens * (hidden * 2 * inter + inter * (r + 2 * n) + r * inter + inter * hidden)
        elementwise = (tokens * inter * self.elementwise_flops_per_channel()
                       + self.use_bias * tokens * (2 * inter + hidden))
        resident = self.weight_dtype.nbytes(self._matrix_params(inter)) + self.dtype.nbytes(self._other_params(inter))
        state_bytes = step.kv_dtype.nbytes(step.batch * self.state_elements(tp))
        parallel = tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            recurrent_state_bytes=state_bytes,
            kv_read_bytes=state_bytes * (step.cached > 0),
            kv_write_bytes=state_bytes,
            activation_bytes=act.nbytes(tokens * (5 * inter + r + 2 * n + hidden)),
            comm_bytes=act.nbytes(tokens * (r + 2 * n + hidden)) * parallel,
            collectives=2 * parallel,
            kernels=6 + 2 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )
