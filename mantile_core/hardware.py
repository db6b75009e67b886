"""Accelerator specs: the bundled ``data/hardware.toml`` plus any ``mantile_hardware`` plugin.

All figures are per GPU and dense: FLOP/s per dtype, HBM bytes and bytes/s, one-way scale-up
link bytes/s and per-collective latency in seconds, and the timing model's calibration.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any, Mapping

import attrs

from .errors import UnknownHardwareError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Calibration", "HardwareSpec", "bundled_hardware", "get_hardware", "list_hardware"]

DATA = Path(__file__).parent / "data" / "hardware.toml"
KERNELS = Path(__file__).parent / "data" / "kernels.toml"
REFERENCE_ENGINE = "vllm"
"""The engine whose kernel-level figures (``kernels.toml``) are a GPU's own calibration."""
PRECISION_ORDER = ("fp4", "fp8", "bf16")  # narrowest first


@attrs.frozen
class Calibration:
    """Timing-model parameters (dimensionless efficiencies and seconds); see timing.py and
    docs/timing.md for what each one multiplies and where the bundled values come from.

    - ``gemm_efficiency``: fraction of the tensor-core peak a large dense GEMM reaches;
      ``gemm_half_rows``: rows per weight matrix (tokens per expert for a MoE) at which a GEMM
      reaches half of that (the small-M falloff: efficiency · M / (M + gemm_half_rows)).
    - ``mixed_gemm_efficiency``: factor on the GEMM rate when the weights are stored narrower
      than the activations' format (mxfp4 experts against bf16 or fp8 activations): the
      in-kernel dequantisation (Hopper's Marlin) or mixed-format MMA of the grouped expert
      GEMMs these layers run; ``mixed_gemm_half_rows``: their small-M falloff (rows per
      expert at half rate; None: ``gemm_half_rows``), fitted on the measured MoE kernels.
    - ``attention_efficiency``: fraction of the bf16 peak the attention matmuls reach.
    - ``memory_efficiency``: fraction of the HBM bandwidth streaming kernels reach (weights,
      activations); ``kv_memory_efficiency``: the fraction attention kernels reach streaming
      the KV cache (None: ``memory_efficiency``); ``mixed_memory_efficiency``: the fraction
      the dequantising grouped GEMMs of weights stored narrower than the activations (mxfp4
      experts) reach streaming those weights (None: ``memory_efficiency``).
    - ``attention_overhead``: seconds an attention kernel costs beyond ``kernel_overhead``
      (split-KV launch and combine); ``attention_sequence_overhead``: seconds per (sequence,
      local KV head) pair it works on (a decode kernel's thread blocks per pair: ~20 ns on
      H200, so 2048 sequences × 8 KV heads add ~0.33 ms however short the context);
      ``attention_row_overhead``: seconds per (query token, local query head) row of a prompt
      attention kernel at full-chip parallelism (each query tile's fixed work: loading Q,
      filling the K/V pipeline, the masked half of the causal diagonal tile, normalising and
      writing O; ~0.45 ns on H200 under vLLM, fitted on measured FlashAttention kernels).
    - ``expert_half_width``: a routed expert's intermediate width per device (columns) at
      which its grouped GEMMs run at half the layer's GEMM rate (rate · w / (w + this)): each
      expert's output splits into tiles of up to 256 columns, and an expert narrowed by tensor
      parallelism fills too few of them to keep the chip busy (GPT-OSS's MXFP4 MoE on H200 at
      8k tokens: 561, 497, 442, 356 TFLOP/s at 2880, 1440, 720, 360 columns; fitted: ~260).
      0: no width falloff.
    - ``moe_overhead``: seconds a routed-expert (MoE) block costs beyond its kernels'
      ``kernel_overhead``: routing, token permutation and the grouped GEMMs' per-call setup,
      which measured MoE kernels pay however few tokens they carry (~37 µs for GPT-OSS's
      MXFP4 MoE under vLLM's Triton kernel on H100 at TP 8 and up).
    - ``kernel_overhead``: seconds each kernel costs beyond its roofline time (CUDA-graph
      replay gap, ramp-up and tail of a small grid).
    - ``eager_kernel_overhead``: host seconds to launch one kernel of a step that does not
      replay a CUDA graph (a prompt step beyond the engine's graph sizes): such a step takes
      at least kernels · eager_kernel_overhead, however little GPU work it holds.
    - ``step_overhead``: seconds per engine step outside the kernels (scheduling, sampling,
      synchronisation not hidden by asynchronous scheduling).
    - ``allreduce_latency``: seconds per all-reduce beyond its bandwidth term (None: the
      spec's ``link_latency``); ``allreduce_efficiency``: fraction of the link bandwidth an
      all-reduce reaches.
    - ``activation_compute``: the tensor-core format activations run in ("bf16", "fp8").
    - ``request_overhead``: seconds a request's first token spends outside the steps (HTTP,
      scheduling the prompt, streaming the first token back); TTFT only.
    - ``request_token_overhead``: seconds per prompt token of the serving front end's serial
      work on a request (tokenising and processing the prompt in the API server's one thread):
      adds to its TTFT, and requests that arrive together wait for one another (serving.py).
    - ``schedule_lag_steps``: steps a new request waits before its prompt starts (None: the
      engine profile's, e.g. vLLM's 1.5 under asynchronous scheduling: the rest of the running
      step and the one scheduled behind it); fitted per GPU family and engine on the serving
      rows, where it also carries what else in a request's wait grows with the step time.
    - ``attention_dp_wait_steps``: steps a prompt is held back under attention data
      parallelism so that every rank gets prompts together (TensorRT-LLM's attention-DP
      balancer); TTFT only, and only for deployments run with attention DP.
    """

    gemm_efficiency: float = 0.7
    gemm_half_rows: float = 16.0
    mixed_gemm_efficiency: float = 1.0
    mixed_gemm_half_rows: float | None = None
    attention_efficiency: float = 0.5
    memory_efficiency: float = 0.8
    kv_memory_efficiency: float | None = None
    mixed_memory_efficiency: float | None = None
    attention_overhead: float = 0.0
    attention_sequence_overhead: float = 0.0
    attention_row_overhead: float = 0.0
    moe_overhead: float = 0.0
    expert_half_width: float = 256.0
    kernel_overhead: float = 4e-6
    eager_kernel_overhead: float = 0.0
    step_overhead: float = 1e-4
    allreduce_latency: float | None = None
    allreduce_efficiency: float = 0.7
    activation_compute: str = "bf16"
    request_overhead: float = 0.0
    request_token_overhead: float = 0.0
    attention_dp_wait_steps: float = 0.0
    schedule_lag_steps: float | None = None


