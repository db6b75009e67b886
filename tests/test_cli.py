"""The CLI contract: JSON documents, and exit status 2 with one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mantile_core
from mantile_core.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_estimate_json_is_estimate_to_dict(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--hardware", "h100", "--tp", "2", "--batch", "8",
                       "--input-len", "512", "--output-len", "128", "--json")
    assert code == 0
    doc = json.loads(out)
    expected = mantile_core.estimate("llama-3.1-8b", "h100", tp=2, batch=8, input_len=512, output_len=128).to_dict()
    assert doc == json.loads(json.dumps(expected))
    for key in ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu", "memory", "layers"):
        assert key in doc
    for key in ("weight_bytes", "kv_cache_bytes", "activation_bytes", "capacity_bytes", "fits"):
        assert key in doc["memory"]
    layer = doc["layers"][1]
    assert {"index", "kind", "type", "params", "prefill", "decode"} <= set(layer)
    for phase in ("prefill", "decode"):
        assert {"flops", "matmul_flops", "weight_bytes", "kv_cache_bytes", "activation_bytes", "comm_bytes",
                "time_ms"} <= set(layer[phase])


def test_default_context_is_mean_decode_context(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--input-len", "1000", "--output-len", "200", "--json")
    doc = json.loads(out)
    assert doc["context"] == 1100
    attn = next(r for r in doc["layers"] if r["kind"] == "attention")
    # decode at context 1100 has written token 1101: K+V x 8 heads x 128 x 2 bytes per position
    assert attn["decode"]["kv_cache_bytes"] == 1101 * 2 * 8 * 128 * 2
    assert attn["prefill"]["kv_cache_bytes"] == 1000 * 2 * 8 * 128 * 2


def test_memory_totals_and_fit(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3.1-70b", "--hardware", "h100", "--json")
    mem = json.loads(out)["memory"]
    assert mem["weight_bytes"] > 70e9 * 2 * 0.99 and not mem["fits"]
    _, out, _ = run(capsys, "estimate", "llama-3.1-70b", "--hardware", "h100", "--tp", "4", "--json")
    assert json.loads(out)["memory"]["fits"]


@pytest.mark.parametrize("argv,message", [
    (["estimate", "no-such-model"], "unknown model 'no-such-model'"),
    (["estimate", "llama-3.1-8b", "--hardware", "tpu9"], "unknown hardware 'tpu9'"),
    (["estimate", "llama-3.1-8b", "--tp", "3"], "'tp' must divide num_attention_heads=32 (got 3)"),
    (["estimate", "llama-3.1-8b", "--batch", "0"], "argument --batch: must be an integer from 1 to 1,048,576 (got '0')"),
    (["estimate", "llama-3.1-8b", "--input-len", "-5"], "argument --input-len: must be an integer from 1 to"),
    (["estimate", "llama-3.1-8b", "--kv-policy", "weird"], "unknown --kv-policy 'weird'"),
    (["estimate", "llama-3.1-8b", "--tp", "two"], "argument --tp: must be an integer from 1 to 4,096 (got 'two')"),
    (["layers", "/nonexistent/config.json"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    try:
        code, out, err = run(capsys, *argv)
    except SystemExit as raised:  # argparse's own errors
        code, err = raised.code, capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_malformed_config_in_a_subprocess_has_no_traceback(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "hidden_size": 64}')
    proc = subprocess.run([sys.executable, "-m", "mantile_core", "estimate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"mantile: error: config '{tmp_path.name}': required key 'num_hidden_layers' is missing"


def test_layers_json_totals(capsys):
    _, out, _ = run(capsys, "layers", "qwen3-30b-a3b", "--json")
    doc = json.loads(out)
    assert doc["params"] == 30_532_122_624 == sum(r["params"] for r in doc["layers"])
    assert doc["weight_bytes"] == 2 * doc["params"]


def test_plugins_and_hardware_commands(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    doc = json.loads(out)
    core = doc["plugins"][0]
    assert code == 0 and core["distribution"] == "mantile-core"
    assert "causal" in core["provides"]["cache_policies"] and "gqa-attention" in core["provides"]["layer_types"]
    code, out, _ = run(capsys, "hardware", "--json")
    names = {h["name"] for h in json.loads(out)["hardware"]}
    assert {"h100", "h200", "b200", "gb200", "mi300x", "mi355x"} <= names
    code, out, _ = run(capsys, "hardware")
    assert code == 0 and "989 TFLOP/s" in out


def test_human_estimate_table(capsys):
    code, out, _ = run(capsys, "estimate", "qwen3-8b", "--layers")
    assert code == 0 and "TPOT" in out and "model.layers.35.mlp" in out
