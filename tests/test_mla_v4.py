"""mantile-mla, DeepSeek-V4 (``deepseek_v4``; no torch): totals by hand and from transformers'
meta-device count, checkpoint storage from transformers' fp8 quantizer, the config reader's
schedules, attended pairs against brute force, FLOPs and cache bytes by hand, estimates.

Configs: tests/data/hf_collection (aiconfigurator-core 0.12.0, sources in its SOURCES.md):
deepseek-ai/DeepSeek-V4-Flash and -Pro, nvidia/DeepSeek-V4-Flash-NVFP4; the bundled
``deepseek-v4-flash`` / ``deepseek-v4-pro`` are copies of the first two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mantile_mla")
pytest.importorskip("mantile_rope_yarn")
pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.errors import ConfigError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_mla.v4_config import read_deepseek_v4  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "tests" / "data" / "hf_collection"
EXPECTED = json.loads((COLLECTION / "expected_totals.json").read_text())["configs"]
FLASH = "deepseek-ai--DeepSeek-V4-Flash"
PRO = "deepseek-ai--DeepSeek-V4-Pro"


def raw(key: str) -> dict:
    return json.loads((COLLECTION / f"{key}_config.json").read_text())


# --- parameter totals -------------------------------------------------------------------------

def attention_params(H, h, D, r_q, g, ro, m, nh, di):
    """transformers' DeepseekV4Attention: q_a + q_a_norm + q_b + kv + kv_norm + o_a (g blocks of
    h·D/g → ro) + o_b + sinks; the compressor (c = 2 overlapping series on CSA) and indexer."""
    out = H * r_q + r_q + r_q * h * D + H * D + D + g * ro * (h * D // g) + H * g * ro + h
    if m == 4:  # CSA: compressor 2·(2D × H) + position_bias 4 × 2D + kv_norm; indexer
        out += 2 * 2 * D * H + 4 * 2 * D + D
        out += 2 * 2 * di * H + 4 * 2 * di + di + r_q * nh * di + nh * H
    elif m == 128:  # HCA: compressor 2·(D × H) + position_bias 128 × D + kv_norm
        out += 2 * D * H + 128 * D + D
    return out


def total_by_hand(c: dict) -> tuple[int, int]:
    """(transformers' parameters, + the stored buffers tid2eid and e_score_correction_bias)."""
    H, V, L, n = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"], c["hc_mult"]
    E, I, k = c["n_routed_experts"], c["moe_intermediate_size"], c["num_experts_per_tok"]
    hc = (2 + n) * n * n * H + (2 + n) * n + 3
    params = 2 * V * H + H + (n * n * H + n + 1)  # embed, head, norm, hc_head
    stored = 0
    for i in range(L):
        params += attention_params(H, c["num_attention_heads"], c["head_dim"], c["q_lora_rank"], c["o_groups"],
                                   c["o_lora_rank"], c["compress_ratios"][i], c["index_n_heads"], c["index_head_dim"])
        params += 2 * hc + 2 * H + E * H + E * 3 * I * H + 3 * H * I  # HC, norms, router, experts, shared
        stored += V * k if i < c["num_hash_layers"] else E
    return params, params + stored


@pytest.mark.parametrize("key", [FLASH, PRO])
def test_totals_by_hand_equal_transformers(key):
    """The hand count equals transformers' meta-device total; Mantile's equals it plus the
    buffers the checkpoint stores (tid2eid on the hash layers, e_score_correction_bias on the
    others), counted as parameters as the safetensors totals do."""
    entry = EXPECTED[key]
    params, with_buffers = total_by_hand(raw(key))
    assert params == entry["text_params"]
    assert with_buffers == params + sum(entry["checkpoint_buffers"].values())
    assert mantile_core.load_model(COLLECTION / f"{key}_config.json").params() == with_buffers


def test_flash_figures():
    """Flash: 284,332,230,231 (transformers) + 3·129,280·6 tid2eid + 40·256 biases."""
    assert mantile_core.load_model("deepseek-v4-flash").params() == 284_332_230_231 + 3 * 129_280 * 6 + 40 * 256
    assert mantile_core.load_model("deepseek-v4-pro").params() == 1_572_997_179_491 + 3 * 129_280 * 6 + 58 * 384


def test_layer_params_by_kind():
    """Flash's three attention kinds and the MoE layers, by hand."""
    model = mantile_core.load_model("deepseek-v4-flash")
    attn = {a.layer_type: a for a in model.layers if a.kind == "attention"}
    H, h, D, rq, g, ro, nh, di = 4096, 64, 512, 1024, 8, 1024, 64, 128
    sliding = H * rq + rq + rq * h * D + H * D + D + ro * h * D + g * ro * H + h
    assert attn["sliding_attention"].params() == sliding == 106_956_352
    assert attn["heavily_compressed_attention"].params() == sliding + 2 * D * H + 128 * D + D
    assert attn["compressed_sparse_attention"].params() == (sliding + 4 * D * H + 8 * D + D
                                                             + 4 * di * H + 8 * di + di + rq * nh * di + nh * H)
    moe = [m for m in model.layers if m.kind == "moe"]
    assert [bool(m.hash_vocab) for m in moe[:4]] == [True, True, True, False]
    assert moe[0].params() - moe[3].params() == 129_280 * 6 - 256  # tid2eid instead of the bias
    hcs = [x for x in model.layers if x.kind == "hyper_connection"]
    assert len(hcs) == 2 * 43 + 1 and hcs[0].params() == 24 * 4 * H + 24 + 3 and hcs[-1].params() == 4 * 4 * H + 5


# --- storage -----------------------------------------------------------------------------------

# bytes by dtype of transformers' pre-quantized allocation (benchmarks/deepseek_v4_storage.py,
# transformers 5.24.0): bf16, float32, float8_e4m3fn, float8_e8m0fnu (block and fp4 scales),
# int8 (fp4 pairs), int64 (tid2eid)
STORAGE = {
    FLASH: {"bf16": 2_827_485_184, "fp32": 143_047_004, "e4m3": 5_857_345_536, "e8m0": 8_657_400_960,
            "int8": 138_512_695_296, "int64": 18_616_320},
    PRO: {"bf16": 5_626_134_528, "fp32": 349_306_252, "e4m3": 22_700_621_824, "e8m0": 48_357_516_352,
          "int8": 773_698_093_056, "int64": 18_616_320},
}


@pytest.mark.parametrize("key", [FLASH, PRO])
def test_weight_bytes_equal_transformers_quantized_allocation(key):
    """fp8 linears with one ue8m0 byte per 128 × 128 block, fp4 experts with one per 32 of a
    row, bf16 embeddings / router / compressor projections, float32 norms / HC / sinks, int64
    tid2eid: the sum equals what transformers allocates for the checkpoint."""
    model = mantile_core.load_model(COLLECTION / f"{key}_config.json")
    assert model.weight_bytes() == sum(STORAGE[key].values())


def test_expert_bytes_by_hand():
    """One Flash MoE layer: 256 experts of (2·2048 × 4096 + 4096 × 2048) e2m1 (half a byte each)
    + one ue8m0 byte per 32 of a row; the shared MLP in fp8 + a byte per 128 × 128 block; the
    router 256 × 4096 bf16; the bias 256 float32."""
    model = mantile_core.load_model("deepseek-v4-flash")
    moe = next(m for m in model.layers if m.kind == "moe" and not m.hash_vocab)
    E, H, I = 256, 4096, 2048
    experts = E * (3 * H * I // 2 + (2 * I * H + H * I) // 32)
    shared = 3 * H * I + (2 * (I // 128) * (H // 128) + (H // 128) * (I // 128))
    assert moe.weight_bytes() == experts + shared + 2 * E * H + 4 * E


def test_nvfp4_republication_loads():
    """nvidia's NVFP4 re-publication: same totals; experts in modelopt NVFP4 (e2m1 pairs, an
    e4m3 byte per 16, float32 weight_scale_2 and input_scale per expert matrix), the rest as the
    original checkpoint."""
    key = "nvidia--DeepSeek-V4-Flash-NVFP4"
    model = mantile_core.load_model(COLLECTION / f"{key}_config.json")
    assert model.params() == total_by_hand(raw(FLASH))[1]
    moe = [m for m in model.layers if m.kind == "moe"]
    E, H, I = 256, 4096, 2048
    assert moe[5].expert_dtype.name == "nvfp4-pertensor"
    original = mantile_core.load_model("deepseek-v4-flash")
    old = next(m for m in original.layers if m.kind == "moe" and m.index == 5)
    fp4 = E * (3 * H * I // 2 + 3 * H * I // 32)
    assert moe[5].weight_bytes() - old.weight_bytes() == E * (3 * H * I // 2 + 3 * H * I // 16 + 3 * 8) - fp4


# --- config reader -----------------------------------------------------------------------------

def test_reader_schedules_spellings_agree():
    """transformers' layer_types / mlp_layer_types spell the same model as the published legacy
    compress_ratios / num_hash_layers (cut to num_hidden_layers)."""
    legacy = raw(FLASH)
    names = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
    modern = {k: v for k, v in legacy.items() if k not in ("compress_ratios", "num_hash_layers")}
    modern["layer_types"] = [names[r] for r in legacy["compress_ratios"][:43]]
    modern["mlp_layer_types"] = ["hash_moe"] * 3 + ["moe"] * 40
    a = mantile_core.load_model("deepseek-v4-flash")
    from mantile_core.model import build_layers, read_model_config

    b = build_layers(read_model_config(modern, "modern"))
    assert [x.params() for x in a.layers] == [x.params() for x in b]
    out = read_deepseek_v4(legacy, "config 'x'")
    assert len(out["compress_ratios"]) == 43 and out["layer_types"] == ["sliding_attention"] * 43


def test_reader_default_schedule_is_transformers():
    """Without either spelling: two HCA layers, then CSA / HCA alternating (transformers)."""
    c = {k: v for k, v in raw(PRO).items() if k != "compress_ratios"}
    out = read_deepseek_v4(c, "config 'x'")
    assert out["compress_ratios"][:6] == [128, 128, 128, 4, 128, 4]


@pytest.mark.parametrize("change,match", [
    ({"n_shared_experts": 2}, "n_shared_experts"),
    ({"compress_ratios": [0, 8] + [4] * 42}, "compress_ratios"),
    ({"compress_ratios": [0, 4]}, "attention schedule"),
    ({"num_key_value_heads": 8}, "num_key_value_heads"),
    ({"o_groups": 7}, "o_groups"),
    ({"layer_types": ["full_attention"] * 43}, "layer_types"),
])
def test_reader_refuses_in_one_line(change, match):
    with pytest.raises(ConfigError, match=match) as info:
        read_deepseek_v4(dict(raw(FLASH), **change), "config 'x'")
    assert "\n" not in str(info.value)


# --- pairs, FLOPs, cache -----------------------------------------------------------------------

def _layers():
    model = mantile_core.load_model("deepseek-v4-flash")
    return {a.layer_type: a for a in model.layers if a.kind == "attention"}


def _step(batch, new, cached, tp=1):
    policies = mantile_core.get_plugin_manager().registries.cache_policies
    return Step(batch=batch, new_tokens=new, cached=cached, tp=tp,
                policies={"sliding": policies["ring"], "causal": policies["causal"]})


@pytest.mark.parametrize("new,cached", [(1, 0), (1, 3), (7, 0), (300, 0), (1, 4095), (513, 2000), (1, 9000)])
def test_pairs_brute_force(new, cached):
    """Query p attends min(p+1, 128) window keys, and compressed entries w < ⌊(p+1)/m⌋: all of
    them on HCA (m 128), at most index_topk 512 on CSA (m 4); the indexer scores all (CSA)."""
    attn = _layers()
    step = _step(1, new, cached)
    queries = range(cached, cached + new)
    window = sum(min(p + 1, 128) for p in queries)
    assert attn["sliding_attention"].attended_pairs(step) == window
    assert attn["heavily_compressed_attention"].attended_pairs(step) == window + sum((p + 1) // 128 for p in queries)
    csa = attn["compressed_sparse_attention"]
    assert csa.attended_pairs(step) == window + sum(min((p + 1) // 4, 512) for p in queries)
    assert csa.scored_pairs(step) == sum((p + 1) // 4 for p in queries)


@pytest.mark.parametrize("tp", [1, 8])
@pytest.mark.parametrize("batch,new,cached", [(2, 1000, 0), (3, 1, 4095)])
def test_csa_flops_by_hand(tp, batch, new, cached):
    """A Flash CSA layer, every term of v4_attention's docstring written out."""
    csa = _layers()["compressed_sparse_attention"]
    H, h, D, dr, rq, g, ro, m, nh, di, K = 4096, 64, 512, 64, 1024, 8, 1024, 4, 64, 128, 512
    hl, gl, T = h // tp, g // tp, batch * new
    queries = range(cached, cached + new)
    pairs = batch * sum(min(p + 1, 128) + min((p + 1) // m, K) for p in queries)
    scored = batch * sum((p + 1) // m for p in queries)
    done = batch * ((cached + new) // m - cached // m)
    gemm = (2 * T * H * rq + 2 * T * rq * hl * D + 2 * T * H * D + 2 * T * hl * D * ro + 2 * T * gl * ro * H
            + 2 * 2 * T * H * 2 * D  # compressor kv and gate, 2D wide each
            + 2 * 2 * T * H * 2 * di + 2 * T * rq * nh * di + 2 * T * H * nh)  # indexer
    attention = 4 * D * hl * pairs + 2 * di * nh * scored + 2 * nh * scored
    elementwise = (4 * T * (rq + hl * D + D) + 3 * T * (2 * hl + 1) * dr + 5 * hl * pairs + T * hl * D + 4 * T * hl
                   + done * (8 * 2 * m * D + 4 * D + 3 * dr) + done * (8 * 2 * m * di + 4 * di + 3 * dr)
                   + 3 * T * nh * dr + 2 * nh * scored + scored + T * nh)
    cost = csa.cost(_step(batch, new, cached, tp))
    assert cost.attention_flops == attention
    assert cost.matmul_flops == gemm + attention
    assert cost.flops == gemm + attention + elementwise


def test_hca_decode_cache_and_read_by_hand():
    """A Flash HCA layer after 4096 tokens, batch 2, bf16: the ring's 128 entries + 32 compressed
    ones of 512 values, + the compressor's state 2·128·512 (kv and gate rows of the window being
    pooled); a decode step reads the ring and every compressed entry."""
    hca = _layers()["heavily_compressed_attention"]
    cost = hca.cost(_step(2, 1, 4095))
    assert cost.kv_cache_bytes == 2 * 2 * (128 * 512 + 32 * 512 + 2 * 128 * 512)
    assert cost.kv_read_bytes == 2 * 2 * (128 * 512 + 32 * 512)


def test_csa_cache_and_read_by_hand():
    """A Flash CSA layer after 4096 tokens: 1024 compressed entries of 512 + 128 indexer values,
    + state 2·8·1024 (compressor) + 2·8·256 (indexer); a decode step reads the ring, the top 512
    entries and every indexer key."""
    csa = _layers()["compressed_sparse_attention"]
    cost = csa.cost(_step(1, 1, 4095))
    assert cost.kv_cache_bytes == 2 * (128 * 512 + 1024 * (512 + 128) + 2 * 8 * 1024 + 2 * 8 * 256)
    assert cost.kv_read_bytes == 2 * (128 * 512 + 512 * 512 + 1024 * 128)


def test_model_kv_cache_by_hand():
    """Flash, batch 1, 4095 + 1 tokens, any tp (one KV head, replicated): 2 sliding layers, 20
    HCA and 21 CSA (compress_ratios[:43])."""
    sliding = 128 * 512
    hca = sliding + 32 * 512 + 2 * 128 * 512
    csa = sliding + 1024 * 640 + 2 * 8 * 1024 + 2 * 8 * 256
    for tp in (1, 8):
        doc = mantile_core.estimate("deepseek-v4-flash", "h200", tp=tp, batch=1, input_len=4095,
                                    output_len=1).to_dict()
        assert doc["memory"]["kv_cache_bytes"] == 2 * (2 * sliding + 20 * hca + 21 * csa)


def test_layers_json_cache_semantics(capsys):
    from mantile_core.cli import main

    assert main(["layers", "deepseek-v4-flash", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = [r for r in doc["layers"] if r["kind"] == "attention"]
    assert [r["compress_ratio"] for r in rows[:4]] == [0, 0, 4, 128]
    csa = rows[2]
    assert csa["window"] == 128 and csa["kv_values_per_entry"] == 512 and csa["index_values_per_entry"] == 128
    assert csa["index_topk"] == 512 and csa["kv_replicated_across_tp"] and csa["sinks"] == 64
    assert doc["mtp_layers"] == 1


def test_estimate_runs(capsys):
    from mantile_core.cli import main

    assert main(["estimate", "deepseek-v4-flash", "--hardware", "h200", "--tp", "8"]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "compressed" in out
    # the precision line names the formats the layers store: fp8 with ue8m0 block scales, fp4 experts
    assert ("precision: weights and activations bf16 (as the checkpoint), fp8-b128x128-ue8m0 / mxfp4-b1x32 "
            "where the checkpoint quantizes them") in out


def test_tp_must_divide_groups():
    from mantile_core.errors import ParallelismError

    with pytest.raises(ParallelismError, match="o_groups"):
        mantile_core.estimate("deepseek-v4-flash", "h200", tp=16)


def test_sweep_equals_estimate():
    """The vectorised path (pairs and entries on arrays) gives the estimate's figures."""
    from test_sweep import assert_sweep_matches_estimate

    model = mantile_core.load_model("deepseek-v4-flash")
    result = mantile_core.sweep(model, "h200,b200", tp="4,8", ep="1,4", batch="1,3,64", input_len="1,100,3000",
                                output_len="1,1024")
    assert_sweep_matches_estimate(model, result, samples=12, seed=5)


def test_validation_against_transformers():
    """The tiny V4 of v4_validation, run through transformers' DeepseekV4ForCausalLM: pairs of
    every step's mask, window rows, compressed entries and params equal the analytic figures."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mantile_mla.v4_validation import v4_figures

    fig = v4_figures()
    assert fig["measured"] == fig["analytic"]
    # the counts the test derives by hand for the 37-token prefill of 2 sequences (window 8):
    # Σ min(p+1, 8) = 268; CSA + Σ min(⌊(p+1)/4⌋, 3) = 90; HCA + Σ ⌊(p+1)/8⌋ = 72
    assert fig["analytic"]["pairs sliding_attention cached0 new37"] == 2 * 268
    assert fig["analytic"]["pairs compressed_sparse_attention cached0 new37"] == 2 * (268 + 90)
    assert fig["analytic"]["pairs heavily_compressed_attention cached0 new37"] == 2 * (268 + 72)


@pytest.mark.parametrize("batch,new,cached", [(2, 100, 0), (8, 1, 3000)])
def test_hyper_connection_flops_by_hand(batch, new, cached):
    """Flash's attn_hc (n = 4 streams of 4096, 20 Sinkhorn iterations) and hc_head, every term of
    hyper.py's docstring written out."""
    model = mantile_core.load_model("deepseek-v4-flash")
    hcs = [x for x in model.layers if x.kind == "hyper_connection"]
    T, n, H, k, it = batch * new, 4, 4096, 24, 20
    cost = hcs[0].cost(_step(batch, new, cached))
    matmul = 2 * T * n * H * k + 2 * T * n * n * H
    elementwise = (4 * T * n * H + 2 * T * k + 4 * T * 2 * n + T * n + 5 * T * n * n + 2 * T * n * n * (2 * it - 1)
                   + 2 * T * n * H + 2 * T * n * H)
    assert cost.matmul_flops == matmul and cost.flops == matmul + elementwise
    head = hcs[-1].cost(_step(batch, new, cached))
    assert head.matmul_flops == 2 * T * n * H * n
    assert head.flops == 2 * T * n * H * n + 4 * T * n * H + 6 * T * n + 2 * T * n * H
    assert cost.weight_bytes == 4 * (k * n * H + k + 3)  # float32


@pytest.mark.parametrize("tp", [1, 8])
def test_moe_flops_by_hand(tp):
    """Flash's MoE layers (E 256, k 6, I 2048, one shared MLP of 2048, sqrtsoftplus, clamped
    SwiGLU): the core's counts, DeepSeek's normalisation and scaling (3 per chosen expert), the
    score (+2 per logit; a hash layer makes no top-k comparison: +1) and the clamps (3 per
    intermediate element of the routed and shared MLPs)."""
    model = mantile_core.load_model("deepseek-v4-flash")
    moe = [m for m in model.layers if m.kind == "moe"]
    T, E, k, H, I = 64, 256, 6, 4096, 2048
    for layer, score in ((moe[0], 1), (moe[3], 2)):
        cost = layer.cost(_step(64, 1, 500, tp))
        matmul = 2 * T * H * E + 2 * T * k * 3 * H * I // tp + 2 * T * 3 * H * I // tp
        core = (3 * T * E + (not layer.hash_vocab) * T * E + 5 * T * k * I // tp + T * k * H + 5 * T * I // tp)
        v4 = T * k * 3 + score * T * E + 3 * (T * k * I // tp + T * I // tp)
        assert cost.matmul_flops == matmul and cost.flops == matmul + core + v4


@pytest.mark.parametrize("key,ref", [("sgl-project--DeepSeek-V4-Flash-FP8", FLASH), ("sgl-project--DeepSeek-V4-Pro-FP8", PRO)])
def test_sglang_reference_configs(key, ref):
    """sgl-project's FP8 re-publications (model_type deepseek_ref, architectures
    DeepseekV4ForCausalLM; transformers 5.24 does not know the type): the same architecture keys
    as deepseek-ai's, so the same totals; experts in fp8 with ue8m0 128 × 128 block scales."""
    c, base = raw(key), raw(ref)
    arch = ("hidden_size", "num_hidden_layers", "num_attention_heads", "head_dim", "vocab_size", "q_lora_rank",
            "o_groups", "o_lora_rank", "moe_intermediate_size", "n_routed_experts", "num_experts_per_tok",
            "index_n_heads", "index_head_dim", "hc_mult", "num_hash_layers", "compress_ratios", "sliding_window")
    assert {k: c[k] for k in arch} == {k: base[k] for k in arch}
    model = mantile_core.load_model(COLLECTION / f"{key}_config.json")
    assert model.params() == total_by_hand(base)[1]
    if ref == FLASH:
        # benchmarks/deepseek_v4_storage.py on this config with model_type deepseek_v4 (fp8 experts:
        # transformers' FP8Experts with ue8m0 block scales): 285,889,150,428 bytes
        assert model.weight_bytes() == 2_827_485_184 + 143_047_004 + 282_882_736_128 + 17_265_792 + 18_616_320


def test_deepseek_ref_of_another_architecture_is_refused():
    c = dict(raw("sgl-project--DeepSeek-V4-Flash-FP8"), architectures=["DeepseekV3ForCausalLM"])
    with pytest.raises(ConfigError, match="DeepSeek-V4 only") as info:
        read_deepseek_v4(c, "config 'x'")
    assert "\n" not in str(info.value)


def test_decode_flops_against_flop_counter():
    """FlopCounterMode over transformers' decode steps, per module (v4_validation's
    v4_flop_figures): attention (sliding, HCA exactly; CSA with transformers' dense masked
    attention accounted), HC GEMMs, the decoder layers' combines and the LM head."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mantile_mla.v4_validation import v4_flop_figures

    fig = v4_flop_figures()
    assert fig["measured"] == fig["analytic"] and len(fig["analytic"]) == 3 * (3 + 7 + 3 + 1)
