"""Quantized checkpoints as published (modelopt FP8 per-tensor, NVFP4, W4A16 NVFP4, mixed
precision): weight and scale bytes against hand arithmetic over each checkpoint's tensor list.

Configs: tests/data/hf_collection (aiconfigurator-core 0.12.0; sources in its SOURCES.md), loaded
as their repositories publish them (config.json, and modelopt's hf_quant_config.json beside it).
Tensors of a modelopt checkpoint, per quantized linear of ``rows × cols`` (modelopt's export;
e.g. ``model.layers.0.mlp.experts.0.down_proj``):

- FP8: ``weight`` F8_E4M3 [rows, cols], ``weight_scale`` F32 [], ``input_scale`` F32 [];
- NVFP4: ``weight`` U8 [rows, cols/2], ``weight_scale`` F8_E4M3 [rows, cols/16],
  ``weight_scale_2`` F32 [], ``input_scale`` F32 [];
- W4A16_NVFP4: NVFP4 without ``input_scale`` (its config group has no input_activations);
- with ``kv_cache_quant_algo`` FP8, ``self_attn.k_proj.k_scale`` and ``v_proj.v_scale`` F32 [].
Unquantized tensors (embeddings, norms, routers, excluded modules) are bf16: 2 bytes each.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import mantile_core
from mantile_core.dtypes import DType
from mantile_core.errors import ConfigError
from mantile_core.quant import MODELOPT_FORMATS, QuantScheme, read_quant_scheme

COLLECTION = Path(__file__).parent / "data" / "hf_collection"


def _read(name: str) -> dict:
    path = COLLECTION / name
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def _published(key: str, tmp_path: Path) -> Path:
    folder = tmp_path / key
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_read(f"{key}_config.json")))
    companion = COLLECTION / f"{key}_hf_quant_config.json"
    if companion.exists():
        (folder / "hf_quant_config.json").write_text(companion.read_text())
    return folder


def fp8(rows: int, cols: int) -> int:
    """weight (1 byte each) + weight_scale + input_scale (float32)."""
    return rows * cols + 4 + 4


def nvfp4(rows: int, cols: int, input_scale: bool = True) -> int:
    """weight (two per byte) + fp8 scale per 16 + weight_scale_2 (+ input_scale), float32."""
    return rows * cols // 2 + rows * cols // 16 + 4 + 4 * input_scale


def test_llama_3_1_70b_fp8_bytes(tmp_path):
    """nvidia/Llama-3.1-70B-Instruct-FP8: FP8 per-tensor everywhere but lm_head, FP8 KV scales."""
    model = mantile_core.load_model(_published("nvidia--Llama-3.1-70B-Instruct-FP8", tmp_path))
    hidden, inter, vocab, layers, q_width, kv_width = 8192, 28672, 128256, 80, 64 * 128, 8 * 128
    per_layer = (fp8(q_width, hidden) + 2 * fp8(kv_width, hidden) + fp8(hidden, q_width)  # q, k, v, o
                 + 2 * fp8(inter, hidden) + fp8(hidden, inter)  # gate, up, down
                 + 8  # k_scale, v_scale
                 + 2 * 2 * hidden)  # two RMSNorms, bf16
    expected = layers * per_layer + 2 * vocab * hidden * 2 + 2 * hidden  # embed, lm_head (excluded), norm
    assert model.weight_bytes() == expected
    assert model.params() == 70_553_706_496  # the logical count does not change


def test_qwen3_32b_fp8_static_per_tensor_bytes(tmp_path):
    """Qwen/Qwen3-32B-FP8-Static-PerTensor: a modelopt quantization_config without quant_method
    (quant_algo FP8, ignore lm_head, kv_cache_scheme "FP8")."""
    model = mantile_core.load_model(_published("Qwen--Qwen3-32B-FP8-Static-PerTensor", tmp_path))
    hidden, inter, vocab, layers, dh = 5120, 25600, 151936, 64, 128
    q_width, kv_width = 64 * dh, 8 * dh
    per_layer = (fp8(q_width, hidden) + 2 * fp8(kv_width, hidden) + fp8(hidden, q_width)
                 + 2 * fp8(inter, hidden) + fp8(hidden, inter) + 8
                 + 2 * 2 * hidden + 2 * 2 * dh)  # two RMSNorms, q_norm and k_norm, bf16
    assert model.weight_bytes() == layers * per_layer + 2 * vocab * hidden * 2 + 2 * hidden


def test_qwen3_235b_nvfp4_bytes(tmp_path):
    """nvidia/Qwen3-235B-A22B-NVFP4 (hf_quant_config.json: NVFP4, routers and lm_head excluded,
    FP8 KV scales): attention and the 128 experts' gate/up/down in NVFP4."""
    model = mantile_core.load_model(_published("nvidia--Qwen3-235B-A22B-NVFP4", tmp_path))
    hidden, moe_inter, experts, vocab, layers, dh = 4096, 1536, 128, 151936, 94, 128
    q_width, kv_width = 64 * dh, 4 * dh
    attention = nvfp4(q_width, hidden) + 2 * nvfp4(kv_width, hidden) + nvfp4(hidden, q_width) + 8 + 2 * 2 * dh
    moe = experts * (2 * nvfp4(moe_inter, hidden) + nvfp4(hidden, moe_inter)) + experts * hidden * 2  # router bf16
    per_layer = attention + moe + 2 * 2 * hidden
    assert model.weight_bytes() == layers * per_layer + 2 * vocab * hidden * 2 + 2 * hidden


def test_bf16_checkpoint_with_no_companion_is_unchanged():
    assert mantile_core.load_model("llama-3.1-70b").weight_bytes() == 2 * 70_553_706_496


