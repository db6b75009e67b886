"""Cross-validation of the serving calibration: leave a whole regime out, and no serving data.

For each split the engine step overhead and the serving-level parameters of
benchmarks/calibrate.py are refitted on the rows of the regimes kept (same families, bounds and priors; fewer Nelder–Mead starts, ``--starts``)
and every held-out row is predicted; the table gives the MAPE of TPOT, TTFT and throughput per
GPU over the held-out rows. Splits (single-node rows only):

- leave-one-length-out: each of 1k/1k, 1k/8k, 8k/1k held out in turn;
- leave-concurrency-out: concurrency ≥ 64 held out (fit on ≤ 32), and the reverse;
- leave-TP-out: TP 1–2 held out (fit on TP ≥ 4), and the reverse;
- no serving data: no row of the GPU fitted; kernel-level figures from the measured kernel
  tables (``mantile_core/data/kernels.toml``, benchmarks/kernel_fit.py), the serving-level ones
  at the engine defaults (calibrate.py's ``ENGINE_DEFAULTS``: request overhead 20 ms, front end
  1 µs per prompt token, host launch 20 µs per kernel, attention-DP hold 10 steps) and the
  engine's step overhead fitted on the other GPUs' rows (leave-one-GPU-out; TensorRT-LLM, run on
  B200 only, keeps the 0.1 ms default), for the GPUs the tables cover;
(The random half-split of the bundled calibration, the secondary line, is in FIDELITY.md's
fitted / held-out table.)

Writes ``benchmarks/crossval.md`` (read into FIDELITY.md by benchmarks/fidelity.py) and
``mantile_core/data/uncertainty.toml`` (the per-GPU, per-regime errors the estimate's
uncertainty bands come from; docs/json.md). Run from the repository root (tens of minutes; the
families can run in parallel and be merged):

    .venv/bin/python benchmarks/crossval.py --write
    for f in hopper b200 mi355x; do .venv/bin/python benchmarks/crossval.py --family $f --json /tmp/cv_$f.json & done; wait
    .venv/bin/python benchmarks/crossval.py --merge /tmp/cv_*.json --write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attrs
import numpy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calibrate  # noqa: E402

GPUS = ("h100", "h200", "b200", "mi355x")
METRICS = ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu")
LABELS = {"tpot_ms": "TPOT", "ttft_ms": "TTFT", "throughput_tok_s_per_gpu": "throughput/GPU"}
LENGTHS = {"1k/1k": (1024, 1024), "1k/8k": (1024, 8192), "8k/1k": (8192, 1024)}
# split name -> (regime class it holds out, predicate on a Measurement: True = held out)
SPLITS = {
    "leave 1k/1k out": ("length 1k/1k", lambda m: (m.isl, m.osl) == LENGTHS["1k/1k"]),
    "leave 1k/8k out": ("length 1k/8k", lambda m: (m.isl, m.osl) == LENGTHS["1k/8k"]),
    "leave 8k/1k out": ("length 8k/1k", lambda m: (m.isl, m.osl) == LENGTHS["8k/1k"]),
    "leave concurrency >= 64 out": ("concurrency high", lambda m: m.concurrency >= 64),
    "leave concurrency <= 32 out": ("concurrency low", lambda m: m.concurrency <= 32),
    "leave TP 1-2 out": ("tp low", lambda m: (m.tp or 1) <= 2),
    "leave TP >= 4 out": ("tp high", lambda m: (m.tp or 1) >= 4),
}


def mape(pred, measured, mask):
    return 100 * float(numpy.mean(numpy.abs(pred[mask] / measured[mask] - 1))) if mask.any() else float("nan")


def held_errors(groups, predictions, held):
    """{gpu: {metric: MAPE}} over the held-out rows, and the per-row errors."""
    out = {}
    for gpu in GPUS:
        per = {m: [] for m in METRICS}
        for key, group in groups.items():
            if key[0] != gpu or key not in predictions:
                continue
            mask = held[key]
            for metric in METRICS:
                per[metric] += list(numpy.abs(predictions[key][metric][mask] / group.measured[metric][mask] - 1))
        out[gpu] = {m: (100 * float(numpy.mean(v)) if v else float("nan")) for m, v in per.items()}
        out[gpu]["rows"] = len(per["tpot_ms"])
    return out


def fit_and_predict(groups, fitted_keys, families):
    # the engine-level step overhead first, on the kept rows of every GPU the tables cover,
    # then the families with it in place
    calibrate.with_engine_steps(groups, calibrate.fit_engines(groups, fitted_keys=fitted_keys))
    predictions = {}
    for family in families:
        values, _ = calibrate.fit_family(family, groups, fitted_keys=fitted_keys, verbose=False)
        for key, group in groups.items():
            if any(key in scopes for scopes in family.values()):
                predictions[key] = group.predict(calibrate.calibration_for(family, values, group))
    return predictions


def no_serving_predictions(groups):
    """Each GPU the kernel tables cover, predicted with no row of its own fitted: its kernel
    tables, the engine defaults, and the engine's step overhead fitted on the other GPUs'
    rows (step overhead and request figures; ENGINE_DEFAULTS and the Calibration default
    where no other GPU runs the engine)."""
    predictions, left_out = {}, {}
    for key, group in groups.items():
        if calibrate.table_calibration(key) is None:
            continue
        if key[0] not in left_out:  # one fit per GPU left out, whichever of its engines asks
            left_out[key[0]] = calibrate.fit_engines(groups, leave_out_gpu=key[0])
        predictions[key] = group.predict(calibrate.table_calibration(key, left_out[key[0]].get(key[1])))
    return predictions


def fmt(x):
    return "–" if x != x else f"{x:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=2, help="Nelder–Mead starts per fit (calibrate uses 6)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--family", default=None, help="one family only; with --json, to run families in parallel")
    parser.add_argument("--json", default=None, help="write the raw results of this run to a JSON file")
    parser.add_argument("--merge", nargs="*", default=None, help="merge --json files of single-family runs")
    args = parser.parse_args(argv)
    calibrate.STARTS = args.starts
    if args.merge:
        return report(merge(args.merge), args.write)

    from mantile_core import load_model
    from mantile_core.reconcile import read_measurements

    model = load_model("gpt-oss-120b")
    measurements = [m for m in read_measurements(calibrate.DATA) if not m.disaggregated]
    by_group: dict = {}
    for m in measurements:
        by_group.setdefault((m.hardware, m.engine), []).append(m)
    families = [f for name, f in calibrate.FAMILIES.items() if args.family in (None, name)]
    wanted = {key for f in families for scopes in f.values() for key in scopes}
    # the family's groups, and every group the kernel tables cover: the engine stage fits each
    # engine over all of its GPUs (and no-serving-data leaves one GPU out of that), so a run of
    # one family gives what the run of every family gives
    groups = {key: calibrate.Group(ms, model) for key, ms in sorted(by_group.items())
              if key in wanted or calibrate.table_calibration(key) is not None}

    results = {}
    for name, (regime, held_out) in SPLITS.items():
        fitted_keys = {m.key for m in measurements if not held_out(m)}
        held = {key: numpy.array([held_out(m) for m in g.rows]) for key, g in groups.items()}
        predictions = fit_and_predict(groups, fitted_keys, families)
        results[name] = (regime, held_errors(groups, predictions, held))
        print(f"# {name}: " + "; ".join(f"{gpu} " + ", ".join(fmt(results[name][1][gpu][m]) for m in METRICS)
                                        for gpu in GPUS), file=sys.stderr)
    everything = {key: numpy.ones(len(g.rows), dtype=bool) for key, g in groups.items()}
    results["no serving data"] = ("no serving data", held_errors(groups, no_serving_predictions(groups), everything))
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({name: [regime, errs] for name, (regime, errs) in results.items()}))
        return 0
    return report(results, args.write)


def merge(paths) -> dict:
    """Join single-family runs: per split, each GPU's errors from the run that had its rows."""
    import json

    results: dict = {}
    for path in paths:
        for name, (regime, errs) in json.loads(Path(path).read_text()).items():
            entry = results.setdefault(name, (regime, {}))
            for gpu, e in errs.items():
                if e.get("rows"):
                    entry[1][gpu] = e
    for name, (regime, errs) in results.items():
        for gpu in GPUS:
            errs.setdefault(gpu, {"rows": 0, **{m: float("nan") for m in METRICS}})
    return results


