"""Tests of the example plugin. The in-process ones register the plugin module with the core's
``mantile_plugins`` fixture (no install needed beyond importability); the last ones use the
installed entry point through the real ``mantile`` command.

Expected numbers are worked out by hand from the published mamba-130m shapes: H=768, I=1536,
N=16, K=4, R=48, vocab 50280, 24 blocks, fp32, tied head.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

mantile_mamba = pytest.importorskip("mantile_mamba")

import mantile_core  # noqa: E402
from mantile_core.errors import ParallelismError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_mamba import plugin  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "config.json"

# one mixer: in_proj 2·1536·768 = 2,359,296; conv 1536·4 + 1536 = 7,680; x_proj 1536·(48+32)
# = 122,880; dt_proj 48·1536 + 1536 = 75,264; A_log + D 1536·16 + 1536 = 26,112;
# out_proj 1536·768 = 1,179,648
MIXER_PARAMS = 2_359_296 + 7_680 + 122_880 + 75_264 + 26_112 + 1_179_648
# 24 mixers + 24 block norms (768) + embedding 50280·768 + final norm 768; the head is tied
MODEL_PARAMS = 24 * MIXER_PARAMS + 24 * 768 + 38_615_040 + 768


@pytest.fixture
def mamba(mantile_plugins):
    """The Mamba plugin registered in-process, the model loaded through it."""
    mantile_plugins(plugin, distribution="mantile-mamba")
    return mantile_core.load_model(CONFIG)


def mixer(model):
    return next(layer for layer in model.layers if layer.kind == "mixer")


def test_layout_and_parameter_count(mamba):
    kinds = [layer.kind for layer in mamba.layers]
    assert kinds == ["embedding"] + ["norm", "mixer"] * 24 + ["norm", "lm_head"]
    assert mixer(mamba).type == "mamba-mixer"
    assert MIXER_PARAMS == 3_770_880
    assert mamba.params() == MODEL_PARAMS == 129_135_360
    assert mamba.weight_bytes() == 4 * 129_135_360  # fp32 everywhere


def test_prefill_cost_by_hand(mamba):
    cost = mixer(mamba).cost(Step(batch=2, new_tokens=10, cached=0, act_dtype="fp32", kv_dtype="fp32"))
    tokens = 20
    # GEMMs: 2·T·(768·3072 + 1536·80 + 48·1536 + 1536·768) = 2·20·3,735,552
    assert cost.matmul_flops == 2 * tokens * 3_735_552 == 149_422_080
    # elementwise per token and channel: conv 2·4−1+1 = 8, SiLU 4, Δ bias 1, softplus 3,
    # scan 7·16+2 = 114, gate 5: 135
    assert cost.flops == 149_422_080 + tokens * 1536 * 135 == 153_569_280
    # state per sequence: 1536·(3 + 16) fp32 values = 116,736 bytes; read nothing (no state yet)
    assert cost.recurrent_state_bytes == cost.kv_write_bytes == 2 * 116_736
    assert cost.kv_read_bytes == 0
    # activations: per token 5·1536 + 80 + 768 = 8,528 values of 4 bytes
    assert cost.activation_bytes == tokens * 8_528 * 4 == 682_240
    assert cost.comm_bytes == 0 and cost.collectives == 0
    assert cost.weight_bytes == 4 * MIXER_PARAMS


def test_decode_reads_the_state_and_tensor_parallel_halves_it(mamba):
    cost = mixer(mamba).cost(Step(batch=2, new_tokens=1, cached=4000, tp=2, act_dtype="fp32", kv_dtype="fp32"))
    # Il = 768 channels: GEMMs 2·2·(768·1536 + 768·80 + 48·768 + 768·768)
    assert cost.matmul_flops == 4 * (1_179_648 + 61_440 + 36_864 + 589_824) == 7_471_104
    assert cost.recurrent_state_bytes == cost.kv_read_bytes == cost.kv_write_bytes == 2 * 768 * 19 * 4
    # two all-reduces: x_proj's 80 values and out_proj's 768 per token, fp32
    assert (cost.comm_bytes, cost.collectives) == (2 * (80 + 768) * 4, 2)


def test_state_does_not_grow_with_context(mamba):
    short = mantile_core.estimate(mamba, "h100", batch=4, input_len=128, output_len=128, dtype="fp32")
    long = mantile_core.estimate(mamba, "h100", batch=4, input_len=32_000, output_len=128, dtype="fp32")
    # 24 layers · 4 sequences · 116,736 bytes, whatever the context
    assert short.memory["recurrent_state_bytes"] == long.memory["recurrent_state_bytes"] == 24 * 4 * 116_736
    assert short.to_dict()["layers"][2]["decode"]["recurrent_state_bytes"] == 4 * 116_736


def test_vectorised_steps(mamba):
    batch = numpy.array([1, 2, 8])
    cost = mixer(mamba).cost(Step(batch=batch, new_tokens=1, cached=numpy.array([0, 5, 9]), act_dtype="fp32",
                                  kv_dtype="fp32"))
    numpy.testing.assert_array_equal(cost.kv_read_bytes, [0, 2 * 116_736, 8 * 116_736])
    numpy.testing.assert_array_equal(cost.matmul_flops, batch * 2 * 3_735_552)


def test_tp_must_divide_the_channels(mamba):
    with pytest.raises(ParallelismError, match="'tp' must divide intermediate_size=1536 \\(got 5\\)"):
        mantile_core.estimate(mamba, "h100", tp=5)


def test_cli_layers_in_process(mamba, capsys):
    from mantile_core.cli import main

    assert main(["layers", str(CONFIG), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["params"] == 129_135_360
    assert {row["type"] for row in doc["layers"]} >= {"mamba-mixer", "mamba-lm-head"}


def test_torch_reference_counts_the_same_flops():
    pytest.importorskip("torch")
    from mantile_mamba.validation import VALIDATION_CASES

    for case in VALIDATION_CASES:
        outcome = case.run()
        assert outcome.passed, f"{case.name}: {outcome.detail}"


def test_parameter_count_matches_transformers():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import torch

    config = transformers.MambaConfig(**json.loads(CONFIG.read_text()))
    with torch.device("meta"):
        model = transformers.MambaForCausalLM(config)
    # tied head: parameters() yields the shared matrix once
    assert sum(p.numel() for p in model.parameters()) == 129_135_360


def _mantile(*args: str) -> subprocess.CompletedProcess:
    """The installed command, with mantile-recurrent (the real plugin, which also claims
    model_type mamba) switched off should it be installed too."""
    import os

    script = Path(sys.executable).parent / "mantile"
    env = {**os.environ, "MANTILE_DISABLE_PLUGINS": "mantile-recurrent"}
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120, env=env)


def test_installed_plugin_through_the_command_line():
    """With the distribution installed, the real entry point is found by a fresh process."""
    from importlib import metadata

    if not any(ep.value == "mantile_mamba.plugin" for ep in metadata.entry_points(group="mantile")):
        pytest.skip("mantile-mamba is importable but not installed (no entry point)")
    listed = json.loads(_mantile("plugins", "--json").stdout)
    mine = [p for p in listed["plugins"] if p["distribution"] == "mantile-mamba"]
    assert mine and mine[0]["error"] is None
    assert "mamba-mixer" in mine[0]["provides"]["layer_types"]
    result = _mantile("estimate", str(CONFIG), "--json")
    assert result.returncode == 0, result.stderr
    # the float32 checkpoint is served in bf16 (vLLM's dtype=auto), its state too: half of 4 bytes per element
    assert json.loads(result.stdout)["memory"]["recurrent_state_bytes"] == 24 * 116_736 // 2  # batch 1
    result = _mantile("estimate", str(CONFIG), "--dtype", "fp32", "--json")
    assert json.loads(result.stdout)["memory"]["recurrent_state_bytes"] == 24 * 116_736 * 1  # batch 1, fp32 state
