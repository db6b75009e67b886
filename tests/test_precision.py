"""Served precision: vLLM's dtype=auto rule (float32 checkpoints served in bf16, or fp16 where
the accelerator has no bf16; bf16/fp16 kept) and an explicit dtype.

The model is Llama-3.2-1B (the bundled config.json, from
https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json) with its torch_dtype
set to float32, as Gemma-2 and many small checkpoints publish. Expected figures from the
published safetensors total (1,235,814,400 parameters, tied embeddings, see
tests/test_param_counts.py) and the KV arithmetic 2 (K, V) · 16 layers · 8 KV heads · 64
head_dim · bytes per position.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mantile_core
from mantile_core.dtypes import get_dtype
from mantile_core.errors import InputError
from mantile_core.precision import precision_warnings, served_precision

PARAMS = 1_235_814_400
KV_PER_TOKEN_ELEMENTS = 2 * 16 * 8 * 64
BUNDLED = Path(mantile_core.__file__).parent / "data" / "models" / "llama-3.2-1b.json"


@pytest.fixture
def fp32_config(tmp_path) -> Path:
    data = json.loads(BUNDLED.read_text())
    data["torch_dtype"] = "float32"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_float32_checkpoint_is_served_in_bf16_by_default(fp32_config):
    result = mantile_core.estimate(str(fp32_config), "h100", input_len=512, output_len=512)
    assert result.memory["weight_bytes"] == 2 * PARAMS
    assert result.memory["kv_cache_bytes"] == 1024 * KV_PER_TOKEN_ELEMENTS * 2
    doc = result.to_dict()
    assert (doc["dtype"], doc["checkpoint_dtype"], doc["kv_dtype"]) == ("bf16", "fp32", "bf16")


def test_explicit_dtype_wins(fp32_config):
    fp32 = mantile_core.estimate(str(fp32_config), "h100", input_len=512, output_len=512, dtype="float32")
    assert fp32.memory["weight_bytes"] == 4 * PARAMS
    assert fp32.memory["kv_cache_bytes"] == 1024 * KV_PER_TOKEN_ELEMENTS * 4
    half = mantile_core.estimate("llama-3.2-1b", "h100", input_len=512, output_len=512, dtype="half", kv_dtype="fp8")
    assert half.memory["weight_bytes"] == 2 * PARAMS
    assert half.memory["kv_cache_bytes"] == 1024 * KV_PER_TOKEN_ELEMENTS * 1
    assert (half.to_dict()["dtype"], half.to_dict()["kv_dtype"]) == ("fp16", "fp8")


def test_bf16_checkpoint_unchanged():
    model = mantile_core.load_model("llama-3.2-1b")
    result = mantile_core.estimate(model, "h100")
    assert result.model is model  # nothing rebuilt
    assert result.precision.describe() == "bf16 (as the checkpoint)"


def test_sweep_serves_the_same_precision(fp32_config):
    result = mantile_core.sweep(str(fp32_config), "h100", tp=1, batch=[1, 4], input_len=512, output_len=512)
    assert set(result["dtype"].tolist()) == {"bf16"}
    assert set(result["weight_bytes"].tolist()) == {2 * PARAMS}
    given = mantile_core.sweep(str(fp32_config), "h100", tp=1, batch=1, input_len=512, output_len=512, dtype="fp32")
    assert given["weight_bytes"].tolist() == [4 * PARAMS]


@pytest.mark.parametrize("checkpoint,model_type,has_bf16,served", [
    ("fp32", "llama", True, "bf16"),     # downcast to the first supported dtype
    ("fp32", "llama", False, "fp16"),    # pre-Ampere: no bf16
    ("fp32", "gemma2", False, "fp32"),   # fp16 struck for gemma2, nothing 16-bit left
    ("bf16", "llama", True, "bf16"),     # kept
    ("fp16", "llama", True, "fp16"),     # kept
    ("bf16", "llama", False, "fp16"),    # unsupported: the first supported replaces it
    ("fp16", "gemma2", True, "bf16"),    # fp16 struck for gemma2
])
def test_vllm_auto_rule(checkpoint, model_type, has_bf16, served):
    precision = served_precision(get_dtype(checkpoint), model_type, None, has_bf16=has_bf16)
    assert precision.dtype.name == served and precision.rule == "auto"
    assert served_precision(get_dtype(checkpoint), model_type, "auto", has_bf16=has_bf16) == precision


def test_describe():
    assert served_precision(get_dtype("fp32"), "llama").describe() == \
        "bf16 (checkpoint fp32, served as vLLM dtype=auto)"
    assert served_precision(get_dtype("fp32"), "llama", "fp32").describe() == "fp32 (--dtype; checkpoint fp32)"


def test_fp16_for_an_unstable_model_type_warns():
    given = served_precision(get_dtype("fp32"), "gemma2", "fp16")
    assert precision_warnings(given, "gemma2") == [
        "dtype fp16 for model_type 'gemma2': vLLM refuses it (numerically unstable in float16); bf16 or fp32 is what "
        "it serves"]
    assert precision_warnings(served_precision(get_dtype("fp32"), "llama", "fp16"), "llama") == []
    assert precision_warnings(served_precision(get_dtype("fp32"), "gemma2"), "gemma2") == []


@pytest.mark.parametrize("bad", ["fp8", "mxfp4", "int8", "float64"])
def test_dtype_must_be_a_served_float(bad):
    with pytest.raises(InputError, match=f"'dtype' must be auto, bf16, fp16 or fp32 \\(got '{bad}'\\)"):
        mantile_core.estimate("llama-3.2-1b", "h100", dtype=bad)
