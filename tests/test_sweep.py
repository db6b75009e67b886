"""``sweep``: every point equals ``estimate`` of that deployment; grid, SLOs, frontier, CLI."""

from __future__ import annotations

import csv
import json

import numpy
import pytest

import mantile_core
from mantile_core.cli import main
from mantile_core.errors import InputError, ParallelismError
from mantile_core.sweep import parse_values, pareto_front

INT_KEYS = ("tp", "ep", "devices", "batch", "input_len", "output_len", "context", "weight_bytes", "kv_cache_bytes",
            "activation_bytes", "rope_table_bytes", "total_bytes", "capacity_bytes", "kv_cache_bytes_per_sequence",
            "max_batch")
FLOAT_KEYS = ("ttft_ms", "tpot_ms", "e2e_latency_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu",
              "tok_s_per_user", "request_prefill_ms", "decode_ms")
REL = 1e-12


def estimate_row(model, row: dict, kv_policy=None, kv_dtype=None, max_tpot_ms=None, max_ttft_ms=None,
                 **options) -> dict:
    """What ``estimate`` says of the deployment in ``row``, in the sweep's column names."""
    result = mantile_core.estimate(model, row["hardware"], tp=row["tp"], ep=row["ep"], batch=row["batch"],
                                   input_len=row["input_len"], output_len=row["output_len"], kv_policy=kv_policy,
                                   kv_dtype=kv_dtype, **options)
    doc = result.to_dict()
    out = {key: doc[key] for key in ("tp", "ep", "devices", "batch", "input_len", "output_len", "context", "ttft_ms",
                                      "tpot_ms", "e2e_latency_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu")}
    out |= doc["memory"]
    out["max_batch"] = -1 if out["max_batch"] is None else out["max_batch"]
    out["tok_s_per_user"] = 1000.0 / doc["tpot_ms"]
    out["decode_ms"] = doc["decode"]["time_ms"]
    out["request_prefill_ms"] = float(result.request_prefill.seconds_total) * 1e3
    meets = out["fits"]
    if max_tpot_ms is not None:
        meets = meets and doc["tpot_ms"] <= max_tpot_ms
    if max_ttft_ms is not None:
        meets = meets and doc["ttft_ms"] <= max_ttft_ms
    out["meets_slo"] = meets
    out["kv_policy"] = doc["kv_policy"]
    out["kv_dtype"] = doc["kv_dtype"]
    return out


def assert_sweep_matches_estimate(model, result, samples: int, seed: int, kv_dtype=None, **options) -> None:
    rng = numpy.random.default_rng(seed)
    for index in rng.choice(len(result), size=min(samples, len(result)), replace=False):
        row = result.row(int(index))
        policies = result.kv_policies[row["kv_policy"]]
        ref = estimate_row(model, row, kv_policy=policies.get("sliding"), kv_dtype=kv_dtype,
                           max_tpot_ms=result.max_tpot_ms, max_ttft_ms=result.max_ttft_ms, **options)
        where = f"{model.name} {row['hardware']} tp {row['tp']} ep {row['ep']} batch {row['batch']} " \
                f"in {row['input_len']} out {row['output_len']} kv {row['kv_policy']}"
        assert ref["kv_policy"] == policies and ref["kv_dtype"] == row["kv_dtype"], where
        for key in INT_KEYS:
            assert row[key] == ref[key], f"{key} at {where}"
        for key in ("fits", "meets_slo"):
            assert row[key] is bool(ref[key]), f"{key} at {where}"
        for key in FLOAT_KEYS:
            assert row[key] == pytest.approx(ref[key], rel=REL, abs=0), f"{key} at {where}"


@pytest.mark.parametrize("name,ep", [("llama-3.1-8b", "1"), ("qwen3-30b-a3b", "1,2,4,8"), ("mixtral-8x7b", "1,2,4,8")])
def test_sweep_equals_estimate_on_sampled_points(name, ep):
    model = mantile_core.load_model(name)
    result = mantile_core.sweep(model, "h100,h200,b200,mi355x", tp="1,2,4,8", ep=ep, batch="1:1024:x2,3,100,999",
                                input_len="1,100,1024,8000", output_len="1,64,1024", max_tpot_ms=20, max_ttft_ms=1000,
                                chunk=1000)  # small chunks: points of several (tp, ep) pairs share one
    assert_sweep_matches_estimate(model, result, samples=60, seed=8)


def test_sweep_equals_estimate_with_fp8_kv():
    model = mantile_core.load_model("qwen3-8b")
    result = mantile_core.sweep(model, "h200", tp="1,2", batch="7,300", input_len="900", output_len="3000",
                                kv_dtype="fp8")
    assert_sweep_matches_estimate(model, result, samples=len(result), seed=1, kv_dtype="fp8")


