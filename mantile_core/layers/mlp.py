"""Built-in MLPs (gated or not, any named activation) and mixture-of-experts.

MLP, T tokens, hidden H, intermediate I, tp shards I (Il = I/tp), ``gated`` (SwiGLU, GeGLU:
act(gate)·up) or not (GPT-2, GPT-NeoX: act(up)):

- params: (2 if gated else 1)·H·I + I·H, plus with ``bias`` (2 if gated else 1)·I + H;
- matmul: 2·T·H·(2 if gated else 1)·Il + 2·T·Il·H;
- elementwise: :data:`ACTIVATION_FLOPS` [activation] per intermediate element, + 1 when gated
  (the product with up), + one per bias element (the down bias once, on one rank);
- activations written: T·((3 if gated else 2)·Il + H); all-reduce T·H·bytes when tp > 1.

MoE with E experts, top k, expert intermediate I, ``ep`` expert groups each splitting an
expert's I over tp/ep devices (tp % ep == 0): router 2·T·H·E (replicated) plus 3·T·E for
softmax / top-k; experts 2·T·k·3·H·I/tp (uniform routing), their gated activation
ACTIVATION_FLOPS[activation] + 1 per element. A step reads the weights of the local experts
it activates in expectation, E/ep·(1 − (1 − k/E)^T), rounded to whole bytes.

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

from typing import Mapping

import attrs
import numpy

from ..dtypes import DType, matrices_nbytes
from ..errors import ConfigError, ParallelismError
from ..workload import LayerCost, Step, round_int
from .base import Layer, require_divides

__all__ = ["MLP", "GatedMLP", "MoE", "ACT_FLOPS_PER_ELEMENT", "ACTIVATION_FLOPS", "HF_ACTIVATIONS",
           "ROUTER_FLOPS_PER_LOGIT", "activation_name", "expected_active_experts"]

ACTIVATION_FLOPS: Mapping[str, int] = {
    "silu": 4,        # x·sigmoid(x): exp, +1, reciprocal, ·x
    "gelu": 5,        # 0.5·x·(1 + erf(x/√2)): ·(1/√2), erf, +1, ·x, ·0.5
    "gelu_tanh": 9,   # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): x³ (2), ·c, +x, ·√(2/π), tanh, +1, ·x, ·0.5
    "quick_gelu": 5,  # x·sigmoid(1.702·x): ·1.702, exp, +1, reciprocal, ·x
    "relu": 1,        # max(x, 0)
    "relu2": 2,       # relu(x)²: max, square
}
"""FLOPs per intermediate element of each activation (a gated MLP adds 1 for the product with up)."""

HF_ACTIVATIONS: Mapping[str, str] = {
    "silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh", "gelu_tanh": "gelu_tanh", "quick_gelu": "quick_gelu", "relu": "relu",
    "relu2": "relu2",
}
"""transformers' ``hidden_act`` / ``activation_function`` spellings -> the activation counted
(gelu_new, gelu_fast and gelu_pytorch_tanh are the same tanh approximation)."""

ACT_FLOPS_PER_ELEMENT = ACTIVATION_FLOPS["silu"] + 1  # SwiGLU: silu(gate)·up
ROUTER_FLOPS_PER_LOGIT = 3


def activation_name(name, where: str = "config", key: str = "hidden_act") -> str:
    """The counted activation of a transformers activation name; ConfigError for one Mantile
    does not know (naming the key, the value and the known ones)."""
    if isinstance(name, str) and name in HF_ACTIVATIONS:
        return HF_ACTIVATIONS[name]
    raise ConfigError(f"{where}: {key}={name!r} is not a supported activation "
                      f"(one of {', '.join(sorted(HF_ACTIVATIONS))})")


def _check_activation(instance, attribute, value) -> None:
    if value not in ACTIVATION_FLOPS:
        raise ValueError(f"'{attribute.name}' must be one of {sorted(ACTIVATION_FLOPS)} (got {value!r})")


def expected_active_experts(experts_local, num_experts: int, top_k: int, tokens):
    """Expected local experts at least one of ``tokens`` uniformly routed tokens picks:
    experts_local · (1 − (1 − k/E)^tokens)."""
    miss = numpy.power(1.0 - top_k / num_experts, tokens)
    return experts_local * (1.0 - miss)


@attrs.frozen(kw_only=True)
class MLP(Layer):
    """up (and gate, when ``gated``) hidden → intermediate, ``activation``, down intermediate →
    hidden; ``bias`` on every projection. Non-gated by default (GPT-2, GPT-NeoX, Falcon,
    Phi-2, StarCoder2); :class:`GatedMLP` is the gated form (SwiGLU, GeGLU)."""

    kind: str = "mlp"
    hidden: int
    intermediate: int
    weight_dtype: DType
    bias_dtype: DType
    bias: bool = False
    gated: bool = False
    activation: str = attrs.field(default="silu", validator=_check_activation)

    @property
    def _inputs(self) -> int:
        """Projections from hidden: 2 (gate and up) when gated, else 1."""
        return 1 + self.gated

    def _weights(self, inter):
        return (self._inputs + 1) * self.hidden * inter

    def _biases(self, inter):
        return self.bias * (self._inputs * inter + self.hidden)

    def params(self) -> int:
        return self._weights(self.intermediate) + self._biases(self.intermediate)

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._matrices(self.intermediate))
                + self.bias_dtype.nbytes(self._biases(self.intermediate)))

    def _matrices(self, inter):
        """(count, rows, cols): up (and gate) (inter × hidden), down (hidden × inter)."""
        return [(self._inputs, inter, self.hidden), (1, self.hidden, inter)]

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "intermediate_size", self.intermediate)

    @property
    def act_flops_per_element(self) -> int:
        """ACTIVATION_FLOPS[activation], + 1 for the product with up when gated."""
        return ACTIVATION_FLOPS[self.activation] + self.gated

    def describe(self) -> dict:
        return {"intermediate": self.intermediate, "gated": self.gated, "activation": self.activation,
                "bias": self.bias}

    def cost(self, step: Step) -> LayerCost:
        tokens, hidden = step.tokens, self.hidden
        inter = self.intermediate // step.tp
        matmul = 2 * tokens * hidden * self._inputs * inter + 2 * tokens * inter * hidden
        bias = self.bias * tokens * (self._inputs * inter + hidden)
        resident = (matrices_nbytes(self.weight_dtype, self._matrices(inter))
                    + self.bias_dtype.nbytes(self._biases(inter)))
        parallel = step.tp > 1
        act = step.act_dtype
        return LayerCost(
            flops=matmul + self.act_flops_per_element * tokens * inter + bias,
            matmul_flops=matmul,
            weight_bytes=resident,
            resident_weight_bytes=resident,
            activation_bytes=act.nbytes(tokens * ((2 + self.gated) * inter + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=3 + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
        )


@attrs.frozen(kw_only=True)
class GatedMLP(MLP):
    """gate/up hidden → intermediate, down intermediate → hidden: act(gate)·up, SwiGLU by
    default (``activation="gelu_tanh"`` is GeGLU)."""

    gated: bool = True


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
    activation: str = attrs.field(default="silu", validator=_check_activation)

    @property
    def act_flops_per_element(self) -> int:
        """The experts' gated activation: ACTIVATION_FLOPS[activation] + 1."""
        return ACTIVATION_FLOPS[self.activation] + 1

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
            + self.act_flops_per_element * routed * self.intermediate // world
            + self.expert_bias * routed * (2 * inter + hidden) // ep  # rank 0 of a group adds the down bias
            + routed * hidden // ep  # weighting and summing the k expert outputs
            + self.act_flops_per_element * tokens * shared
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
            moe_calls=1,
            expert_width=inter,
        )
