"""The boundary checks of issue #15, one example per class: config files that cannot be read,
sizes beyond their bounds (CLI and API), sweeps that would wrap 64-bit integers or run for
minutes, and measurement rows that are not measurements. Each is one MantileError line."""

from __future__ import annotations

import codecs
import csv

import pytest

import mantile_core
from mantile_core.cli import main
from mantile_core.config import read_config_file
from mantile_core.errors import ConfigError, InputError, UnknownModelError
from mantile_core.model import DATA
from mantile_core.reconcile import read_measurements

LLAMA = (DATA / "llama-3.2-1b.json").read_bytes()


@pytest.mark.parametrize("raw,message", [
    (b'{"model_type": "llama", "x": "\xff"}', "is not UTF-8 text (byte 30 is b'\\xff')"),
    (LLAMA.decode().encode("utf-16"), "is UTF-16 encoded: save it as UTF-8"),
    (codecs.BOM_UTF32_LE + LLAMA.decode().encode("utf-32-le"), "is UTF-32 encoded"),
    (b"[" * 100_000 + b"]" * 100_000, "nests objects / arrays too deeply (at most 32 levels)"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "nests objects / arrays too deeply"),
    (b'{"hidden_size": ' + b"9" * 5000 + b"}", "an integer literal too long to read (over Python's 4300-digit limit)"),
    (b"[1, 2]", "must hold a JSON object, not list"),
])
def test_unreadable_config_files_are_one_line(tmp_path, raw, message):
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as excinfo:
        read_config_file(path)
    assert message in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_non_finite_literals_read_but_refused_where_used(tmp_path, mantile_plugins):
    """Published configs hold ``time_step_limit: [0.0, Infinity]`` (Mamba-Codestral,
    Nemotron-3): the file reads; a key Mantile uses must be finite, named when it is not."""
    mantile_plugins()
    path = tmp_path / "config.json"
    path.write_bytes(LLAMA[:-2].rstrip(b"\n }") + b', "time_step_limit": [0.0, Infinity]}')
    assert mantile_core.load_model(path).params() == 1_235_814_400  # Llama-3.2-1B's published total
    for key, literal, shown in [(b"hidden_size", b"NaN", "nan"), (b"rope_theta", b"-Infinity", "-inf")]:
        data = LLAMA.replace(b'"' + key + b'": ', b'"' + key + b'": ' + literal + b', "_was": ', 1)
        path.write_bytes(data)
        with pytest.raises(ConfigError, match=f"'{key.decode()}' must be .*\\(got {shown}\\)"):
            mantile_core.load_model(path)


