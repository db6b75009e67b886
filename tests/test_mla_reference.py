"""mantile-mla, torch side: the MLA reference equals transformers' DeepseekV3Attention (expanded
prefill and absorbed decode from one state dict), absorbed equals expanded, head shards sum to
the full output with the latent replicated, and FlopCounterMode / tensor nbytes equal the
analytic figures on DeepSeek-V3's and V2-Lite's real rank shapes. Negative controls show each
comparison can fail.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mantile_mla")
pytest.importorskip("mantile_rope_yarn")
torch = pytest.importorskip("torch")

from mantile_mla import validation as v  # noqa: E402
from mantile_mla.reference import MLAReference, softmax_scale  # noqa: E402


@pytest.mark.parametrize("kind", ["v3", "v2-lite"])
def test_equals_transformers(kind):
    pytest.importorskip("transformers")
    fig = v.transformers_figures(kind)
    assert fig["modes"] == ["absorbed", "expanded"]
    assert fig["prefill"] <= 1e-5 * fig["scale"] and fig["decode"] <= 1e-5 * fig["scale"]


def test_interleave_matters():
    """A reference that rotates half-split pairs while transformers rotates interleaved ones
    differs: the comparison can fail."""
    pytest.importorskip("transformers")
    hf, rotary = v._hf_attention("v3", True)
    ref = MLAReference(**v.TINY["v3"], rope=v.TINY_ROPE, max_position=2560, rope_interleave=False).eval()
    ref.load_state_dict(hf.state_dict())
    x = torch.randn(1, 12, ref.hidden)
    pos = torch.arange(12)
    mask = torch.zeros(12, 12).masked_fill(pos[None, :] > pos[:, None], float("-inf"))[None, None]
    with torch.no_grad():
        expected, _ = hf(x, position_embeddings=rotary(x, pos[None]), attention_mask=mask)
        assert (ref(x) - expected).abs().max() > 1e-4


def test_mscale_all_dim_scales_the_softmax():
    import math

    m = 0.1 * 0.707 * math.log(40.0) + 1
    assert softmax_scale(v.TINY_ROPE, 24) == pytest.approx(24 ** -0.5 * m * m, rel=1e-12)
    assert softmax_scale({"rope_type": "default"}, 24) == 24 ** -0.5


@pytest.mark.parametrize("kind", ["v3", "v2-lite"])
def test_absorbed_equals_expanded(kind):
    fig = v.absorbed_figures(kind)
    assert fig["error"] <= 1e-12 * fig["scale"]


@pytest.mark.parametrize("tp", [2, 4])
def test_shards_sum_and_latent_is_replicated(tp):
    fig = v.tp_figures("v3", tp)
    assert fig["error"] <= 1e-5 * fig["scale"] and fig["replicated"]


@pytest.mark.parametrize("name,tp", [("deepseek-v3", 32), ("deepseek-v2-lite", 4)])
@pytest.mark.parametrize("new,cached", [(48, 0), (16, 32), (1, 47)])
def test_flops_measured_equal_analytic(name, tp, new, cached):
    layer, config = v.attention_layer(name)
    fig = v.flop_figures(layer, config, tp=tp, batch=2, new_tokens=new, cached=cached)
    assert fig["measured"] == fig["analytic"]


def test_decode_counted_expanded_would_not_match():
    """The absorbed decode's measured matmul FLOPs differ from what the expanded form would
    count for the same step: the decode comparison can fail."""
    layer, config = v.attention_layer("deepseek-v3")
    fig = v.flop_figures(layer, config, tp=32, batch=2, new_tokens=1, cached=47)
    hl, pairs, T, keys = 4, fig["measured"]["pairs"], 2, 2 * 48
    absorbed = 2 * (2 * 512 + 64) * hl * pairs + 2 * T * hl * 128 * 512 * 2
    expanded = 2 * (192 + 128) * hl * pairs + 2 * keys * 512 * hl * 256
    assert absorbed != expanded
    assert fig["measured"]["matmul_flops"] - (fig["analytic"]["matmul_flops"] - absorbed) == absorbed


@pytest.mark.parametrize("tp", [1, 4, 16])
def test_bytes_measured_equal_analytic(tp):
    layer, config = v.attention_layer("deepseek-v2-lite")
    fig = v.byte_figures(layer, config, tp=tp, batch=2, context=40)
    assert fig["measured"] == fig["analytic"]
    assert fig["measured"]["kv_decode_bytes"] == 2 * 2 * 41 * 576  # bf16, batch 2, 41 positions, every tp


def test_v3_params_on_meta():
    layer, config = v.attention_layer("deepseek-v3")
    fig = v.byte_figures(layer, config, tp=32, batch=1, context=8, meta=True)
    assert fig["measured"] == fig["analytic"]


def test_validation_cases_pass():
    names = {case.name for case in v.VALIDATION_CASES}
    assert names == {"mla-numerics", "mla-absorbed-equals-expanded", "mla-tp-shards", "mla-flops", "mla-bytes",
                     "mla-dsa-numerics", "mla-dsa-pairs-flops-bytes", "mla-v4-pairs-cache-params", "mla-v4-decode-flops"}
    assert v._absorbed_case().passed


# --- DeepSeek Sparse Attention --------------------------------------------------------------

@pytest.mark.parametrize("family", ["deepseek_v32", "glm_moe_dsa"])
def test_dsa_equals_transformers(family):
    pytest.importorskip("transformers")
    fig = v.dsa_transformers_figures(family)
    assert fig["prefill"] <= 1e-5 * fig["scale"] and fig["decode"] <= 1e-5 * fig["scale"]


def test_dsa_sparsity_matters():
    """With the top-k lifted, the MLA of the same weights gives another output: the sparse
    comparison above can fail."""
    from mantile_mla.reference import DSAReference

    ref = DSAReference(**v.TINY["v3"], rope=v.TINY_ROPE, max_position=2560, **v.TINY_DSA).eval()
    v._randomize(ref)
    dense = DSAReference(**v.TINY["v3"], rope=v.TINY_ROPE, max_position=2560,
                         **dict(v.TINY_DSA, index_topk=10_000)).eval()
    dense.load_state_dict(ref.state_dict())
    x = torch.randn(1, 24, ref.hidden)
    with torch.no_grad():
        assert (ref(x) - dense(x)).abs().max() > 1e-4
    assert int(ref.last_mask.sum()) == sum(min(p + 1, 6) for p in range(24))


@pytest.mark.parametrize("topk", [16, 2048])
def test_dsa_pairs_flops_bytes(topk):
    fig = v.dsa_figures(topk=topk)
    assert fig["measured"] == fig["analytic"]
