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
from .dtypes import DType, get_dtype
from .errors import InputError
from .guard import call_layer, layer_cost, layer_count, layer_facts
from .limits import check_int, check_waves
from .hardware import HardwareSpec, get_hardware
from .model import Model, load_model
from .plugins import get_plugin_manager
from .plausibility import length_warnings, memory_warning
from .precision import Precision, precision_warnings, served_model, served_precision
from .serving import ServingTimes, phase_serving
from .timing import layer_seconds
from .workload import COST_FIELDS, LayerCost, Step, maximum

__all__ = [
    "Estimate",
    "PhaseResult",
    "Phases",
    "estimate",
    "cost_phase",
    "cost_phases",
    "check_parallelism",
    "memory_figures",
    "rope_table_bytes",
    "Settings",
    "resolve_settings",
    "evaluate",
    "group_batch",
    "served_share",
]

SUM_FIELDS = COST_FIELDS + ("resident_weight_bytes", "collectives", "alltoalls", "kernels")


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
        cost = layer_cost(layer, step)
        t = layer_seconds(cost, step, hw)
        n = len(positions)
        for field in SUM_FIELDS:
            sums[field] = sums[field] + n * getattr(cost, field)
        time_total = time_total + n * t
        costs.append(cost)
        seconds.append(t)
    return PhaseResult(step, tuple(costs), tuple(seconds), LayerCost(**sums), time_total)