def test_a_utf8_bom_is_accepted_and_the_size_is_capped(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_bytes(codecs.BOM_UTF8 + LLAMA)
    assert read_config_file(path)["model_type"] == "llama"
    monkeypatch.setenv("MANTILE_MAX_CONFIG_BYTES", "100")
    with pytest.raises(ConfigError, match="is larger than 100 bytes: not a model config"):
        read_config_file(path)


@pytest.mark.parametrize("name", ["x" * 5000, "a/" * 3000, "nul\x00name", ""])
def test_over_long_or_impossible_model_names(name):
    with pytest.raises((UnknownModelError, ConfigError)) as excinfo:
        mantile_core.load_model(name)
    assert len(str(excinfo.value)) < 400


@pytest.mark.parametrize("argv,message", [
    (["estimate", "llama-3.2-1b", "--batch", str(2**40)], "argument --batch: must be an integer from 1 to 1,048,576"),
    (["estimate", "llama-3.2-1b", "--input-len", str(10**30)], "argument --input-len: must be an integer from 1 to 16,777,216"),
    (["estimate", "llama-3.2-1b", "--context", "-1"], "argument --context: must be an integer from 0 to 16,777,216"),
    (["estimate", "llama-3.2-1b", "--tp", "8192"], "argument --tp: must be an integer from 1 to 4,096"),
    (["estimate", "llama-3.2-1b", "--kv-block", "0"], "argument --kv-block: must be an integer from 1 to"),
    (["estimate", "llama-3.2-1b", "--prompts", str(10**7)], "a benchmark of 10,000,000 waves; at most 1,000"),
    (["sweep", "llama-3.2-1b", "--batch", "1:1000000000"], "goes beyond 1,048,576, the largest batch accepted"),
    (["sweep", "llama-3.2-1b", "--batch", "1:1048576", "--input-len", "1:100"], "more than the 5,000,000 a sweep evaluates"),
    (["sweep", "llama-3.2-1b", "--hardware", "h100", "--tp", "1", "--batch", "1048576", "--input-len", "16777216",
      "--output-len", "16777216"], "beyond the 64-bit integers a sweep computes in"),
    (["sweep", "llama-3.2-1b", "--max-tpot-ms", "nan"], "argument --max-tpot-ms: must be a positive finite number"),
    (["sweep", "llama-3.2-1b", "--rows", "-1"], "argument --rows: must be an integer from 0 to"),
])
def test_sizes_beyond_their_bounds_are_one_line(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("mantile: warning:")]
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_estimate_is_exact_beyond_64_bits():
    """2^20 sequences of 2^24 + 2^23 tokens of llama-3.1-70b: 80 layers · 2 · 8 heads · 128 ·
    2 bytes = 327,680 bytes of KV per token, beyond 2^63 in all, exact in Python ints."""
    e = mantile_core.estimate("llama-3.1-70b", "h100", batch=2**20, input_len=2**24, output_len=2**24)
    tokens = 2**24 + 2**24 - 1 + 1  # the final step holds input + output tokens
    assert e.memory["kv_cache_bytes"] == 2**20 * tokens * 327_680 > 2**63
    assert not e.memory["fits"] and e.memory["max_batch"] == 0


def test_the_grid_and_wave_limits_can_be_raised(monkeypatch):
    with pytest.raises(InputError, match="more than the 10 points"):
        mantile_core.sweep("llama-3.2-1b", "h100", tp=1, batch="1:16", max_points=10)
    monkeypatch.setenv("MANTILE_MAX_POINTS", "10")
    with pytest.raises(InputError, match="MANTILE_MAX_POINTS"):
        mantile_core.sweep("llama-3.2-1b", "h100", tp=1, batch="1:16")
    assert len(mantile_core.sweep("llama-3.2-1b", "h100", tp=1, batch="1:16", max_points=16)) == 16
    monkeypatch.setenv("MANTILE_MAX_WAVES", "2000")
    assert mantile_core.estimate("llama-3.2-1b", "h100", prompts=1500).serving.ttft_s > 0


HEADER = ["gpu_model", "framework", "input_seq_len", "output_seq_len", "tensor_parallel", "expert_parallel",
          "concurrency", "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
          "mean_time_to_first_token_sec", "mean_time_per_output_token_sec"]
GOOD = ["h100", "vllm", "1024", "1024", "1", "1", "8", "900", "450", "0.05", "0.01"]


@pytest.mark.parametrize("column,value,message", [
    ("concurrency", "abc", "line 3: 'concurrency' must be an integer from 1 to 1,048,576 (got 'abc')"),
    ("concurrency", "0", "'concurrency' must be an integer from 1"),
    ("input_seq_len", "2.5", "'input_seq_len' must be an integer"),
    ("throughput_tokens_per_sec_per_gpu", "0", "'throughput_tokens_per_sec_per_gpu' must be a finite number of at least 1e-09 (got '0')"),
    ("mean_time_to_first_token_sec", "-0.1", "'mean_time_to_first_token_sec' must be a finite number of at least 1e-09"),
    ("mean_time_per_output_token_sec", "nan", "'mean_time_per_output_token_sec' must be a finite number of at least 1e-09 (got 'nan')"),
    ("output_throughput_per_gpu", "inf", "must be a finite number of at least 1e-09 (got 'inf')"),
    # a subnormal rate made predicted / measured - 1 overflow to infinity (long fuzz profile)
    ("throughput_tokens_per_sec_per_gpu", "1e-320", "must be a finite number of at least 1e-09 (got '1e-320')"),
    ("mean_time_per_output_token_sec", "", "line 3: 'mean_time_per_output_token_sec' is empty"),
    ("gpu_model", "", "'gpu_model' must be a non-empty name"),
])
def test_bad_measurement_rows_name_line_and_column(tmp_path, column, value, message):
    path = tmp_path / "rows.csv"
    bad = dict(zip(HEADER, GOOD)) | {column: value}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([HEADER, GOOD, [bad[c] for c in HEADER]])
    with pytest.raises(InputError) as excinfo:
        read_measurements(path)
    assert message in str(excinfo.value)


def test_a_non_utf8_measurement_file_is_one_line(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(",".join(HEADER).encode() + b"\n\xff\xfe,1\n")
    with pytest.raises(InputError, match="is not a readable CSV"):
        read_measurements(path)
