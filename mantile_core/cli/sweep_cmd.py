"""``mantile sweep``: every deployment over a grid of hardware × tp × ep × batch × lengths;
prints the Pareto frontier of throughput per GPU against tokens/s per user for each
accelerator and the best configuration under the SLOs.

Axes take integers, comma lists and ranges: ``1:1024`` (every integer), ``1:1024:x2``
(powers of two), ``64:512:64`` (a step). ``--json`` / ``--csv`` write every evaluated point
(to stdout, or to FILE); ``--plot FILE.png`` draws the frontiers (needs matplotlib:
pip install './[plot]' from the Mantile checkout).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import InputError
from ..limits import DEFAULT_MAX_POINTS
from ..outputs import atomic_output, atomic_path, check_outputs, model_inputs
from .args import bounded_int, positive_float
from .estimate_cmd import DEFAULT_MODEL, DTYPE_HELP, ENGINE_HELP, KV_DTYPE_HELP, report_warnings
from .render import bytes_h, print_table, sig

DEFAULT_HARDWARE = "h100,h200,b200"
PROGRESS_MIN_POINTS = 500_000  # show a progress bar only for sweeps at least this long


def register(sub) -> None:
    p = sub.add_parser("sweep", help="sweep deployments; Pareto frontier and best under SLOs",
                       description=__doc__.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"bundled name or config.json path (default {DEFAULT_MODEL})")
    p.add_argument("--hardware", default=DEFAULT_HARDWARE, help=f"comma list of accelerators (default {DEFAULT_HARDWARE})")
    p.add_argument("--tp", default="1,2,4,8", help="tensor-parallel degrees (default 1,2,4,8)")
    p.add_argument("--ep", default="1", help="expert-parallel degrees; pairs with tp that the model cannot split are dropped (default 1)")
    p.add_argument("--dp", default="1", help="attention data-parallel degrees (dp groups of tp GPUs; --ep then divides "
                                             "tp*dp), default 1")
    p.add_argument("--batch", default="1:1024", help="concurrent sequences (default 1:1024, every integer)")
    p.add_argument("--input-len", default="1024", help="prompt tokens (default 1024)")
    p.add_argument("--output-len", default="1024", help="generated tokens (default 1024)")
    p.add_argument("--max-tpot-ms", type=positive_float, default=None, help="SLO: time per output token at most this (ms)")
    p.add_argument("--max-ttft-ms", type=positive_float, default=None, help="SLO: time to first token at most this (ms)")
    p.add_argument("--kv-policy", default=None, help="KV-cache policy, or a comma list to sweep (ring, paged, full)")
    p.add_argument("--kv-block", type=bounded_int("kv_block"), default=None, help="paged KV block in tokens (default 16, or the engine's)")
    p.add_argument("--dtype", default=None, help=DTYPE_HELP)
    p.add_argument("--kv-dtype", default=None, help=KV_DTYPE_HELP)
    p.add_argument("--engine", default=None, help=ENGINE_HELP)
    p.add_argument("--prompts", type=bounded_int("prompts"), default=None,
                   help="report a benchmark of N prompts per point, as estimate --prompts (default: steady state)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write the summary and every evaluated point as JSON (stdout when no FILE)")
    p.add_argument("--csv", nargs="?", const="-", default=None, metavar="FILE",
                   help="write every evaluated point as CSV (stdout when no FILE)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw the frontiers (needs matplotlib)")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing --json / --csv / --plot files (never the command's own inputs)")
    p.add_argument("--rows", type=bounded_int("rows"), default=12, help="frontier rows printed per accelerator (default 12; --json has all)")
    p.add_argument("--strict", action="store_true",
                   help="treat the warnings (lengths beyond the model's max_position_embeddings) as errors: exit 2")
    p.add_argument("--chunk", type=bounded_int("chunk"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--max-points", type=bounded_int("max_points", 1, 1 << 40), default=None, metavar="N",
                   help=f"refuse grids of more than N points (default MANTILE_MAX_POINTS, else {DEFAULT_MAX_POINTS:,})")
    p.set_defaults(run=run)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A ``progress(done, total)`` callback drawing a rich progress bar on stderr, started on
    the first call of a sweep of PROGRESS_MIN_POINTS or more; None when stderr is not a
    terminal."""
    if not enabled:
        yield None
        return
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if total < PROGRESS_MIN_POINTS:
            return
        if "bar" not in state:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            state["bar"] = Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                    console=Console(stderr=True), transient=True)
            state["bar"].start()
            state["task"] = state["bar"].add_task("sweep", total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def run(args) -> int:
    from ..model import load_model
    from ..sweep import DEFAULT_CHUNK, sweep

    if args.json == "-" and args.csv == "-":
        raise InputError("--json and --csv cannot both write to stdout: give one of them a FILE")
    check_outputs({"--json": args.json, "--csv": args.csv, "--plot": args.plot}, model_inputs(args.model),
                  force=args.force)
    model = load_model(args.model)
    if report_warnings(_length_warnings(model, args.input_len, args.output_len), args.strict):
        return 2
    show = sys.stderr.isatty()
    with _progress(show) as update:
        result = sweep(model, args.hardware, tp=args.tp, ep=args.ep, dp=args.dp, batch=args.batch, input_len=args.input_len,
                       output_len=args.output_len, max_tpot_ms=args.max_tpot_ms, max_ttft_ms=args.max_ttft_ms,
                       kv_policy=args.kv_policy, kv_block=args.kv_block, kv_dtype=args.kv_dtype, engine=args.engine,
                       prompts=args.prompts, dtype=args.dtype, chunk=args.chunk or DEFAULT_CHUNK, progress=update,
                       max_points=args.max_points)
    if args.json:
        with atomic_output(args.json, flag="--json") as handle:
            result.write_json(handle)
    if args.csv:
        with atomic_output(args.csv, flag="--csv") as handle:
            result.write_csv(handle)
    if args.plot:
        plot_frontiers(result, args.plot)
    if "-" not in (args.json, args.csv):
        print_report(result, args.rows)
    return 0


def _length_warnings(model, input_len, output_len) -> list[str]:
    """The estimate's length warning for the longest request of the grid (one line at most)."""
    from ..plausibility import length_warnings
    from ..sweep import parse_values

    if not model.config.get("max_position_embeddings"):
        return []
    longest_in, longest_out = max(parse_values("input_len", input_len)), max(parse_values("output_len", output_len))
    return [text.replace("input_len + output_len", "the longest input_len + output_len", 1)
            for text in length_warnings(model.name, model.config.max_position_embeddings, longest_in, longest_out)]


def _grid_line(result) -> str:
    axes = [f"{len(result.hardware)} hardware"]
    if len(result.kv_policies) > 1:
        axes.append(f"{len(result.kv_policies)} KV policies")
    axes += [f"{len(result.parallelism)} (tp, ep, dp)", f"{len(result.batch)} batch",
             f"{len(result.input_len)} input_len", f"{len(result.output_len)} output_len"]
    rate = len(result) / result.elapsed_s if result.elapsed_s > 0 else float("inf")
    how = f", engine {result.engine}" if result.engine is not None else ""
    if result.prompts is not None:
        how += f", means over a benchmark of {result.prompts} prompts per point"
    if "dtype" in result.columns:
        import numpy

        how += f", weights and activations {'/'.join(numpy.unique(result['dtype']).tolist())}"
    return (f"{result.model}: {len(result):,} points ({' × '.join(axes)}{how}) in {result.elapsed_s:.2f} s "
            f"({rate:,.0f} points/s)")


def _slo_text(result) -> str:
    parts = []
    if result.max_tpot_ms is not None:
        parts.append(f"TPOT ≤ {result.max_tpot_ms:g} ms")
    if result.max_ttft_ms is not None:
        parts.append(f"TTFT ≤ {result.max_ttft_ms:g} ms")
    return ", ".join(parts) or "no SLO"


def _row_cells(row: dict, with_policy: bool) -> list[str]:
    cells = [sig(row["tok_s_per_user"]), sig(row["throughput_tok_s_per_gpu"]),
             sig(row["output_tok_s_per_gpu"]), sig(row["tpot_ms"]), sig(row["ttft_ms"]),
              str(row["tp"]), str(row["ep"]), str(row["dp"]), str(row["batch"]), str(row["input_len"]), str(row["output_len"])]
    if with_policy:
        cells.append(f"{row['kv_policy']} {row['kv_dtype']}")
    cells.append(f"{bytes_h(row['total_bytes'])} / {bytes_h(row['capacity_bytes'])}")
    return cells


HEADERS = ["tok/s/user", "tok/s/GPU", "out tok/s/GPU", "TPOT ms", "TTFT ms", "tp", "ep", "dp", "batch", "in", "out"]


def _thin(indices, rows: int):
    """At most ``rows`` indices spread evenly along the frontier (ends kept)."""
    import numpy

    if rows == 0 or len(indices) <= rows:
        return indices if rows else indices[:0]
    keep = numpy.unique(numpy.linspace(0, len(indices) - 1, rows).round().astype(int))
    return indices[keep]


def print_report(result, rows: int) -> None:
    """The human report: grid and counts, dropped pairs, one frontier table per accelerator,
    the best configuration under the SLOs."""
    import numpy

    with_policy = len(result.kv_policies) > 1 or len(numpy.unique(result["kv_dtype"])) > 1
    fits = int(result["fits"].sum())
    slo = int(result["meets_slo"].sum())
    print(_grid_line(result))
    if result.max_tpot_ms is None and result.max_ttft_ms is None:
        print(f"{fits:,} fit in memory (no SLO given: --max-tpot-ms, --max-ttft-ms)")
    else:
        print(f"{fits:,} fit in memory; {slo:,} fit and meet {_slo_text(result)}")
    for tp, ep, dp, why in result.dropped:
        print(f"dropped tp {tp} ep {ep}" + (f" dp {dp}" if dp > 1 else "") + f": {why}")
    headers = HEADERS + (["KV cache"] if with_policy else []) + ["memory / capacity"]
    for hw in result.hardware:
        front = result.frontier(hw)
        if not len(front):
            print(f"{hw}: no configuration fits")
            continue
        shown = _thin(front, rows)
        if not len(shown):
            continue
        note = f" ({len(shown)} of {len(front)} points)" if len(shown) < len(front) else ""
        print_table(f"{hw}: Pareto frontier, throughput per GPU vs tokens/s per user{note}", headers,
                    [_row_cells(result.row(i), with_policy) for i in shown], right=[True] * len(headers))
    best_rows = []
    for hw in result.hardware:
        index = result.best(hw)
        if index is not None:
            best_rows.append(result.row(index))
    if not best_rows:
        print(f"no configuration fits and meets {_slo_text(result)}")
        return
    best_rows.sort(key=lambda r: -r["throughput_tok_s_per_gpu"])
    print_table(f"best per accelerator under {_slo_text(result)} (most tokens/s per GPU first)",
                ["hardware"] + headers, [[r["hardware"]] + _row_cells(r, with_policy) for r in best_rows])


def plot_frontiers(result, path: str) -> None:
    """Frontier of each accelerator (throughput per GPU against tokens/s per user), the best
    point under the SLOs starred, the TPOT SLO as a vertical line; written to ``path``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        from ..install_hints import install_hint

        raise InputError(f"--plot needs matplotlib: {install_hint('mantile-core', extra='plot')}") from None
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for hw in result.hardware:
        front = result.frontier(hw)
        if not len(front):
            continue
        t = result.table[front]
        (line,) = ax.plot(t["tok_s_per_user"], t["throughput_tok_s_per_gpu"],
                         marker="." if len(t) <= 60 else None, label=hw)
        best = result.best(hw)
        if best is not None:
            r = result.table[best]
            ax.plot([r["tok_s_per_user"]], [r["throughput_tok_s_per_gpu"]], marker="*", markersize=14,
                    color=line.get_color(), markeredgecolor="black", linestyle="none")
    if result.max_tpot_ms is not None:
        ax.axvline(1000.0 / result.max_tpot_ms, color="grey", linestyle="--",
                   label=f"TPOT {result.max_tpot_ms:g} ms")
    ax.set_xlabel("tokens/s per user (1 / TPOT)")
    ax.set_ylabel("throughput per GPU (input + output tokens/s)")
    ax.set_title(f"{result.model}: Pareto frontiers (★ best under {_slo_text(result)})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    with atomic_path(path, flag="--plot") as temp:
        fig.savefig(temp, dpi=120, format=_image_format(path))


def _image_format(path: str) -> str:
    """matplotlib's format for the file's extension (png when it has none it knows)."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return suffix if suffix in ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp") else "png"
