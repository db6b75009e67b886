"""mantile-swa-cache: sliding-window KV-cache policies (ring, paged, full) and what they change
in an estimate. Expected figures are written out as arithmetic or enumerated by brute force here.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.cache import select_policies  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.config import parse_config  # noqa: E402
from mantile_core.errors import InputError, MissingPluginError  # noqa: E402
from mantile_swa_cache import counts  # noqa: E402
from mantile_swa_cache import plugin as swa_plugin  # noqa: E402

DATA = Path(__file__).parent / "data"
ALTERNATING = DATA / "swa_alternating.json"  # qwen2, 4 layers sliding(64)/full, 2 KV heads × 32, bf16
DISTRIBUTION = "mantile-swa-cache"


@pytest.fixture
def swa(mantile_plugins):
    """A fresh manager with the core and this plugin only."""
    return mantile_plugins(swa_plugin, distribution=DISTRIBUTION)


# --- brute force, straight from the definitions ---------------------------------------------

def visible_keys(i: int, window: int) -> int:
    """Keys j >= 0 with i - W < j <= i, enumerated."""
    return sum(1 for j in range(i + 1) if j > i - window)


def held_blocks_vllm(p: int, window: int, block: int) -> int:
    """vLLM's SlidingWindowManager before the step writing position p frees every block below
    (p - W + 1) // block; blocks up to p // block are allocated."""
    first_useful = (p - window + 1) // block if p - window + 1 > 0 else 0
    return len(range(first_useful, p // block + 1))


# --- counts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("window", [1, 5, 16, 128])
def test_window_positions_enumerated(window):
    for tokens in range(1, 3 * window + 20):
        assert counts.window_positions(tokens, window) == visible_keys(tokens - 1, window)
    assert counts.window_positions(0, window) == 0


@pytest.mark.parametrize("window", [1, 16, 128])
@pytest.mark.parametrize("cached", [0, 1, 7, 127, 128, 129, 1000])
@pytest.mark.parametrize("new", [1, 2, 16, 127, 128, 129, 300])
def test_window_pairs_enumerated(new, cached, window):
    expected = sum(visible_keys(i, window) for i in range(cached, cached + new))
    assert counts.window_pairs(new, cached, window) == expected


def test_prefill_pairs_grow_like_s_times_w():
    s, w = 4096, 128
    assert counts.window_pairs(s, 0, w) == s * w - w * (w - 1) // 2 == 516_160
    # doubling the prompt adds 4096·128 pairs, it does not quadruple them
    assert counts.window_pairs(2 * s, 0, w) - counts.window_pairs(s, 0, w) == s * w


@pytest.mark.parametrize("window,block", [(128, 16), (100, 16), (128, 1), (40, 32), (16, 16), (4096, 16)])
def test_paged_blocks_follow_vllm(window, block):
    for tokens in range(1, 3 * window + 3 * block):
        p = tokens - 1
        assert counts.paged_blocks(tokens, window, block) == held_blocks_vllm(p, window, block), tokens
    assert counts.paged_blocks(0, window, block) == 0


def test_paged_gpt_oss_window_examples():
    # decode step at context C writes position p = C: C = 1000 holds blocks 54..62, C = 1007 55..62
    assert counts.paged_blocks(1000 + 1, 128, 16) == 62 - 54 + 1 == 9
    assert counts.paged_positions(1000 + 1, 128, 16) == 144
    assert counts.paged_blocks(1007 + 1, 128, 16) == 62 - 55 + 1 == 8
    assert counts.paged_positions(1007 + 1, 128, 16) == 128


def test_counts_vectorise_over_int64_arrays():
    tokens = numpy.arange(0, 700, dtype=numpy.int64)
    new = numpy.array([1, 5, 128, 300, 4096], dtype=numpy.int64)
    cached = numpy.array([0, 130, 7, 1000, 0], dtype=numpy.int64)
    for fn, args in [(counts.window_positions, (tokens, 128)), (counts.paged_blocks, (tokens, 128, 16)),
                     (counts.paged_positions, (tokens, 128, 16)), (counts.window_pairs, (new, cached, 128))]:
        out = fn(*args)
        assert isinstance(out, numpy.ndarray) and out.dtype == numpy.int64
        scalars = [fn(*(int(a[i]) if isinstance(a, numpy.ndarray) else a for a in args)) for i in range(len(out))]
        assert out.tolist() == scalars
        assert all(type(v) is int for v in scalars)  # Python ints stay Python ints


# --- registration and selection --------------------------------------------------------------

def test_policies_registered(swa):
    registries = swa.registries
    policies = {name: p for name, p in registries.cache_policies.items() if p.mask == "sliding"}
    assert sorted(policies) == ["full", "paged", "ring"]
    assert [name for name, p in policies.items() if p.default] == ["ring"]
    assert all(registries.owners[("cache_policies", n)] == DISTRIBUTION for n in policies)
    assert sorted(registries.provided_by(DISTRIBUTION)["validation_cases"]) == [
        "swa-cache-chunked-equals-full", "swa-cache-chunked-mask-pairs", "swa-cache-chunked-resident",
        "swa-cache-mask-pairs", "swa-cache-ring-bytes", "swa-cache-ring-equals-full"]
    chosen = select_policies(registries.cache_policies, {"sliding", "causal"})
    assert (chosen["sliding"].name, chosen["causal"].name) == ("ring", "causal")
    chosen = select_policies(registries.cache_policies, {"sliding", "causal"}, "paged")
    assert (chosen["sliding"].name, chosen["causal"].name) == ("paged", "causal")
    with pytest.raises(InputError, match="ring"):
        select_policies(registries.cache_policies, {"sliding"}, "rolling")


def test_entry_point_declared():
    eps = [ep for ep in metadata.entry_points(group="mantile") if ep.name == "swa_cache"]
    assert [ep.value for ep in eps] == ["mantile_swa_cache.plugin"]
    assert eps[0].dist.metadata["Name"] == DISTRIBUTION
    assert metadata.version(DISTRIBUTION) == "0.1.0"


def test_plugins_command_lists_policies(capsys, mantile_plugins):
    mantile_plugins(entry_points=True)
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    entry = next(p for p in doc["plugins"] if p["distribution"] == DISTRIBUTION)
    assert entry["version"] == "0.1.0" and entry["error"] is None and entry["name"] == "swa_cache"
    assert entry["provides"]["cache_policies"] == ["chunked-full", "chunked-paged", "chunked-ring", "full", "paged",
                                                   "ring"]


# --- config: which layers slide (against transformers' own config classes) -------------------

QWEN2 = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 30, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 100, "intermediate_size": 128}
MISTRAL = {**QWEN2, "model_type": "mistral"}


@pytest.mark.parametrize("extra", [{"sliding_window": 4096}, {"sliding_window": None}])
def test_mistral_windows_match_transformers(extra):
    transformers = pytest.importorskip("transformers")
    hf = transformers.MistralConfig(**{k: v for k, v in {**MISTRAL, **extra}.items() if k != "model_type"})
    # transformers' Mistral applies config.sliding_window to every layer
    assert parse_config({**MISTRAL, **extra}).windows == (hf.sliding_window,) * 30


@pytest.mark.parametrize("extra", [
    {"sliding_window": 4096},                                               # no flag: off (default false)
    {"sliding_window": 4096, "use_sliding_window": False, "max_window_layers": 28},
    {"sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 10},
    {"sliding_window": 4096, "use_sliding_window": True},                    # max_window_layers default 28
    {"sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 0},
    {"sliding_window": None, "use_sliding_window": True, "max_window_layers": 10},
    {"sliding_window": 64, "use_sliding_window": True, "layer_types": ["full_attention", "sliding_attention"] * 15},
])
def test_qwen2_windows_match_transformers(extra):
    transformers = pytest.importorskip("transformers")
    hf = transformers.Qwen2Config(**{k: v for k, v in {**QWEN2, **extra}.items() if k != "model_type"})
    expected = tuple(hf.sliding_window if t == "sliding_attention" else None for t in hf.layer_types)
    assert parse_config({**QWEN2, **extra}).windows == expected


def test_qwen_sliding_gate_defaults():
    """transformers' defaults without transformers: use_sliding_window defaults to false,
    max_window_layers to 28 (Qwen2/Qwen3); Qwen3-MoE slides every layer."""
    assert parse_config({**QWEN2, "sliding_window": 4096}).windows == (None,) * 30
    assert parse_config({**QWEN2, "sliding_window": 4096, "use_sliding_window": True}).windows == \
        (None,) * 28 + (4096,) * 2
    moe = {**QWEN2, "model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 2,
           "moe_intermediate_size": 32, "sliding_window": 512, "use_sliding_window": True, "max_window_layers": 10}
    assert parse_config(moe).windows == (512,) * 30


def test_bundled_window_configs():
    assert parse_config(json.loads((DATA / "swa_alternating.json").read_text())).windows == (64, None, 64, None)
    # the bundled mistral-7b slides every layer
    mistral = json.loads((Path(mantile_core.__file__).parent / "data" / "models" / "mistral-7b.json").read_text())
    assert parse_config(mistral).windows == (4096,) * 32


# --- estimates: KV memory and FLOPs ----------------------------------------------------------

def attention_rows(result):
    return [r for r in result.to_dict()["layers"] if r["kind"] == "attention"]


@pytest.mark.parametrize("context", [0, 1, 62, 63, 64, 65, 500, 1007])
def test_alternating_decode_kv_per_layer(swa, context):
    row = 2 * 2 * 32 * 2  # K and V × 2 KV heads × head_dim 32 × 2 bytes
    ring = mantile_core.estimate(str(ALTERNATING), "h100", input_len=16, output_len=2048, context=context)
    sliding, full, sliding2, full2 = attention_rows(ring)
    assert (sliding["window"], full["window"]) == (64, None)
    tokens = context + 1
    held = tokens if tokens < 64 else 64
    assert sliding["decode"]["kv_cache_bytes"] == held * row == sliding2["decode"]["kv_cache_bytes"]
    assert full["decode"]["kv_cache_bytes"] == tokens * row == full2["decode"]["kv_cache_bytes"]
    assert ring.decode.total.kv_cache_bytes == 2 * held * row + 2 * tokens * row
    # decode reads the window's keys under every policy
    assert sliding["decode"]["kv_read_bytes"] == held * row
    paged = attention_rows(mantile_core.estimate(str(ALTERNATING), "h100", input_len=16, output_len=2048,
                                                 context=context, kv_policy="paged"))[0]
    first = (context - 63) // 16 if context - 63 > 0 else 0  # blocks first..context//16 (window 64)
    assert paged["decode"]["kv_cache_bytes"] == (context // 16 - first + 1) * 16 * row
    assert paged["decode"]["kv_read_bytes"] == held * row
    full_policy = attention_rows(mantile_core.estimate(str(ALTERNATING), "h100", input_len=16, output_len=2048,
                                                       context=context, kv_policy="full"))[0]
    assert full_policy["decode"]["kv_cache_bytes"] == tokens * row
    assert full_policy["decode"]["kv_read_bytes"] == held * row


def test_alternating_prefill_attention_flops(swa):
    s, w, heads, dim = 4096, 64, 8, 32
    result = mantile_core.estimate(str(ALTERNATING), "h100", input_len=s, output_len=16)
    by_window = {layer.window: cost for (layer, _), cost in zip(result.model.unique_layers, result.prefill.costs)
                 if layer.kind == "attention"}
    assert by_window[w].attention_flops == 4 * dim * heads * (s * w - w * (w - 1) // 2)
    assert by_window[None].attention_flops == 4 * dim * heads * (s * (s + 1) // 2)
    # the sliding layer's prefill KV is the window, the full layer's the whole prompt
    assert by_window[w].kv_cache_bytes == 2 * 2 * 32 * 2 * w
    assert by_window[None].kv_cache_bytes == 2 * 2 * 32 * 2 * s


def test_mistral_memory_reflects_window(swa):
    layers, batch, input_len, output_len = 32, 4, 8000, 1000
    row = 2 * 8 * 128 * 2  # bytes per position: K+V × 8 KV heads × 128 × bf16
    results = {policy: mantile_core.estimate("mistral-7b", "h200", batch=batch, input_len=input_len,
                                             output_len=output_len, kv_policy=policy).to_dict()
               for policy in ("ring", "paged", "full")}
    tokens = input_len + output_len  # 9000 written by the last decode step
    # ring: 4096 positions; paged: last position 8999, blocks (8999-4095)//16 = 306 .. 8999//16 = 562
    per_sequence = {"ring": layers * 4096 * row, "paged": layers * (562 - 306 + 1) * 16 * row,
                    "full": layers * tokens * row}
    assert per_sequence["paged"] == layers * 4112 * row
    for policy, doc in results.items():
        mem = doc["memory"]
        assert doc["kv_policy"] == {"sliding": policy}
        assert mem["kv_cache_bytes"] == batch * per_sequence[policy]
        assert mem["kv_cache_bytes_per_sequence"] == per_sequence[policy]
        room = mem["capacity_bytes"] - mem["weight_bytes"] - mem["activation_bytes"] - mem["rope_table_bytes"]
        assert mem["max_batch"] == room // per_sequence[policy]
    assert results["ring"]["memory"]["max_batch"] > results["paged"]["memory"]["max_batch"] > \
        results["full"]["memory"]["max_batch"]


def test_mistral_decode_kv_stops_at_window(swa):
    row = 2 * 8 * 128 * 2
    for context in (100, 4094, 4095, 4096, 20000):
        doc = mantile_core.estimate("mistral-7b", "h100", input_len=1024, output_len=1024, context=context).to_dict()
        held = context + 1 if context + 1 < 4096 else 4096
        assert doc["decode"]["kv_cache_bytes"] == 32 * held * row
        assert doc["decode"]["kv_read_bytes"] == 32 * held * row


def test_policies_vectorise_through_the_layer(swa):
    """The layer's cost with numpy arrays in the Step equals the per-element scalar costs."""
    from mantile_core.workload import Step

    model = mantile_core.load_model(str(ALTERNATING))
    sliding = next(layer for layer in model.layers if layer.kind == "attention" and layer.window)
    policies = {p.mask: p for p in swa.registries.cache_policies.values() if p.default}
    for name in ("ring", "paged", "full"):
        policies["sliding"] = swa.registries.cache_policies[name]
        cached = numpy.array([0, 10, 63, 64, 1000, 1007], dtype=numpy.int64)
        new = numpy.array([1, 1, 1, 200, 1, 50], dtype=numpy.int64)
        vector = sliding.cost(Step(batch=2, new_tokens=new, cached=cached, policies=policies))
        for i in range(len(cached)):
            scalar = sliding.cost(Step(batch=2, new_tokens=int(new[i]), cached=int(cached[i]), policies=policies))
            for field in ("kv_cache_bytes", "kv_read_bytes", "attention_flops", "flops"):
                assert int(getattr(vector, field)[i]) == int(getattr(scalar, field)), (name, field, i)


# --- without the plugin ----------------------------------------------------------------------

@pytest.mark.parametrize("model", ["mistral-7b", str(ALTERNATING)])
def test_missing_plugin_names_it(mantile_plugins, model):
    mantile_plugins()  # the core alone
    with pytest.raises(MissingPluginError) as info:
        mantile_core.load_model(model)
    message = str(info.value)
    assert "mantile-swa-cache" in message and "\n" not in message


def test_missing_plugin_cli_one_line(mantile_plugins, capsys):
    mantile_plugins()
    assert main(["estimate", str(ALTERNATING)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mantile: error")]
    assert len(err) == 1 and err[0].endswith("pip install ./plugins/swa_cache (from the Mantile checkout)")


def test_cli_kv_policy(swa, capsys):
    assert main(["estimate", "mistral-7b", "--input-len", "8000", "--output-len", "1000", "--kv-policy", "paged",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kv_policy"] == {"sliding": "paged"}
    assert doc["memory"]["kv_cache_bytes"] == 32 * 4112 * 2 * 8 * 128 * 2


# --- GPT-OSS-120B (needs the other two plugins) ----------------------------------------------

def _entry_point_plugin(distribution: str):
    for ep in metadata.entry_points(group="mantile"):
        if ep.dist is not None and ep.dist.metadata["Name"] == distribution:
            return ep.load()
    pytest.skip(f"{distribution} is not installed")


@pytest.fixture
def gpt_oss(mantile_plugins):
    pytest.importorskip("mantile_gpt_oss_attention")
    pytest.importorskip("mantile_rope_yarn")
    mantile_plugins(swa_plugin, _entry_point_plugin("mantile-gpt-oss-attention"),
                    _entry_point_plugin("mantile-rope-yarn"))
    return mantile_core.load_model("gpt-oss-120b")


ROW = 2 * 8 * 64 * 2  # 2048 bytes per position: K+V × 8 KV heads × 64 × bf16


@pytest.mark.parametrize("context", [0, 100, 126, 127, 128, 1000, 131071])
def test_gpt_oss_decode_kv_per_layer(gpt_oss, context):
    result = mantile_core.estimate(gpt_oss, "h200", tp=1, batch=1, input_len=128, output_len=131072 - 128,
                                   context=context)
    rows = attention_rows(result)
    assert len(rows) == 36
    held = context + 1 if context + 1 < 128 else 128
    for row in rows:
        expected = held * ROW if row["window"] == 128 else (context + 1) * ROW
        assert row["decode"]["kv_cache_bytes"] == expected
    assert sum(r["window"] == 128 for r in rows) == 18


def test_gpt_oss_model_kv_at_full_context(gpt_oss):
    result = mantile_core.estimate(gpt_oss, "h200", tp=1, batch=1, input_len=1024, output_len=131072 - 1024,
                                   context=131071)
    assert result.decode.total.kv_cache_bytes == 18 * 131072 * 2048 + 18 * 128 * 2048 == 4_836_556_800
    assert result.to_dict()["memory"]["kv_cache_bytes"] == 18 * 131072 * 2048 + 18 * 128 * 2048
    full = mantile_core.estimate(gpt_oss, "h200", input_len=1024, output_len=131072 - 1024, context=131071,
                                 kv_policy="full")
    assert full.decode.total.kv_cache_bytes == 36 * 131072 * 2048


@pytest.mark.parametrize("context,blocks", [(1000, 9), (1007, 8)])
def test_gpt_oss_paged_blocks(gpt_oss, context, blocks):
    result = mantile_core.estimate(gpt_oss, "h200", input_len=128, output_len=2048, context=context,
                                   kv_policy="paged", kv_block=16)
    sliding = next(r for r in attention_rows(result) if r["window"] == 128)
    assert sliding["decode"]["kv_cache_bytes"] == blocks * 16 * ROW


def test_gpt_oss_sliding_prefill_pairs(gpt_oss):
    result = mantile_core.estimate(gpt_oss, "h200", input_len=4096, output_len=16)
    for (layer, _), cost in zip(result.model.unique_layers, result.prefill.costs):
        if layer.kind == "attention" and layer.window == 128:
            # 64 query heads × 4·64 FLOPs per pair × 516,160 pairs per head
            assert cost.attention_flops == 64 * 4 * 64 * 516_160
            break
    else:
        pytest.fail("no sliding attention layer")
