"""``mantile reconcile CSV``: estimate every row of a measurement file and print the error
per GPU / engine and metric (MAPE and median signed error); optionally the per-row CSV and a
predicted-against-measured plot (PNG, needs matplotlib)."""

from __future__ import annotations

import csv
import sys

from ..outputs import atomic_output, atomic_path, check_outputs, model_inputs
from .render import print_json, print_table

MODEL_COLUMNS = ("model", "model_name", "model_id")


def model_note(path: str, model: str) -> str | None:
    """What the file says about the model its rows measured, when it is not plainly ``model``:
    "FILE has no model column: every row is taken as a measurement of MODEL (--model)", or
    the models its model column names when ``model`` is not among them (None otherwise)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        column = next((c for c in MODEL_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            return f"{path} has no model column: every row is taken as a measurement of {model} (--model)"
        named = sorted({(row.get(column) or "").strip() for row in reader} - {""})
    if any(name.lower().rsplit("/", 1)[-1] == model.lower().rsplit("/", 1)[-1] for name in named):
        others = [n for n in named if n.lower().rsplit("/", 1)[-1] != model.lower().rsplit("/", 1)[-1]]
        if not others:
            return None
    return f"{path}'s {column} column names {', '.join(named) or 'no model'}: every row is estimated as {model} (--model)"


def register(sub) -> None:
    p = sub.add_parser("reconcile", help="compare estimates with a file of serving measurements", description=__doc__.replace("``", ""))
    p.add_argument("csv", help="measurements in InferenceMAX's CSV format (e.g. shared/data/inferencemax_gpt-oss-120b.csv)")
    p.add_argument("--model", default="gpt-oss-120b",
                   help="model the rows measured (default gpt-oss-120b); a note on stderr says when the file has "
                        "no model column, or names other models in it")
    p.add_argument("--by", choices=("group", "hardware", "framework"), default="group",
                   help="group errors by hardware + engine (default), hardware or framework")
    p.add_argument("--split-seed", type=int, default=None,
                   help="also report the fitted and held-out aggregated rows apart, for the split with this seed "
                        "(the bundled calibration was fitted on seed 0)")
    p.add_argument("--rows", metavar="PATH", default=None, help="write the per-row CSV here")
    p.add_argument("--plot", metavar="PATH", default=None, help="write a log-log PNG of predicted against measured")
    p.add_argument("--json", action="store_true", help="print the error table as JSON")
    p.add_argument("--force", action="store_true", help="overwrite existing --rows / --plot files (never the inputs)")
    p.set_defaults(run=run)


def _table_rows(table):
    from ..reconcile import METRIC_LABELS, METRICS

    by_group: dict[str, dict[str, dict]] = {}
    for r in table:
        by_group.setdefault(r["group"], {})[r["metric"]] = r
    rows = []
    for group, metrics in by_group.items():
        n = next(iter(metrics.values()))["n"]
        rows.append([group, n] + [f"{metrics[m]['mape_pct']:.1f} ({metrics[m]['median_signed_pct']:+.1f})"
                                  for m in METRICS if m in metrics])
    return ["group", "rows"] + [f"{METRIC_LABELS[m]} MAPE % (median signed)" for m in METRICS], rows


def run(args) -> int:
    from ..model import load_model
    from ..reconcile import error_table, plot_rows, read_measurements, reconcile, split_rows, write_rows_csv

    check_outputs({"--rows": args.rows, "--plot": args.plot}, [args.csv, *model_inputs(args.model)],
                  force=args.force)
    measurements = read_measurements(args.csv)
    model = load_model(args.model)
    note = model_note(args.csv, model.name)
    if note:
        print(f"mantile: note: {note}", file=sys.stderr)
    results = reconcile(measurements, model)
    fitted = None
    sections = {"all rows": results}
    if args.split_seed is not None:
        aggregated = [r for r in results if not r.measurement.disaggregated]
        fitted = split_rows([r.measurement for r in aggregated], seed=args.split_seed)
        sections["fitted rows"] = [r for r in aggregated if r.measurement.key in fitted]
        sections["held-out rows"] = [r for r in aggregated if r.measurement.key not in fitted]
    tables = {name: error_table(rows, by=args.by) for name, rows in sections.items() if rows}
    if args.rows:
        with atomic_output(args.rows, flag="--rows") as handle:
            write_rows_csv(results, handle, fitted=fitted)
    if args.plot:
        with atomic_path(args.plot, flag="--plot") as temp:
            plot_rows(results, temp)
    if args.json:
        print_json({"tables": tables})
        return 0
    for name, table in tables.items():
        columns, rows = _table_rows(table)
        print_table(f"{args.model}: predicted vs measured, {name}", columns, rows, right=[False] + [True] * (len(columns) - 1))
    return 0
