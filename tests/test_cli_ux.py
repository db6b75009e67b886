"""What a new user reads: precision and KV cache in words, warnings on stderr (never on
stdout), --strict, --version, help on every subcommand, layers --summary, significant digits,
the reconcile model note. In-process through the CLI's main, on the exact messages."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
from pathlib import Path

import pytest

import mantile_core
from mantile_core.cli import build_parser, main
from mantile_core.cli.render import sig
from mantile_core.units import bytes_h

BUNDLED = Path(mantile_core.__file__).parent / "data" / "models"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _plugin_installed(distribution: str) -> bool:
    from importlib import metadata

    return any(ep.dist is not None and ep.dist.metadata["Name"] == distribution
               for ep in metadata.entry_points(group="mantile"))


@pytest.fixture
def fp32_llama(tmp_path) -> Path:
    """Llama-3.2-1B's published config.json with torch_dtype float32 (as Gemma-2 publishes)."""
    data = json.loads((BUNDLED / "llama-3.2-1b.json").read_text())
    data["torch_dtype"] = "float32"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


# -- precision and KV cache, in words -------------------------------------------------------

def test_header_says_the_served_precision(capsys, fp32_llama):
    code, out, err = run(capsys, "estimate", str(fp32_llama), "--hardware", "h100")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1] == ("precision: weights and activations bf16 (checkpoint fp32, served as vLLM dtype=auto); "
                        "KV cache bf16 (the served dtype)")
    assert lines[2] == "KV cache: every layer keeps the whole context"


def test_header_with_given_dtypes(capsys, fp32_llama):
    code, out, _ = run(capsys, "estimate", str(fp32_llama), "--dtype", "fp32", "--kv-dtype", "fp8")
    assert code == 0
    assert out.splitlines()[1] == "precision: weights and activations fp32 (--dtype; checkpoint fp32); KV cache fp8 (--kv-dtype)"


def test_title_names_engine_and_mode(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h100", "--batch", "8")
    assert out.splitlines()[0] == ("llama-3.1-8b on 1× h100 (tp 1, ep 1), 1024 in / 1024 out, steady state at "
                                   "concurrency 8, no engine profile (vLLM's defaults)")
    _, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h100", "--batch", "8", "--prompts", "80",
                    "--engine", "vllm")
    assert out.splitlines()[0] == ("llama-3.1-8b on 1× h100 (tp 1, ep 1), 1024 in / 1024 out, means over a benchmark "
                                   "of 80 prompts at concurrency 8, engine vllm")
    assert "│ TTFT (benchmark mean)" in out and "│ TPOT (benchmark mean)" in out


def test_ttft_and_tpot_explained(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h100")
    lines = out.splitlines()
    # the line states h100's request_overhead (s) in ms and request_token_overhead (s) in µs
    cal = mantile_core.get_hardware("h100").calibration
    assert lines[-2] == (f"TTFT = request overhead ({cal.request_overhead * 1e3:.1f} ms) + the front end's "
                         f"{cal.request_token_overhead * 1e6:.2f} µs per prompt token + the steps "
                         "already scheduled + the request's own prompt step + waiting for prompt capacity; the prefill "
                         "row costs every prompt in one step and is not a latency.")
    assert lines[-1] == ("TPOT = the mean step a decoding request sees: the decode step plus the prompts of arriving "
                         "requests (docs/timing.md).")
    assert "│ one request's prompt step" in out and "│ prefill of the batch's 1 prompt in one step" in out
    _, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h100", "--batch", "8")
    assert "│ prefill of the batch's 8 prompts in one step" in out


@pytest.mark.skipif(not _plugin_installed("mantile-swa-cache"), reason="needs mantile-swa-cache")
@pytest.mark.parametrize("policy,words", [
    (None, "KV cache: sliding layers keep a ring buffer of the last 4096 tokens"),
    ("paged", "KV cache: sliding layers keep the 16-token blocks still holding one of the last 4096 tokens (vLLM's paging)"),
    ("full", "KV cache: sliding layers keep the whole context (no eviction) and attend the last 4096 tokens"),
])
def test_kv_policy_in_words(capsys, policy, words):
    argv = ["estimate", "mistral-7b"] + (["--kv-policy", policy] if policy else [])
    _, out, _ = run(capsys, *argv)
    assert out.splitlines()[2] == words


@pytest.mark.skipif(not _plugin_installed("mantile-gpt-oss-attention"), reason="needs mantile-gpt-oss-attention")
def test_gpt_oss_header(capsys):
    _, out, err = run(capsys, "estimate", "gpt-oss-120b", "--hardware", "h200")
    assert err == ""
    assert out.splitlines()[1:3] == [
        "precision: weights and activations bf16 (as the checkpoint), mxfp4 where the checkpoint quantizes them; "
        "KV cache bf16 (the served dtype)",
        "KV cache: sliding layers keep a ring buffer of the last 128 tokens; full layers keep the whole context"]


# -- warnings -------------------------------------------------------------------------------

LONG = ("input_len + output_len = 131073 tokens exceeds llama-3.1-8b's max_position_embeddings (131072): "
        "engines refuse such requests (vLLM's max_model_len)")


def test_request_beyond_max_position_warns_on_stderr_only(capsys):
    code, out, err = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h200", "--input-len", "131072",
                         "--output-len", "1", "--json")
    assert code == 0
    assert err == f"mantile: warning: {LONG}\n"
    doc = json.loads(out)  # stdout is the JSON document and nothing else
    assert doc["warnings"] == [LONG]


