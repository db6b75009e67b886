"""mantile-mla, analytic side (no torch): parameter totals of DeepSeek-V2-Lite, DeepSeek-V3
(main model and MTP module) and Kimi-K2 against hand arithmetic written out here and against the
published safetensors figures; fp8 block-scale bytes; the latent KV cache; MLA FLOPs prefill
(expanded) and decode (absorbed) against the formulas; estimates; the config reader; the
missing-plugin message. The torch reference is tested in test_mla_reference.py.

Published figures used (deepseek-ai/DeepSeek-V3, Hugging Face API ``safetensors``):
total 684,531,386,000 elements = BF16 3,918,786,560 + F8_E4M3 680,571,043,840 + F32 41,555,600
(index file ids 58758039937 and 67469160833 of the code-search index quote that API response).
DeepSeek-V2-Lite: 15,706,484,224 (index file id 69468411049); Kimi-K2-Instruct: 1,026,408,232,448
logical parameters (index file ids 66729435508, 68577105039).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("mantile_mla")
pytest.importorskip("mantile_rope_yarn")

import mantile_core  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.dtypes import block_scaled, get_dtype  # noqa: E402
from mantile_core.errors import ConfigError, MantileError, ParallelismError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_mla.attention import MLAttention  # noqa: E402
from mantile_mla.config import read_deepseek  # noqa: E402
from mantile_mla.moe import DeepSeekMoE  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "plugins" / "mla" / "tests" / "data"
BUNDLED = Path(mantile_core.__file__).parent / "data" / "models"


def load(name: str):
    return mantile_core.load_model(DATA / f"{name}.json")


# --- hand arithmetic of the totals -------------------------------------------------------

def mla_params(H, heads, r_q, r, dn, dr, dv):
    """q_a (r_q×H) + q_a_layernorm (r_q) + q_b (heads·(dn+dr)×r_q), or q_proj; kv_a ((r+dr)×H)
    + kv_a_layernorm (r) + kv_b (heads·(dn+dv)×r) + o_proj (H×heads·dv)."""
    q = (H * r_q + r_q + r_q * heads * (dn + dr)) if r_q else H * heads * (dn + dr)
    return q + H * (r + dr) + r + r * heads * (dn + dv) + heads * dv * H


def deepseek_total(H, V, L, heads, r_q, r, dn, dr, dv, inter, E, Ie, shared, dense, bias):
    """embed + lm_head + final norm + per layer (2 norms + MLA) + dense MLPs + MoE layers
    (E experts of 3·H·Ie, shared experts 3·H·Ie·shared, router E×H, correction bias E)."""
    moe = E * 3 * H * Ie + 3 * H * Ie * shared + E * H + bias * E
    return (2 * V * H + H + L * (2 * H + mla_params(H, heads, r_q, r, dn, dr, dv))
            + dense * 3 * H * inter + (L - dense) * moe)


V3 = dict(H=7168, V=129280, L=61, heads=128, r_q=1536, r=512, dn=128, dr=64, dv=128, inter=18432, E=256,
          Ie=2048, shared=1, dense=3, bias=1)
KIMI = dict(V3, V=163840, heads=64, E=384, dense=1)
V2_LITE = dict(H=2048, V=102400, L=27, heads=16, r_q=None, r=512, dn=128, dr=64, dv=128, inter=10944, E=64,
               Ie=1408, shared=2, dense=1, bias=0)


def test_hand_arithmetic_matches_the_published_totals():
    assert deepseek_total(**V2_LITE) == 15_706_484_224
    assert deepseek_total(**V3) == 671_026_419_200
    assert deepseek_total(**KIMI) == 1_026_408_232_448


@pytest.mark.parametrize("name,expected", [("deepseek-v2-lite", deepseek_total(**V2_LITE)),
                                           ("deepseek-v3", deepseek_total(**V3)),
                                           ("deepseek-r1", deepseek_total(**V3)),
                                           ("kimi-k2", deepseek_total(**KIMI))])
def test_totals(name, expected):
    model = load(name)
    assert model.params() == expected
    assert mantile_core.load_model(name).params() == expected  # the bundled copy


def test_bundled_configs_equal_the_test_data():
    for name in ("deepseek-v3", "deepseek-r1", "kimi-k2", "deepseek-v2-lite"):
        assert (BUNDLED / f"{name}.json").read_bytes() == (DATA / f"{name}.json").read_bytes()


def _scales(rows, cols):
    return math.ceil(rows / 128) * math.ceil(cols / 128)


def test_deepseek_v3_stored_tensors_by_dtype_equal_the_published_safetensors():
    """Every stored tensor of DeepSeek-V3 by dtype, from the config by hand, equals the
    Hugging Face API's safetensors parameters: BF16 3,918,786,560, F8_E4M3 680,571,043,840,
    F32 41,555,600 (total 684,531,386,000). The MTP layer (index 61) is an MoE layer with its
    own embed_tokens, shared_head.head (V×H, bf16), enorm, hnorm, shared_head.norm and
    eh_proj (H×2H, bf16); quantized linears are fp8 plus a float32 scale per 128×128 block."""
    H, V, heads, r_q, r, dn, dr, dv, inter, E, Ie = 7168, 129280, 128, 1536, 512, 128, 64, 128, 18432, 256, 2048
    attn = [(r_q, H), (heads * (dn + dr), r_q), (r + dr, H), (heads * (dn + dv), r), (H, heads * dv)]
    dense = [(inter, H), (inter, H), (H, inter)]
    expert = [(Ie, H), (Ie, H), (H, Ie)]
    moe = expert * (E + 1)  # routed + the shared expert (n_shared_experts 1)
    main_fp8 = 61 * attn + 3 * dense + 58 * moe
    mtp_fp8 = attn + moe
    fp8 = sum(a * b for a, b in main_fp8 + mtp_fp8)
    scales = sum(_scales(a, b) for a, b in main_fp8 + mtp_fp8)
    f32 = scales + (58 + 1) * E  # + e_score_correction_bias
    norms = 2 * H + r_q + r  # per decoder layer
    bf16 = (2 * V * H + H + 61 * norms + 58 * E * H  # main: embed, head, final norm, norms, routers
            + 2 * V * H + 3 * H + norms + E * H + 2 * H * H)  # MTP: embed, head, 3 norms, router, eh_proj
    assert (bf16, fp8, f32) == (3_918_786_560, 680_571_043_840, 41_555_600)
    model = load("deepseek-v3")
    extras = model.extras
    assert model.params() + extras["mtp_params"] + scales == 684_531_386_000
    assert extras["mtp_layers"] == 1
    assert extras["mtp_params"] == 2 * V * H + 3 * H + norms + E * H + 2 * H * H + E + sum(a * b for a, b in mtp_fp8)
    assert model.weight_bytes() + extras["mtp_weight_bytes"] == 2 * bf16 + fp8 + 4 * f32


def test_layers_json_reports_mtp_apart(capsys):
    assert main(["layers", "deepseek-v3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["params"] == 671_026_419_200
    assert doc["mtp_params"] == 13_463_426_304 and doc["mtp_layers"] == 1
    attn = next(row for row in doc["layers"] if row["kind"] == "attention")
    assert attn["kv_cache"] == "latent" and attn["kv_values_per_token"] == 576
    assert attn["kv_replicated_across_tp"] is True and (attn["prefill_form"], attn["decode_form"]) == ("expanded", "absorbed")
    assert main(["layers", "kimi-k2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mtp_params"] == 0


def test_layer_kinds_and_dtypes():
    model = load("deepseek-v3")
    kinds = [layer.kind for layer in model.layers if layer.index == 2] + [layer.kind for layer in model.layers
                                                                         if layer.index == 3]
    assert kinds == ["norm", "attention", "norm", "mlp", "norm", "attention", "norm", "moe"]
    moe = next(layer for layer in model.layers if layer.kind == "moe")
    assert isinstance(moe, DeepSeekMoE)
    assert moe.expert_dtype.name == "fp8-b128x128" and moe.shared_dtype.name == "fp8-b128x128"
    assert moe.dense_dtype.name == "bf16" and moe.router_bias and moe.n_group == 8 and moe.topk_group == 4
    attn = next(layer for layer in model.layers if layer.kind == "attention")
    assert attn.weight_dtype.name == "fp8-b128x128" and attn.norm_dtype.name == "bf16"
    lite = load("deepseek-v2-lite")
    assert not next(layer for layer in lite.layers if layer.kind == "moe").router_bias  # greedy: no bias
    assert next(layer for layer in lite.layers if layer.kind == "attention").q_lora_rank is None


# --- fp8 block scales in the core ------------------------------------------------------------

def test_block_scaled_dtype_bytes():
    fp8 = block_scaled("fp8", (128, 128))
    assert fp8.matrix_nbytes(576, 7168) == 576 * 7168 + 5 * 56 * 4  # ceil(576/128) = 5 row blocks
    assert fp8.matrix_nbytes(2048, 7168, 3) == 3 * (2048 * 7168 + 16 * 56 * 4)
    with pytest.raises(MantileError, match="matrix shapes"):
        fp8.nbytes(1000)
    assert get_dtype("bf16").matrix_nbytes(3, 5, 2) == 60


def test_fp8_block_size_must_be_two_positive_integers(tmp_path):
    data = json.loads((DATA / "deepseek-v3.json").read_text())
    data["quantization_config"]["weight_block_size"] = [128]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="weight_block_size"):
        mantile_core.load_model(path)


def test_dense_mlp_block_scales_under_tp():
    model = load("deepseek-v3")
    mlp = next(layer for layer in model.layers if layer.kind == "mlp")
    step = Step(batch=1, new_tokens=1, cached=0, tp=8, policies=_policies())
    local = 18432 // 8  # 2304 rows of gate/up per device: 18 row blocks
    expected = 3 * local * 7168 + 4 * (2 * 18 * 56 + 56 * 18)
    assert mlp.cost(step).resident_weight_bytes == expected


# --- MLA cost -----------------------------------------------------------------------------

def _policies():
    return {"causal": mantile_core.get_plugin_manager().registries.cache_policies["causal"]}


def v3_attention() -> MLAttention:
    return next(layer for layer in load("deepseek-v3").layers if layer.kind == "attention")


def test_deepseek_v3_kv_cache_done_when():
    """Batch 1, input 4095, output 1: the latent of 4096 tokens, 576 bf16 values per token,
    in each of the 61 layers, whatever the tp (replicated)."""
    for tp in (1, 8):
        result = mantile_core.estimate("deepseek-v3", "h200", tp=tp, batch=1, input_len=4095, output_len=1)
        assert result.to_dict()["memory"]["kv_cache_bytes"] == 61 * 576 * 2 * 4096


@pytest.mark.parametrize("tp", [1, 8, 16])
def test_prefill_expanded_flops(tp):
    a = v3_attention()
    H, r_q, r, dn, dr, dv, hl = 7168, 1536, 512, 128, 64, 128, 128 // tp
    batch, S = 2, 300
    T, pairs = batch * S, batch * S * (S + 1) // 2
    cost = a.cost(Step(batch=batch, new_tokens=S, cached=0, tp=tp, policies=_policies()))
    gemm = (2 * T * H * r_q + 2 * T * r_q * hl * (dn + dr) + 2 * T * H * (r + dr)
            + 2 * T * r * hl * (dn + dv) + 2 * T * hl * dv * H)
    attention = 2 * (dn + dr) * hl * pairs + 2 * dv * hl * pairs
    assert cost.attention_flops == attention
    assert cost.matmul_flops == gemm + attention
    elementwise = 4 * T * (r_q + r) + 3 * T * (hl + 1) * dr + 5 * hl * pairs + T * hl * dv
    assert cost.flops == gemm + attention + elementwise
    assert cost.kv_cache_bytes == 2 * batch * S * (r + dr)
    assert cost.comm_bytes == (2 * T * H if tp > 1 else 0)
    assert cost.attention_rows == T * hl  # the prompt kernel's (query token, local head) rows


@pytest.mark.parametrize("tp", [1, 8])
def test_decode_absorbed_flops(tp):
    a = v3_attention()
    H, r_q, r, dn, dr, dv, hl = 7168, 1536, 512, 128, 64, 128, 128 // tp
    batch, C = 4, 1000
    T, pairs = batch, batch * (C + 1)
    cost = a.cost(Step(batch=batch, new_tokens=1, cached=C, tp=tp, policies=_policies()))
    gemm = (2 * T * H * r_q + 2 * T * r_q * hl * (dn + dr) + 2 * T * H * (r + dr)
            + 2 * T * hl * dn * r + 2 * T * hl * r * dv + 2 * T * hl * dv * H)  # W_UK, W_UV absorbed
    attention = 2 * (r + dr) * hl * pairs + 2 * r * hl * pairs  # over the latent
    assert cost.attention_flops == attention
    assert cost.matmul_flops == gemm + attention
    assert cost.flops == gemm + attention + 4 * T * (r_q + r) + 3 * T * (hl + 1) * dr + 5 * hl * pairs + T * hl * r
    assert cost.kv_cache_bytes == 2 * batch * (C + 1) * 576  # replicated: the same at every tp
    assert cost.attention_rows == 0  # decode: no prompt-kernel rows
    assert cost.kv_read_bytes == 2 * batch * (C + 1) * 576 and cost.kv_write_bytes == 2 * batch * 576


def test_weights_per_device():
    a = v3_attention()
    fp8_block = lambda rows, cols: rows * cols + 4 * _scales(rows, cols)  # noqa: E731
    H = 7168
    for tp in (1, 8):
        hl = 128 // tp
        expected = (fp8_block(1536, H) + fp8_block(hl * 192, 1536) + fp8_block(576, H) + fp8_block(hl * 256, 512)
                    + fp8_block(H, hl * 128) + 2 * (1536 + 512))
        assert a.cost(Step(batch=1, new_tokens=1, cached=0, tp=tp, policies=_policies())).resident_weight_bytes == expected
    assert a.weight_bytes() == a.cost(Step(batch=1, new_tokens=1, cached=0, policies=_policies())).resident_weight_bytes


def test_v2_lite_plain_q_proj():
    a = next(layer for layer in load("deepseek-v2-lite").layers if layer.kind == "attention")
    assert a.params() == mla_params(2048, 16, None, 512, 128, 64, 128)
    cost = a.cost(Step(batch=1, new_tokens=10, cached=0, policies=_policies()))
    T = 10
    assert cost.matmul_flops - cost.attention_flops == (2 * T * 2048 * 16 * 192 + 2 * T * 2048 * 576
                                                         + 2 * T * 512 * 16 * 256 + 2 * T * 16 * 128 * 2048)


def test_tp_must_divide_heads():
    with pytest.raises(ParallelismError, match="num_attention_heads=128"):
        mantile_core.estimate("deepseek-v3", "h200", tp=3)


# --- the MoE ------------------------------------------------------------------------------

def test_moe_routing_and_shared_experts():
    model = load("deepseek-v3")
    moe = next(layer for layer in model.layers if layer.kind == "moe")
    assert moe.params() == 256 * 3 * 7168 * 2048 + 3 * 7168 * 2048 + 256 * 7168 + 256
    step = Step(batch=1, new_tokens=10, cached=0, tp=8, ep=8, policies=_policies())
    base = mantile_core.layers.MoE.cost(moe, step)
    # grouped top-k: 2 per group per token, scale by routed_scaling_factor k, normalise 2k
    assert moe.cost(step).flops - base.flops == 10 * (2 * 8 + 8 * 3)


# --- estimates and the CLI ------------------------------------------------------------------

def test_estimate_deepseek_v3_tp8(capsys):
    assert main(["estimate", "deepseek-v3", "--hardware", "h200", "--tp", "8"]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "fits" in out


def test_deployment_that_does_not_fit():
    memory = mantile_core.estimate("deepseek-v3", "h200", tp=4).to_dict()["memory"]
    assert not memory["fits"] and memory["weight_bytes"] > memory["capacity_bytes"]
    memory = mantile_core.estimate("kimi-k2", "h100", tp=8).to_dict()["memory"]
    assert not memory["fits"]  # 1.03 TB of fp8 weights on 8 × 80 GB
    assert mantile_core.estimate("kimi-k2", "h200", tp=8).to_dict()["memory"]["fits"]  # 128.6 GB of 141


def test_estimate_v2_lite_runs_with_ep():
    doc = mantile_core.estimate("deepseek-v2-lite", "h100", tp=4, ep=4, batch=8).to_dict()
    assert doc["params"] == 15_706_484_224 and doc["tpot_ms"] > 0


# --- the config reader ------------------------------------------------------------------------

def test_reader_normalises_and_checks():
    raw = json.loads((DATA / "deepseek-v3.json").read_text())
    out = read_deepseek(raw, "config 'x'")
    assert out["head_dim"] == 64 and out["num_experts"] == 256 and out["mlp_only_layers"] == [0, 1, 2]
    bad = dict(raw, kv_lora_rank=-1)
    with pytest.raises(ConfigError, match="kv_lora_rank"):
        read_deepseek(bad, "config 'x'")
    with pytest.raises(ConfigError, match="topk_method"):
        read_deepseek(dict(raw, topk_method="nope"), "config 'x'")
    freq = read_deepseek(dict(raw, moe_layer_freq=2), "config 'x'")
    assert freq["mlp_only_layers"][:5] == [0, 1, 2, 3, 5]


def test_bad_mla_key_is_one_line(tmp_path, capsys):
    data = json.loads((DATA / "deepseek-v3.json").read_text())
    data["qk_rope_head_dim"] = 63
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    assert main(["layers", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "qk_rope_head_dim" in err and "\n" not in err


def test_core_alone_names_the_plugin(monkeypatch, capsys):
    from mantile_core.plugins import reset_plugin_manager

    monkeypatch.setenv("MANTILE_DISABLE_PLUGINS", "1")
    reset_plugin_manager()
    assert main(["estimate", "deepseek-v3", "--hardware", "h200"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mantile-mla" in err and "\n" not in err


def test_attention_dp_with_expert_parallelism():
    """DeepSeek's own serving layout: 8 attention-DP ranks of tp 1, experts over all 8 (ep 8).
    Each rank caches the latent of its own sequences (8 sequences: one per rank) and holds the
    whole MLA (tp 1) plus 32 of the 256 experts of every MoE layer."""
    doc = mantile_core.estimate("deepseek-v3", "h200", tp=1, dp=8, ep=8, batch=8, input_len=4095,
                                output_len=1).to_dict()
    assert doc["memory"]["kv_cache_bytes"] == 61 * 576 * 2 * 4096
    model = load("deepseek-v3")
    attn = next(layer for layer in model.layers if layer.kind == "attention")
    expert = 3 * (2048 * 7168 + 4 * 16 * 56)  # gate, up, down in fp8 with their block scales
    row = next(r for r in doc["layers"] if r["kind"] == "moe")
    router = 2 * 256 * 7168 + 4 * 256  # bf16 gate and the float32 e_score_correction_bias
    assert row["weight_bytes_per_device"] == router + expert + 32 * expert  # + the shared expert, fp8
    row = next(r for r in doc["layers"] if r["kind"] == "attention")
    assert row["weight_bytes_per_device"] == attn.weight_bytes()


def test_wrapper_keeps_the_text_models_quantization(capsys):
    """Kimi-K2.5 (kimi_k25 wrapping a kimi_k2 text model) quantizes its experts inside
    text_config (compressed-tensors int4): refused in one line, never costed as bf16."""
    path = Path(__file__).parent / "data" / "hf_collection" / "moonshotai--Kimi-K2.5_config.json"
    if not path.is_file():
        pytest.skip("the published config collection is not in this checkout")
    assert main(["layers", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "compressed-tensors" in err and "\n" not in err
