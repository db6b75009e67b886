"""Nemotron-H's feed-forward layers: a non-gated MLP with squared-ReLU (``-`` in the pattern)
and its MoE (``E``): non-gated squared-ReLU experts, a sigmoid top-k router with a score
correction bias, one shared expert, and (Nemotron-3 Super / Ultra) a latent projection that
the routed experts run in.

MLP, intermediate I, tp shards I (Il = I/tp): params ``2·H·I`` (+ ``I + H`` biases with
``mlp_bias``); GEMM ``2·T·H·Il·2``; ReLU² 2 FLOPs per intermediate element; all-reduce.

MoE, E experts, top k, expert intermediate I, shared intermediate Is, latent width D
(``moe_latent_size``; the experts' input/output width, H without a latent):

    router               E·H         float32, as transformers builds it
    e_score_correction   E           float32, a buffer in transformers that the checkpoint
                                     stores: counted as parameters (``buffer_params``)
    fc1/fc2_latent_proj  2·H·D       (+ D + H biases with mlp_bias), only with a latent
    experts              E·2·D·I     up and down, no gate, no biases
    shared expert        2·H·Is      (+ Is + H biases with mlp_bias)

Experts, shared expert and latent projections are stored in the checkpoint's format for each
(``expert_dtype``, ``shared_dtype``, ``latent_dtype``: NVFP4 / FP8 in nvidia's quantized
Nemotron-3 checkpoints unless excluded), biases in the model dtype.

``ep`` groups of tp/ep devices split the experts (each expert's I over tp/ep), tp splits the
shared expert; router and latent projections are replicated. GEMM per step: router
``2·T·H·E``, latent ``2·T·2·H·D``, experts ``2·T·k·2·D·I/tp``, shared ``2·T·2·H·Is/tp``;
elementwise: σ, bias and top-k 5 per logit, ReLU² 2 per expert / shared intermediate
element, weighting and summing the k outputs ``T·k·D/ep``. A step reads the weights of the
local experts it activates in expectation (the core's :func:`expected_active_experts`).
"""

from __future__ import annotations

import attrs

from mantile_core.dtypes import DType, get_dtype, matrices_nbytes
from mantile_core.errors import ParallelismError
from mantile_core.layers import Layer, expected_active_experts, require_divides
from mantile_core.workload import LayerCost, Step, round_int

__all__ = ["Relu2MLP", "NemotronMoE", "RELU2_FLOPS", "ROUTER_FLOPS_PER_LOGIT"]

RELU2_FLOPS = 2  # max(x, 0), then square
ROUTER_FLOPS_PER_LOGIT = 5  # sigmoid 3, + correction bias 1, top-k compare 1
FP32 = get_dtype("fp32")


@attrs.frozen(kw_only=True)
class Relu2MLP(Layer):
    """up (H → I), squared ReLU, down (I → H)."""

    kind: str = "mlp"
    hidden: int
    intermediate: int
    weight_dtype: DType
    bias_dtype: DType
    bias: bool = False

    def _biases(self, inter) -> int:
        return self.bias * (inter + self.hidden)

    def params(self) -> int:
        return 2 * self.hidden * self.intermediate + self._biases(self.intermediate)

    def _matrices(self, inter) -> list[tuple[int, int, int]]:
        return [(1, inter, self.hidden), (1, self.hidden, inter)]

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._matrices(self.intermediate))
                + self.bias_dtype.nbytes(self._biases(self.intermediate)))

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "intermediate_size", self.intermediate)

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden = step.tokens, self.hidden
        inter = self.intermediate // step.tp
        matmul = 2 * tokens * hidden * inter * 2
        resident = matrices_nbytes(self.weight_dtype, self._matrices(inter)) + self.bias_dtype.nbytes(self._biases(inter))
        parallel = step.tp > 1
        return LayerCost(
            flops=matmul + RELU2_FLOPS * tokens * inter + self.bias * tokens * (inter + hidden),
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            activation_bytes=step.act_dtype.nbytes(tokens * (2 * inter + hidden)),
            comm_bytes=step.act_dtype.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=2 + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )


