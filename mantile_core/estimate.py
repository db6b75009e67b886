"""``estimate``: one deployment of one model on one accelerator, per device.

Four steps are costed per distinct layer: the batch's prompt (``prefill``: batch × input_len
tokens), one request's prompt (for TTFT), the decode step at ``context`` (``decode``) and the
last decode step (for peak KV memory). The same functions take numpy arrays in the sweep.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy

from .cache import select_policies
from .dtypes import get_dtype
from .errors import InputError
from .hardware import HardwareSpec, get_hardware
from .model import Model, load_model
from .plugins import get_plugin_manager
from .serving import ServingTimes, serve
from .timing import layer_seconds
from .workload import COST_FIELDS, LayerCost, Step

__all__ = ["Estimate", "PhaseResult", "estimate", "cost_phase", "check_parallelism"]

SUM_FIELDS = COST_FIELDS + ("resident_weight_bytes", "collectives", "kernels")


@attrs.frozen(eq=False)
class PhaseResult:
    """One step over the whole model: ``costs[i]`` / ``seconds[i]`` for the i-th distinct layer
    of ``model.unique_layers``, ``total`` summed over every layer, ``seconds_total``."""

    step: Step
    costs: tuple[LayerCost, ...]
    seconds: tuple[Any, ...]
    total: LayerCost
    seconds_total: Any


def cost_phase(model: Model, step: Step, hw: HardwareSpec) -> PhaseResult:
    """Cost and time every distinct layer once and sum over the model (arrays allowed)."""
    costs, seconds = [], []
    sums = dict.fromkeys(SUM_FIELDS, 0)
    time_total = 0
    for layer, positions in model.unique_layers:
        cost = layer.cost(step)
        t = layer_seconds(cost, step, hw)
        n = len(positions)
        for field in SUM_FIELDS:
            sums[field] = sums[field] + n * getattr(cost, field)
        time_total = time_total + n * t
        costs.append(cost)
        seconds.append(t)
    return PhaseResult(step, tuple(costs), tuple(seconds), LayerCost(**sums), time_total)


def check_parallelism(model: Model, tp: int, ep: int) -> None:
    """Raise ParallelismError when any layer cannot be split ``tp`` / ``ep`` ways."""
    for layer, _ in model.unique_layers:
        layer.check_parallelism(tp, ep)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise InputError(f"{name!r} must be a positive integer (got {value!r})")
    return int(value)


@attrs.frozen(eq=False)
class Estimate:
    """The result of :func:`estimate`; ``to_dict()`` is the ``estimate --json`` document."""

    model: Model
    hardware: HardwareSpec
    tp: int
    ep: int
    batch: int
    input_len: int
    output_len: int
    context: int
    kv_policies: dict
    kv_dtype: str
    prefill: PhaseResult
    request_prefill: PhaseResult
    decode: PhaseResult
    final: PhaseResult
    serving: ServingTimes

    @property
    def devices(self) -> int:
        return self.tp

    @property
    def memory(self) -> dict[str, Any]:
        """Per-device memory in bytes: resident weights, KV at the end of the longest request
        (input_len + output_len tokens for every sequence), the largest single layer's
        activations of one request's prefill, one shared RoPE table; ``max_batch`` is the most
        sequences whose KV fits next to the rest."""
        weights = int(self.decode.total.resident_weight_bytes)
        kv = int(self.final.total.kv_cache_bytes)
        activation = max(int(c.activation_bytes) for c in self.request_prefill.costs)
        rope = max((layer.rope_table_bytes() for layer, _ in self.model.unique_layers
                    if hasattr(layer, "rope_table_bytes")), default=0)
        total = weights + kv + activation + rope
        capacity = int(self.hardware.hbm_bytes)
        per_sequence = kv // self.batch
        room = capacity - weights - activation - rope
        max_batch = max(room // per_sequence, 0) if per_sequence else None
        return {
            "weight_bytes": weights,
            "kv_cache_bytes": kv,
            "activation_bytes": activation,
            "rope_table_bytes": rope,
            "total_bytes": total,
            "capacity_bytes": capacity,
            "fits": total <= capacity,
            "kv_cache_bytes_per_sequence": per_sequence,
            "max_batch": max_batch,
        }

    def _phase_dict(self, phase: PhaseResult) -> dict[str, Any]:
        out = {k: v for k, v in phase.total.as_dict().items()}
        out["time_ms"] = float(phase.seconds_total) * 1e3
        return out

    def layer_rows(self) -> list[dict[str, Any]]:
        """One row per layer in execution order (the JSON ``layers`` list)."""
        rows: list[dict[str, Any] | None] = [None] * len(self.model.layers)
        for i, (layer, positions) in enumerate(self.model.unique_layers):
            prefill = self.prefill.costs[i].as_dict() | {"time_ms": float(self.prefill.seconds[i]) * 1e3}
            decode = self.decode.costs[i].as_dict() | {"time_ms": float(self.decode.seconds[i]) * 1e3}
            per_device = int(self.decode.costs[i].resident_weight_bytes)
            params, weight_bytes = layer.params(), layer.weight_bytes()
            for pos in positions:
                member = self.model.layers[pos]
                rows[pos] = {
                    "index": member.index,
                    "name": member.name,
                    "kind": member.kind,
                    "type": member.type,
                    **member.describe(),
                    "params": params,
                    "weight_bytes": weight_bytes,
                    "weight_bytes_per_device": per_device,
                    "prefill": prefill,
                    "decode": decode,
                }
        return rows  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        s = self.serving
        return {
            "model": self.model.name,
            "hardware": self.hardware.name,
            "tp": self.tp,
            "ep": self.ep,
            "devices": self.devices,
            "batch": self.batch,
            "input_len": self.input_len,
            "output_len": self.output_len,
            "context": self.context,
            "kv_policy": {mask: p.name for mask, p in sorted(self.kv_policies.items())},
            "kv_dtype": self.kv_dtype,
            "params": self.model.params(),
            "ttft_ms": float(s.ttft_s) * 1e3,
            "tpot_ms": float(s.tpot_s) * 1e3,
            "e2e_latency_ms": float(s.e2e_s) * 1e3,
            "throughput_tok_s_per_gpu": float(s.throughput_tok_s_per_gpu),
            "output_tok_s_per_gpu": float(s.output_tok_s_per_gpu),
            "prefill": self._phase_dict(self.prefill),
            "decode": self._phase_dict(self.decode),
            "memory": self.memory,
            "layers": self.layer_rows(),
        }


def estimate(
    model: Model | str,
    hardware: HardwareSpec | str = "h200",
    *,
    tp: int = 1,
    ep: int = 1,
    batch: int = 1,
    input_len: int = 1024,
    output_len: int = 1024,
    context: int | None = None,
    kv_policy: str | None = None,
    kv_block: int = 16,
    kv_dtype: str | None = None,
) -> Estimate:
    """Estimate one deployment. ``batch`` is the number of concurrent sequences; ``context``
    the tokens cached before the decode step reported (default input_len + output_len // 2);
    ``kv_policy`` names the policy for the masks it applies to (e.g. "paged");
    ``kv_dtype`` defaults to the model's dtype."""
    if not hasattr(model, "unique_layers"):
        model = load_model(model)
    hw = get_hardware(hardware)
    tp, ep = _positive("tp", tp), _positive("ep", ep)
    batch, input_len, output_len = _positive("batch", batch), _positive("input_len", input_len), _positive("output_len", output_len)
    kv_block = _positive("kv_block", kv_block)
    if context is None:
        context = input_len + output_len // 2
    elif isinstance(context, bool) or not isinstance(context, (int, numpy.integer)) or context < 0:
        raise InputError(f"'context' must be a non-negative integer (got {context!r})")
    check_parallelism(model, tp, ep)
    policies = select_policies(get_plugin_manager().registries.cache_policies, model.masks, kv_policy)
    act = model.config.dtype
    kv = get_dtype(kv_dtype) if kv_dtype else act

    def step(b: int, new: int, cached: int) -> Step:
        return Step(batch=b, new_tokens=new, cached=cached, tp=tp, ep=ep, act_dtype=act, kv_dtype=kv,
                    policies=policies, kv_block=kv_block)

    prefill = cost_phase(model, step(batch, input_len, 0), hw)
    request_prefill = cost_phase(model, step(1, input_len, 0), hw) if batch > 1 else prefill
    decode = cost_phase(model, step(batch, 1, context), hw)
    final = cost_phase(model, step(batch, 1, input_len + output_len - 1), hw)
    step_overhead = hw.calibration.step_overhead
    serving = serve(request_prefill.seconds_total + step_overhead, decode.seconds_total + step_overhead,
                    batch=batch, input_len=input_len, output_len=output_len, devices=tp)
    return Estimate(model, hw, tp, ep, batch, input_len, output_len, int(context), policies, kv.name,
                    prefill, request_prefill, decode, final, serving)
