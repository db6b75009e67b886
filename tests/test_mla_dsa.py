"""mantile-mla, DeepSeek Sparse Attention (no torch unless transformers' meta-device count):
DeepSeek-V3.2 and GLM-5 totals by hand and from transformers, the capped pair count against
brute force, the indexer's FLOPs and cache, GLM-5.2's shared-indexer layers, estimates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mantile_mla")
pytest.importorskip("mantile_rope_yarn")

import mantile_core  # noqa: E402
from mantile_core.errors import ConfigError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402
from mantile_mla.config import read_deepseek  # noqa: E402
from mantile_mla.dsa import DSAttention, sparse_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "plugins" / "mla" / "tests" / "data"
COLLECTION = ROOT / "tests" / "data" / "hf_collection"


def mla(H, heads, r_q, r, dn, dr, dv):
    return H * r_q + r_q + r_q * heads * (dn + dr) + H * (r + dr) + r + r * heads * (dn + dv) + heads * dv * H


def indexer(H, r_q, nh, di):
    """wq_b (nh·di × r_q) + wk (di × H) + k_norm LayerNorm (2·di) + weights_proj (nh × H)."""
    return r_q * nh * di + H * di + 2 * di + H * nh


def total(H, V, L, heads, r_q, r, dn, dr, dv, inter, E, Ie, shared, dense, nh, di, indexers):
    moe = E * 3 * H * Ie + 3 * H * Ie * shared + E * H + E  # + e_score_correction_bias
    return (2 * V * H + H + L * (2 * H + mla(H, heads, r_q, r, dn, dr, dv)) + indexers * indexer(H, r_q, nh, di)
            + dense * 3 * H * inter + (L - dense) * moe)


V32 = dict(H=7168, V=129280, L=61, heads=128, r_q=1536, r=512, dn=128, dr=64, dv=128, inter=18432, E=256, Ie=2048,
           shared=1, dense=3, nh=64, di=128, indexers=61)
GLM5 = dict(H=6144, V=154880, L=78, heads=64, r_q=2048, r=512, dn=192, dr=64, dv=256, inter=12288, E=256, Ie=2048,
            shared=1, dense=3, nh=32, di=128, indexers=78)
GLM52 = dict(GLM5, indexers=21)  # full at 0, 1, 2, then every 4th from layer 2: 2 + 19 ... see below


def test_glm52_full_indexer_layers():
    raw = json.loads((COLLECTION / "zai-org--GLM-5.2_config.json").read_text())
    assert sum(t == "full" for t in raw["indexer_types"]) == 21
    # offset 3, freq 4: full when max(i - 2, 0) % 4 == 0 -> i in {0, 1, 2, 6, 10, ..., 74}
    assert 3 + len(range(6, 78, 4)) == 21


@pytest.mark.parametrize("path,expected", [
    (DATA / "deepseek-v3.2.json", total(**V32)),
    (DATA / "glm-5.json", total(**GLM5)),
    (COLLECTION / "zai-org--GLM-5.2_config.json", total(**GLM52)),
    ("deepseek-v3.2", total(**V32)),
    ("glm-5", total(**GLM5)),
])
def test_totals_by_hand(path, expected):
    assert mantile_core.load_model(path).params() == expected


def test_hand_totals_equal_transformers_counts():
    """transformers 5.24's meta-device parameter counts (benchmarks/hf_collection_totals.py:
    tests/data/hf_collection/expected_totals.json) plus the e_score_correction_bias buffers."""
    expected = json.loads((COLLECTION / "expected_totals.json").read_text())["configs"]
    for key, hand in (("deepseek-ai--DeepSeek-V3.2", total(**V32)), ("zai-org--GLM-5", total(**GLM5)),
                      ("zai-org--GLM-5.2", total(**GLM52))):
        entry = expected[key]
        assert entry["total_params"] + entry["checkpoint_buffers"]["e_score_correction_bias"] == hand


def test_transformers_meta_device_count():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    raw = json.loads((DATA / "deepseek-v3.2.json").read_text())
    raw = {k: v for k, v in raw.items() if k not in ("quantization_config", "auto_map", "architectures", "model_type")}
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.DeepseekV32Config(**raw))
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers() if "e_score_correction_bias" in n)
    assert params + buffers == total(**V32) == mantile_core.load_model("deepseek-v3.2").params()


@pytest.mark.parametrize("new,cached,topk", [(1, 0, 4), (10, 0, 4), (10, 3, 4), (5, 100, 8), (300, 0, 2048),
                                             (3000, 0, 2048), (1, 5000, 2048), (7, 2045, 2048)])
def test_sparse_pairs_brute_force(new, cached, topk):
    brute = sum(min(p + 1, topk) for p in range(cached, cached + new))
    assert sparse_pairs(new, cached, topk) == brute
    arr = sparse_pairs(numpy.array([new]), numpy.array([cached]), topk)
    assert int(arr[0]) == brute


def dsa_layer(name="deepseek-v3.2") -> DSAttention:
    return next(layer for layer in mantile_core.load_model(name).layers if layer.kind == "attention")


def _policies():
    return {"causal": mantile_core.get_plugin_manager().registries.cache_policies["causal"]}


@pytest.mark.parametrize("tp", [1, 8])
@pytest.mark.parametrize("batch,new,cached", [(2, 3000, 0), (4, 1, 5000)])
def test_dsa_flops(tp, batch, new, cached):
    a = dsa_layer()
    H, r_q, r, dn, dr, dv, nh, di, K = 7168, 1536, 512, 128, 64, 128, 64, 128, 2048
    hl, T = 128 // tp, batch * new
    sparse = batch * sum(min(p + 1, K) for p in range(cached, cached + new))
    scored = batch * sum(p + 1 for p in range(cached, cached + new))
    cost = a.cost(Step(batch=batch, new_tokens=new, cached=cached, tp=tp, policies=_policies()))
    gemm = (2 * T * H * r_q + 2 * T * r_q * hl * (dn + dr) + 2 * T * H * (r + dr) + 2 * T * hl * dn * r
            + 2 * T * hl * r * dv + 2 * T * hl * dv * H  # absorbed MLA, prefill included
            + 2 * T * r_q * nh * di + 2 * T * H * di + 2 * T * H * nh)  # indexer, replicated
    attention = 2 * (2 * r + dr) * hl * sparse + 2 * di * nh * scored + 2 * nh * scored
    assert cost.attention_flops == attention
    assert cost.matmul_flops == gemm + attention
    elementwise = (4 * T * (r_q + r) + 3 * T * (hl + 1) * dr + 5 * hl * sparse + T * hl * r
                   + 2 * nh * scored + scored + 5 * T * di + 3 * T * (nh + 1) * dr + T * nh)
    assert cost.flops == gemm + attention + elementwise
    written = cached + new
    assert cost.kv_cache_bytes == 2 * batch * written * (576 + 128)  # latent + indexer keys, every tp
    assert cost.kv_read_bytes == 2 * batch * (576 * min(written, K) + 128 * written)


def test_deepseek_v32_kv_cache():
    doc = mantile_core.estimate("deepseek-v3.2", "h200", tp=8, batch=1, input_len=4095, output_len=1).to_dict()
    assert doc["memory"]["kv_cache_bytes"] == 61 * (576 + 128) * 2 * 4096


def test_glm52_shared_layers_have_no_indexer():
    model = mantile_core.load_model(COLLECTION / "zai-org--GLM-5.2_config.json")
    attn = [layer for layer in model.layers if layer.kind == "attention"]
    assert [a.index for a in attn if a.indexer][:5] == [0, 1, 2, 6, 10]
    shared = next(a for a in attn if not a.indexer)
    step = Step(batch=1, new_tokens=1, cached=100, policies=_policies())
    assert shared.cost(step).kv_cache_bytes == 2 * 101 * 576  # the latent only
    assert shared.flop_terms(step)["index_scores"] == 0 and shared.params() == mla(6144, 64, 2048, 512, 192, 64, 256)


def test_glm5_estimate_and_layers(capsys):
    from mantile_core.cli import main

    assert main(["estimate", "glm-5", "--hardware", "b200", "--tp", "8"]) == 0
    assert "TTFT" in capsys.readouterr().out
    memory = mantile_core.estimate("glm-5", "h200", tp=8).to_dict()["memory"]
    assert not memory["fits"]  # 1.49 TB of bf16 weights on 8 × 141 GB


def test_layers_json_describes_dsa(capsys):
    from mantile_core.cli import main

    assert main(["layers", "deepseek-v3.2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = next(r for r in doc["layers"] if r["kind"] == "attention")
    assert row["index_topk"] == 2048 and row["kv_values_per_token"] == 704 and row["kv_replicated_across_tp"]


def test_reader_checks_dsa_keys():
    raw = json.loads((DATA / "deepseek-v3.2.json").read_text())
    with pytest.raises(ConfigError, match="index_topk"):
        read_deepseek(dict(raw, index_topk=0), "config 'x'")
    glm = json.loads((COLLECTION / "zai-org--GLM-5.2_config.json").read_text())
    with pytest.raises(ConfigError, match="indexer_types"):
        read_deepseek(dict(glm, indexer_types=["full"] * 3), "config 'x'")
    with pytest.raises(ConfigError, match="first layer"):
        read_deepseek(dict(glm, indexer_types=["shared"] + glm["indexer_types"][1:]), "config 'x'")


@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-v3.2", "deepseek-v2-lite"])
def test_sweep_equals_estimate(name):
    """The vectorised path (absorbed/expanded picked per element, capped pairs on arrays)
    gives the estimate's figures."""
    from test_sweep import assert_sweep_matches_estimate

    model = mantile_core.load_model(name)
    tp = "4,8" if name != "deepseek-v2-lite" else "1,2,4"
    result = mantile_core.sweep(model, "h200,b200", tp=tp, ep="1,4", batch="1,3,64", input_len="1,100,3000",
                                output_len="1,1024")
    assert_sweep_matches_estimate(model, result, samples=12, seed=5)