@attrs.frozen(kw_only=True)
class NemotronMoE(Layer):
    """Nemotron-H MoE: sigmoid router (float32), non-gated ReLU² experts in an optional latent
    space, one shared expert."""

    kind: str = "moe"
    hidden: int
    experts: int
    top_k: int
    intermediate: int
    shared_intermediate: int
    expert_dtype: DType
    dense_dtype: DType
    latent: int = 0
    bias: bool = False
    shared_dtype: DType | None = None  # the shared expert's up/down (None: dense_dtype)
    latent_dtype: DType | None = None  # fc1/fc2_latent_proj (None: dense_dtype)

    @property
    def expert_width(self) -> int:
        """The experts' input / output width: the latent size, else hidden."""
        return self.latent or self.hidden

    def _latent_params(self) -> int:
        return (2 * self.hidden * self.latent + self.bias * (self.latent + self.hidden)) if self.latent else 0

    def _shared_params(self, inter) -> int:
        return 2 * self.hidden * inter + self.bias * (inter + self.hidden)

    def _expert_params(self, inter) -> int:
        return 2 * self.expert_width * inter

    def params(self) -> int:
        return (self.experts * self.hidden + self.experts + self._latent_params()
                + self.experts * self._expert_params(self.intermediate) + self._shared_params(self.shared_intermediate))

    def buffer_params(self) -> int:
        """The e_score_correction_bias (E values): a buffer in transformers, stored in the checkpoint."""
        return self.experts

    def _router_bytes(self) -> int:
        return FP32.nbytes(self.experts * self.hidden + self.experts)

    def _dense_bytes(self, shared) -> int:
        """Router and correction bias (float32), the latent projections and the shared expert
        (of intermediate ``shared``) in their own formats (a quantized checkpoint may store them
        in NVFP4), their biases in dense_dtype."""
        h, d = self.hidden, self.latent
        latent = [(1, d, h), (1, h, d)] if d else []
        biases = self.bias * ((d + h) * (d > 0) + shared + h)
        return (self._router_bytes() + matrices_nbytes(self.latent_dtype or self.dense_dtype, latent)
                + matrices_nbytes(self.shared_dtype or self.dense_dtype, [(1, shared, h), (1, h, shared)])
                + self.dense_dtype.nbytes(biases))

    def weight_bytes(self) -> int:
        return self._dense_bytes(self.shared_intermediate) + self._expert_bytes(self.experts, self.intermediate)

    def _expert_bytes(self, count, inter):
        """``count`` experts of up (I × D) and down (D × I) in the expert dtype."""
        width = self.expert_width
        return matrices_nbytes(self.expert_dtype, [(count, inter, width), (count, width, inter)])

    def check_parallelism(self, tp: int, ep: int) -> None:
        if ep < 1 or tp % ep:
            raise ParallelismError(f"'ep' must divide tp={tp} (got {ep}): experts are split over ep groups of tp/ep devices")
        require_divides("ep", ep, "n_routed_experts", self.experts)
        require_divides("tp/ep", tp // ep, "moe_intermediate_size", self.intermediate)
        require_divides("tp", tp, "moe_shared_expert_intermediate_size", self.shared_intermediate)

    def check_deployment(self, tp: int, ep: int, dp: int) -> None:
        """Within one tp group only: the all-to-all dispatch of attention data parallelism is
        not modelled for this MoE yet, so ``dp`` > 1 is refused rather than costed wrong."""
        if dp != 1:
            raise ParallelismError(f"'dp' must be 1 for Nemotron-H's MoE (got {dp}): attention data parallelism "
                                   "is not modelled by mantile-recurrent yet")
        self.check_parallelism(tp, ep)

    def describe(self) -> dict:
        return {"experts": self.experts, "top_k": self.top_k, "intermediate": self.intermediate,
                "shared_intermediate": self.shared_intermediate, "latent": self.latent or None,
                "expert_dtype": self.expert_dtype.name}

    def cost(self, step: Step) -> LayerCost:
        tp, ep, hidden, tokens, width = step.tp, step.ep, self.hidden, step.tokens, self.expert_width
        inter = self.intermediate // (tp // ep)
        local = self.experts // ep
        shared = self.shared_intermediate // tp
        per_expert = self._expert_bytes(1, inter)
        dense = self._dense_bytes(shared)
        active = expected_active_experts(local, self.experts, self.top_k, tokens)
        routed = tokens * self.top_k
        router = 2 * tokens * hidden * self.experts
        latent = 2 * tokens * 2 * hidden * self.latent
        experts = 2 * routed * 2 * width * self.intermediate // tp
        shared_matmul = 2 * tokens * 2 * hidden * shared
        matmul = router + latent + experts + shared_matmul
        elementwise = (ROUTER_FLOPS_PER_LOGIT * tokens * self.experts + RELU2_FLOPS * routed * self.intermediate // tp
                       + RELU2_FLOPS * tokens * shared + routed * width // ep
                       + self.bias * tokens * (shared + hidden + (self.latent + hidden) * (self.latent > 0)))
        parallel = tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            weight_bytes=dense + round_int(active * per_expert),
            resident_weight_bytes=dense + local * per_expert,
            activation_bytes=act.nbytes(tokens * self.experts + routed * (2 * self.intermediate // tp + width // ep)
                                        + tokens * (2 * shared + hidden + 2 * self.latent)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=5 + 2 * (self.latent > 0) + 2 + 1 * parallel,
            gemm_dtype=self.expert_dtype.compute_name,
            moe_calls=1,  # the routed-expert block's fixed cost, as the core MoE pays it
            expert_width=inter,  # the routed experts' per-device intermediate (timing's width falloff)
        )