def test_sweep_equals_estimate_gpt_oss():
    for plugin in ("mantile_gpt_oss_attention", "mantile_rope_yarn", "mantile_swa_cache"):
        pytest.importorskip(plugin)
    model = mantile_core.load_model("gpt-oss-120b")
    result = mantile_core.sweep(model, "h100,b200", tp="1,2,4,8", ep="1,2,8", batch="1,2,64,129,1024",
                                input_len="1,127,128,129,4096", output_len="1,1024", kv_policy="ring,paged,full",
                                max_tpot_ms=15)
    assert set(result.kv_policies) == {"causal+ring", "causal+paged", "causal+full"}
    assert_sweep_matches_estimate(model, result, samples=60, seed=120)


def test_sweep_equals_estimate_with_engine_and_prompts():
    engines = pytest.importorskip("mantile_core.engines")
    names = sorted(engines.list_engines())
    model = mantile_core.load_model("qwen3-30b-a3b")
    for name in names:
        result = mantile_core.sweep(model, "h100,b200,mi355x", tp="1,4", ep="1,4", batch="1,16,300",
                                    input_len="1000", output_len="200,2000", engine=name, max_ttft_ms=300)
        assert result.engine == name
        assert_sweep_matches_estimate(model, result, samples=12, seed=3, engine=name)
    result = mantile_core.sweep(model, "h200", tp="2", ep="2", batch="1,8,64", input_len="1000", output_len="1000",
                                prompts=80)
    assert_sweep_matches_estimate(model, result, samples=len(result), seed=0, prompts=80)


def test_grid_size_and_dropped_pairs():
    # Mixtral: 8 experts, moe_intermediate 14336, 32 heads, 8 KV heads. A (tp, ep) pair is valid
    # when ep divides tp and 8, tp divides 32 and tp/ep divides 14336: tp 3 never, and of
    # tp in {1, 2, 4, 8} x ep in {1, 2, 4, 8} the pairs with ep <= tp (1 + 2 + 3 + 4 = 10).
    result = mantile_core.sweep("mixtral-8x7b", "h200,b200", tp="1,2,3,4,8", ep="1,2,4,8", batch="1:5",
                                input_len="128,256", output_len="64")
    assert len(result.parallelism) == 10
    assert len(result.dropped) == 5 * 4 - 10
    assert {(tp, ep, dp) for tp, ep, dp, _ in result.dropped if tp == 3} == {(3, 1, 1), (3, 2, 1), (3, 4, 1), (3, 8, 1)}
    assert len(result) == 2 * 10 * 5 * 2 * 1
    assert set(numpy.unique(result["hardware"])) == {"h200", "b200"}
    # every combination appears exactly once
    keys = {(r["hardware"], r["tp"], r["ep"], r["batch"], r["input_len"])
            for r in (result.row(i) for i in range(len(result)))}
    assert len(keys) == len(result)


def test_chunking_does_not_change_results():
    a = mantile_core.sweep("qwen3-30b-a3b", "h100", tp="1,2,4", ep="1,2", batch="1:50", input_len="10,2000",
                           output_len="5,500")
    b = mantile_core.sweep("qwen3-30b-a3b", "h100", tp="1,2,4", ep="1,2", batch="1:50", input_len="10,2000",
                           output_len="5,500", chunk=7)
    assert numpy.array_equal(a.table, b.table)


def test_no_valid_pair_is_an_error():
    with pytest.raises(ParallelismError, match="tp 3"):
        mantile_core.sweep("llama-3.1-8b", "h100", tp=3, batch=1)


@pytest.mark.parametrize("spec,expected", [
    ("1:5", (1, 2, 3, 4, 5)),
    ("1:1024:x2", tuple(2 ** i for i in range(11))),
    ("3:30:*3", (3, 9, 27)),
    ("64:256:64", (64, 128, 192, 256)),
    ("8, 1,8,2", (8, 1, 2)),
    (4, (4,)),
    ([2, 1], (2, 1)),
    (range(1, 4), (1, 2, 3)),
])
def test_parse_values(spec, expected):
    assert parse_values("batch", spec) == expected


@pytest.mark.parametrize("spec", ["0", "0:4", "5:4", "1:8:x1", "a", "1:2:3:4", "", [], [1, -2], True])
def test_parse_values_rejects(spec):
    with pytest.raises(InputError, match="batch"):
        parse_values("batch", spec)


def test_pareto_front_by_hand():
    #            0   1   2   3   4   5   6
    x = numpy.array([1., 2., 2., 3., 4., 4., 5.])
    y = numpy.array([9., 8., 7., 8., 2., 2., 1.])
    # 0 (1,9) top of y; 1 (2,8) beaten by 3 (3,8); 2 beaten; 3 (3,8); 4 (4,2) kept, its twin 5
    # dropped; 6 (5,1) the top of x.
    assert pareto_front(x, y).tolist() == [0, 3, 4, 6]


