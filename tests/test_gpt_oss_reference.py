"""mantile-gpt-oss-attention, torch side: the reference equals transformers' GptOssAttention
(eager), its tensor-parallel shards sum to it, and what it executes and allocates
(FlopCounterMode, mask entries, bias-touched elements, parameter and cache nbytes) equals the
analytic figures, for the seed layout (64 heads × 64) and the mock (32 heads × 128).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mantile_gpt_oss_attention")
pytest.importorskip("mantile_rope_yarn")
pytest.importorskip("mantile_swa_cache")
torch = pytest.importorskip("torch")

import mantile_core  # noqa: E402
from mantile_gpt_oss_attention.reference import FullKVCache, GptOssAttentionReference  # noqa: E402
from mantile_gpt_oss_attention.validation import (  # noqa: E402
    VALIDATION_CASES,
    attention_layers,
    byte_figures,
    flop_figures,
    tp_sum_figures,
    transformers_figures,
)

BUNDLED = Path(mantile_core.__file__).parent / "data" / "models"
H = 2880
SHAPES = {"seed": (64, 64), "mock": (32, 128)}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    data = json.loads((BUNDLED / "gpt-oss-20b.json").read_text())
    data.update(num_attention_heads=32, head_dim=128)
    path = tmp_path_factory.mktemp("mock") / "config.json"
    path.write_text(json.dumps(data))
    return {"seed": attention_layers("gpt-oss-20b"), "mock": attention_layers(str(path))}


def enumerated_pairs(new, cached, window):
    return sum(1 for i in range(cached, cached + new) for j in range(i + 1) if window is None or j > i - window)


# --- numerics against transformers ---------------------------------------------------------------

@pytest.mark.parametrize("layout", ["seed", "mock"])
@pytest.mark.parametrize("kind", ["sliding", "full"])
def test_equals_transformers_prefill_and_decode(layouts, layout, kind):
    pytest.importorskip("transformers")
    found = layouts[layout]
    fig = transformers_figures(found[kind], found["config"], batch=2, seq=150, prefill=120)
    assert fig["cache"] == ("RingKVCache" if kind == "sliding" else "FullKVCache")
    assert fig["scale"] > 0.5
    assert fig["prefill"] < 2e-5 and fig["decode"] < 2e-5, fig


def test_decode_from_the_first_token(layouts):
    """Step-by-step decode from position 0 (the ring fills, then wraps) equals transformers."""
    pytest.importorskip("transformers")
    found = layouts["mock"]
    fig = transformers_figures(found["sliding"], found["config"], batch=1, seq=132, prefill=1)
    assert fig["decode"] < 2e-5, fig


def test_sinks_matter(layouts):
    """Negative control: the same comparison with the sinks zeroed in the reference fails."""
    pytest.importorskip("transformers")
    from mantile_gpt_oss_attention import validation

    found = layouts["mock"]
    original = GptOssAttentionReference.load_state_dict

    def drop_sinks(self, state, *args, **kwargs):
        state = dict(state)
        state["sinks"] = torch.zeros_like(state["sinks"])
        return original(self, state, *args, **kwargs)

    GptOssAttentionReference.load_state_dict = drop_sinks
    try:
        fig = validation.transformers_figures(found["full"], found["config"], batch=1, seq=20, prefill=10)
    finally:
        GptOssAttentionReference.load_state_dict = original
    assert fig["prefill"] > 1e-3


def test_loads_transformers_state_dict_strictly(layouts):
    gpt_oss = pytest.importorskip("transformers.models.gpt_oss.modeling_gpt_oss")
    from transformers import GptOssConfig

    config = GptOssConfig(hidden_size=H, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                          num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"])
    hf = gpt_oss.GptOssAttention(config, layer_idx=0)
    ref = GptOssAttentionReference(H, 32, 8, 128, window=128)
    assert sorted(ref.state_dict()) == sorted(hf.state_dict())
    ref.load_state_dict(hf.state_dict(), strict=True)
    assert ref.sinks.shape == (32,)


# --- tensor parallelism ------------------------------------------------------------------------

@pytest.mark.parametrize("layout, tp", [("seed", 8), ("seed", 16), ("mock", 4), ("mock", 16)])
def test_shards_sum_to_the_full_output(layouts, layout, tp):
    found = layouts[layout]
    for kind in ("sliding", "full"):
        fig = tp_sum_figures(found[kind], found["config"], tp, batch=1, seq=24)
        assert fig["error"] < 1e-5 * max(fig["scale"], 1.0), (kind, fig)


def test_shard_kv_heads_replicated_beyond_kv_count():
    ref = GptOssAttentionReference(64, 8, 2, 8)
    shards = [ref.shard(r, 4) for r in range(4)]
    assert [s.kv_heads for s in shards] == [1, 1, 1, 1]
    # query heads 0-3 share KV head 0, 4-7 KV head 1: ranks 0, 1 hold KV 0; ranks 2, 3 KV 1
    assert torch.equal(shards[1].k_proj.weight, ref.k_proj.weight[:8])
    assert torch.equal(shards[2].k_proj.weight, ref.k_proj.weight[8:])
    assert shards[0].o_proj.bias is not None and all(s.o_proj.bias is None for s in shards[1:])


# --- FLOPs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["seed", "mock"])
@pytest.mark.parametrize("kind", ["sliding", "full"])
@pytest.mark.parametrize("tp", [1, 4, 8])
@pytest.mark.parametrize("batch, new, cached", [(2, 160, 0), (3, 1, 159), (1, 1, 20)])
def test_flops_measured_equal_analytic(layouts, layout, kind, tp, batch, new, cached):
    heads, dh = SHAPES[layout]
    found = layouts[layout]
    fig = flop_figures(found[kind], found["config"], tp=tp, batch=batch, new_tokens=new, cached=cached)
    measured, analytic = fig["measured"], fig["analytic"]
    assert {k: measured[k] for k in analytic} == analytic
    hl, kvl, tokens = heads // tp, 8 // tp, batch * new
    window = 128 if kind == "sliding" else None
    # written out: q, k, v, o GEMMs; mask entries; elements the four bias adds touch (o once)
    assert measured["projection_flops"] == 2 * tokens * H * (hl + 2 * kvl) * dh + 2 * tokens * hl * dh * H
    assert measured["pairs"] == batch * enumerated_pairs(new, cached, window)
    assert measured["bias_elements"] == tokens * (hl * dh + 2 * kvl * dh + H)
    # FlopCounterMode also counts the dense QKᵀ / PV grid the reference computes before masking:
    # keys = the ring's slots after a decode write, resident + chunk for a chunk, all for full
    if kind == "full":
        keys = cached + new
    elif new == 1:
        keys = min(cached + 1, 128)
    else:
        keys = min(cached, 128) + new
    assert measured["counted_total_flops"] == measured["projection_flops"] + 4 * dh * hl * batch * new * keys


# --- bytes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["seed", "mock"])
@pytest.mark.parametrize("kind", ["sliding", "full"])
@pytest.mark.parametrize("tp", [1, 4, 8, 16])
def test_bytes_measured_equal_analytic(layouts, layout, kind, tp):
    heads, dh = SHAPES[layout]
    if heads % tp:
        pytest.skip("tp does not split the heads")
    found = layouts[layout]
    batch, context = 2, 150
    fig = byte_figures(found[kind], found["config"], tp=tp, batch=batch, context=context)
    assert fig["measured"] == fig["analytic"]
    kvl = max(8 // tp, 1)
    resident = 128 if kind == "sliding" else context
    assert fig["measured"]["kv_prefill_bytes"] == 2 * batch * kvl * resident * dh * 2
    assert fig["measured"]["kv_decode_bytes"] == 2 * batch * kvl * (128 if kind == "sliding" else context + 1) * dh * 2
    if tp == 1:
        width = heads * dh
        params = H * width * 2 + 2 * H * 8 * dh + width + 2 * 8 * dh + H + heads
        assert fig["measured"]["params"] == params == {"seed": 26_550_144, "mock": 29_500_256}[layout]
        assert fig["measured"]["weight_bytes"] == 2 * params


def test_mock_sliding_kv_tensors(layouts):
    """The acceptance figure, from the cache tensors: 2·B·8·128·128·2 at contexts >= 128."""
    found = layouts["mock"]
    for batch, context in ((1, 128), (3, 200)):
        fig = byte_figures(found["sliding"], found["config"], tp=1, batch=batch, context=context)
        assert fig["measured"]["kv_decode_bytes"] == 2 * batch * 8 * 128 * 128 * 2


def test_full_cache_holds_every_position():
    cache = FullKVCache(2, 3, 4, torch.bfloat16)
    k = torch.ones(2, 3, 5, 4)
    keys, values, positions = cache.update(k, k, torch.arange(5))
    assert keys.shape == (2, 3, 5, 4) and positions.tolist() == [0, 1, 2, 3, 4]
    cache.update(k[:, :, :1], k[:, :, :1], torch.tensor([5]))
    assert cache.nbytes == 2 * 2 * 3 * 6 * 4 * 2


# --- the validation cases -------------------------------------------------------------------

def test_validation_cases_run():
    assert len(VALIDATION_CASES) == 5
    outcome = next(c for c in VALIDATION_CASES if c.name == "gpt-oss-attention-bytes").run()
    assert outcome.passed, outcome.detail


def test_numerics_case_skips_without_transformers(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    case = next(c for c in VALIDATION_CASES if c.name == "gpt-oss-attention-numerics-full")
    outcome = case.run()
    assert outcome.skipped and "transformers" in outcome.detail