def pooled(errs: dict) -> dict:
    """{metric: MAPE} over the held-out rows of every GPU together (each GPU's MAPE weighted by its
    rows: a MAPE is a mean over rows), and ``rows``; NaN where no GPU has held-out rows."""
    have = [g for g in GPUS if errs[g]["rows"] and errs[g]["tpot_ms"] == errs[g]["tpot_ms"]]
    rows = sum(errs[g]["rows"] for g in have)
    out = {m: sum(errs[g][m] * errs[g]["rows"] for g in have) / rows if rows else float("nan") for m in METRICS}
    return out | {"rows": rows}


def report(results: dict, write: bool) -> int:

    lines = ["**Cross-validation: held-out MAPE %, per GPU and over all single-node rows** (each split refits "
             "the serving calibration on the rows it keeps and predicts the rows it leaves out; `benchmarks/crossval.py`)", "",
             "| split | " + " | ".join(f"{gpu.upper()} TPOT / TTFT / thr." for gpu in GPUS) + " | all rows TPOT / TTFT / thr. |",
             "|---|" + "---:|" * (len(GPUS) + 1)]

    def cell(e):
        return "–" if e["rows"] == 0 or e["tpot_ms"] != e["tpot_ms"] else \
            " / ".join(fmt(e[m]) for m in METRICS) + f" ({e['rows']})"

    for name, (_, errs) in results.items():
        lines.append(f"| {name} | " + " | ".join(cell(errs[gpu]) for gpu in GPUS) + f" | {cell(pooled(errs))} |")
    regime_splits = [n for n in SPLITS]
    worst = {m: max(results[n][1][g][m] for n in regime_splits for g in GPUS
                    if results[n][1][g]["rows"] and results[n][1][g][m] == results[n][1][g][m]) for m in METRICS}
    worst_all = {m: max(pooled(results[n][1])[m] for n in regime_splits) for m in METRICS}
    lines += ["", "Worst leave-regime-out split, all single-node rows held out together: "
              + ", ".join(f"{LABELS[m]} {worst_all[m]:.1f} %" for m in METRICS) + ". "
              "Worst over GPUs and splits, each GPU apart: "
              + ", ".join(f"{LABELS[m]} {worst[m]:.1f} %" for m in METRICS) + "."]
    ns = results["no serving data"][1]
    lines += ["No serving data (kernel tables + engine defaults): "
              + "; ".join(f"{g.upper()} TPOT {fmt(ns[g]['tpot_ms'])} %, TTFT {fmt(ns[g]['ttft_ms'])} %, "
                          f"throughput {fmt(ns[g]['throughput_tok_s_per_gpu'])} %" for g in ("h100", "h200", "b200")) + ".", ""]
    text = "\n".join(lines)
    print(text)
    if write:
        (HERE / "crossval.md").write_text(text + "\n")
        out = ["# Cross-validated MAPE (%) per GPU, regime and metric: the uncertainty bands of an estimate",
               "# (docs/json.md). Written by benchmarks/crossval.py; do not edit by hand. `no_serving_data` applies",
               "# to GPUs without serving measurements (the largest of H100 / H200 / B200).", ""]
        for gpu in GPUS:
            out.append(f"[{gpu}]")
            for name, (regime, errs) in results.items():
                if regime in ("random", "no serving data") or not errs[gpu]["rows"]:
                    continue
                vals = ", ".join(f"{m} = {errs[gpu][m]:.2f}" for m in METRICS if errs[gpu][m] == errs[gpu][m])
                out.append(f'"{regime}" = {{ {vals} }}')
            out.append("")
        out.append("[no_serving_data]")
        vals = ", ".join(f"{m} = {max(ns[g][m] for g in ('h100', 'h200', 'b200') if ns[g][m] == ns[g][m]):.2f}"
                         for m in METRICS)
        out.append(f'"all" = {{ {vals} }}')
        (HERE.parent / "mantile_core" / "data" / "uncertainty.toml").write_text("\n".join(out) + "\n")
        print("wrote benchmarks/crossval.md, mantile_core/data/uncertainty.toml", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