@attrs.frozen
class HardwareSpec:
    """One accelerator. ``peak_flops`` maps dtype names to dense FLOP/s; ``link_bandwidth`` is
    the one-way scale-up bandwidth per GPU; ``mesh_links`` is 0 for a switched fabric
    (NVSwitch: every peer reachable at the full bandwidth) or the number of point-to-point
    links a GPU's bandwidth is split over (AMD Infinity Fabric: 7, one per peer).
    ``node_size`` is how many GPUs share that scale-up fabric (8 on an HGX / MI300X-class
    board, 72 in a GB200 NVL72 rack); ``scale_out_bandwidth`` the one-way bytes/s per GPU
    between such nodes (default 50e9: one 400 Gb/s ConnectX-7 NIC per GPU, as in NVIDIA's DGX
    H100/H200/B200 compute fabric). Collectives among devices of different nodes use it.
    ``calibrated`` names the calibration figures ``hardware.toml`` states for the GPU (fitted
    on its serving measurements) or skips (``skip_kernel_figures``: figures of table kernels
    its serving runs did not use): another engine's kernel figures never replace them."""

    name: str
    description: str
    peak_flops: Mapping[str, float] = attrs.field(eq=False, hash=False)
    hbm_bytes: int
    hbm_bandwidth: float
    link_bandwidth: float
    link_latency: float
    calibration: Calibration = Calibration()
    source: str = ""
    mesh_links: int = 0
    node_size: int = 8
    scale_out_bandwidth: float = 50e9
    calibrated: frozenset = attrs.field(default=frozenset(), eq=False, hash=False, repr=False)
    _peaks: dict = attrs.field(factory=dict, init=False, eq=False, hash=False, repr=False)  # peak_for memo

    def peak_for(self, weight_format: str, activation_format: str | None = None) -> float:
        """Dense FLOP/s of a GEMM whose weights are stored in ``weight_format`` and whose
        activations are ``activation_format``: the wider of the two that the chip runs natively
        (mxfp4 weights with bf16 activations run at the bf16 rate on Hopper)."""
        key = (weight_format, activation_format or self.calibration.activation_compute)
        try:
            return self._peaks[key]
        except KeyError:
            value = self._peaks[key] = _peak(self.peak_flops, *key)
            return value

    @property
    def vector_flops(self) -> float:
        """Non-tensor-core FLOP/s for elementwise work (the fp32 vector rate)."""
        return float(self.peak_flops.get("fp32", self.peak_flops["bf16"] / 16))