def group_batch(batch, dp):
    """Sequences of the busiest of ``dp`` attention-DP groups, ⌈batch/dp⌉ (arrays allowed):
    the per-device figures are its devices'."""
    return -(-batch // dp)


def served_share(batch, dp):
    """batch / (dp·⌈batch/dp⌉): the share of the groups' sequence slots that hold a sequence
    (below 1 when groups are uneven or idle); per-GPU rates scale by it (arrays allowed)."""
    return batch / (group_batch(batch, dp) * dp)


def check_parallelism(model: Model, tp: int, ep: int, dp: int = 1) -> None:
    """Raise ParallelismError when any layer cannot be split ``tp`` / ``ep`` ways (over ``dp``
    attention-data-parallel groups of tp devices)."""
    for layer, _ in model.unique_layers:
        call_layer(layer, "check_deployment", tp, ep, dp)


@attrs.frozen(eq=False)
class Phases:
    """The steps one deployment is costed on (arrays allowed in every field):
    ``prefill`` the batch's prompts (None when not asked for), ``request_prefill`` one
    request's prompt (TTFT), ``decode`` the step at ``context``, ``final`` the last decode
    step (input_len + output_len − 1 cached: peak KV)."""

    prefill: PhaseResult | None
    request_prefill: PhaseResult
    decode: PhaseResult
    final: PhaseResult


def cost_phases(model: Model, hw: HardwareSpec, *, tp, ep, batch, input_len, output_len, context,
                policies: dict, act_dtype: DType, kv_dtype: DType, kv_block, batch_prefill: bool = True,
                dp=1) -> Phases:
    """Cost the steps of :class:`Phases`; every size may be an int or a numpy int64 array
    (one shape, or broadcastable). ``batch_prefill=False`` skips the batch's prompt step (the
    sweep reports nothing that needs it). ``batch`` is the sequences of one attention-DP
    group (all of them when ``dp`` is 1)."""

    def step(b, new, cached) -> Step:
        return Step(batch=b, new_tokens=new, cached=cached, tp=tp, ep=ep, dp=dp, act_dtype=act_dtype,
                    kv_dtype=kv_dtype, policies=policies, kv_block=kv_block)

    request_prefill = cost_phase(model, step(1, input_len, 0), hw)
    prefill = None
    if batch_prefill:
        single = numpy.ndim(batch) == 0 and batch == 1
        prefill = request_prefill if single else cost_phase(model, step(batch, input_len, 0), hw)
    decode = cost_phase(model, step(batch, 1, context), hw)
    final = cost_phase(model, step(batch, 1, input_len + output_len - 1), hw)
    return Phases(prefill, request_prefill, decode, final)


def rope_table_bytes(model: Model) -> int:
    """The largest RoPE cos/sin table of any layer (one table is shared by all layers)."""
    return max((layer.rope_table_bytes() for layer, _ in model.unique_layers
                if hasattr(layer, "rope_table_bytes")), default=0)


def memory_figures(model: Model, hw: HardwareSpec, phases: Phases, batch) -> dict[str, Any]:
    """Per-device memory in bytes (arrays allowed; numpy values out):

    - ``weight_bytes``: resident weights of the decode step; ``kv_cache_bytes``: KV at the end
      of the longest request (the ``final`` step, input_len + output_len tokens per sequence);
      ``activation_bytes``: the largest single layer's activations of one request's prefill;
      ``rope_table_bytes``: one shared RoPE table;
    - ``total_bytes`` = their sum, ``capacity_bytes`` the HBM, ``fits`` = total ≤ capacity;
    - ``recurrent_state_bytes``: the fixed-size state of recurrent layers (Mamba, Gated
      DeltaNet) for every sequence, held whatever the context;
    - ``kv_cache_bytes_per_sequence`` = kv // batch, ``recurrent_state_bytes_per_sequence`` =
      state // batch; ``max_batch`` = (capacity − weights − activations − rope) //
      (kv + state per sequence), floored at 0, and −1 where both are 0 (no cache: no limit
      from memory).
    """
    weights = _exact(phases.decode.total.resident_weight_bytes)
    kv = _exact(phases.final.total.kv_cache_bytes)
    state = _exact(phases.final.total.recurrent_state_bytes)
    activation = _exact(phases.request_prefill.costs[0].activation_bytes)
    for cost in phases.request_prefill.costs[1:]:
        activation = maximum(activation, _exact(cost.activation_bytes))
    rope = rope_table_bytes(model)
    capacity = int(hw.hbm_bytes)
    total = weights + kv + state + activation + rope
    per_sequence = kv // batch + state // batch
    room = capacity - weights - activation - rope
    if isinstance(per_sequence, numpy.ndarray):
        max_batch = numpy.where(per_sequence > 0, numpy.maximum(room // numpy.maximum(per_sequence, 1), 0), -1)
    else:  # Python ints: exact at any size (numpy would wrap beyond 2^63)
        max_batch = max(room // per_sequence, 0) if per_sequence > 0 else -1
    return {
        "weight_bytes": weights,
        "kv_cache_bytes": kv,
        "recurrent_state_bytes": state,
        "activation_bytes": activation,
        "rope_table_bytes": rope,
        "total_bytes": total,
        "capacity_bytes": capacity,
        "fits": total <= capacity,
        "kv_cache_bytes_per_sequence": kv // batch,
        "recurrent_state_bytes_per_sequence": state // batch,
        "max_batch": max_batch,
    }


def _exact(value):
    """A figure as a Python int (exact at any size) unless it is a numpy array (the sweep)."""
    if isinstance(value, numpy.ndarray) and value.ndim:
        return value
    return int(value)


@attrs.frozen(eq=False)
class Settings:
    """What a deployment is costed with, resolved from the user's options (shared by
    :func:`estimate` and :func:`~mantile_core.sweep.sweep`): ``hardware`` with the engine's
    calibration applied, the ``engine`` profile (None: generic), ``policies`` mask ->
    CachePolicy, activation and KV dtypes, the paged-KV block in tokens, the served
    ``precision`` (see :mod:`mantile_core.precision`; ``act_dtype`` is its dtype)."""

    hardware: HardwareSpec
    engine: Any
    policies: dict
    act_dtype: DType
    kv_dtype: DType
    kv_block: int
    precision: Precision | None = None


def resolve_settings(model: Model, hardware: HardwareSpec | str, *, engine: str | None = None,
                     kv_policy: str | None = None, kv_block: int | None = None,
                     kv_dtype: str | None = None, dtype: str | None = None) -> Settings:
    """Resolve hardware, engine profile, cache policies, dtypes and KV block: an engine
    supplies its calibration for the hardware and its KV dtype / policy / block where the
    caller gives none; kv_block defaults to 16; the served dtype is ``dtype`` or vLLM's
    dtype=auto rule (:func:`~mantile_core.precision.served_precision`), kv_dtype defaults
    to it."""
    hw = get_hardware(hardware)
    profile = None
    if engine is not None:
        from .engines import get_engine

        profile = get_engine(engine)
        hw = profile.calibrated(hw)
        kv_dtype = kv_dtype or profile.kv_dtype_for(hw)
        if kv_policy is None and profile.kv_policy in get_plugin_manager().registries.cache_policies:
            kv_policy = profile.kv_policy
        kv_block = profile.kv_block if kv_block is None else kv_block
    kv_block = check_int("kv_block", 16 if kv_block is None else kv_block)
    policies = select_policies(get_plugin_manager().registries.cache_policies, model.masks, kv_policy)
    precision = served_precision(model.config.dtype, model.config.model_type, dtype)
    act = precision.dtype
    kv = get_dtype(kv_dtype) if kv_dtype else act
    return Settings(hw, profile, policies, act, kv, kv_block, precision)


def evaluate(model: Model, settings: Settings, *, tp, ep, batch, input_len, output_len, context,
             prompts: int | None = None, batch_prefill: bool = True,
             attention_dp=False, dp=1) -> tuple[Phases, ServingTimes]:
    """Cost the steps of one deployment and derive its serving times: the one path
    :func:`estimate` (Python ints) and the sweep (numpy int64 arrays, ``batch_prefill=False``)
    both take. With ``dp`` > 1, ``batch`` is one attention-DP group's sequences and the
    serving times are that group's (its tp devices' per-GPU rates are every group's), and a
    benchmark of ``prompts`` gives each group its share, ⌈prompts/dp⌉, at its concurrency."""
    hw = settings.hardware
    if prompts is not None:
        prompts = group_batch(prompts, dp)  # the busiest group's share, ⌈prompts/dp⌉
    phases = cost_phases(model, hw, tp=tp, ep=ep, batch=batch, input_len=input_len, output_len=output_len,
                         context=context, policies=settings.policies, act_dtype=settings.act_dtype,
                         kv_dtype=settings.kv_dtype, kv_block=settings.kv_block, batch_prefill=batch_prefill,
                         dp=dp)
    counts = tuple(len(positions) for _, positions in model.unique_layers)
    serving = phase_serving(phases, hw, batch=batch, input_len=input_len, output_len=output_len, devices=tp,
                            counts=counts, engine=settings.engine, prompts=prompts,
                            attention_dp=numpy.logical_or(attention_dp, numpy.asarray(dp) > 1))
    return phases, serving


def _positive(name: str, value: Any) -> int:
    """``value`` as an int within the bounds of :data:`mantile_core.limits.BOUNDS` for ``name``
    (at least 1), else InputError naming it."""
    return check_int(name, value)


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
    precision: Precision | None = None
    prompts: int | None = None
    engine: str | None = None
    kv_block: int = 16
    warnings: tuple[str, ...] = ()
    dp: int = 1

    @property
    def devices(self) -> int:
        """GPUs of the deployment: tp·dp."""
        return self.tp * self.dp

    @property
    def group_batch(self) -> int:
        """Sequences of the busiest attention-DP group, ⌈batch/dp⌉: the per-device figures are
        its devices'."""
        return group_batch(self.batch, self.dp)

    @property
    def memory(self) -> dict[str, Any]:
        """Per-device memory in bytes (see :func:`memory_figures`) as plain Python values;
        ``max_batch`` is the most sequences whose KV fits next to the rest (None without KV)."""
        phases = Phases(self.prefill, self.request_prefill, self.decode, self.final)
        figures = memory_figures(self.model, self.hardware, phases, self.group_batch)
        out: dict[str, Any] = {key: int(value) for key, value in figures.items()}
        out["fits"] = bool(figures["fits"])
        if out["max_batch"] < 0:
            out["max_batch"] = None
        else:
            out["max_batch"] *= self.dp  # every attention-DP group holds as many
        return out

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
            params, weight_bytes = layer_count(layer, "params"), layer_count(layer, "weight_bytes")
            for pos in positions:
                member = self.model.layers[pos]
                rows[pos] = {
                    "index": member.index,
                    "name": member.name,
                    "kind": member.kind,
                    "type": member.type,
                    **layer_facts(member),
                    "params": params,
                    "weight_bytes": weight_bytes,
                    "weight_bytes_per_device": per_device,
                    "prefill": prefill,
                    "decode": decode,
                }
        return rows  # type: ignore[return-value]

    def bands(self) -> dict[str, list[float]]:
        """Uncertainty bands ``ttft_ms_band``, ``tpot_ms_band``, ``throughput_tok_s_per_gpu_band``
        ([lo, hi]) from the cross-validated error of the estimate's regime
        (:mod:`mantile_core.uncertainty`); empty where none is bundled."""
        from .uncertainty import bands

        s = self.serving
        values = {"ttft_ms": float(s.ttft_s) * 1e3, "tpot_ms": float(s.tpot_s) * 1e3,
                  "throughput_tok_s_per_gpu": float(s.throughput_tok_s_per_gpu)}
        return bands(self.hardware.name, values, input_len=self.input_len, output_len=self.output_len,
                     batch=self.batch, tp=self.tp)

    def to_dict(self) -> dict[str, Any]:
        s = self.serving
        return {
            "model": self.model.name,
            "hardware": self.hardware.name,
            "tp": self.tp,
            "ep": self.ep,
            "dp": self.dp,
            "devices": self.devices,
            "batch": self.batch,
            "input_len": self.input_len,
            "output_len": self.output_len,
            "context": self.context,
            "kv_policy": {mask: p.name for mask, p in sorted(self.kv_policies.items())},
            "kv_dtype": self.kv_dtype,
            "dtype": self.model.config.dtype.name,
            "checkpoint_dtype": (self.precision.checkpoint if self.precision else self.model.config.dtype).name,
            "kv_block": self.kv_block,
            "engine": self.engine,
            "prompts": self.prompts,
            "warnings": list(self.warnings),
            "params": self.model.params(),
            "ttft_ms": float(s.ttft_s) * 1e3,
            "tpot_ms": float(s.tpot_s) * 1e3,
            "e2e_latency_ms": float(s.e2e_s) * 1e3,
            "throughput_tok_s_per_gpu": float(s.throughput_tok_s_per_gpu),
            "output_tok_s_per_gpu": float(s.output_tok_s_per_gpu),
            **self.bands(),
            "prefill": self._phase_dict(self.prefill),
            "decode": self._phase_dict(self.decode),
            "memory": self.memory,
            "layers": self.layer_rows(),
            **({"excluded": self.model.extras["excluded"]} if "excluded" in self.model.extras else {}),
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
    kv_block: int | None = None,
    kv_dtype: str | None = None,
    engine: str | None = None,
    prompts: int | None = None,
    attention_dp: bool = False,
    dtype: str | None = None,
    dp: int = 1,
) -> Estimate:
    """Estimate one deployment. ``batch`` is the number of concurrent sequences; ``context``
    the tokens cached before the decode step reported (default input_len + output_len // 2);
    ``kv_policy`` names the policy for the masks it applies to (e.g. "paged");
    ``dtype`` is the served dtype of the unquantized weights and the activations (bf16, fp16,
    fp32; None or "auto": vLLM's dtype=auto rule, a float32 checkpoint served in bf16, see
    :mod:`mantile_core.precision`); ``kv_dtype`` defaults to it. ``engine`` ("vllm", "trtllm", "atom") applies
    that serving engine's profile: its calibration for the hardware, token budget, scheduler,
    and KV dtype / policy / block unless given. ``prompts`` N reports the mean TTFT / TPOT /
    throughput of a benchmark of N prompts at concurrency ``batch`` (None: the steady state).
    ``attention_dp`` marks a deployment run with attention data parallelism: its costs are
    those of tp-way tensor parallelism, and prompts wait the calibration's
    ``attention_dp_wait_steps`` more (TensorRT-LLM's attention-DP balancer).

    Inputs that can be costed but describe no real deployment (a request beyond the model's
    max_position_embeddings, a context no request reaches, a deployment that does not fit)
    leave one sentence each in ``Estimate.warnings`` (:mod:`mantile_core.plausibility`).

    ``dp`` > 1 deploys ``dp`` attention-data-parallel groups of ``tp`` GPUs (tp·dp in all):
    each group runs attention and dense layers for ⌈batch/dp⌉ sequences, the MoE layers spread
    their experts over all tp·dp GPUs (``ep`` divides tp·dp; ``ep`` = tp·dp is wide expert
    parallelism) with an all-to-all dispatch and combine per MoE layer. Per-device figures are
    the busiest group's devices'; throughput per GPU counts the sequences there are (groups
    left idle when batch < dp add GPUs and no tokens)."""
    if not hasattr(model, "unique_layers"):
        model = load_model(model)
    hw = get_hardware(hardware)
    tp, ep, dp = check_int("tp", tp), check_int("ep", ep), check_int("dp", dp)
    batch, input_len, output_len = check_int("batch", batch), check_int("input_len", input_len), check_int("output_len", output_len)
    settings = resolve_settings(model, hw, engine=engine, kv_policy=kv_policy, kv_block=kv_block, kv_dtype=kv_dtype,
                                dtype=dtype)
    model = served_model(model, settings.act_dtype)
    if prompts is not None:
        prompts = check_int("prompts", prompts)
        check_waves(prompts, batch)
    given_context = context
    context = input_len + output_len // 2 if context is None else check_int("context", context)
    check_parallelism(model, tp, ep, dp)
    group = group_batch(batch, dp)
    try:
        phases, serving = evaluate(model, settings, tp=tp, ep=ep, batch=group, input_len=input_len,
                                   output_len=output_len, context=context, prompts=prompts,
                                   attention_dp=bool(attention_dp), dp=dp)
    except (OverflowError, FloatingPointError) as exc:  # a plugin's arithmetic beyond float range
        raise InputError(f"{model.name}: the figures of tp {tp}, batch {batch}, input {input_len}, output "
                         f"{output_len} overflow ({exc}): give smaller sizes") from None
    share = served_share(batch, dp)
    if share != 1:  # uneven or idle groups: per-GPU rates count the sequences there are
        serving = attrs.evolve(serving, throughput_tok_s_per_gpu=serving.throughput_tok_s_per_gpu * share,
                               output_tok_s_per_gpu=serving.output_tok_s_per_gpu * share)
    result = Estimate(model, settings.hardware, tp, ep, batch, input_len, output_len, int(context), settings.policies,
                      settings.kv_dtype.name, phases.prefill, phases.request_prefill, phases.decode, phases.final,
                      serving, settings.precision, prompts, settings.engine.name if settings.engine else None,
                      settings.kv_block, dp=dp)
    # a config without max_position_embeddings (Mamba: no positions) sets no length limit
    limit = model.config.max_position_embeddings if model.config.get("max_position_embeddings") else None
    warnings = length_warnings(model.name, limit, input_len, output_len, None if given_context is None else int(context))
    warnings += precision_warnings(settings.precision, model.config.model_type)
    fit = memory_warning(settings.hardware.name, result.memory)
    return attrs.evolve(result, warnings=tuple(warnings + ([fit] if fit else [])))
