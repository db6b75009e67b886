"""Fidelity of Mantile's serving estimates against InferenceMAX's GPT-OSS-120B measurements.

Reproduces benchmarks/FIDELITY.md and its figure: every row of the measurement file estimated
as ``mantile reconcile`` does (mean drawn lengths, 10·C prompts at concurrency C, the row's
engine profile), the error per GPU / engine and metric on all rows, on the rows the bundled
calibration was fitted on (benchmarks/calibrate.py, split seed 0) and on the held-out rows; the
GB200 disaggregated rows apart (never fitted); and the predicted decode step of one GPT-OSS-120B
attention layer on an H200 over batch 1–256 and context 1k–32k. The cross-validation of
benchmarks/crossval.py (``crossval.md``, when present) heads the file. Run from the repository root
(needs the three GPT-OSS plugins; matplotlib for the figure):

    .venv/bin/python benchmarks/fidelity.py                    # Markdown to stdout
    .venv/bin/python benchmarks/fidelity.py --write            # also FIDELITY.md, fidelity.png, fidelity_rows.csv
    .venv/bin/python benchmarks/fidelity.py --csv other.csv    # another file in the same format
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "inferencemax_gpt-oss-120b.csv"
GPUS = ("h100", "h200", "b200", "mi355x")
METRICS = ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu")
LABELS = {"tpot_ms": "TPOT", "ttft_ms": "TTFT", "throughput_tok_s_per_gpu": "throughput/GPU",
          "output_tok_s_per_gpu": "output/GPU"}


def mape(results, metric) -> float:
    return 100 * float(numpy.mean([abs(r.error(metric)) for r in results])) if results else float("nan")


def median_signed(results, metric) -> float:
    return 100 * float(numpy.median([r.error(metric) for r in results])) if results else float("nan")


def cell(results, metric) -> str:
    return f"{mape(results, metric):.1f} ({median_signed(results, metric):+.1f})"


def table(title: str, groups: dict, metrics=METRICS) -> list[str]:
    lines = [f"**{title}** — MAPE % (median signed error %)", "",
             "| group | rows | " + " | ".join(LABELS[m] for m in metrics) + " |",
             "|---|---:|" + "---:|" * len(metrics)]
    for name, rows in groups.items():
        if rows:
            lines.append(f"| {name} | {len(rows)} | " + " | ".join(cell(rows, m) for m in metrics) + " |")
    return lines + [""]


def split_table(fitted: dict, held: dict) -> list[str]:
    metrics = ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu")
    lines = ["**Fitted against held-out rows** (split seed 0: half of each GPU / engine group fits the "
             "calibration) — MAPE %", "",
             "| group | fitted rows | held-out rows | " + " | ".join(f"{LABELS[m]} fitted | {LABELS[m]} held out"
                                                                for m in metrics) + " |",
             "|---|---:|---:|" + "---:|---:|" * len(metrics)]
    for name in fitted:
        lines.append(f"| {name} | {len(fitted[name])} | {len(held[name])} | "
                     + " | ".join(f"{mape(fitted[name], m):.1f} | {mape(held[name], m):.1f}" for m in metrics) + " |")
    return lines + [""]


def attention_layer_table(hardware: str = "h200", engine: str = "vllm") -> list[str]:
    """Predicted decode step (µs) of one attention layer, full and sliding, TP1 (the same
    predictions benchmarks/attention_layer.py compares with a GPU's measurement)."""
    from attention_layer import BATCHES, CONTEXTS, predicted_us
    from mantile_core import estimate, load_model

    predicted = predicted_us(hardware, engine)
    model = load_model("gpt-oss-120b")
    est = estimate(model, hardware, tp=1, batch=1, input_len=CONTEXTS[0], output_len=2, engine=engine)
    hw, cal = est.hardware, est.hardware.calibration
    kernels = next(c.kernels for (layer, _), c in zip(model.unique_layers, est.decode.costs) if layer.kind == "attention")
    lines = [f"**One GPT-OSS-120B attention layer, decode step on {hardware.upper()} ({engine}, TP1, "
             f"{est.kv_dtype} KV)** — predicted µs; kernel overhead {cal.kernel_overhead * 1e6:.2f} µs × "
             f"{kernels} kernels, HBM {hw.hbm_bandwidth / 1e12:.2f} TB/s × {cal.memory_efficiency:.3f}", ""]
    for name in ("sliding", "full"):
        lines += [f"{name} layers:", "", "| batch \\ context | " + " | ".join(f"{c // 1024}k" for c in CONTEXTS) + " |",
                  "|---:|" + "---:|" * len(CONTEXTS)]
        for batch in BATCHES:
            lines.append(f"| {batch} | " + " | ".join(f"{predicted[(name, batch, c)]:.0f}" for c in CONTEXTS) + " |")
        lines.append("")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default=str(DATA), help="measurement file (default the shared InferenceMAX file)")
    parser.add_argument("--seed", type=int, default=0, help="split seed the calibration was fitted on (default 0)")
    parser.add_argument("--write", action="store_true", help="write FIDELITY.md, fidelity.png and fidelity_rows.csv here")
    args = parser.parse_args(argv)

    from mantile_core import load_model
    from mantile_core.reconcile import read_measurements, reconcile, split_rows, write_rows_csv

    measurements = read_measurements(args.csv)
    results = reconcile(measurements, load_model("gpt-oss-120b"))
    aggregated = [r for r in results if not r.measurement.disaggregated]
    disaggregated = [r for r in results if r.measurement.disaggregated]
    fitted_keys = split_rows([r.measurement for r in aggregated], seed=args.seed)

    by_group: dict[str, list] = {}
    for r in aggregated:
        by_group.setdefault(r.measurement.group, []).append(r)
    by_gpu = {gpu: [r for r in aggregated if r.measurement.hardware == gpu] for gpu in GPUS}
    by_gpu["all (H100, H200, B200, MI355X)"] = aggregated
    fitted = {name: [r for r in rows if r.measurement.key in fitted_keys] for name, rows in by_group.items()}
    held = {name: [r for r in rows if r.measurement.key not in fitted_keys] for name, rows in by_group.items()}
    fitted["all"] = [r for r in aggregated if r.measurement.key in fitted_keys]
    held["all"] = [r for r in aggregated if r.measurement.key not in fitted_keys]

    lines = ["# Fidelity: GPT-OSS-120B against InferenceMAX", "",
             f"Generated by `benchmarks/fidelity.py` from `{Path(args.csv).name}` ({len(results)} rows). Each "
             "row is estimated as `mantile reconcile` does: mean drawn lengths (0.9 × nominal), "
             "10 × C prompts at concurrency C, the row's engine profile (vllm, trtllm, atom). Errors are "
             "predicted / measured − 1.", ""]
    crossval = HERE / "crossval.md"
    if crossval.is_file():  # the headline: regimes held out whole (benchmarks/crossval.py)
        lines += ["## Generalisation: cross-validation (headline)", "", crossval.read_text().strip(), ""]
    kernels = HERE / "KERNEL_FIDELITY.md"
    if kernels.is_file():  # per kernel, held out by model (benchmarks/kernel_fidelity.py)
        summary = [line for line in kernels.read_text().splitlines() if line.startswith("**All held-out rows**")]
        lines += ["## Per kernel, held out by model", "",
                  "Mantile's kernel times against aiconfigurator-core's measured production kernels for the shapes of "
                  "the bundled models, each model's shapes held out of the kernel fit (H100, H200, B200 vLLM; B200 "
                  "TensorRT-LLM; tables in `KERNEL_FIDELITY.md`): " + (summary[0] if summary else ""), ""]
    if crossval.is_file():
        lines += ["## Inside the measured grid: the bundled calibration (random half-split; secondary)", ""]
    lines += table("Per GPU, all aggregated rows", by_gpu)
    lines += table("Per GPU and engine, all aggregated rows", by_group)
    lines += split_table(fitted, held)
    lines += table("GB200, disaggregated (Dynamo + TensorRT-LLM; recovered topology; never fitted: "
                   "B200 TensorRT-LLM calibration)", {"gb200 trtllm disagg": disaggregated})
    lines += attention_layer_table()
    text = "\n".join(lines)
    print(text)
    if args.write:
        from mantile_core.reconcile import plot_rows

        (HERE / "FIDELITY.md").write_text(text + "\n")
        write_rows_csv(results, HERE / "fidelity_rows.csv", fitted=fitted_keys)
        plot_rows(results, HERE / "fidelity.png")
        print(f"\nwrote {HERE / 'FIDELITY.md'}, {HERE / 'fidelity_rows.csv'}, {HERE / 'fidelity.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
