"""``mantile reconcile``: predictions against a file of serving measurements.

The file is a CSV in InferenceMAX's column layout (one row per GPU, framework, input / output
length, TP, EP, concurrency): ``gpu_model``, ``framework``, ``precision``, ``input_seq_len``,
``output_seq_len``, ``tensor_parallel``, ``expert_parallel``, ``concurrency``,
``throughput_tokens_per_sec_per_gpu``, ``output_throughput_per_gpu``,
``mean_time_to_first_token_sec``, ``mean_time_per_output_token_sec``,
``mean_end_to_end_latency_sec``, ``benchmark_date``. Each row is estimated the way the
benchmark loads the server (see ``shared/data/README.md`` and :mod:`mantile_core.serving`):

- lengths are drawn uniform in [r·L, L] (random range ratio r = 0.8), so the estimate runs at
  the mean lengths round((1 + r)/2 · L);
- ``concurrency`` C requests in flight, 10·C prompts in all (``prompts``);
- the engine profile follows the framework (vllm, trt → trtllm, atom);
- TensorRT-LLM rows with EP > 1, and of a key that appears twice the Dec-17 row with the
  higher TTFT, ran attention data parallelism (experts split by EP, or by TP where EP is 1):
  costed as tp-way tensor parallelism with the row's EP (the same KV and expert bytes per
  GPU), with the attention-DP balancer's prompt wait (``attention_dp=True``);
- disaggregated rows (``dynamo-*``) use the topology recovered for them
  (:func:`disaggregated_topology`): prefill GPUs as TP1 instances, the decode GPUs as one
  instance (tp = ep), or instances of 4 GPUs beyond 8; total throughput is divided by all
  GPUs, output throughput by the decode GPUs.

:func:`reconcile` returns one :class:`RowResult` per row; :func:`error_table` the MAPE and
median signed error (predicted / measured − 1) per group and metric.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO

import attrs
import numpy

from .errors import InputError
from .install_hints import install_hint

__all__ = [
    "Measurement",
    "RowResult",
    "METRICS",
    "read_measurements",
    "mean_length",
    "disaggregated_topology",
    "predict",
    "reconcile",
    "error_table",
    "split_rows",
    "write_rows_csv",
    "plot_rows",
]

RANGE_RATIO = 0.8
PROMPTS_PER_CONCURRENCY = 10
GPU_HARDWARE = {"b200-trt": "b200", "h100-trt": "h100", "h200-trt": "h200", "gb200-trt": "gb200"}
FRAMEWORK_ENGINE = {"vllm": "vllm", "trt": "trtllm", "trtllm": "trtllm", "dynamo-trt": "trtllm", "atom": "atom"}
METRICS = ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu")
METRIC_LABELS = {"tpot_ms": "TPOT", "ttft_ms": "TTFT", "throughput_tok_s_per_gpu": "throughput/GPU",
                 "output_tok_s_per_gpu": "output/GPU"}
REQUIRED = ("gpu_model", "framework", "input_seq_len", "output_seq_len", "concurrency",
            "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
            "mean_time_to_first_token_sec", "mean_time_per_output_token_sec")


@attrs.frozen
class Measurement:
    """One measured row. Times in seconds, rates in tokens/s per GPU; ``tp`` / ``ep`` None
    for disaggregated rows; ``attention_dp`` marks TensorRT-LLM attention-DP runs."""

    gpu: str
    framework: str
    precision: str
    isl: int
    osl: int
    tp: int | None
    ep: int | None
    concurrency: int
    throughput: float
    output_throughput: float
    ttft_s: float
    tpot_s: float
    e2e_s: float
    date: str = ""
    attention_dp: bool = False
    line: int = attrs.field(default=0, eq=False)
    """The line of the file the row was read from (0: not from a file)."""

    @property
    def hardware(self) -> str:
        """Mantile hardware name: the gpu_model less an engine suffix ("b200-trt" → b200)."""
        return GPU_HARDWARE.get(self.gpu, self.gpu.split("-")[0])

    @property
    def engine(self) -> str:
        """Engine profile name for the framework."""
        return FRAMEWORK_ENGINE.get(self.framework, self.framework)

    @property
    def disaggregated(self) -> bool:
        return self.framework.startswith("dynamo") or self.tp is None

    @property
    def group(self) -> str:
        """The label errors are grouped by: hardware and engine ("b200 trtllm")."""
        return f"{self.hardware} {self.engine}" + (" disagg" if self.disaggregated else "")

    @property
    def key(self) -> tuple:
        return (self.gpu, self.framework, self.isl, self.osl, self.tp, self.ep, self.concurrency, self.date)

    def measured(self, metric: str) -> float:
        return {"tpot_ms": self.tpot_s * 1e3, "ttft_ms": self.ttft_s * 1e3,
                "throughput_tok_s_per_gpu": self.throughput, "output_tok_s_per_gpu": self.output_throughput}[metric]


@attrs.frozen
class RowResult:
    """A measurement with its prediction (``predicted[metric]``, same units as
    :meth:`Measurement.measured`) and the deployment it was estimated as."""

    measurement: Measurement
    predicted: dict
    deployment: dict

    def error(self, metric: str) -> float:
        """Signed relative error predicted / measured − 1."""
        return self.predicted[metric] / self.measurement.measured(metric) - 1.0


MAX_MEASUREMENT_ROWS = 100_000
"""The most rows ``read_measurements`` reads (each is an estimate); ``MANTILE_MAX_ROWS`` raises it."""

MAX_MEASUREMENT_BYTES = 256 * 2**20
"""The largest measurement file read."""

# integer columns: column -> (attribute, bound name in limits.BOUNDS); tp / ep may be empty
_INT_COLUMNS = {"input_seq_len": "input_len", "output_seq_len": "output_len", "concurrency": "batch",
                "tensor_parallel": "tp", "expert_parallel": "ep"}
_FLOAT_COLUMNS = ("throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
                  "mean_time_to_first_token_sec", "mean_time_per_output_token_sec")


class _RowError(InputError):
    pass


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _row_int(row: dict, column: str, optional: bool = False) -> int | None:
    """A positive integer cell within the bounds of its quantity ("8", "8.0"); empty only
    when ``optional``."""
    from .limits import BOUNDS

    text = _cell(row, column)
    if not text:
        if optional:
            return None
        raise _RowError(f"{column!r} is empty")
    low, high = BOUNDS[_INT_COLUMNS[column]]
    try:
        number = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not max(low, 1) <= number <= high:
        raise _RowError(f"{column!r} must be an integer from {max(low, 1):,} to {high:,} (got {text[:40]!r})")
    return int(number)


SMALLEST_MEASUREMENT = 1e-9
"""The least measured time (s) or rate (tokens/s) a row may give: 1 ns is below any kernel,
and a smaller positive value (e.g. a subnormal 1e-320) would make predicted / measured − 1
overflow to infinity instead of scoring."""


def _row_float(row: dict, column: str, optional: bool = False) -> float:
    """A finite positive number cell (a time or a rate); empty only when ``optional`` (NaN)."""
    text = _cell(row, column)
    if not text:
        if optional:
            return math.nan
        raise _RowError(f"{column!r} is empty")
    try:
        number = float(text) if len(text) <= 60 else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < SMALLEST_MEASUREMENT:
        raise _RowError(f"{column!r} must be a finite number of at least {SMALLEST_MEASUREMENT:g} "
                        f"(got {text[:40]!r})")
    return number


def _row_name(row: dict, column: str) -> str:
    text = _cell(row, column)
    if not text or len(text) > 100 or not text.isprintable():
        raise _RowError(f"{column!r} must be a non-empty name (got {text[:40]!r})")
    return text


def _max_rows() -> int:
    import os

    text = os.environ.get("MANTILE_MAX_ROWS", "").strip()
    if not text:
        return MAX_MEASUREMENT_ROWS
    if not text.isdigit() or int(text) <= 0:
        raise InputError(f"MANTILE_MAX_ROWS must be a positive integer (got {text!r})")
    return int(text)


def read_measurements(path: str | Path) -> list[Measurement]:
    """Rows of a measurement CSV (see the module docstring). InputError names a missing
    file or column, and a bad row by its line and column: every length, concurrency and
    parallel degree a positive integer within :mod:`mantile_core.limits`' bounds (tp / ep may
    be empty: disaggregated), every measured time and rate a positive finite number
    (mean_end_to_end_latency_sec may be empty), gpu_model and framework non-empty. No row
    is skipped: a measurement file that is partly wrong is refused whole."""
    path = Path(path)
    shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
    try:
        if not path.is_file():
            raise InputError(f"measurement file {shown!r} not found: give a CSV in InferenceMAX's format")
        if path.stat().st_size > MAX_MEASUREMENT_BYTES:
            raise InputError(f"measurement file {shown!r} is larger than {MAX_MEASUREMENT_BYTES:,} bytes")
        limit = _max_rows()
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"measurement file {shown!r} lacks columns {', '.join(missing)}")
            raw = []
            for r in reader:
                raw.append((reader.line_num, r))
                if len(raw) > limit:
                    raise InputError(f"measurement file {shown!r} has more than {limit:,} rows "
                                     "(MANTILE_MAX_ROWS raises the limit)")
    except OSError as exc:
        raise InputError(f"cannot read measurement file {shown!r}: {exc.strerror or exc}") from None
    except (ValueError, csv.Error) as exc:  # not UTF-8, NUL bytes, a field over csv's size limit
        raise InputError(f"measurement file {shown!r} is not a readable CSV: {str(exc)[:120]}") from None
    rows = []
    for line, r in raw:
        try:
            if None in r:  # csv puts the cells beyond the header under the key None
                raise _RowError(f"has {len(r[None])} more cells than the header")
            rows.append(Measurement(
                gpu=_row_name(r, "gpu_model"), framework=_row_name(r, "framework"), precision=_cell(r, "precision"),
                isl=_row_int(r, "input_seq_len"), osl=_row_int(r, "output_seq_len"),
                tp=_row_int(r, "tensor_parallel", optional=True), ep=_row_int(r, "expert_parallel", optional=True),
                concurrency=_row_int(r, "concurrency"),
                throughput=_row_float(r, "throughput_tokens_per_sec_per_gpu"),
                output_throughput=_row_float(r, "output_throughput_per_gpu"),
                ttft_s=_row_float(r, "mean_time_to_first_token_sec"),
                tpot_s=_row_float(r, "mean_time_per_output_token_sec"),
                e2e_s=_row_float(r, "mean_end_to_end_latency_sec", optional=True),
                date=_cell(r, "benchmark_date"), line=line))
        except _RowError as exc:
            raise InputError(f"measurement file {shown!r} line {line}: {exc}") from None
    return _mark_attention_dp(rows)


def _mark_attention_dp(rows: list[Measurement]) -> list[Measurement]:
    """TensorRT-LLM rows with EP > 1, and of two rows sharing a key the Dec-17 one, ran
    attention data parallelism (shared/data/README.md). The date decides; five of the seven
    pairs have both rows from the same Dec-17 run (same timestamp and run_id, no other column
    differs), and there the README's designation of the pair's higher-TTFT row stands: the one
    label still taken from a measured metric (10 of 236 rows)."""
    by_key: dict[tuple, list[int]] = {}
    for i, m in enumerate(rows):
        by_key.setdefault(m.key[:-1], []).append(i)
    out = list(rows)
    for indices in by_key.values():
        trt = [i for i in indices if rows[i].engine == "trtllm" and not rows[i].disaggregated]
        if len(trt) > 1:  # README: the Dec-17 row of the pair, the one with the higher TTFT
            dp = max(trt, key=lambda i: (rows[i].date[:10] == "2025-12-17", rows[i].ttft_s))
            out[dp] = attrs.evolve(rows[dp], attention_dp=True)
    for i, m in enumerate(out):
        if m.engine == "trtllm" and not m.disaggregated and (m.ep or 1) > 1:
            out[i] = attrs.evolve(m, attention_dp=True)
    return out


def mean_length(nominal: int, range_ratio: float = RANGE_RATIO) -> int:
    """Mean of lengths drawn uniform in [range_ratio·L, L]: round((1 + r)/2 · L)."""
    return int(round((1.0 + range_ratio) / 2.0 * nominal))


def disaggregated_topology(m: Measurement) -> tuple[int, int]:
    """(prefill GPUs, decode GPUs) recovered for InferenceMAX's GB200 Dynamo rows
    (shared/data/README.md): 1k/1k up to concurrency 2560: 1 + 4, 3072: 1 + 12; 8k/1k:
    concurrency 1: 1 + 8, 2–64: 1 + 4, 128–512: 2 + 2."""
    if m.isl <= 2048:
        return (1, 12) if m.concurrency >= 3072 else (1, 4)
    if m.concurrency == 1:
        return (1, 8)
    if m.concurrency <= 64:
        return (1, 4)
    return (2, 2)


def _deployment(m: Measurement) -> dict[str, Any]:
    if m.disaggregated:
        prefill_gpus, decode_gpus = disaggregated_topology(m)
        decode_tp = decode_gpus if decode_gpus <= 8 else 4
        return {"prefill_gpus": prefill_gpus, "decode_gpus": decode_gpus, "prefill_tp": 1,
                "decode_tp": decode_tp, "decode_ep": decode_tp, "decode_instances": decode_gpus // decode_tp}
    return {"tp": m.tp or 1, "ep": m.ep or 1, "attention_dp": m.attention_dp}


def predict(m: Measurement, model=None, *, hardware=None) -> RowResult:
    """Estimate one measured row (see the module docstring); ``hardware`` overrides the spec
    (e.g. a re-calibrated one)."""
    from .estimate import estimate
    from .model import load_model

    model = model or load_model("gpt-oss-120b")
    hw = hardware or m.hardware
    I, O, C = mean_length(m.isl), mean_length(m.osl), m.concurrency
    prompts = PROMPTS_PER_CONCURRENCY * C
    dep = _deployment(m)
    if not m.disaggregated:
        est = estimate(model, hw, tp=dep["tp"], ep=dep["ep"], batch=C, input_len=I, output_len=O,
                       engine=m.engine, prompts=prompts, attention_dp=dep["attention_dp"])
        s = est.serving
        predicted = {"tpot_ms": float(s.tpot_s) * 1e3, "ttft_ms": float(s.ttft_s) * 1e3,
                     "throughput_tok_s_per_gpu": float(s.throughput_tok_s_per_gpu),
                     "output_tok_s_per_gpu": float(s.output_tok_s_per_gpu)}
        return RowResult(m, predicted, dep)
    return RowResult(m, _predict_disaggregated(m, model, hw, dep, I, O, C, prompts), dep)


def _predict_disaggregated(m, model, hw, dep, I, O, C, prompts) -> dict[str, float]:
    """Prefill instances (TP1 each, prompts only, as many per step as the token budget holds)
    and decode instances (tp = ep) estimated apart, joined by :func:`~mantile_core.serving.serve`
    with ``prefill_instances``. A prompt's step costs P alone; each further prompt in a step
    Δ = (P_k − P)/(k − 1) from a step of k = budget // I prompts; the host floor as for an
    aggregated prompt step; the KV cache crosses NVLink in kv bytes / link bandwidth. The
    decode batch per instance is C/instances less the requests still waiting for their first
    token (three passes)."""
    from .engines import get_engine
    from .estimate import estimate
    from .serving import host_floor_seconds, schedule_lag, serve, step_kernels

    engine = get_engine(m.engine)
    budget = engine.max_batched_tokens
    per_step = max(1, budget // I)
    pre = estimate(model, hw, tp=1, ep=1, batch=per_step, input_len=I, output_len=O, engine=m.engine)
    cal = pre.hardware.calibration
    counts = tuple(len(p) for _, p in model.unique_layers)
    p_one = float(pre.request_prefill.seconds_total) + cal.step_overhead
    p_full = float(pre.prefill.seconds_total) + cal.step_overhead
    delta = (p_full - p_one) / (per_step - 1) if per_step > 1 else p_one
    host = host_floor_seconds(step_kernels(pre.request_prefill, counts), I, engine.graph_max_tokens, cal)
    transfer = float(pre.request_prefill.total.kv_cache_bytes) / pre.hardware.link_bandwidth
    instances = dep["decode_instances"]
    batch = max(1, C // instances)
    serving = None
    for _ in range(3):
        dec = estimate(model, hw, tp=dep["decode_tp"], ep=dep["decode_ep"], batch=batch, input_len=I, output_len=O,
                       engine=m.engine)
        tau0 = float(dec.decode.seconds_total) + dec.hardware.calibration.step_overhead
        serving = serve(p_one, tau0, batch=C, input_len=I, output_len=O,
                        devices=dep["prefill_gpus"] + dep["decode_gpus"], prefill_extra_s=delta,
                        max_batched_tokens=budget, prompts=prompts, request_overhead_s=cal.request_overhead,
                        request_token_s=cal.request_token_overhead,
                        schedule_lag_steps=schedule_lag(cal, engine), mixed_prefill=False, host_floor_s=host,
                        prefill_instances=dep["prefill_gpus"], transfer_s=transfer,
                        output_devices=dep["decode_gpus"])
        waiting = float(serving.ttft_s) / float(serving.e2e_s)
        batch = max(1, int(round(C * (1.0 - waiting) / instances)))
    assert serving is not None
    return {"tpot_ms": float(serving.tpot_s) * 1e3, "ttft_ms": float(serving.ttft_s) * 1e3,
            "throughput_tok_s_per_gpu": float(serving.throughput_tok_s_per_gpu),
            "output_tok_s_per_gpu": float(serving.output_tok_s_per_gpu)}


def reconcile(measurements: Iterable[Measurement], model=None, *, hardware: dict | None = None) -> list[RowResult]:
    """Predict every row; ``hardware`` maps hardware names to replacement specs."""
    from .model import load_model

    from .errors import MantileError

    model = model or load_model("gpt-oss-120b")
    hardware = hardware or {}
    results = []
    for m in measurements:
        try:
            results.append(predict(m, model, hardware=hardware.get(m.hardware)))
        except MantileError as exc:
            where = f"line {m.line}" if m.line else f"row {m.key}"
            raise type(exc)(f"measurement {where} ({m.gpu}, {m.framework}, tp {m.tp}, concurrency "
                            f"{m.concurrency}): {exc}") from None
    return results


def split_rows(measurements: Sequence[Measurement], seed: int = 0, fraction: float = 0.5) -> set[tuple]:
    """Keys of the rows a calibration is fitted on: within each group (hardware, engine),
    rows sorted by key and shuffled with ``random.Random(seed)``, the first
    round(fraction · n) are fitted, the others held out."""
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.group, []).append(m)
    fitted: set[tuple] = set()
    for name in sorted(groups):
        rows = sorted(groups[name], key=lambda m: tuple(str(k) for k in m.key))
        random.Random(f"{seed}:{name}").shuffle(rows)
        fitted.update(m.key for m in rows[: int(round(fraction * len(rows)))])
    return fitted


def error_table(results: Sequence[RowResult], *, by: str = "group", metrics: Sequence[str] = METRICS,
                total: str | None = "all aggregated") -> list[dict[str, Any]]:
    """One row per (group, metric): ``n``, ``mape_pct`` (mean |error|) and
    ``median_signed_pct`` (median of predicted/measured − 1), in percent. ``by`` is
    "group" (hardware + engine), "hardware" or "framework"; ``total`` adds a row over every
    aggregated (not disaggregated) row, when there are several groups."""
    groups: dict[str, list[RowResult]] = {}
    for r in results:
        m = r.measurement
        label = {"group": m.group, "hardware": m.hardware + (" disagg" if m.disaggregated else ""),
                 "framework": m.framework}[by]
        groups.setdefault(label, []).append(r)
    aggregated = [r for r in results if not r.measurement.disaggregated]
    if total and len(groups) > 1 and aggregated:
        groups[total] = aggregated
    out = []
    for label, rows in groups.items():
        for metric in metrics:
            errors = numpy.array([r.error(metric) for r in rows])
            out.append({"group": label, "metric": metric, "n": len(rows),
                        "mape_pct": float(numpy.mean(numpy.abs(errors)) * 100),
                        "median_signed_pct": float(numpy.median(errors) * 100)})
    return out


ROW_COLUMNS = ("gpu_model", "framework", "isl", "osl", "tp", "ep", "concurrency", "attention_dp")


def write_rows_csv(results: Sequence[RowResult], path: str | Path | TextIO, *, fitted: set[tuple] | None = None) -> None:
    """Per-row CSV: the row's key, then measured, predicted and signed error % per metric,
    and ``fitted`` (1 when the row was used to fit, if a split is given). ``path`` is a file
    name or an open text handle."""
    if not hasattr(path, "write"):
        with Path(path).open("w", newline="") as handle:
            write_rows_csv(results, handle, fitted=fitted)
        return
    writer = csv.writer(path)
    header = list(ROW_COLUMNS)
    for metric in METRICS:
        header += [f"{metric}_measured", f"{metric}_predicted", f"{metric}_error_pct"]
    if fitted is not None:
        header.append("fitted")
    writer.writerow(header)
    for r in results:
        m = r.measurement
        row: list[Any] = [m.gpu, m.framework, m.isl, m.osl, m.tp if m.tp else "", m.ep if m.ep else "",
                          m.concurrency, int(m.attention_dp)]
        for metric in METRICS:
            row += [f"{m.measured(metric):.6g}", f"{r.predicted[metric]:.6g}", f"{r.error(metric) * 100:.2f}"]
        if fitted is not None:
            row.append(int(m.key in fitted))
        writer.writerow(row)


def _minor_label(value, _position) -> str:
    """Label the 2× and 5× minor ticks of a log axis spanning under two decades."""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa) in (2, 5) else ""


def plot_rows(results: Sequence[RowResult], path: str | Path, *, metrics: Sequence[str] = METRICS) -> None:
    """Predicted against measured, log-log, one panel per metric, one colour per GPU, the
    y = x line and ±20 % bands; written as PNG. Needs matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        raise InputError(f"plotting needs matplotlib: {install_hint('mantile-core', extra='plot')}") from None
    hardware = sorted({r.measurement.hardware for r in results})
    colours = dict(zip(hardware, plt.get_cmap("tab10").colors))
    cols = 2
    rows_n = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 5.2 * rows_n), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        lo, hi = math.inf, 0.0
        for hw in hardware:
            picked = [r for r in results if r.measurement.hardware == hw]
            x = [r.measurement.measured(metric) for r in picked]
            y = [r.predicted[metric] for r in picked]
            markers = ["x" if r.measurement.disaggregated else "o" for r in picked]
            for marker in ("o", "x"):
                xs = [a for a, k in zip(x, markers) if k == marker]
                ys = [b for b, k in zip(y, markers) if k == marker]
                if xs:
                    ax.scatter(xs, ys, s=14, marker=marker, color=colours[hw], alpha=0.8,
                               label=hw + (" (disagg.)" if marker == "x" else ""))
            lo, hi = min([lo] + x + y), max([hi] + x + y)
        line = numpy.array([lo / 1.2, hi * 1.2])
        ax.plot(line, line, color="black", lw=0.8)
        ax.fill_between(line, line / 1.2, line * 1.2, color="grey", alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(_minor_label) if hi / lo < 100 else NullFormatter())
        ax.set_xlabel(f"measured {METRIC_LABELS[metric]}")
        ax.set_ylabel(f"predicted {METRIC_LABELS[metric]}")
        ax.set_title(f"{METRIC_LABELS[metric]} ({metric.split('_')[-1] if metric.endswith('ms') else 'tok/s per GPU'})")
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
