"""Built-in gated MLP (SwiGLU) and mixture-of-experts.

Gated MLP, T tokens, I intermediate, tp shards I: matmul 2·T·H·2I/tp + 2·T·(I/tp)·H;
activation 5 FLOPs per intermediate element (silu = 4, times up = 1); all-reduce T·H·bytes.

MoE with E experts, top k, expert intermediate I, ``ep`` expert groups each splitting an
expert's I over tp/ep devices (tp % ep == 0): router 2·T·H·E (replicated) plus 3·T·E for
softmax / top-k; experts 2·T·k·3·H·I/tp (uniform routing). A step reads the weights of the
local experts it activates in expectation, E/ep·(1 − (1 − k/E)^T), rounded to whole bytes.

Under attention data parallelism (``step.dp`` = D > 1 groups of tp devices, W = tp·D) the
experts are spread over all W devices: ``ep`` groups (ep | W) of W/ep devices each splitting an
expert's I. The D groups' tokens are pooled (D·T tokens reach the experts), so per device the
expert GEMMs are 2·D·T·k·3·H·I/W = 2·T·k·3·H·I/tp, the same as tensor parallelism, and a
step reads the local experts that D·T tokens activate. Each device dispatches its share
⌈T/tp⌉ of its group's tokens and gets them back (combine): per token H activation values to
each remote device that holds one of its k experts, in expectation
W·(1 − (1 − 1/ep)^k)·(W − 1)/W devices (one copy per device, as DeepEP sends it), so
``alltoall_bytes`` = 2·⌈T/tp⌉·H·bytes·(W − 1)·(1 − (1 − 1/ep)^k) in two all-to-alls; the
group's all-gather back to tp ranks keeps the all-reduce term of tensor parallelism.
"""

from __future__ import annotations

import attrs
import numpy

from ..dtypes import DType, matrices_nbytes
from ..errors import ParallelismError
from ..workload import LayerCost, Step, round_int
from .base import Layer, require_divides

__all__ = ["GatedMLP", "MoE", "ACT_FLOPS_PER_ELEMENT", "ROUTER_FLOPS_PER_LOGIT", "expected_active_experts"]

ACT_FLOPS_PER_ELEMENT = 5
ROUTER_FLOPS_PER_LOGIT = 3


def expected_active_experts(experts_local, num_experts: int, top_k: int, tokens):
    """Expected local experts at least one of ``tokens`` uniformly routed tokens picks:
    experts_local · (1 − (1 − k/E)^tokens)."""
    miss = numpy.power(1.0 - top_k / num_experts, tokens)
    return experts_local * (1.0 - miss)


