"""``mantile reconcile``: reading a measurement file, the recovered deployment facts, the
error table's arithmetic, the per-row CSV and plot, the command; and (with the GPT-OSS plugins
and the shared InferenceMAX file) the fidelity targets of issue #6."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy
import pytest

from mantile_core.cli import main
from mantile_core.reconcile import (
    Measurement,
    RowResult,
    disaggregated_topology,
    error_table,
    mean_length,
    read_measurements,
    split_rows,
    write_rows_csv,
)

HEADER = ["gpu_model", "framework", "precision", "input_seq_len", "output_seq_len", "tensor_parallel",
          "expert_parallel", "concurrency", "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
          "mean_time_to_first_token_sec", "p99_time_to_first_token_sec", "mean_time_per_output_token_sec",
          "mean_end_to_end_latency_sec", "median_end_to_end_latency_sec", "benchmark_date", "run_id"]
ROWS = [
    ["h200", "vllm", "fp4", 1024, 1024, "8.0", "1.0", 4, 263.0, 131.0, 0.0327, 0.05, 0.003677, 3.40, 3.4, "2026-01-02T22:24:09Z", 1],
    ["b200-trt", "trt", "fp4", 1024, 1024, "2.0", "1.0", 32, 6154.0, 3082.0, 0.0520, 0.1, 0.005016, 4.68, 4.7, "2026-01-07T15:36:44Z", 2],
    ["b200-trt", "trt", "fp4", 1024, 1024, "2.0", "1.0", 32, 7015.0, 3513.0, 0.1224, 0.2, 0.004318, 4.11, 4.1, "2025-12-17T15:55:33Z", 3],
    ["b200-trt", "trt", "fp4", 1024, 1024, "2.0", "2.0", 64, 10610.0, 5304.0, 0.1408, 0.2, 0.005661, 5.36, 5.4, "2026-01-07T15:36:44Z", 4],
    ["gb200", "dynamo-trt", "fp4", 8192, 1024, "", "", 1, 513.0, 63.0, 0.107, 0.2, 0.001868, 1.80, 1.8, "2026-01-07T00:00:00Z", 5],
]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "inferencemax_gpt-oss-120b.csv"


@pytest.fixture
def measurement_file(tmp_path):
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def test_read_measurements(measurement_file):
    rows = read_measurements(measurement_file)
    assert len(rows) == 5
    h200 = rows[0]
    assert (h200.hardware, h200.engine, h200.tp, h200.ep, h200.concurrency) == ("h200", "vllm", 8, 1, 4)
    assert h200.measured("tpot_ms") == pytest.approx(3.677)
    assert h200.measured("ttft_ms") == pytest.approx(32.7)
    assert rows[1].hardware == "b200" and rows[1].engine == "trtllm"
    gb200 = rows[4]
    assert gb200.disaggregated and gb200.tp is None and gb200.group == "gb200 trtllm disagg"


def test_attention_dp_rows_are_recovered(measurement_file):
    rows = read_measurements(measurement_file)
    # of the duplicated key, the Dec-17 row with the higher TTFT; and every TRT row with EP > 1
    assert [m.attention_dp for m in rows] == [False, False, True, True, False]


def test_mean_lengths_of_the_drawn_distribution():
    # uniform in [0.8 L, L]: mean 0.9 L
    assert mean_length(1024) == 922
    assert mean_length(8192) == 7373
    assert mean_length(1000, range_ratio=0.5) == 750


def test_disaggregated_topology_table():
    def row(isl, conc):
        return Measurement("gb200", "dynamo-trt", "fp4", isl, 1024, None, None, conc, 1.0, 1.0, 1.0, 1.0, 1.0)

    assert disaggregated_topology(row(1024, 2560)) == (1, 4)
    assert disaggregated_topology(row(1024, 3072)) == (1, 12)
    assert disaggregated_topology(row(8192, 1)) == (1, 8)
    assert disaggregated_topology(row(8192, 64)) == (1, 4)
    assert disaggregated_topology(row(8192, 128)) == (2, 2)


def _fake(group_gpu, pred_over_meas):
    m = Measurement(group_gpu, "vllm", "fp4", 1024, 1024, 1, 1, 4, 100.0, 50.0, 0.1, 0.01, 1.0)
    predicted = {"tpot_ms": 10.0 * pred_over_meas, "ttft_ms": 100.0, "throughput_tok_s_per_gpu": 100.0,
                 "output_tok_s_per_gpu": 50.0}
    return RowResult(m, predicted, {})


def test_error_table_arithmetic():
    results = [_fake("h100", r) for r in (1.1, 0.8, 1.3)] + [_fake("h200", 1.0)]
    table = {(r["group"], r["metric"]): r for r in error_table(results)}
    h100 = table[("h100 vllm", "tpot_ms")]
    assert h100["n"] == 3
    assert h100["mape_pct"] == pytest.approx((10 + 20 + 30) / 3)
    assert h100["median_signed_pct"] == pytest.approx(10)
    assert table[("h200 vllm", "tpot_ms")]["mape_pct"] == pytest.approx(0)
    everything = table[("all aggregated", "tpot_ms")]
    assert everything["n"] == 4 and everything["mape_pct"] == pytest.approx(60 / 4)
    assert everything["median_signed_pct"] == pytest.approx(numpy.median([10, -20, 30, 0]))
    assert table[("all aggregated", "ttft_ms")]["mape_pct"] == pytest.approx(0)


def test_split_is_deterministic_and_halves_each_group(measurement_file):
    rows = read_measurements(measurement_file)
    first, again = split_rows(rows, seed=0), split_rows(rows, seed=0)
    assert first == again
    by_group = {}
    for m in rows:
        by_group.setdefault(m.group, []).append(m.key in first)
    assert sum(by_group["b200 trtllm"]) == 2  # round(0.5 · 3)
    assert sum(by_group["h200 vllm"]) == 0  # round(0.5 · 1) = 0 (banker's rounding)


def test_rows_csv(tmp_path):
    results = [_fake("h100", 1.1)]
    path = tmp_path / "rows.csv"
    write_rows_csv(results, path, fitted={results[0].measurement.key})
    with path.open() as handle:
        row = next(csv.DictReader(handle))
    assert row["gpu_model"] == "h100" and row["fitted"] == "1"
    assert float(row["tpot_ms_measured"]) == pytest.approx(10.0)
    assert float(row["tpot_ms_predicted"]) == pytest.approx(11.0)
    assert float(row["tpot_ms_error_pct"]) == pytest.approx(10.0)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from mantile_core.reconcile import plot_rows

    path = tmp_path / "fidelity.png"
    plot_rows([_fake("h100", 1.1), _fake("h200", 0.9)], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reconcile_core_model(measurement_file, tmp_path, capsys):
    # the plumbing with a core MoE model (no plugin needed): every row gets a prediction
    rows_out = tmp_path / "out.csv"
    assert main(["reconcile", str(measurement_file), "--model", "qwen3-30b-a3b", "--rows", str(rows_out),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    groups = {r["group"] for r in doc["tables"]["all rows"]}
    assert {"h200 vllm", "b200 trtllm", "gb200 trtllm disagg", "all aggregated"} <= groups
    assert next(r["n"] for r in doc["tables"]["all rows"] if r["group"] == "all aggregated") == 4
    with rows_out.open() as handle:
        assert len(list(csv.DictReader(handle))) == 5


def test_cli_reconcile_missing_file(capsys):
    assert main(["reconcile", "/nonexistent/rows.csv"]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_reconcile_missing_column(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("gpu_model,framework\nh100,vllm\n")
    assert main(["reconcile", str(path)]) == 2
    assert "lacks columns" in capsys.readouterr().err


# ---- the fidelity targets (issue #6), on the shared InferenceMAX file --------------------

@pytest.fixture(scope="module")
def inferencemax():
    pytest.importorskip("mantile_gpt_oss_attention")
    pytest.importorskip("mantile_swa_cache")
    pytest.importorskip("mantile_rope_yarn")
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} not present")
    from mantile_core.plugins import reset_plugin_manager
    from mantile_core.reconcile import reconcile

    reset_plugin_manager()
    rows = read_measurements(SHARED)
    return rows, reconcile(rows)


def _mape(results, metric):
    return 100 * float(numpy.mean([abs(r.error(metric)) for r in results]))


def test_fidelity_targets(inferencemax):
    rows, results = inferencemax
    aggregated = [r for r in results if not r.measurement.disaggregated]
    assert len(aggregated) == 236
    assert _mape(aggregated, "tpot_ms") <= 15
    assert _mape(aggregated, "throughput_tok_s_per_gpu") <= 20
    assert _mape(aggregated, "ttft_ms") <= 35
    for gpu in ("h100", "h200", "b200", "mi355x"):
        assert _mape([r for r in aggregated if r.measurement.hardware == gpu], "tpot_ms") <= 25, gpu


def test_held_out_error_close_to_fitted(inferencemax):
    rows, results = inferencemax
    fitted = split_rows([m for m in rows if not m.disaggregated], seed=0)
    aggregated = [r for r in results if not r.measurement.disaggregated]
    inside = [r for r in aggregated if r.measurement.key in fitted]
    outside = [r for r in aggregated if r.measurement.key not in fitted]
    for metric in ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu"):
        assert abs(_mape(outside, metric) - _mape(inside, metric)) <= 5, metric