def test_request_at_max_position_is_quiet(capsys):
    code, _, err = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h200", "--input-len", "131071",
                       "--output-len", "1", "--json")
    assert code == 0 and err == ""


def test_context_warnings(capsys):
    code, out, err = run(capsys, "estimate", "llama-3.1-8b", "--input-len", "1000", "--output-len", "200",
                         "--context", "1201")
    assert code == 0 and out
    assert err == ("mantile: warning: context 1201 is beyond input_len + output_len = 1200: no request of this "
                   "deployment holds that many tokens\n")
    _, _, err = run(capsys, "estimate", "llama-3.1-8b", "--input-len", "1000", "--output-len", "200",
                    "--context", "1200")
    assert err == ""
    _, _, err = run(capsys, "estimate", "llama-3.1-8b", "--context", "140000", "--json")
    assert err.splitlines() == [
        "mantile: warning: context 140000 exceeds llama-3.1-8b's max_position_embeddings (131072)",
        "mantile: warning: context 140000 is beyond input_len + output_len = 2048: no request of this deployment "
        "holds that many tokens"]


def test_deployment_that_does_not_fit_warns(capsys):
    # Llama-3.1-70B in bf16: 70,553,706,496 parameters (published safetensors total) · 2 bytes
    # = 131.42 GiB of weights alone, more than an H100's 80e9 bytes = 74.51 GiB; KV cache at the
    # end of a 2048-token request: 80 layers · 2 · 8 heads · 128 · 2 bytes · 2048 = 640 MiB
    code, out, err = run(capsys, "estimate", "llama-3.1-70b", "--hardware", "h100", "--json")
    assert code == 0
    mem = json.loads(out)["memory"]
    assert mem["weight_bytes"] == 2 * 70_553_706_496 and not mem["fits"]
    assert mem["kv_cache_bytes"] == 80 * 2 * 8 * 128 * 2 * 2048
    total, activations = bytes_h(mem["total_bytes"]), bytes_h(mem["activation_bytes"])
    assert err == (f"mantile: warning: the deployment does not fit in memory: {total} per device "
                   f"(weights 131.42 GiB, KV cache 640.00 MiB, activations {activations}) > "
                   "74.51 GiB of h100 HBM; not even one sequence fits at this length: raise tp or take a larger "
                   "accelerator; the times assume it fits\n")
    _, _, err = run(capsys, "estimate", "llama-3.1-70b", "--hardware", "h100", "--tp", "4", "--batch", "64")
    assert err == ""


def test_strict_turns_warnings_into_exit_2_and_prints_nothing(capsys):
    code, out, err = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h200", "--input-len", "131072",
                         "--output-len", "1", "--json", "--strict")
    assert code == 2 and out == ""
    assert err == f"mantile: error: {LONG} (--strict)\n"
    code, out, err = run(capsys, "estimate", "llama-3.1-8b", "--strict", "--json")
    assert code == 0 and err == "" and json.loads(out)["warnings"] == []


def test_sweep_warns_on_lengths_beyond_max_position(capsys):
    argv = ["sweep", "llama-3.1-8b", "--hardware", "h100", "--tp", "1", "--batch", "1,2", "--input-len", "1024,131000",
            "--output-len", "100", "--json"]
    code, out, err = run(capsys, *argv)
    assert code == 0 and json.loads(out)["evaluated_points"] == 4
    assert err == ("mantile: warning: the longest input_len + output_len = 131100 tokens exceeds llama-3.1-8b's "
                   "max_position_embeddings (131072): engines refuse such requests (vLLM's max_model_len)\n")
    code, out, err = run(capsys, *argv, "--strict")
    assert code == 2 and out == "" and err.startswith("mantile: error: the longest input_len + output_len")


# -- numbers --------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [(0.04123, "0.0412"), (0.00049, "0.000490"), (12.345, "12.3"), (99.96, "100"),
                                        (12345.6, "12,346"), (0.0, "0")])
def test_significant_digits(value, text):
    assert sig(value) == text


def test_small_rates_keep_significant_digits(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3.1-70b", "--hardware", "b200", "--tp", "8", "--input-len", "120000",
                    "--output-len", "8", "--batch", "256")
    assert "0.0 tok/s" not in out and " 0 tok/s" not in out
    doc = json.loads(run(capsys, "estimate", "llama-3.1-70b", "--hardware", "b200", "--tp", "8", "--input-len",
                         "120000", "--output-len", "8", "--batch", "256", "--json")[1])
    assert doc["output_tok_s_per_gpu"] < 1  # the case this test is about
    assert f"{sig(doc['output_tok_s_per_gpu'])} tok/s" in out