@attrs.frozen(kw_only=True)
class GatedMLP(Layer):
    """gate/up hidden → intermediate, down intermediate → hidden, SwiGLU."""

    kind: str = "mlp"
    hidden: int
    intermediate: int
    weight_dtype: DType
    bias_dtype: DType
    bias: bool = False

    def params(self) -> int:
        return 3 * self.hidden * self.intermediate + self.bias * (2 * self.intermediate + self.hidden)

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._matrices(self.intermediate))
                + self.bias_dtype.nbytes(self.bias * (2 * self.intermediate + self.hidden)))

    def _matrices(self, inter):
        """(count, rows, cols): gate and up (inter × hidden), down (hidden × inter)."""
        return [(2, inter, self.hidden), (1, self.hidden, inter)]

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "intermediate_size", self.intermediate)

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden = step.tokens, self.hidden
        inter = self.intermediate // step.tp
        matmul = 2 * tokens * hidden * 2 * inter + 2 * tokens * inter * hidden
        bias = self.bias * tokens * (2 * inter + hidden)
        resident = (matrices_nbytes(self.weight_dtype, self._matrices(inter))
                    + self.bias_dtype.nbytes(self.bias * (2 * inter + hidden)))
        parallel = step.tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + ACT_FLOPS_PER_ELEMENT * tokens * inter + bias,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            activation_bytes=act.nbytes(tokens * (3 * inter + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=3 + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )


@attrs.frozen(kw_only=True)
class MoE(Layer):
    """Router (hidden → E, optional bias) and E gated experts of intermediate I (optional
    biases), optional shared expert of intermediate Is with a sigmoid gate (Qwen2-MoE).
    ``shared_dtype`` is the shared expert's weight format (None: ``dense_dtype``)."""

    kind: str = "moe"
    hidden: int
    experts: int
    top_k: int
    intermediate: int
    expert_dtype: DType
    dense_dtype: DType
    router_bias: bool = False
    expert_bias: bool = False
    shared_intermediate: int = 0
    shared_gate: bool = False
    shared_dtype: DType | None = None

    # --- parameter bookkeeping -------------------------------------------------------
    def _expert_weights(self, inter) -> int:
        return 3 * self.hidden * inter

    def _expert_biases(self, inter) -> int:
        return self.expert_bias * (2 * inter + self.hidden)

    def _router(self) -> int:
        return self.hidden * self.experts + self.router_bias * self.experts

    def _shared(self, inter) -> int:
        return 3 * self.hidden * inter + self.shared_gate * self.hidden

    def _gated_matrices(self, inter, count=1):
        """(count, rows, cols) of ``count`` gated MLPs: gate and up (inter × hidden), down."""
        return [(2 * count, inter, self.hidden), (count, self.hidden, inter)]

    def _dense_bytes(self, shared_inter):
        """Router, shared-expert gate and shared expert bytes (shared expert in shared_dtype
        when given, else with the rest in dense_dtype)."""
        if self.shared_dtype is None:
            return self.dense_dtype.nbytes(self._router() + self._shared(shared_inter))
        return (self.dense_dtype.nbytes(self._router() + self.shared_gate * self.hidden)
                + matrices_nbytes(self.shared_dtype, self._gated_matrices(shared_inter)))

    def params(self) -> int:
        e = self.experts
        return (self._router() + e * (self._expert_weights(self.intermediate) + self._expert_biases(self.intermediate))
                + self._shared(self.shared_intermediate))

    def weight_bytes(self) -> int:
        e, inter = self.experts, self.intermediate
        return (matrices_nbytes(self.expert_dtype, self._gated_matrices(inter, e))
                + self.dense_dtype.nbytes(e * self._expert_biases(inter))
                + self._dense_bytes(self.shared_intermediate))

    def check_parallelism(self, tp: int, ep: int) -> None:
        if ep < 1 or tp % ep:
            raise ParallelismError(f"'ep' must divide tp={tp} (got {ep}): experts are split over ep groups of tp/ep devices")
        require_divides("ep", ep, "num_experts", self.experts)
        require_divides("tp/ep", tp // ep, "moe_intermediate_size", self.intermediate)
        if self.shared_intermediate:
            require_divides("tp", tp, "shared_expert_intermediate_size", self.shared_intermediate)

    def check_deployment(self, tp: int, ep: int, dp: int) -> None:
        if dp == 1:
            self.check_parallelism(tp, ep)
            return
        world = tp * dp
        if ep < 1 or world % ep:
            raise ParallelismError(f"'ep' must divide tp*dp={world} (got {ep}): under attention data parallelism "
                                   f"the experts are split over ep groups of tp*dp/ep devices")
        require_divides("ep", ep, "num_experts", self.experts)
        require_divides("tp*dp/ep", world // ep, "moe_intermediate_size", self.intermediate)
        if self.shared_intermediate:
            require_divides("tp", tp, "shared_expert_intermediate_size", self.shared_intermediate)

    def describe(self) -> dict:
        return {"experts": self.experts, "top_k": self.top_k, "intermediate": self.intermediate,
                "expert_dtype": self.expert_dtype.name}

    def cost(self, step: Step) -> LayerCost:
        tp, ep, hidden, tokens = step.tp, step.ep, self.hidden, step.tokens
        dp = step.dp
        world = tp * dp  # devices the experts are spread over
        pooled = tokens * dp  # tokens of every attention-DP group reach the experts
        inter = self.intermediate // (world // ep)
        local = self.experts // ep
        shared = self.shared_intermediate // tp
        per_expert = (matrices_nbytes(self.expert_dtype, self._gated_matrices(inter))
                      + self.dense_dtype.nbytes(self._expert_biases(inter)))
        dense_resident = self._dense_bytes(shared)
        active = expected_active_experts(local, self.experts, self.top_k, pooled)
        expert_matmul = 2 * pooled * self.top_k * 3 * hidden * self.intermediate // world
        shared_matmul = 2 * tokens * 3 * hidden * shared
        router = 2 * tokens * hidden * self.experts
        matmul = router + expert_matmul + shared_matmul
        routed = pooled * self.top_k  # token-expert assignments over the whole layer
        elementwise = (
            ROUTER_FLOPS_PER_LOGIT * tokens * self.experts + self.router_bias * tokens * self.experts
            + ACT_FLOPS_PER_ELEMENT * routed * self.intermediate // world
            + self.expert_bias * routed * (2 * inter + hidden) // ep  # rank 0 of a group adds the down bias
            + routed * hidden // ep  # weighting and summing the k expert outputs
            + ACT_FLOPS_PER_ELEMENT * tokens * shared
        )
        parallel = tp > 1
        act = step.act_dtype
        dispatched = -(-tokens // tp)  # this device's share of its group's tokens
        remote = (world - 1) * (1.0 - (1.0 - 1.0 / ep) ** self.top_k)  # expected remote devices per token
        alltoall = (dp > 1) * 2 * round_int(act.nbytes(dispatched * hidden) * remote)
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            weight_bytes=dense_resident + round_int(active * per_expert),
            resident_weight_bytes=dense_resident + local * per_expert,
            activation_bytes=act.nbytes(tokens * self.experts + routed * (3 * self.intermediate // world + hidden // ep)
                                        + tokens * (3 * shared + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            alltoall_bytes=alltoall,
            alltoalls=2 * (dp > 1),
            kernels=5 + 3 * bool(self.shared_intermediate) + 1 * parallel + 2 * (dp > 1),
            gemm_dtype=self.expert_dtype.compute_name,
        )
