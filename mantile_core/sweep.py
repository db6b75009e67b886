"""``sweep``: every deployment of one model over a grid, vectorised with numpy.

The grid is the Cartesian product hardware × KV policy × (tp, ep, dp) × batch × input_len ×
output_len (dp: attention data-parallel groups, see :func:`~mantile_core.estimate.estimate`).
Hardware and KV policies (a handful) are looped over in Python, each resolved by
:func:`~mantile_core.estimate.resolve_settings`, and each (tp, ep, dp) is checked once with
:func:`~mantile_core.estimate.check_parallelism` (those the model cannot be split by are
dropped and reported). Everything else is evaluated as numpy arrays by the very functions
:func:`~mantile_core.estimate.estimate` calls (``evaluate``, ``memory_figures``), so a sweep
point equals the estimate of that deployment.

The axes go in as 4-d arrays along their own dimension — (tp, ep, dp) triple, batch, input_len,
output_len — and the cost functions broadcast: one request's prefill depends on (tp, ep,
input_len) only and is costed once per such combination, weights per (tp, ep) pair, and only
what truly depends on every axis (KV traffic, serving times) is computed at every point. The
grid is cut into boxes of at most ``chunk`` points (rows contiguous in the table) to bound
memory.

Per point (one row of :attr:`SweepResult.table`): the deployment (with the strings
``hardware``, ``kv_policy``, ``kv_dtype`` and ``dtype``, the served dtype), ``ttft_ms``, ``tpot_ms``,
``e2e_latency_ms``, ``throughput_tok_s_per_gpu`` (input + output tokens per second per GPU),
``output_tok_s_per_gpu``, ``tok_s_per_user`` = 1 / TPOT, ``request_prefill_ms`` (one request's
prompt step), ``decode_ms`` (the decode step at context input_len + output_len // 2), the
memory figures of ``estimate`` (``fits``, ``max_batch`` with −1 for "no limit") and
``meets_slo`` = fits and TPOT ≤ ``max_tpot_ms`` and TTFT ≤ ``max_ttft_ms``.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import attrs
import numpy

from .errors import InputError, ParallelismError
from .estimate import Settings, check_parallelism, evaluate, group_batch, memory_figures, resolve_settings, served_share
from .jsonout import dumps
from .limits import BOUNDS, INT64_HEADROOM, check_int, check_positive_float, check_waves, max_points
from .model import Model, load_model
from .precision import served_model

__all__ = ["SweepResult", "sweep", "parse_values", "pareto_front", "DEFAULT_CHUNK", "COLUMNS"]

DEFAULT_CHUNK = 131072
WAVE_POINTS_PER_POINT = 10
"""With ``prompts``, the sweep refuses points × waves beyond this many times its point limit."""

# numeric columns of the table, in order (the strings hardware, kv_policy, kv_dtype and dtype come first)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("tp", "i8"),
    ("ep", "i8"),
    ("dp", "i8"),
    ("devices", "i8"),
    ("batch", "i8"),
    ("input_len", "i8"),
    ("output_len", "i8"),
    ("context", "i8"),
    ("ttft_ms", "f8"),
    ("tpot_ms", "f8"),
    ("e2e_latency_ms", "f8"),
    ("throughput_tok_s_per_gpu", "f8"),
    ("output_tok_s_per_gpu", "f8"),
    ("tok_s_per_user", "f8"),
    ("request_prefill_ms", "f8"),
    ("decode_ms", "f8"),
    ("weight_bytes", "i8"),
    ("kv_cache_bytes", "i8"),
    ("recurrent_state_bytes", "i8"),
    ("activation_bytes", "i8"),
    ("rope_table_bytes", "i8"),
    ("total_bytes", "i8"),
    ("capacity_bytes", "i8"),
    ("kv_cache_bytes_per_sequence", "i8"),
    ("recurrent_state_bytes_per_sequence", "i8"),
    ("max_batch", "i8"),
    ("fits", "?"),
    ("meets_slo", "?"),
)

_PLAIN = re.compile(r"^[A-Za-z0-9_.+-]*$")
_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?::\s*([x*]?)\s*(\d+)\s*)?$")


def parse_values(name: str, spec: Any, limit: int | None = None) -> tuple[int, ...]:
    """The positive integers of one grid axis, duplicates dropped, order kept.

    ``spec`` is an int, an iterable of ints, or a string of comma-separated items, each an
    integer, ``A:B`` (every integer from A to B inclusive), ``A:B:S`` (step S) or ``A:B:xF``
    (A, A·F, A·F², ... up to B; ``*F`` also works): "1:1024:x2" is 1, 2, 4, ..., 1024.
    Every value lies within ``limits.BOUNDS[name]``; an axis of more than ``limit`` values
    (default: the sweep's point limit) is refused before it is expanded.
    """
    limit = max_points() if limit is None else limit
    low, high = BOUNDS.get(name, (1, None))
    if isinstance(spec, str):
        if len(spec) > 100_000:
            raise InputError(f"{name!r}: a list of {len(spec):,} characters is too long")
        values: list[int] = []
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            if item.isdigit() and len(item) <= 30:
                values.append(int(item))
                continue
            match = _RANGE.match(item) if len(item) <= 100 else None
            if not match:
                raise InputError(f"{name!r}: cannot read {item[:60]!r}: give integers, A:B, A:B:STEP or A:B:xFACTOR")
            start, stop, geometric, step = int(match[1]), int(match[2]), bool(match[3]), match[4]
            step_value = int(step) if step else 1
            if start <= 0 or stop < start or step_value < (2 if geometric else 1):
                raise InputError(f"{name!r}: bad range {item!r}: need 0 < A <= B and a step >= 1 (factor >= 2)")
            if high is not None and stop > high:
                raise InputError(f"{name!r}: range {item!r} goes beyond {high:,}, the largest {name} accepted")
            if geometric:
                value = start
                while value <= stop:
                    values.append(value)
                    value *= step_value
            else:
                span = range(start, stop + 1, step_value)
                if len(values) + len(span) > limit:
                    raise InputError(f"{name!r}: {item!r} is {len(span):,} values, more than the {limit:,} points a sweep "
                                     "evaluates (--max-points or MANTILE_MAX_POINTS raises the limit)")
                values.extend(span)
    elif isinstance(spec, (int, numpy.integer)):
        values = [spec]  # booleans are rejected by check_int
    else:
        try:
            values = list(itertools.islice(iter(spec), limit + 1))
        except TypeError:
            raise InputError(f"{name!r} must be an integer, a list of integers or a range like 1:1024 (got {str(spec)[:60]!r})") from None
    if not values:
        raise InputError(f"{name!r} must list at least one value (got {str(spec)[:60]!r})")
    if len(values) > limit:
        raise InputError(f"{name!r} lists more than the {limit:,} points a sweep evaluates "
                         "(--max-points or MANTILE_MAX_POINTS raises the limit)")
    return tuple(dict.fromkeys(check_int(name, v) for v in values))


def pareto_front(x, y) -> numpy.ndarray:
    """Indices of the points no other point beats on both ``x`` and ``y`` (larger is better),
    in increasing x (and so decreasing y); of equal points the first is kept."""
    x, y = numpy.asarray(x), numpy.asarray(y)
    if not len(x):
        return numpy.zeros(0, dtype=numpy.int64)
    order = numpy.lexsort((-y, -x))  # by x descending, then y descending
    ys = y[order]
    best_before = numpy.maximum.accumulate(numpy.concatenate(([-numpy.inf], ys[:-1])))
    return order[ys > best_before][::-1]


@attrs.frozen(eq=False)
class SweepResult:
    """Every evaluated point of a sweep (``table``, a numpy structured array, one row per
    point; ``result["tpot_ms"]`` is a column), the axes that made it, the (tp, ep) pairs
    ``dropped`` with the reason, and the SLOs ``meets_slo`` was computed with."""

    model: str
    table: numpy.ndarray
    hardware: tuple[str, ...]
    kv_policies: dict[str, dict[str, str]]
    parallelism: tuple[tuple[int, int, int], ...]
    batch: tuple[int, ...]
    input_len: tuple[int, ...]
    output_len: tuple[int, ...]
    dropped: tuple[tuple[int, int, str], ...]
    max_tpot_ms: float | None
    max_ttft_ms: float | None
    engine: str | None
    prompts: int | None
    elapsed_s: float

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key):
        return self.table[key]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.table.dtype.names

    def _where(self, hardware: str | None):
        if hardware is None:
            return numpy.ones(len(self.table), dtype=bool)
        return self.table["hardware"] == hardware

    def frontier(self, hardware: str | None = None) -> numpy.ndarray:
        """Row indices of the Pareto frontier of throughput per GPU against tokens/s per user
        over the points that fit (on ``hardware``, or on all), by increasing tokens/s per user."""
        rows = numpy.flatnonzero(self._where(hardware) & self.table["fits"])
        return rows[pareto_front(self.table["tok_s_per_user"][rows], self.table["throughput_tok_s_per_gpu"][rows])]

    def best(self, hardware: str | None = None) -> int | None:
        """Row index of the highest throughput per GPU among points meeting the SLOs (ties:
        the higher tokens/s per user, then the earlier row); None when no point does."""
        rows = numpy.flatnonzero(self._where(hardware) & self.table["meets_slo"])
        if not len(rows):
            return None
        user, rate = self.table["tok_s_per_user"][rows], self.table["throughput_tok_s_per_gpu"][rows]
        top = numpy.flatnonzero(rate == rate.max())  # earliest rows first
        return int(rows[top[numpy.argmax(user[top])]])

    def row(self, index: int) -> dict[str, Any]:
        """One point as plain Python values (the JSON ``points`` entries)."""
        return dict(zip(self.columns, self.table[index].tolist()))

    def summary(self) -> dict[str, Any]:
        """Everything but the points: axes, counts, dropped pairs, frontier and best rows."""
        return {
            "model": self.model,
            "hardware": list(self.hardware),
            "kv_policy": self.kv_policies,
            "parallelism": [{"tp": tp, "ep": ep, "dp": dp} for tp, ep, dp in self.parallelism],
            "dropped": [{"tp": tp, "ep": ep, "dp": dp, "reason": why} for tp, ep, dp, why in self.dropped],
            "batch": list(self.batch),
            "input_len": list(self.input_len),
            "output_len": list(self.output_len),
            "max_tpot_ms": self.max_tpot_ms,
            "max_ttft_ms": self.max_ttft_ms,
            "engine": self.engine,
            "prompts": self.prompts,
            "evaluated_points": len(self.table),
            "fitting_points": int(self.table["fits"].sum()),
            "slo_points": int(self.table["meets_slo"].sum()),
            "elapsed_s": self.elapsed_s,
            "frontier": {hw: [self.row(i) for i in self.frontier(hw)] for hw in self.hardware},
            "best": self._best_rows(),
        }

    def _best_rows(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for hw in (None, *self.hardware):
            index = self.best(hw)
            out[hw or "overall"] = None if index is None else self.row(index)
        return out

    def _plain(self) -> bool:
        """True when every string is plain (letters, digits, ``_.+-``) and every float finite:
        rows can then be written with one %-format per row instead of json / csv."""
        for name in self.columns:
            kind = self.table.dtype[name].kind
            if kind == "U" and not all(_PLAIN.match(v) for v in numpy.unique(self.table[name]).tolist()):
                return False
            if kind == "f" and not numpy.isfinite(self.table[name]).all():
                return False
        return True

    def _row_template(self, as_json: bool) -> str:
        """%-format of one row: strings %s, ints %d, floats %r (shortest exact repr), bools
        %s (True / False; JSON fixes them after formatting)."""
        codes = {"U": "%s", "i": "%d", "f": "%r", "b": "%s"}
        parts = []
        for name in self.columns:
            code = codes[self.table.dtype[name].kind]
            if as_json:
                code = f'"{code}"' if code == "%s" and self.table.dtype[name].kind == "U" else code
                parts.append(f'"{name}": {code}')
            else:
                parts.append(code)
        return ("{" + ", ".join(parts) + "}") if as_json else ",".join(parts)

    def write_json(self, handle: TextIO, *, rows_per_write: int = 16384) -> None:
        """The ``sweep --json`` document: :meth:`summary` plus ``columns`` and ``points``,
        every evaluated point as an object, streamed a block of rows at a time."""
        handle.write("{")
        for key, value in self.summary().items():
            handle.write(f"\n {json.dumps(key)}: {dumps(value, indent=None)},")
        handle.write(f'\n "columns": {json.dumps(list(self.columns))},\n "points": [')
        names, plain = self.columns, self._plain()
        template = self._row_template(as_json=True)
        for start in range(0, len(self.table), rows_per_write):
            rows = self.table[start:start + rows_per_write].tolist()
            if plain:
                text = ",\n  ".join([template % r for r in rows])
                text = text.replace(": True", ": true").replace(": False", ": false")
            else:
                text = ",\n  ".join(dumps(dict(zip(names, r)), indent=None) for r in rows)
            handle.write(("\n  " if start == 0 else ",\n  ") + text)
        handle.write("\n ]\n}\n")

    def write_csv(self, handle: TextIO, *, rows_per_write: int = 16384) -> None:
        """Every evaluated point, one CSV row each, with a header of the column names."""
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(self.columns)
        plain, template = self._plain(), self._row_template(as_json=False)
        for start in range(0, len(self.table), rows_per_write):
            rows = self.table[start:start + rows_per_write].tolist()
            if plain:
                handle.write("\n".join([template % r for r in rows]) + "\n")
            else:
                writer.writerows(rows)


def _table_dtype(blocks: Sequence[Settings]) -> numpy.dtype:
    width_hw = max(len(b.hardware.name) for b in blocks)
    width_kv = max(len(_label(b)) for b in blocks)
    width_dtype = max(len(b.kv_dtype.name) for b in blocks)
    width_served = max(len(b.act_dtype.name) for b in blocks)
    return numpy.dtype([("hardware", f"U{width_hw}"), ("kv_policy", f"U{width_kv}"),
                        ("kv_dtype", f"U{width_dtype}"), ("dtype", f"U{width_served}"), *COLUMNS])


def _policy_names(kv_policy) -> list[str | None]:
    """None (each mask's default, or the engine's), a name, a comma list or a list of names."""
    if kv_policy is None:
        return [None]
    items = kv_policy.split(",") if isinstance(kv_policy, str) else list(kv_policy)
    return [n.strip() for n in items if n and n.strip()] or [None]


def _label(settings: Settings) -> str:
    """The policies in force, by mask: "causal+ring"."""
    return "+".join(settings.policies[mask].name for mask in sorted(settings.policies)) or "none"


def _valid_parallelism(model: Model, tps, eps, dps=(1,)):
    valid, dropped = [], []
    for tp, ep, dp in itertools.product(tps, eps, dps):
        try:
            check_parallelism(model, tp, ep, dp)
        except ParallelismError as exc:
            dropped.append((tp, ep, dp, str(exc)))
        else:
            valid.append((tp, ep, dp))
    if not valid:
        reasons = "; ".join(f"tp {tp} ep {ep} dp {dp}: {why}" for tp, ep, dp, why in dropped)
        raise ParallelismError(f"no (tp, ep, dp) of the sweep can split {model.name}: {reasons}")
    return valid, dropped


def _boxes(shape: tuple[int, ...], limit: int) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """Split the C-ordered grid ``shape`` into boxes of at most ``limit`` points whose rows
    are contiguous in the table: the axes before some axis d at one index each, axis d a
    range, the axes after it whole. Yields (first row, slices)."""
    for d in range(len(shape)):
        inner = math.prod(shape[d + 1:])
        if inner <= limit:
            break
    step = max(limit // inner, 1)
    for outer in itertools.product(*(range(n) for n in shape[:d])):
        for lo in range(0, shape[d], step):
            hi = min(lo + step, shape[d])
            start = int(numpy.ravel_multi_index((*outer, lo, *(0,) * (len(shape) - d - 1)), shape))
            yield start, (*(slice(k, k + 1) for k in outer), slice(lo, hi), *(slice(None),) * (len(shape) - d - 1))


def _evaluate(out: numpy.ndarray, model: Model, settings: Settings, tp, ep, dp, batch, input_len, output_len,
              prompts, max_tpot_ms, max_ttft_ms) -> None:
    """Fill ``out`` (a box of the table, shaped ((tp, ep, dp) triples, batch, input_len,
    output_len)) for axes given as int64 arrays that broadcast to that shape. With dp > 1 the
    steps are those of the busiest attention-DP group (⌈batch/dp⌉ sequences), as in
    :func:`~mantile_core.estimate.estimate`."""
    context = input_len + output_len // 2  # estimate's default decode context
    group = group_batch(batch, dp)
    phases, serving = evaluate(model, settings, tp=tp, ep=ep, batch=group, input_len=input_len,
                               output_len=output_len, context=context, prompts=prompts, batch_prefill=False, dp=dp)
    memory = memory_figures(model, settings.hardware, phases, group)
    memory["max_batch"] = numpy.where(memory["max_batch"] >= 0, memory["max_batch"] * dp, memory["max_batch"])
    share = served_share(batch, dp)  # idle or uneven groups: per-GPU rates count real sequences
    out["tp"], out["ep"], out["dp"], out["devices"], out["batch"] = tp, ep, dp, tp * dp, batch
    out["input_len"], out["output_len"], out["context"] = input_len, output_len, context
    out["ttft_ms"] = ttft_ms = serving.ttft_s * 1e3
    out["tpot_ms"] = tpot_ms = serving.tpot_s * 1e3
    out["e2e_latency_ms"] = serving.e2e_s * 1e3
    out["throughput_tok_s_per_gpu"] = serving.throughput_tok_s_per_gpu * share
    out["output_tok_s_per_gpu"] = serving.output_tok_s_per_gpu * share
    out["tok_s_per_user"] = 1.0 / serving.tpot_s
    out["request_prefill_ms"] = phases.request_prefill.seconds_total * 1e3
    out["decode_ms"] = phases.decode.seconds_total * 1e3
    for key, value in memory.items():
        out[key] = value
    ok = memory["fits"]
    if max_tpot_ms is not None:
        ok = ok & (tpot_ms <= max_tpot_ms)
    if max_ttft_ms is not None:
        ok = ok & (ttft_ms <= max_ttft_ms)
    out["meets_slo"] = ok


def _check_finite(table: numpy.ndarray) -> None:
    """InputError naming the first point with a NaN or infinite figure (a plugin's arithmetic
    out of range): the table, the report and --json / --csv never carry one."""
    for name in table.dtype.names:
        if table.dtype[name].kind != "f":
            continue
        bad = numpy.flatnonzero(~numpy.isfinite(table[name]))
        if len(bad):
            row = table[bad[0]]
            raise InputError(
                f"sweep point {int(bad[0])} ({row['hardware']}, tp {row['tp']}, ep {row['ep']}, batch {row['batch']}, "
                f"input {row['input_len']}, output {row['output_len']}) has {name} = {row[name]}: out of the model's "
                "range; narrow the grid")


def _max_points(override: int | None) -> int:
    return max_points(override)


def _exact_ints(value: Any) -> Iterator[int]:
    """Every integer figure in a cost, a phase or a dict of them."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _exact_ints(item)
    elif isinstance(value, (int, numpy.integer)) and not isinstance(value, bool):
        yield int(value)
    elif isinstance(value, numpy.ndarray) and value.dtype.kind in "iu":
        yield from (int(v) for v in value.ravel())


def _check_int64(model: Model, settings: Settings, valid, batch: int, input_len: int, output_len: int) -> None:
    """Refuse a grid whose largest point (largest batch and lengths, at each (tp, ep) pair) has
    an exact figure of INT64_HEADROOM or more, costed in Python ints first: the sweep's int64
    arrays would otherwise wrap silently. Every figure grows with batch and lengths."""
    context = input_len + output_len // 2
    for tp, ep, dp in valid:
        group = group_batch(batch, dp)
        phases, _ = evaluate(model, settings, tp=int(tp), ep=int(ep), batch=group, input_len=input_len,
                             output_len=output_len, context=context, batch_prefill=False, dp=int(dp))
        figures = [memory_figures(model, settings.hardware, phases, group)]
        for phase in (phases.request_prefill, phases.decode, phases.final):
            figures += [attrs.asdict(cost) for cost in (*phase.costs, phase.total)]
        largest = max((abs(v) for f in figures for v in _exact_ints(f)), default=0)
        if largest >= INT64_HEADROOM:
            raise InputError(
                f"the sweep's largest point (tp {tp}, ep {ep}, dp {dp}, batch {batch:,}, input {input_len:,}, output "
                f"{output_len:,}) on {settings.hardware.name} has a figure of {largest:.3e}, beyond the 64-bit "
                "integers a sweep computes in: lower the largest batch or lengths (estimate computes it exactly)")


def sweep(
    model: Model | str,
    hardware: str | Iterable[str] = ("h100", "h200", "b200"),
    *,
    tp: Any = (1, 2, 4, 8),
    ep: Any = (1,),
    dp: Any = (1,),
    batch: Any = "1:1024",
    input_len: Any = (1024,),
    output_len: Any = (1024,),
    max_tpot_ms: float | None = None,
    max_ttft_ms: float | None = None,
    kv_policy: str | Iterable[str] | None = None,
    kv_block: int | None = None,
    kv_dtype: str | None = None,
    engine: str | None = None,
    prompts: int | None = None,
    dtype: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
    max_points: int | None = None,
) -> SweepResult:
    """Evaluate every deployment of the grid (see the module docstring) and return a
    :class:`SweepResult`. Axes take what :func:`parse_values` reads ("1:1024", [1, 2, 4], 8);
    ``hardware`` and ``kv_policy`` a name, a comma list or a list of names (None: each mask's
    default policy, or the engine's). ``kv_block``, ``kv_dtype``, ``engine``, ``prompts`` and
    ``dtype`` (the served dtype; None: vLLM's dtype=auto rule per accelerator) mean what they mean to :func:`~mantile_core.estimate.estimate`. ``progress(done, total)``
    is called after each chunk. A grid of more than ``max_points`` points (default
    ``MANTILE_MAX_POINTS``, else 5,000,000) is refused before any is evaluated, and so is one
    whose largest point has an exact figure beyond 64-bit integers."""
    import time

    started = time.perf_counter()
    if not hasattr(model, "unique_layers"):
        model = load_model(model)
    hw_names = [h.strip() for h in hardware.split(",")] if isinstance(hardware, str) else list(hardware)
    hw_names = [h for h in dict.fromkeys(hw_names) if h]
    if not hw_names:
        raise InputError("'hardware' must name at least one accelerator (see mantile hardware)")
    limit = _max_points(max_points)
    tps, eps, dps = parse_values("tp", tp, limit), parse_values("ep", ep, limit), parse_values("dp", dp, limit)
    batches = parse_values("batch", batch, limit)
    inputs, outputs = parse_values("input_len", input_len, limit), parse_values("output_len", output_len, limit)
    nominal = len(hw_names) * len(tps) * len(eps) * len(dps) * len(batches) * len(inputs) * len(outputs)
    if nominal > limit:
        raise InputError(f"the grid has {nominal:,} points (hardware × tp × ep × dp × batch × input × output), more than the "
                         f"{limit:,} a sweep evaluates: narrow an axis, or raise --max-points / MANTILE_MAX_POINTS")
    chunk = check_int("chunk", chunk)
    if prompts is not None:
        prompts = check_int("prompts", prompts)
        check_waves(prompts, min(batches))
    max_tpot_ms = None if max_tpot_ms is None else check_positive_float("max_tpot_ms", max_tpot_ms)
    max_ttft_ms = None if max_ttft_ms is None else check_positive_float("max_ttft_ms", max_ttft_ms)
    blocks: list[Settings] = []  # one per hardware and distinct KV-policy choice
    for hw in hw_names:
        seen = set()
        for name in _policy_names(kv_policy):
            settings = resolve_settings(model, hw, engine=engine, kv_policy=name, kv_block=kv_block, kv_dtype=kv_dtype,
                                        dtype=dtype)
            if _label(settings) not in seen:
                seen.add(_label(settings))
                blocks.append(settings)
    valid, dropped = _valid_parallelism(model, tps, eps, dps)
    total = len(valid) * len(batches) * len(inputs) * len(outputs) * len(blocks)
    if total > limit:
        raise InputError(f"the grid has {total:,} points, more than the {limit:,} a sweep evaluates: "
                         "narrow an axis, or raise --max-points / MANTILE_MAX_POINTS")
    if prompts is not None:  # the benchmark model loops over its waves: work grows with both
        waves = -(-prompts // min(batches))
        if total * waves > WAVE_POINTS_PER_POINT * limit:
            raise InputError(
                f"{total:,} points of benchmarks of up to {waves:,} waves ({prompts:,} prompts at batch {min(batches):,}) "
                f"is more work than {WAVE_POINTS_PER_POINT} waves × the {limit:,}-point limit: narrow the grid, give "
                "fewer prompts, or raise --max-points / MANTILE_MAX_POINTS")
    served = {}  # the model with its layers in each served dtype
    for settings in blocks:
        if settings.act_dtype not in served:
            served[settings.act_dtype] = served_model(model, settings.act_dtype)
        _check_int64(served[settings.act_dtype], settings, valid, max(batches), max(inputs), max(outputs))

    # each axis as a 4-d array along its own dimension: the cost functions broadcast, so a
    # quantity that depends on fewer axes (one request's prefill: tp, ep, input_len) is
    # computed once per combination of those axes only
    te = numpy.array(valid, dtype=numpy.int64).reshape(-1, 3)
    grid = (te[:, 0].reshape(-1, 1, 1, 1), te[:, 1].reshape(-1, 1, 1, 1), te[:, 2].reshape(-1, 1, 1, 1),
            numpy.array(batches, dtype=numpy.int64).reshape(1, -1, 1, 1),
            numpy.array(inputs, dtype=numpy.int64).reshape(1, 1, -1, 1),
            numpy.array(outputs, dtype=numpy.int64).reshape(1, 1, 1, -1))
    shape = (len(te), len(batches), len(inputs), len(outputs))
    per_block = math.prod(shape)
    table = numpy.empty(total, dtype=_table_dtype(blocks))
    for n, settings in enumerate(blocks):
        block_model = served[settings.act_dtype]
        block = table[n * per_block:(n + 1) * per_block]
        block["hardware"], block["kv_policy"], block["kv_dtype"] = settings.hardware.name, _label(settings), settings.kv_dtype.name
        block["dtype"] = settings.act_dtype.name
        for start, box in _boxes(shape, chunk):
            tp_, ep_, dp_, batch_, in_, out_ = (grid[0][box[0]], grid[1][box[0]], grid[2][box[0]], grid[3][:, box[1]],
                                                grid[4][:, :, box[2]], grid[5][:, :, :, box[3]])
            box_shape = (tp_.shape[0], batch_.shape[1], in_.shape[2], out_.shape[3])
            stop = start + math.prod(box_shape)
            _evaluate(block[start:stop].reshape(box_shape), block_model, settings, tp_, ep_, dp_, batch_, in_, out_,
                      prompts, max_tpot_ms, max_ttft_ms)
            if progress is not None:
                progress(n * per_block + stop, total)
    _check_finite(table)
    kv_policies: dict[str, dict[str, str]] = {}
    for settings in blocks:
        kv_policies.setdefault(_label(settings), {mask: p.name for mask, p in sorted(settings.policies.items())})
    return SweepResult(
        model=model.name,
        table=table,
        hardware=tuple(dict.fromkeys(b.hardware.name for b in blocks)),
        kv_policies=kv_policies,
        parallelism=tuple((int(a), int(b), int(c)) for a, b, c in valid),
        batch=batches,
        input_len=inputs,
        output_len=outputs,
        dropped=tuple(dropped),
        max_tpot_ms=None if max_tpot_ms is None else float(max_tpot_ms),
        max_ttft_ms=None if max_ttft_ms is None else float(max_ttft_ms),
        engine=engine,
        prompts=prompts,
        elapsed_s=time.perf_counter() - started,
    )