def test_hardware_memory_in_gib(capsys):
    _, out, _ = run(capsys, "hardware")
    assert "memory in GiB, rates in decimal units" in out
    row = next(line for line in out.splitlines() if "│ h100 " in line)
    assert "74.51 GiB" in row and "3.35 TB/s" in row and " GB " not in row  # 80e9 bytes / 2^30


# -- help, version, layers --summary ---------------------------------------------------------

def _subparsers(parser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_has_a_description_and_json_help():
    for name, sub in _subparsers(build_parser()).items():
        assert sub.description and len(sub.description) > 40, f"{name} has no description"
        json_option = next((a for a in sub._actions if "--json" in a.option_strings), None)
        assert json_option is not None and json_option.help, f"{name} --json has no help"


def test_main_help_documents_exit_status(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert ("exit status: 0 success (warnings, if any, on stderr); 1 validate found a failing case;\n"
            "2 bad input, a missing plugin, or a warning under --strict (one line on stderr).") in out


def test_engine_help_says_what_omitted_means():
    estimate = _subparsers(build_parser())["estimate"]
    engine = next(a for a in estimate._actions if "--engine" in a.option_strings)
    assert "Omitted: no profile, i.e. vLLM's defaults (chunked prefill of at most 8192 tokens per step" in engine.help


def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"mantile-core {metadata.version('mantile-core')}; plugins: ")
    assert len(out.splitlines()) == 1


# Llama-3.1-8B (https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json):
# attention q,o 4096² + k,v 4096·1024 = 41,943,040; MLP 3·4096·14336 = 176,160,768; RMSNorm
# 4096; embedding = untied LM head 128256·4096 = 525,336,576; bf16 = 2 bytes each.
SUMMARY_8B = [
    ("embedding", 1, 525_336_576),
    ("norm", 65, 4096),
    ("attention", 32, 41_943_040),
    ("mlp", 32, 176_160_768),
    ("lm_head", 1, 525_336_576),
]


def test_layers_summary_json(capsys):
    code, out, _ = run(capsys, "layers", "llama-3.1-8b", "--summary", "--json")
    assert code == 0
    doc = json.loads(out)
    got = [(s["kind"], s["count"], s["params"]) for s in doc["summary"]]
    assert got == SUMMARY_8B
    for entry in doc["summary"]:
        assert entry["params_total"] == entry["count"] * entry["params"]
        assert entry["weight_bytes_total"] == 2 * entry["params_total"]
    assert sum(s["params_total"] for s in doc["summary"]) == 8_030_261_248  # published total


def test_layers_summary_table(capsys):
    code, out, _ = run(capsys, "layers", "llama-3.1-8b", "--summary")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == len(SUMMARY_8B)
    assert [cell.strip() for cell in rows[3].split("│")[1:8]] == \
        ["mlp", "gated-mlp", "", "32", "176,160,768", "5,637,144,576", "10.50 GiB"]  # 2 · 5,637,144,576 bytes


# -- reconcile: which model the rows are taken as -------------------------------------------

HEADER = ["gpu_model", "framework", "precision", "input_seq_len", "output_seq_len", "tensor_parallel",
          "expert_parallel", "concurrency", "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
          "mean_time_to_first_token_sec", "mean_time_per_output_token_sec"]
ROW = ["h200", "vllm", "bf16", 1024, 1024, "1.0", "1.0", 4, 263.0, 131.0, 0.0327, 0.003677]


def _csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_reconcile_says_which_model_is_assumed(capsys, tmp_path):
    path = _csv(tmp_path / "rows.csv", HEADER, [ROW])
    code, out, err = run(capsys, "reconcile", str(path), "--model", "qwen3-8b", "--json")
    assert code == 0 and json.loads(out)["tables"]
    assert err == (f"mantile: note: {path} has no model column: every row is taken as a measurement of "
                   "qwen3-8b (--model)\n")


def test_reconcile_model_column(capsys, tmp_path):
    same = _csv(tmp_path / "same.csv", ["model"] + HEADER, [["Qwen/qwen3-8b"] + ROW])
    code, _, err = run(capsys, "reconcile", str(same), "--model", "qwen3-8b", "--json")
    assert code == 0 and err == ""
    other = _csv(tmp_path / "other.csv", ["model"] + HEADER, [["openai/gpt-oss-120b"] + ROW])
    code, _, err = run(capsys, "reconcile", str(other), "--model", "qwen3-8b", "--json")
    assert code == 0
    assert err == (f"mantile: note: {other}'s model column names openai/gpt-oss-120b: every row is estimated as "
                   "qwen3-8b (--model)\n")


def test_plot_hint_names_the_checkout(monkeypatch, capsys, tmp_path):
    if importlib.util.find_spec("matplotlib") is not None:
        import sys

        monkeypatch.setitem(sys.modules, "matplotlib", None)
        monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(capsys, "sweep", "llama-3.2-1b", "--hardware", "h100", "--tp", "1", "--batch", "1",
                       "--plot", str(tmp_path / "f.png"))
    assert code == 2
    assert err.strip().splitlines()[-1] == \
        "mantile: error: --plot needs matplotlib: pip install './[plot]' (from the Mantile checkout)"
