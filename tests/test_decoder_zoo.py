"""mantile-decoder-zoo: every family loads, its total is exact, estimate runs; each mechanism it
adds against arithmetic written out here by hand.

Expected totals: the hand derivation below (written from each family's transformers modelling
file), which equals the published figure / transformers 5.24's meta-device count noted beside
it (configs and sources: mantile_core/data/models/SOURCES.md, tests/data/zoo/SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mantile_decoder_zoo")

import mantile_core  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.errors import ConfigError, ParallelismError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402

ZOO = Path(__file__).parent / "data" / "zoo"
COLLECTION = Path(__file__).parent / "data" / "hf_collection"


def _gpt2():
    V, P, H, L, I = 50257, 1024, 768, 12, 3072
    block = 2 * H + (H * 3 * H + 3 * H) + (H * H + H) + 2 * H + (H * I + I) + (I * H + H)
    return V * H + P * H + L * block + 2 * H  # tied head


def _neox20b():
    V, H, L, I = 50432, 6144, 44, 24576
    block = 2 * 2 * H + (H * 3 * H + 3 * H) + (H * H + H) + (H * I + I) + (I * H + H)
    return 2 * V * H + L * block + 2 * H


def _falcon7b():
    V, H, L, heads, dh = 65024, 4544, 32, 71, 64
    qkv = H * (heads + 2) * dh  # fused query_key_value: 71 query heads + 1 K + 1 V head (MQA), no bias
    block = 2 * H + qkv + H * H + 2 * H * 4 * H
    return V * H + L * block + 2 * H  # tied


def _falcon40b():
    V, H, L, heads, kv, dh = 65024, 8192, 60, 128, 8, 64
    block = 2 * 2 * H + H * (heads + 2 * kv) * dh + H * H + 2 * H * 4 * H  # ln_attn, ln_mlp
    return V * H + L * block + 2 * H


def _falcon_rw_1b():
    V, H, L = 50304, 2048, 24  # ALiBi, 32 heads MHA, sequential block, biases, tied
    block = 2 * 2 * H + (H * 3 * H + 3 * H) + (H * H + H) + (H * 4 * H + 4 * H) + (4 * H * H + H)
    return V * H + L * block + 2 * H


def _phi2():
    V, H, L, I = 51200, 2560, 32, 10240
    block = 2 * H + 4 * (H * H + H) + (H * I + I) + (I * H + H)
    return 2 * V * H + V + L * block + 2 * H  # untied head with bias


def _starcoder2_15b():
    V, H, L, kv, dh, I = 49152, 6144, 40, 4, 128, 24576
    attn = (H * H + H) + 2 * (H * kv * dh + kv * dh) + (H * H + H)
    block = 2 * 2 * H + attn + (H * I + I) + (I * H + H)
    return 2 * V * H + L * block + 2 * H


def _command_r():
    V, H, L, I = 256000, 8192, 40, 22528
    block = H + 4 * H * H + 3 * H * I  # one LayerNorm (weight only), MHA, SwiGLU
    return V * H + L * block + H  # tied


def _olmoe():
    V, H, L, E, I = 50304, 2048, 16, 64, 1024
    block = 2 * H + 4 * H * H + (H + H) + E * H + E * 3 * H * I  # q_norm H, k_norm kv·dh = H
    return 2 * V * H + L * block + H


def _olmo7b():
    V, H, L, I = 50304, 4096, 32, 11008
    return 2 * V * H + L * (4 * H * H + 3 * H * I)  # LayerNorms without parameters


def _olmo2_7b():
    V, H, L, I = 100352, 4096, 32, 11008
    return 2 * V * H + L * (2 * H + 4 * H * H + 2 * H + 3 * H * I) + H  # post-norms, full q/k norms


def _dbrx():
    V, H, L, kv, dh, E, I = 100352, 6144, 40, 8, 128, 16, 10752
    block = 2 * H + H * (H + 2 * kv * dh) + H * H + E * H + E * 3 * H * I
    return 2 * V * H + L * block + H


def _granite_3b_a800m():
    V, H, L, kv, dh, E, I = 49155, 1536, 32, 8, 64, 40, 512
    block = 2 * H + 2 * H * H + 2 * H * kv * dh + E * H + E * 3 * H * I
    return V * H + L * block + H  # tied


def _granite_8b():
    V, H, L, kv, dh, I = 49155, 4096, 40, 8, 128, 12800
    return V * H + L * (2 * H + 2 * H * H + 2 * H * kv * dh + 3 * H * I) + H


def _glm45_air():
    V, H, L, heads, kv, dh, I, E, Ie = 151552, 4096, 46, 96, 8, 128, 10944, 128, 1408
    attn = H * heads * dh + 2 * H * kv * dh + heads * dh * H + heads * dh + 2 * kv * dh  # q/k/v biases
    dense = 3 * H * I
    moe = E * 3 * H * Ie + 3 * H * Ie + E * H + E  # experts, 1 shared expert, router, correction bias
    return 2 * V * H + L * (2 * H + attn) + dense + (L - 1) * moe + H


def _minimax_m25():
    V, H, L, heads, kv, dh, E, I = 200064, 3072, 62, 48, 8, 128, 256, 1536
    attn = H * heads * dh + 2 * H * kv * dh + heads * dh * H + (heads + kv) * dh  # full-width q/k norms
    moe = E * 3 * H * I + E * H + E
    return 2 * V * H + L * (2 * H + attn + moe) + H


def _mimo_v2_flash():
    V, H, L, heads, dh, dv, I, E, Ie = 152576, 4096, 48, 64, 192, 128, 16384, 256, 2048
    full = [0] + list(range(5, L, 6))  # hybrid_layer_pattern 0 = full attention
    def attn(kv, sinks):
        return H * heads * dh + H * kv * dh + H * kv * dv + heads * dv * H + sinks * heads
    attention = sum(attn(4, 0) if i in full else attn(8, 1) for i in range(L))
    mlp = 3 * H * I + (L - 1) * (E * 3 * H * Ie + E * H + E)  # layer 0 dense, router + correction bias
    return 2 * V * H + L * 2 * H + attention + mlp + H


# name or path -> (hand derivation, the independent figure it equals: published total or
# transformers 5.24's meta-device count + its stored e_score_correction_bias buffers)
TOTALS = {
    "gpt2": (_gpt2, 124_439_808),
    "gpt-neox-20b": (_neox20b, 20_554_567_680),
    "falcon-7b": (_falcon7b, 6_921_720_704),
    ZOO / "falcon-40b.json": (_falcon40b, 41_303_293_952),
    ZOO / "falcon-rw-1b.json": (_falcon_rw_1b, 1_311_625_216),
    "phi-2": (_phi2, 2_779_683_840),
    "starcoder2-15b": (_starcoder2_15b, 15_957_889_024),
    "command-r": (_command_r, 34_980_831_232),
    "olmoe-1b-7b": (_olmoe, 6_919_161_856),
    ZOO / "olmo-7b.json": (_olmo7b, 6_888_095_744),
    ZOO / "olmo-2-7b.json": (_olmo2_7b, 7_298_617_344),
    "dbrx": (_dbrx, 131_596_523_520),
    "granite-3.0-3b-a800m": (_granite_3b_a800m, 3_298_793_472),
    ZOO / "granite-3.0-8b.json": (_granite_8b, 8_170_848_256),
    "glm-4.5-air": (_glm45_air, 106_852_245_504 + 45 * 128),
    "minimax-m2.5": (_minimax_m25, 228_689_748_992 + 62 * 256),
    "mimo-v2-flash": (_mimo_v2_flash, 308_778_768_832 + 47 * 256),
}


@pytest.mark.parametrize("name", list(TOTALS), ids=str)
def test_published_totals_are_exact(name):
    derive, published = TOTALS[name]
    assert derive() == published
    assert mantile_core.load_model(name).params() == published


def test_collection_configs_of_minimax_and_mimo_equal_the_bundled_ones():
    for bundled, file in (("minimax-m2.5", "MiniMaxAI--MiniMax-M2.5"), ("mimo-v2-flash", "XiaomiMiMo--MiMo-V2-Flash")):
        path = COLLECTION / f"{file}_config.json"
        assert json.loads(path.read_text()) == json.loads(
            (Path(mantile_core.__file__).parent / "data" / "models" / f"{bundled}.json").read_text())
        assert mantile_core.load_model(path).params() == TOTALS[bundled][1]


@pytest.mark.parametrize("name", ["gpt2", "gpt-neox-20b", "falcon-7b", "phi-2", "starcoder2-15b", "command-r",
                                  "olmoe-1b-7b", "dbrx", "granite-3.0-3b-a800m", "glm-4.5-air", "minimax-m2.5",
                                  "mimo-v2-flash"])
def test_estimate_runs(name, capsys):
    tp = 1 if name in ("gpt2", "falcon-7b") else 8  # 12 and 71 heads
    assert main(["estimate", name, "--hardware", "h200", "--tp", str(tp), "--batch", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ttft_ms"] > 0 and doc["tpot_ms"] > 0 and doc["memory"]["kv_cache_bytes"] > 0


def _step(batch, new, cached, tp=1):
    from mantile_core import get_plugin_manager

    policies = get_plugin_manager().registries.cache_policies
    return Step(batch=batch, new_tokens=new, cached=cached, tp=tp,
                policies={"causal": policies["causal"], "sliding": policies["ring"]})


def _layer(model, kind, index=0):
    return next(layer for layer in model.layers if layer.kind == kind and layer.index in (index, None))


def test_falcon7b_is_multi_query_with_one_norm_per_parallel_block():
    model = mantile_core.load_model("falcon-7b")
    kinds = [layer.kind for layer in model.layers if layer.index == 0]
    assert kinds == ["norm", "attention", "mlp"]
    attn = _layer(model, "attention")
    assert (attn.heads, attn.kv_heads, attn.head_dim, attn.rotary_dim) == (71, 1, 64, 64)
    # KV cache: one K and one V head of 64 per position, bf16: 2·64·2 bytes per token per layer
    c = attn.cost(_step(3, 1, 99))
    assert c.kv_cache_bytes == 3 * 100 * 2 * 64 * 2
    with pytest.raises(ParallelismError, match="num_attention_heads=71"):
        attn.check_parallelism(2, 1)


def test_mqa_kv_head_is_replicated_under_tp():
    path = ZOO / "falcon-40b.json"
    attn = _layer(mantile_core.load_model(path), "attention")
    assert attn.kv_heads == 8
    # tp 16 > 8 KV heads: each rank holds one KV head (replicated), 8 query heads
    c = attn.cost(_step(1, 1, 9, tp=16))
    assert c.kv_cache_bytes == 10 * 2 * 64 * 2


def test_alibi_has_no_rope_and_adds_one_flop_per_pair(tmp_path):
    raw = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "falcon-7b.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(raw, alibi=True)))
    alibi = _layer(mantile_core.load_model(path), "attention")
    rope = _layer(mantile_core.load_model("falcon-7b"), "attention")
    assert alibi.rotary_dim == 0 and alibi.rope_table_bytes() == 0 and alibi.describe()["alibi"]
    step = _step(2, 10, 0)
    pairs, tokens = 2 * 55, 20
    # RoPE's 3 FLOPs per rotated q/k element go, ALiBi's bias add per pair per head comes
    assert alibi.cost(step).flops == rope.cost(step).flops - 3 * tokens * (71 + 1) * 64 + 71 * pairs
    assert alibi.cost(step).kv_cache_bytes == rope.cost(step).kv_cache_bytes == 2 * 10 * 2 * 64 * 2
    assert alibi.params() == rope.params()


def test_falcon_rw_is_an_alibi_model_with_the_plain_kv_cache():
    model = mantile_core.load_model(ZOO / "falcon-rw-1b.json")
    attn = _layer(model, "attention")
    assert (attn.alibi, attn.rotary_dim, attn.heads, attn.kv_heads) == (True, 0, 32, 32)
    assert [layer.kind for layer in model.layers if layer.index == 0] == ["norm", "attention", "norm", "mlp"]
    # 24 layers · 32 KV heads · 64 · (K, V) · 2 bytes per token, batch 2, 1000 + 1 tokens
    caches = sum(layer.cost(_step(2, 1, 1000)).kv_cache_bytes for layer in model.layers)
    assert caches == 24 * 2 * 1001 * 32 * 64 * 2 * 2


def test_dbrx_reads_nested_keys_and_clips_qkv():
    model = mantile_core.load_model("dbrx")
    attn, moe = _layer(model, "attention"), _layer(model, "moe")
    assert (attn.heads, attn.kv_heads, attn.clip_qkv) == (48, 8, True)
    assert (moe.experts, moe.top_k, moe.intermediate) == (16, 4, 10752)
    norm = _layer(model, "norm")
    assert norm.params() == 6144  # LayerNorm without bias
    base = attn.cost(_step(1, 4, 0)).flops
    plain = type(attn).__mro__[1](**{f: getattr(attn, f) for f in ("hidden", "heads", "kv_heads", "head_dim",
                                                                      "rotary_dim", "weight_dtype", "bias_dtype")})
    assert base - plain.cost(_step(1, 4, 0)).flops == 2 * 4 * (48 * 128 + 2 * 8 * 128)  # clamp: min, max


def test_full_width_qk_norm_params_flops_and_tp_stats():
    model = mantile_core.load_model("olmoe-1b-7b")
    attn = _layer(model, "attention")
    assert attn.params() == 4 * 2048 * 2048 + 2048 + 2048
    one, two = attn.cost(_step(1, 8, 0)), attn.cost(_step(1, 8, 0, tp=2))
    assert two.comm_bytes == 8 * 2048 * 2 + 4 * 2 * 8 and two.collectives == 2  # o_proj all-reduce + stats
    assert one.comm_bytes == 0


def test_cohere_logit_scale_and_granite_multipliers():
    head = _layer(mantile_core.load_model("command-r"), "lm_head")
    assert head.tied and head.scale == 0.0625 and head.params() == 0
    assert head.cost(_step(3, 1, 10)).flops == 2 * 3 * 8192 * 256000 + 3 * 256000
    granite = mantile_core.load_model("granite-3.0-3b-a800m")
    scales = [layer for layer in granite.layers if layer.kind == "scale"]
    assert len(scales) == 1 + 2 * 32 and all(s.params() == 0 for s in scales)
    assert scales[0].factor == 12.0 and scales[1].factor == 0.22
    assert scales[1].cost(_step(2, 5, 0)).flops == 10 * 1536


def test_gpt2_learned_positions_and_phi_head_bias():
    gpt2 = mantile_core.load_model("gpt2")
    assert [layer.kind for layer in gpt2.layers[:2]] == ["embedding", "position_embedding"]
    assert gpt2.layers[1].params() == 1024 * 768
    mlp = _layer(gpt2, "mlp")
    assert (mlp.gated, mlp.activation, mlp.bias) == (False, "gelu_tanh", True)
    head = _layer(mantile_core.load_model("phi-2"), "lm_head")
    assert head.bias and head.params() == 51200 * 2560 + 51200


def test_glm_moe_layers_shared_expert_and_partial_rotary():
    model = mantile_core.load_model("glm-4.5-air")
    assert _layer(model, "mlp", 0).intermediate == 10944
    moe = _layer(model, "moe", 1)
    assert (moe.experts, moe.top_k, moe.shared_intermediate, moe.router_bias) == (128, 8, 1408, True)
    attn = _layer(model, "attention")
    assert (attn.rotary_dim, attn.q_bias, attn.o_bias) == (64, True, False)
    assert sum(layer.kind == "moe" for layer in model.layers) == 45


def test_mimo_sliding_layers_have_their_own_kv_heads_sinks_and_value_dim():
    model = mantile_core.load_model("mimo-v2-flash")
    full, sliding = _layer(model, "attention", 0), _layer(model, "attention", 1)
    assert (full.window, full.kv_heads) == (None, 4) and (sliding.window, sliding.kv_heads) == (129, 8)
    assert sliding.describe()["sinks"] == 64 and "sinks" not in full.describe()
    assert (full.head_dim, full.value_dim, full.rotary_dim) == (192, 128, 64)
    # a decode step at context 1000: the full layer holds 1001 positions, the sliding ring 129
    assert full.cost(_step(1, 1, 1000)).kv_cache_bytes == 1001 * 4 * (192 + 128) * 2
    assert sliding.cost(_step(1, 1, 1000)).kv_cache_bytes == 129 * 8 * (192 + 128) * 2
    assert _layer(model, "mlp", 0).intermediate == 16384 and _layer(model, "moe", 1).experts == 256


def test_readers_refuse_bad_values_in_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": "768", "n_layer": 12, "n_head": 12,
                                "vocab_size": 50257}))
    with pytest.raises(ConfigError, match="'n_embd' must be an integer"):
        mantile_core.load_model(path)
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 99,
                                "activation_function": "mish"}))
    with pytest.raises(ConfigError, match="activation_function='mish' is not a supported activation"):
        mantile_core.load_model(path)
    dbrx = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "dbrx.json").read_text())
    dbrx["ffn_config"]["moe_top_k"] = 0
    path.write_text(json.dumps(dbrx))
    with pytest.raises(ConfigError, match="moe_top_k"):
        mantile_core.load_model(path)


def test_refinedweb_spelling_reads_as_falcon(tmp_path):
    # tiiuae/falcon-40b before transformers' integration: model_type RefinedWeb, n_embed, n_head_kv
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "RefinedWeb", "n_embed": 8192, "n_layer": 60, "n_head": 128,
                                "n_head_kv": 8, "vocab_size": 65024, "parallel_attn": True, "bias": False}))
    assert mantile_core.load_model(path).params() == TOTALS[ZOO / "falcon-40b.json"][1]


def test_model_type_hints_name_the_zoo():
    from mantile_core.model import MODEL_TYPE_PLUGINS
    from mantile_decoder_zoo.readers import MODEL_TYPES

    assert {MODEL_TYPE_PLUGINS[t] for t in MODEL_TYPES} == {"mantile-decoder-zoo"}


def test_falcon_parallel_block_all_reduces_once():
    # vLLM: reduce_row_parallel_results = not (new_decoder_architecture or parallel_attn)
    model = mantile_core.load_model(ZOO / "falcon-40b.json")
    step = _step(2, 3, 0, tp=8)
    attn, mlp = _layer(model, "attention").cost(step), _layer(model, "mlp").cost(step)
    assert attn.comm_bytes == 6 * 8192 * 2 and attn.collectives == 1
    assert mlp.comm_bytes == 0 and mlp.collectives == 0
    phi = _layer(mantile_core.load_model("phi-2"), "mlp").cost(step)  # Phi reduces attention and MLP apart
    assert phi.comm_bytes == 6 * 2560 * 2 and phi.collectives == 1
