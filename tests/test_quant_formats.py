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


def needs(*modules: str):
    """Skip unless the plugin modules are installed (the core and example CI envs lack them)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")

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


def _excluded(patterns: list[str], module: str) -> bool:
    """By hand, as nvidia's lists are written: an exact module name, or ``prefix*``."""
    return module in patterns or module.startswith(tuple(p[:-1] for p in patterns if p.endswith("*")))


def bf16(rows: int, cols: int) -> int:
    return 2 * rows * cols


@needs("mantile_mla", "mantile_rope_yarn", "mantile_swa_cache")
@pytest.mark.parametrize("key", ["nvidia--DeepSeek-V3.1-NVFP4", "nvidia--DeepSeek-V3.2-NVFP4"])
def test_deepseek_nvfp4_mixes_formats_inside_mla(key, tmp_path):
    """nvidia/DeepSeek-V3.1-NVFP4 and -V3.2-NVFP4 (hf_quant_config.json: NVFP4, FP8 KV scales)
    exclude q_a/q_b/kv_a/kv_b (and V3.2's ``indexer*``) of every layer and quantize o_proj:
    each projection is costed at its own format. Expected bytes from the config's shapes and
    the exclude list alone (MTP layer 61 is reported apart, excluded here)."""
    config = _read(f"{key}_config.json")
    exclude = _read(f"{key}_hf_quant_config.json")["quantization"]["exclude_modules"]
    assert all("*" not in p[:-1] for p in exclude)  # the hand matcher above reads them all
    exclude = frozenset(exclude)
    hidden, heads, r_q, r, dn, dr, dv = 7168, 128, 1536, 512, 128, 64, 128
    layers, dense_layers, inter, moe_inter, experts, vocab = 61, 3, 18432, 2048, 256, 129280
    assert (config["hidden_size"], config["num_hidden_layers"], config["n_routed_experts"]) == (hidden, layers, experts)

    def linear(module: str, rows: int, cols: int) -> int:
        return bf16(rows, cols) if _excluded(exclude, module) else nvfp4(rows, cols)

    total = bf16(vocab, hidden) + 2 * hidden + bf16(vocab, hidden)  # embed, final norm, lm_head
    assert _excluded(exclude, "lm_head")
    for i in range(layers):
        attn = f"model.layers.{i}.self_attn"
        total += 2 * 2 * hidden  # input and post-attention RMSNorm
        total += (linear(f"{attn}.q_a_proj", r_q, hidden) + linear(f"{attn}.q_b_proj", heads * (dn + dr), r_q)
                  + linear(f"{attn}.kv_a_proj_with_mqa", r + dr, hidden)
                  + linear(f"{attn}.kv_b_proj", heads * (dn + dv), r)
                  + linear(f"{attn}.o_proj", hidden, heads * dv)
                  + 2 * (r_q + r)  # q_a_layernorm, kv_a_layernorm
                  + 4 + 4)  # FP8 KV cache: float32 k_scale and v_scale
        if "index_n_heads" in config:  # DSA indexer: wq_b, wk, weights_proj, k_norm (LayerNorm)
            nh, dh = config["index_n_heads"], config["index_head_dim"]
            total += (linear(f"{attn}.indexer.wq_b", nh * dh, r_q) + linear(f"{attn}.indexer.wk", dh, hidden)
                      + bf16(nh, hidden) + 2 * 2 * dh)
        mlp = f"model.layers.{i}.mlp"
        if i < dense_layers:
            total += 2 * linear(f"{mlp}.gate_proj", inter, hidden) + linear(f"{mlp}.down_proj", hidden, inter)
        else:
            for e in [f"{mlp}.experts.{j}" for j in range(experts)] + [f"{mlp}.shared_experts"]:
                total += (linear(f"{e}.gate_proj", moe_inter, hidden) + linear(f"{e}.up_proj", moe_inter, hidden)
                          + linear(f"{e}.down_proj", hidden, moe_inter))
            total += bf16(experts, hidden) + 4 * experts  # router weight, float32 e_score_correction_bias
    model = mantile_core.load_model(_published(key, tmp_path))
    assert model.weight_bytes() == total
    attention = next(layer for layer in model.layers if layer.kind == "attention")
    o_proj = hidden * heads * dv
    assert attention.weight_bytes() - (0 if "index_n_heads" not in config else attention.indexer_bytes()) == (
        bf16(r_q, hidden) + bf16(heads * (dn + dr), r_q) + bf16(r + dr, hidden) + bf16(heads * (dn + dv), r)
        + o_proj // 2 + o_proj // 16 + 8 + 2 * (r_q + r) + 8)


def test_partly_excluded_layer_is_refused_by_a_one_format_layer():
    """A layer type holding one format per layer (the core attention) refuses a checkpoint
    that mixes formats across its projections, in one line."""
    quant = {"quant_method": "modelopt", **_read("nvidia--DeepSeek-V3.1-NVFP4_hf_quant_config.json")["quantization"]}
    scheme = read_quant_scheme(quant, "config 'd'")
    bf16_ = mantile_core.dtypes.get_dtype("bf16")
    with pytest.raises(ConfigError, match=r"model.layers.0.self_attn mixes weight formats .*o_proj nvfp4-pertensor"):
        scheme.dtype_for("model.layers.0.self_attn", bf16_,
                         linears=("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"))
    formats = scheme.formats_for("model.layers.0.self_attn", bf16_,
                                 ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"))
    assert formats.default is bf16_ and [(n, d.name) for n, d in formats.per_linear] == [("o_proj", "nvfp4-pertensor")]
    assert scheme.dtype_for("model.layers.5.mlp.experts", bf16_).name == "nvfp4-pertensor"
    assert scheme.dtype_for("lm_head", bf16_) is bf16_


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


@needs("mantile_recurrent")
def test_nemotron_3_nano_nvfp4_mixers_kept_in_bf16(tmp_path):
    """nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4 excludes in_proj and out_proj of the Mamba-2
    mixer before each attention layer, and q/k/v/o of every attention layer: those are bf16,
    the other mixers' projections NVFP4. Expected from the config's shapes and the exclude
    list (a mixer's conv1d, A_log, D, dt_bias and norm are the same bytes in every mixer)."""
    key = "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4"
    config = _read(f"{key}_config.json")
    exclude = frozenset(_read(f"{key}_hf_quant_config.json")["quantization"]["exclude_modules"])
    assert not any("*" in p for p in exclude)
    hidden, heads, kv_heads, dh = 2688, 32, 2, 128
    m_heads, m_dim, groups, state = 64, 64, 8, 128
    inner = m_heads * m_dim
    in_rows = 2 * inner + 2 * groups * state + m_heads  # z, x, B, C, dt
    assert (config["hidden_size"], config["mamba_num_heads"], config["n_groups"]) == (hidden, m_heads, groups)

    def linear(module: str, rows: int, cols: int) -> int:
        return bf16(rows, cols) if _excluded(exclude, module) else nvfp4(rows, cols)

    model = mantile_core.load_model(_published(key, tmp_path))
    mixers = {layer.index: layer for layer in model.layers if layer.name.endswith(".mixer")}
    pattern = config["hybrid_override_pattern"]
    rest = set()
    for i, kind in enumerate(pattern):
        name = f"backbone.layers.{i}.mixer"
        if kind == "*":  # attention, no biases or norms; FP8 KV cache scales
            assert mixers[i].weight_bytes() == (linear(f"{name}.q_proj", heads * dh, hidden)
                                                + 2 * linear(f"{name}.k_proj", kv_heads * dh, hidden)
                                                + linear(f"{name}.o_proj", hidden, heads * dh) + 8), i
            assert _excluded(exclude, f"{name}.q_proj")
        elif kind == "M":
            rest.add(mixers[i].weight_bytes() - linear(f"{name}.in_proj", in_rows, hidden)
                     - linear(f"{name}.out_proj", hidden, inner))
    assert len(rest) == 1  # six bf16 mixers and seventeen NVFP4 ones differ by their projections only
    # MoE: router weight and e_score_correction_bias float32 (transformers keeps both in fp32),
    # 128 experts' up/down and the shared expert's up/down NVFP4 (none excluded)
    experts, inter, shared = 128, 1856, 3712
    assert not any(".experts" in p or "shared_experts" in p for p in exclude)
    moe = (4 * experts * hidden + 4 * experts + experts * (nvfp4(inter, hidden) + nvfp4(hidden, inter))
           + nvfp4(shared, hidden) + nvfp4(hidden, shared))
    assert {mixers[i].weight_bytes() for i, kind in enumerate(pattern) if kind == "E"} == {moe}
    kept = [i for i, kind in enumerate(pattern)
            if kind == "M" and _excluded(exclude, f"backbone.layers.{i}.mixer.in_proj")]
    assert kept == [4, 11, 18, 25, 32, 41]


@needs("mantile_recurrent")
@pytest.mark.parametrize("key, vocab, hidden", [("nvidia--Qwen3.6-27B-NVFP4", 248320, 5120),
                                                ("nvidia--NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4", 131072, 2688)])
def test_mixed_precision_lm_head_listed_is_quantized(key, vocab, hidden, tmp_path):
    """A MIXED_PRECISION checkpoint that lists ``lm_head`` in quantized_layers (W4A16_NVFP4
    here) stores it so, whichever plugin builds the head: vocab x hidden at 4 bits + an fp8
    scale per 16 + weight_scale_2 (no input_scale)."""
    quant = _read(f"{key}_hf_quant_config.json")["quantization"]
    assert quant["quantized_layers"]["lm_head"]["quant_algo"] == "W4A16_NVFP4"
    model = mantile_core.load_model(_published(key, tmp_path))
    head = next(layer for layer in model.layers if layer.kind == "lm_head")
    assert (head.vocab, head.hidden) == (vocab, hidden)
    assert head.weight_bytes() == nvfp4(vocab, hidden, input_scale=False)


def fp8_block(rows: int, cols: int) -> int:
    """fp8 with weight_block_size [128, 128]: weight (1 byte each) + one float32
    weight_scale_inv per 128 x 128 block, partial blocks included (ceil division)."""
    return rows * cols + -(-rows // 128) * -(-cols // 128) * 4


def test_fp8_block_scale_is_per_started_block():
    """DeepSeek's kv_a_proj_with_mqa (576 x 7168): 5 row blocks (4.5 rounded up) x 56 scales."""
    from mantile_core.dtypes import block_scaled

    dtype = block_scaled("fp8", (128, 128))
    assert dtype.matrix_nbytes(576, 7168) == fp8_block(576, 7168) == 576 * 7168 + 5 * 56 * 4
    assert dtype.matrix_nbytes(129, 1, 3) == 3 * (129 + 2 * 1 * 4)


@pytest.mark.parametrize("key", ["Qwen--Qwen3-32B-FP8", "Qwen--Qwen3-30B-A3B-FP8"])
def test_qwen3_fp8_block_wise_bytes(key, tmp_path):
    """Qwen/Qwen3-32B-FP8 and Qwen3-30B-A3B-FP8 (quant_method fp8, weight_block_size [128, 128],
    lm_head / norms / routers in modules_to_not_convert): every attention and MLP / expert
    projection in 128 x 128-block fp8, the rest bf16."""
    config = _read(f"{key}_config.json")
    hidden, layers, vocab, dh = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"], 128
    q_width, kv_width = config["num_attention_heads"] * dh, config["num_key_value_heads"] * dh
    attention = (fp8_block(q_width, hidden) + 2 * fp8_block(kv_width, hidden) + fp8_block(hidden, q_width)
                 + 2 * 2 * dh)  # q_norm, k_norm
    if "num_experts" in config:
        experts, inter = config["num_experts"], config["moe_intermediate_size"]
        ffn = experts * (2 * fp8_block(inter, hidden) + fp8_block(hidden, inter)) + bf16(experts, hidden)
    else:
        inter = config["intermediate_size"]
        ffn = 2 * fp8_block(inter, hidden) + fp8_block(hidden, inter)
    expected = layers * (attention + ffn + 2 * 2 * hidden) + 2 * bf16(vocab, hidden) + 2 * hidden
    assert mantile_core.load_model(_published(key, tmp_path)).weight_bytes() == expected