def test_frontier_and_best_against_brute_force():
    result = mantile_core.sweep("llama-3.1-8b", "h100,h200", tp="1,2,4", batch="1:400:3", input_len="2048",
                                output_len="512,2048", max_tpot_ms=12, max_ttft_ms=200)
    rows = [result.row(i) for i in range(len(result))]
    for hw in result.hardware:
        fitting = [r for r in rows if r["hardware"] == hw and r["fits"]]
        dominated = {
            i for i, r in enumerate(fitting)
            if any(o["tok_s_per_user"] >= r["tok_s_per_user"] and o["throughput_tok_s_per_gpu"] >= r["throughput_tok_s_per_gpu"]
                   and (o["tok_s_per_user"], o["throughput_tok_s_per_gpu"]) != (r["tok_s_per_user"], r["throughput_tok_s_per_gpu"])
                   for o in fitting)
        }
        expected = sorted({(r["tok_s_per_user"], r["throughput_tok_s_per_gpu"])
                           for i, r in enumerate(fitting) if i not in dominated})
        got = [(result.row(i)["tok_s_per_user"], result.row(i)["throughput_tok_s_per_gpu"]) for i in result.frontier(hw)]
        assert got == expected
        ok = [r for r in rows if r["hardware"] == hw and r["fits"] and r["tpot_ms"] <= 12 and r["ttft_ms"] <= 200]
        best = result.best(hw)
        if ok:
            assert result.row(best)["throughput_tok_s_per_gpu"] == max(r["throughput_tok_s_per_gpu"] for r in ok)
        else:
            assert best is None
    overall = result.row(result.best())
    assert overall["throughput_tok_s_per_gpu"] == max(
        r["throughput_tok_s_per_gpu"] for r in rows if r["fits"] and r["tpot_ms"] <= 12 and r["ttft_ms"] <= 200)


def test_progress_reaches_total():
    seen = []
    result = mantile_core.sweep("llama-3.1-8b", "h100", tp="1,2", batch="1:100", chunk=64,
                                progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(result), len(result)) == (200, 200)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cli_writes_every_point(tmp_path, capsys):
    out_json, out_csv = tmp_path / "s.json", tmp_path / "s.csv"
    status = main(["sweep", "mixtral-8x7b", "--hardware", "h100,b200", "--tp", "2,4,8", "--ep", "1,2,4,8",
                   "--batch", "1:64:x2", "--input-len", "1024", "--output-len", "256,1024", "--max-tpot-ms", "20",
                   "--max-ttft-ms", "1000", "--json", str(out_json), "--csv", str(out_csv)])
    assert status == 0
    text = capsys.readouterr().out
    assert "Pareto frontier" in text and "best per accelerator" in text and "dropped tp 2 ep 4" in text
    # pairs with ep | tp: (2,1) (2,2) (4,1) (4,2) (4,4) (8,1) (8,2) (8,4) (8,8) = 9
    points = 2 * 9 * 7 * 1 * 2
    doc = json.loads(out_json.read_text())
    assert doc["evaluated_points"] == len(doc["points"]) == points
    assert doc["max_tpot_ms"] == 20.0 and len(doc["dropped"]) == 3
    with out_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == points
    assert rows[0].keys() == doc["points"][0].keys()
    best = doc["best"]["overall"]
    assert best["meets_slo"] and best["tpot_ms"] <= 20
    assert best["throughput_tok_s_per_gpu"] == max(p["throughput_tok_s_per_gpu"] for p in doc["points"] if p["meets_slo"])


def test_cli_json_to_stdout(capsys):
    assert main(["sweep", "llama-3.2-1b", "--hardware", "h100", "--tp", "1", "--batch", "1,2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["batch"] for p in doc["points"]] == [1, 2]


@pytest.mark.parametrize("argv,message", [
    (["--hardware", "h999"], "unknown hardware 'h999'"),
    (["--tp", "3"], "no (tp, ep, dp) of the sweep"),
    (["--batch", "0:4"], "'batch'"),
    (["--kv-policy", "nope"], "unknown --kv-policy 'nope'"),
    (["--json", "--csv"], "cannot both write to stdout"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(["sweep", "llama-3.1-8b", "--batch", "1:4", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "front.png"
    assert main(["sweep", "llama-3.1-8b", "--hardware", "h100,b200", "--batch", "1:256:x2", "--max-tpot-ms", "15",
                 "--plot", str(path), "--rows", "0"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_equals_estimate_where_the_fixed_point_converges_slowly():
    # 64k prompts at 128 sequences keep MI355X's steps ~95 % on prompts: the damped iteration
    # is still moving after serving.ITERATIONS there, and those points iterate on, in a sweep
    # (alone) as in an estimate, to the same figures
    from mantile_core import serving

    model = mantile_core.load_model("qwen2.5-7b")
    args = dict(tp=2, batch=128, input_len=65536, output_len=181)
    result = mantile_core.sweep(model, "mi355x", tp="2", batch="16,128", input_len="32768,65536", output_len="181")
    assert_sweep_matches_estimate(model, result, samples=len(result), seed=2)
    e = mantile_core.estimate(model, "mi355x", **args)
    assert float(e.serving.prefill_share) > 0.9
    # converged: running all MAX_ITERATIONS on every point moves nothing (40 alone leave 3e-5)
    again = serving.ITERATIONS
    try:
        serving.ITERATIONS = serving.MAX_ITERATIONS
        assert float(mantile_core.estimate(model, "mi355x", **args).serving.tpot_s) == pytest.approx(
            float(e.serving.tpot_s), rel=1e-7)
    finally:
        serving.ITERATIONS = again