def _peak(peak_flops: Mapping[str, float], weight_format: str, activation_format: str) -> float:
    wanted = max(PRECISION_ORDER.index(_family(weight_format)), PRECISION_ORDER.index(_family(activation_format)))
    for fmt in PRECISION_ORDER[wanted:]:
        if fmt in peak_flops:
            return float(peak_flops[fmt])
    return float(peak_flops["bf16"])


def spec_problem(spec: HardwareSpec) -> str | None:
    """What is wrong with a spec a plugin provides (None: nothing): a non-empty name, peak
    FLOP/s positive and finite with a "bf16" entry, HBM bytes a positive integer, bandwidths
    positive and finite, latency finite and non-negative, mesh_links a non-negative integer,
    a :class:`Calibration` whose efficiencies lie in (0, 1] and whose seconds are finite and
    non-negative."""
    def positive(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0

    def non_negative(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0

    if not isinstance(spec.name, str) or not spec.name.strip():
        return f"name must be a non-empty string (got {spec.name!r:.40})"
    if not isinstance(spec.peak_flops, Mapping) or "bf16" not in spec.peak_flops:
        return f"{spec.name}: peak_flops must map formats to FLOP/s, with a 'bf16' entry"
    for fmt, value in spec.peak_flops.items():
        if not isinstance(fmt, str) or not positive(value):
            return f"{spec.name}: peak_flops[{fmt!r:.20}] must be a positive finite number (got {value!r:.40})"
    if isinstance(spec.hbm_bytes, bool) or not isinstance(spec.hbm_bytes, int) or spec.hbm_bytes <= 0:
        return f"{spec.name}: hbm_bytes must be a positive integer (got {spec.hbm_bytes!r:.40})"
    for field in ("hbm_bandwidth", "link_bandwidth"):
        if not positive(getattr(spec, field)):
            return f"{spec.name}: {field} must be a positive finite number (got {getattr(spec, field)!r:.40})"
    if not non_negative(spec.link_latency):
        return f"{spec.name}: link_latency must be a finite non-negative number (got {spec.link_latency!r:.40})"
    if isinstance(spec.mesh_links, bool) or not isinstance(spec.mesh_links, int) or spec.mesh_links < 0:
        return f"{spec.name}: mesh_links must be a non-negative integer (got {spec.mesh_links!r:.40})"
    cal = spec.calibration
    if not isinstance(cal, Calibration):
        return f"{spec.name}: calibration must be a Calibration (got {type(cal).__name__})"
    optional = ("allreduce_latency", "kv_memory_efficiency", "mixed_memory_efficiency", "mixed_gemm_half_rows",
                "schedule_lag_steps")  # None: fall back
    for field in attrs.fields(Calibration):
        value = getattr(cal, field.name)
        if value is None and field.name in optional:
            continue
        if field.name == "activation_compute":
            if value not in PRECISION_ORDER:
                return f"{spec.name}: calibration.activation_compute must be one of {', '.join(PRECISION_ORDER)} (got {value!r:.20})"
        elif field.name.endswith("efficiency"):
            if not positive(value) or value > 1:
                return f"{spec.name}: calibration.{field.name} must be in (0, 1] (got {value!r:.40})"
        elif not non_negative(value):
            return f"{spec.name}: calibration.{field.name} must be a finite non-negative number (got {value!r:.40})"
    return None


def _family(fmt: str) -> str:
    if fmt in ("fp4", "mxfp4", "nvfp4"):
        return "fp4"
    if fmt in ("fp8", "int8"):
        return "fp8"
    return "bf16"


@functools.lru_cache(maxsize=None)
def kernel_figures() -> dict:
    """``data/kernels.toml``: kernel-level calibration per GPU and engine, fitted by
    benchmarks/kernel_fit.py on measured kernel tables ({gpu: {engine: {parameter: value,
    "provenance": {...}}}}); read once."""
    if not KERNELS.is_file():
        return {}
    with KERNELS.open("rb") as handle:
        return tomllib.load(handle)


def reference_engine_figures() -> dict:
    """The reference engine's own figures for every GPU (``engines.toml``
    ``[vllm.calibration.default]``: its step overhead): a GPU's bundled calibration is its
    calibration under that engine, so it holds them unless hardware.toml states its own."""
    from .engines import bundled_engines  # engines imports this module: read at call time

    reference = bundled_engines().get(REFERENCE_ENGINE)
    return dict(reference.calibration.get("default", {})) if reference else {}


def kernel_calibration(hardware: str, engine: str) -> dict:
    """The fitted kernel-level parameters of ``hardware`` under ``engine`` (no provenance);
    empty when the tables do not cover them."""
    entry = kernel_figures().get(hardware, {}).get(engine, {})
    names = attrs.fields_dict(Calibration)
    return {k: v for k, v in entry.items() if k in names}


def _spec(name: str, entry: dict) -> HardwareSpec:
    # the reference engine's fitted kernel figures (those of ``kernel_figures_of``, a GPU of the
    # same silicon, where the tables do not cover this one) and its own figures (engines.toml),
    # then what hardware.toml states (serving-level figures, and kernel-level ones for GPUs the
    # tables do not cover) less the kernel figures of table kernels the GPU's serving runs did
    # not use (skip_kernel_figures)
    skipped = set(entry.get("skip_kernel_figures", ()))
    measured_as = entry.get("kernel_figures_of", name)
    kernels = {k: v for k, v in kernel_calibration(measured_as, REFERENCE_ENGINE).items() if k not in skipped}
    calibration = Calibration(**(kernels | reference_engine_figures() | entry.get("calibration", {})))
    return HardwareSpec(
        name=name,
        description=entry.get("description", name),
        peak_flops=dict(entry["peak_flops"]),
        hbm_bytes=int(entry["hbm_bytes"]),
        hbm_bandwidth=float(entry["hbm_bandwidth"]),
        link_bandwidth=float(entry["link_bandwidth"]),
        link_latency=float(entry["link_latency"]),
        calibration=calibration,
        source=entry.get("source", ""),
        mesh_links=int(entry.get("mesh_links", 0)),
        node_size=int(entry.get("node_size", 8)),
        scale_out_bandwidth=float(entry.get("scale_out_bandwidth", 50e9)),
        calibrated=frozenset(entry.get("calibration", {})) | skipped,
    )


@functools.lru_cache(maxsize=None)
def bundled_hardware() -> tuple[HardwareSpec, ...]:
    """The specs in ``data/hardware.toml``, read once."""
    with DATA.open("rb") as handle:
        table = tomllib.load(handle)
    return tuple(_spec(name, entry) for name, entry in table.items())


def list_hardware() -> dict[str, HardwareSpec]:
    """Every installed spec (bundled and from plugins), by name."""
    from .plugins import get_plugin_manager

    return get_plugin_manager().registries.hardware


def get_hardware(name: str | HardwareSpec) -> HardwareSpec:
    """A spec by name (case-insensitive); UnknownHardwareError lists the known ones."""
    if isinstance(name, HardwareSpec):
        return name
    specs = list_hardware()
    key = str(name).lower()
    if key not in specs:
        raise UnknownHardwareError(f"unknown hardware {name!r}: known hardware is {', '.join(specs)}")
    return specs[key]