def test_per_tensor_dtype_needs_matrix_shapes():
    """A per-tensor-scaled format has no size per element alone: nbytes refuses, the matrix
    form is exact (4096 x 1536 NVFP4: 3,145,728 + 393,216 + 8)."""
    dtype = MODELOPT_FORMATS["NVFP4"]
    with pytest.raises(ConfigError, match="matrix"):
        dtype.nbytes(4096 * 1536)
    assert dtype.matrix_nbytes(4096, 1536, 3) == 3 * (4096 * 1536 // 2 + 4096 * 1536 // 16 + 8)
    assert MODELOPT_FORMATS["W4A16_NVFP4"].matrix_nbytes(16, 32) == 16 * 32 // 2 + 16 * 32 // 16 + 4
    assert MODELOPT_FORMATS["FP8"].matrix_nbytes(10, 3) == 30 + 8


def test_mixed_precision_formats_per_module():
    """nvidia/Qwen3.6-27B-NVFP4: FP8 linear attention and attention, W4A16 NVFP4 MLP and
    lm_head, everything else bf16 (quantized_layers lists each module)."""
    config = _read("nvidia--Qwen3.6-27B-NVFP4_config.json")
    scheme = read_quant_scheme(config["quantization_config"], "config 'q'")
    bf16 = mantile_core.dtypes.get_dtype("bf16")
    assert scheme.kv_scale_bytes == 8
    assert scheme.dtype_for("model.layers.0.linear_attn", bf16,
                            linears=("in_proj_qkv", "in_proj_z", "out_proj")).name == "fp8-pertensor"
    assert scheme.dtype_for("model.layers.3.self_attn", bf16,
                            linears=("q_proj", "k_proj", "v_proj", "o_proj")).name == "fp8-pertensor"
    assert scheme.dtype_for("model.layers.3.mlp", bf16).name == "nvfp4-w4a16"
    assert scheme.dtype_for("lm_head", bf16).name == "nvfp4-w4a16"
    assert scheme.dtype_for("model.embed_tokens", bf16) is bf16
    # the multimodal wrapper's own spelling names the same modules
    assert scheme.dtype_for("model.language_model.layers.3.mlp.down_proj", bf16).name == "nvfp4-w4a16"


def test_mixed_base_method_keeps_its_format_for_unlisted_modules():
    """nvidia/DeepSeek-V4-Flash-NVFP4: quant_method fp8 (128x128 blocks) for the rest, NVFP4
    experts, attention / shared experts / head excluded (bf16)."""
    quant = _read("nvidia--DeepSeek-V4-Flash-NVFP4_config.json")["quantization_config"]
    base = DType("fp8-b128x128", 8, scale_bits=32, compute="fp8")
    scheme = read_quant_scheme(quant, "config 'v4'", base=base)
    bf16 = mantile_core.dtypes.get_dtype("bf16")
    assert scheme.dtype_for("layers.2.ffn.experts", bf16).name == "nvfp4-pertensor"
    assert scheme.dtype_for("layers.2.attn", bf16) is bf16
    assert scheme.dtype_for("layers.2.ffn.shared_experts", bf16) is bf16
    assert scheme.dtype_for("layers.2.ffn.gate", bf16) is base


def test_partly_excluded_layer_is_an_error_not_a_guess():
    """nvidia/DeepSeek-V3.1-NVFP4 keeps q_a/q_b/kv_a/kv_b projections in bf16 but quantizes
    o_proj: a layer holding one format cannot represent that, so it is refused."""
    quant = {"quant_method": "modelopt", **_read("nvidia--DeepSeek-V3.1-NVFP4_hf_quant_config.json")["quantization"]}
    scheme = read_quant_scheme(quant, "config 'd'")
    bf16 = mantile_core.dtypes.get_dtype("bf16")
    with pytest.raises(ConfigError, match=r"model.layers.0.self_attn mixes weight formats .*o_proj nvfp4-pertensor"):
        scheme.dtype_for("model.layers.0.self_attn", bf16,
                         linears=("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"))
    assert scheme.dtype_for("model.layers.5.mlp.experts", bf16).name == "nvfp4-pertensor"
    assert scheme.dtype_for("lm_head", bf16) is bf16


def test_unknown_quant_algo_is_named():
    with pytest.raises(ConfigError, match="quant_algo 'INT3' is not supported"):
        read_quant_scheme({"quant_method": "modelopt", "quant_algo": "INT3"}, "config 'x'")


def test_scheme_is_a_record():
    scheme = read_quant_scheme({"quant_method": "modelopt", "quant_algo": "FP8", "exclude_modules": ["lm_head"]},
                               "config 'x'")
    assert isinstance(scheme, QuantScheme) and scheme.skip == ("lm_head",) and scheme.kv_scale_bytes == 0


def test_module_asked_whole_while_a_projection_is_excluded_is_refused():
    """A layer type that asks for its module alone cannot see per-projection exclusions."""
    quant = {"quant_method": "modelopt", **_read("nvidia--GLM-5-NVFP4_hf_quant_config.json")["quantization"]}
    scheme = read_quant_scheme(quant, "config 'g'")
    bf16 = mantile_core.dtypes.get_dtype("bf16")
    with pytest.raises(ConfigError, match="keeps part of model.layers.5.self_attn unquantized"):
        scheme.dtype_for("model.layers.5.self_attn", bf16)
    # named, GLM-5's attention is wholly excluded (indexer included): bf16
    assert scheme.dtype_for("model.layers.5.self_attn", bf16, linears=(
        "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "indexer.wq_b")) is bf16
    assert scheme.dtype_for("model.layers.5.mlp.experts", bf16).name == "nvfp4-pertensor"
