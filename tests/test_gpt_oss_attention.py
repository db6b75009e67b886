"""mantile-gpt-oss-attention, analytic side (no torch): layer types for gpt_oss attention and
MoE, model totals, per-device costs against arithmetic written out here, and the missing-plugin
message. The torch reference is tested in test_gpt_oss_reference.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mantile_gpt_oss_attention")
pytest.importorskip("mantile_rope_yarn")
pytest.importorskip("mantile_swa_cache")

import mantile_core  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.dtypes import get_dtype  # noqa: E402
from mantile_core.errors import MissingPluginError, ParallelismError  # noqa: E402
from mantile_gpt_oss_attention import plugin as gpt_oss_plugin  # noqa: E402
from mantile_gpt_oss_attention.layers import GptOssAttention, GptOssMoE  # noqa: E402
from mantile_gpt_oss_attention.validation import attention_layers, make_step  # noqa: E402
from mantile_rope_yarn import plugin as yarn_plugin  # noqa: E402
from mantile_swa_cache import plugin as swa_plugin  # noqa: E402

BUNDLED = Path(mantile_core.__file__).parent / "data" / "models"
H, V, E120, E20, I, K = 2880, 201088, 128, 32, 2880, 4  # hidden, vocab, experts, intermediate, top-k


@pytest.fixture(scope="module")
def mock_config(tmp_path_factory) -> Path:
    """gpt-oss-20b with the attention reshaped to 32 heads × 128 (width 4096, hidden 2880)."""
    data = json.loads((BUNDLED / "gpt-oss-20b.json").read_text())
    data.update(num_attention_heads=32, head_dim=128)
    path = tmp_path_factory.mktemp("mock") / "config.json"
    path.write_text(json.dumps(data))
    return path


def layers_json(capsys, model) -> dict:
    assert main(["layers", str(model), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --- independent arithmetic --------------------------------------------------------------------

def mxfp4_bytes(n: int) -> int:
    """4 bits per element + one 8-bit scale per 32 elements."""
    return n // 2 + n // 32


def attention_params(hidden, heads, kv, dh) -> int:
    width = heads * dh
    weights = hidden * width + 2 * hidden * kv * dh + width * hidden  # q, k, v, o
    biases = width + 2 * kv * dh + hidden
    return weights + biases + heads  # + sinks


def moe_params(hidden, experts, inter) -> int:
    router = hidden * experts + experts
    expert = hidden * 2 * inter + 2 * inter + inter * hidden + hidden  # gate_up (+bias), down (+bias)
    return router + experts * expert


def model_params(layers, experts) -> int:
    per_layer = 2 * H + attention_params(H, 64, 8, 64) + moe_params(H, experts, I)
    return V * H + layers * per_layer + H + V * H  # embedding, blocks, final norm, untied head


def model_weight_bytes(layers, experts) -> int:
    expert_weights = experts * 3 * H * I
    return mxfp4_bytes(layers * expert_weights) + 2 * (model_params(layers, experts) - layers * expert_weights)


def expected_attention(hidden, heads, kv, dh, window, batch, new, cached, tp) -> dict:
    """Per-device cost of a GPT-OSS attention step, from the definitions: pairs enumerated."""
    hl = heads // tp
    kvl = kv // tp if tp <= kv else 1  # replicated KV head when tp > kv heads
    tokens = batch * new
    pairs = 0
    for i in range(cached, cached + new):  # query at absolute position i
        pairs += sum(1 for j in range(i + 1) if window is None or j > i - window)
    pairs *= batch
    q_proj = 2 * tokens * hidden * hl * dh
    k_proj = v_proj = 2 * tokens * hidden * kvl * dh
    o_proj = 2 * tokens * hl * dh * hidden
    qk = pv = 2 * dh * hl * pairs
    matmul = q_proj + k_proj + v_proj + o_proj + qk + pv
    bias_adds = tokens * (hl * dh + 2 * kvl * dh + hidden)  # o_proj bias once
    rope = 3 * tokens * (hl + kvl) * dh
    softmax = 5 * hl * pairs + tokens * hl * dh
    sinks = 4 * tokens * hl
    written = cached + new
    resident = written if window is None else min(written, window)
    local_params = (hidden * hl * dh + 2 * hidden * kvl * dh + hl * dh * hidden
                    + hl * dh + 2 * kvl * dh + hidden + hl)
    return {
        "matmul_flops": matmul,
        "attention_flops": qk + pv,
        "flops": matmul + bias_adds + rope + softmax + sinks,
        "weight_bytes": 2 * local_params,
        "kv_cache_bytes": 2 * batch * kvl * resident * dh * 2,
        "comm_bytes": tokens * hidden * 2 if tp > 1 else 0,
        "activation_bytes": 2 * tokens * (2 * hl * dh + 2 * kvl * dh + hidden),
    }


def expected_moe(experts, batch, new, tp) -> dict:
    """Per-device cost of a GPT-OSS MoE step (ep 1): uniform routing expectation for weights."""
    tokens = batch * new
    inter = I // tp
    router = 2 * tokens * H * experts
    expert_gemms = 2 * tokens * K * (H * 2 * inter + inter * H)
    act = 10 * tokens * K * inter  # clamp 3, alpha 1, sigmoid 3, ·gate 1, +1 1, product 1
    elementwise = (3 * tokens * experts + tokens * experts  # softmax/top-k, router bias
                   + act + tokens * K * (2 * inter + H)  # expert biases
                   + tokens * K * H)  # weighting and summing the k outputs
    per_expert = mxfp4_bytes(3 * H * inter) + 2 * (2 * inter + H)
    active = experts * (1 - (1 - K / experts) ** tokens)
    return {
        "matmul_flops": router + expert_gemms,
        "flops": router + expert_gemms + elementwise,
        "weight_bytes": 2 * (H * experts + experts) + round(active * per_expert),
        "comm_bytes": tokens * H * 2 if tp > 1 else 0,
    }


# --- totals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, layers, experts, params, weight_bytes", [
    ("gpt-oss-120b", 36, E120, 116_829_156_672, 65_248_815_744),
    ("gpt-oss-20b", 24, E20, 20_914_757_184, 13_761_264_768),
])
def test_layers_json_totals(capsys, name, layers, experts, params, weight_bytes):
    assert model_params(layers, experts) == params
    assert model_weight_bytes(layers, experts) == weight_bytes
    doc = layers_json(capsys, name)
    assert (doc["params"], doc["weight_bytes"]) == (params, weight_bytes)
    assert sum(r["params"] for r in doc["layers"]) == params


def test_attention_layer_params_and_sinks(capsys):
    assert attention_params(H, 64, 8, 64) == 26_550_144
    doc = layers_json(capsys, "gpt-oss-120b")
    attn = [r for r in doc["layers"] if r["kind"] == "attention"]
    assert len(attn) == 36
    assert {r["params"] for r in attn} == {26_550_144}
    assert {r["weight_bytes"] for r in attn} == {2 * 26_550_144}  # bf16: self_attn is not converted
    assert {r["sinks"] for r in attn} == {64}
    layer = attention_layers("gpt-oss-120b")["sliding"]
    assert layer.extra_params(layer.heads) == 64  # the sinks
    assert layer.params() - layer.extra_params(layer.heads) == attention_params(H, 64, 8, 64) - 64


def test_layers_show_sliding_and_full(capsys):
    doc = layers_json(capsys, "gpt-oss-120b")
    attn = [r for r in doc["layers"] if r["kind"] == "attention"]
    assert {r["type"] for r in attn} == {"gpt-oss-attention"}
    assert [r["mask"] for r in attn] == ["sliding", "causal"] * 18  # layer_types alternate
    assert [r["window"] for r in attn] == [128, None] * 18
    assert {r["width"] for r in attn} == {4096}
    moe = [r for r in doc["layers"] if r["kind"] == "moe"]
    assert len(moe) == 36 and {r["type"] for r in moe} == {"gpt-oss-moe"}
    assert {r["expert_dtype"] for r in moe} == {"mxfp4"}
    assert {r["params"] for r in moe} == {moe_params(H, E120, I)}
    assert {r["weight_bytes"] for r in moe} == {mxfp4_bytes(E120 * 3 * H * I) + 2 * (moe_params(H, E120, I) - E120 * 3 * H * I)}
    assert main(["layers", "gpt-oss-120b"]) == 0
    text = capsys.readouterr().out
    assert "sliding window 128" in text and "causal" in text


def test_estimate_shows_sliding_and_full_costs():
    result = mantile_core.estimate("gpt-oss-120b", "h200", tp=1, batch=4, input_len=1024, output_len=1024)
    rows = result.to_dict()["layers"]
    sliding, full = rows[2], rows[6]  # model.layers.0.self_attn, model.layers.1.self_attn
    assert (sliding["name"], sliding["window"], full["name"], full["window"]) == \
        ("model.layers.0.self_attn", 128, "model.layers.1.self_attn", None)
    context = 1024 + 512
    for row, window in ((sliding, 128), (full, None)):
        pre = expected_attention(H, 64, 8, 64, window, 4, 1024, 0, 1)
        dec = expected_attention(H, 64, 8, 64, window, 4, 1, context, 1)
        for key in ("flops", "matmul_flops", "weight_bytes", "kv_cache_bytes", "comm_bytes"):
            assert row["prefill"][key] == pre[key], key
            assert row["decode"][key] == dec[key], key
    assert sliding["decode"]["kv_cache_bytes"] == 2 * 4 * 8 * 128 * 64 * 2
    assert full["decode"]["kv_cache_bytes"] == 2 * 4 * 8 * (context + 1) * 64 * 2
    assert sliding["prefill"]["flops"] < full["prefill"]["flops"]


# --- per-layer costs against arithmetic ---------------------------------------------------------

SHAPES = {"seed": (64, 64), "mock": (32, 128)}  # heads × head_dim; hidden 2880, 8 KV heads, W 128


@pytest.fixture(scope="module")
def layouts(mock_config):
    return {"seed": attention_layers("gpt-oss-20b"), "mock": attention_layers(str(mock_config))}


@pytest.mark.parametrize("layout", ["seed", "mock"])
@pytest.mark.parametrize("kind", ["sliding", "full"])
@pytest.mark.parametrize("tp", [1, 2, 4, 8])
@pytest.mark.parametrize("batch, new, cached", [
    (2, 1000, 0),  # prefill
    (1, 7, 0),  # short prefill inside the window
    (3, 1, 1000),  # decode beyond the window
    (3, 1, 50),  # decode inside the window
    (2, 200, 300),  # a chunk after cached tokens
])
def test_attention_cost_equals_arithmetic(layouts, layout, kind, tp, batch, new, cached):
    heads, dh = SHAPES[layout]
    layer = layouts[layout][kind]
    assert isinstance(layer, GptOssAttention)
    assert (layer.hidden, layer.heads, layer.kv_heads, layer.head_dim) == (H, heads, 8, dh)
    cost = layer.cost(make_step(batch, new, cached, tp))
    want = expected_attention(H, heads, 8, dh, 128 if kind == "sliding" else None, batch, new, cached, tp)
    got = {key: int(getattr(cost, key)) for key in want}
    assert got == want


@pytest.mark.parametrize("tp", [16, 32])
def test_attention_tp_beyond_kv_heads_replicates(layouts, tp):
    layer = layouts["seed"]["full"]
    layer.check_parallelism(tp, 1)
    cost = layer.cost(make_step(2, 1, 500, tp))
    want = expected_attention(H, 64, 8, 64, None, 2, 1, 500, tp)
    assert {key: int(getattr(cost, key)) for key in want} == want
    assert int(cost.kv_cache_bytes) == 2 * 2 * 1 * 501 * 64 * 2  # one KV head per device


def test_attention_tp_that_does_not_split_heads(layouts):
    with pytest.raises(ParallelismError, match="num_attention_heads=64"):
        layouts["seed"]["full"].check_parallelism(3, 1)
    bf16 = get_dtype("bf16")  # 24 heads over 6 KV heads: tp 4 splits the heads, not the KV heads
    odd = GptOssAttention(hidden=H, heads=24, kv_heads=6, head_dim=64, rotary_dim=64, weight_dtype=bf16, bias_dtype=bf16)
    with pytest.raises(ParallelismError, match="num_key_value_heads=6"):
        odd.check_parallelism(4, 1)


@pytest.mark.parametrize("context", [127, 128, 129, 1000, 131071])
@pytest.mark.parametrize("batch", [1, 3, 64])
def test_mock_sliding_kv_is_the_window(layouts, context, batch):
    cost = layouts["mock"]["sliding"].cost(make_step(batch, 1, context, 1))
    assert int(cost.kv_cache_bytes) == 2 * batch * 8 * 128 * 128 * 2
    full = layouts["mock"]["full"].cost(make_step(batch, 1, context, 1))
    assert int(full.kv_cache_bytes) == 2 * batch * 8 * (context + 1) * 128 * 2


def test_mock_estimate_sliding_kv(mock_config):
    result = mantile_core.estimate(str(mock_config), "h200", tp=1, batch=5, input_len=300, output_len=100)
    rows = [r for r in result.to_dict()["layers"] if r["kind"] == "attention"]
    assert {r["decode"]["kv_cache_bytes"] for r in rows if r["window"] == 128} == {2 * 5 * 8 * 128 * 128 * 2}
    assert {r["decode"]["kv_cache_bytes"] for r in rows if r["window"] is None} == {2 * 5 * 8 * 351 * 128 * 2}


def test_attention_cost_vectorises(layouts):
    layer = layouts["mock"]["sliding"]
    batch = numpy.array([1, 2, 8])
    cached = numpy.array([10, 127, 5000])
    vector = layer.cost(make_step(batch, 1, cached, 4))
    for i in range(3):
        scalar = layer.cost(make_step(int(batch[i]), 1, int(cached[i]), 4))
        for key in ("flops", "matmul_flops", "weight_bytes", "kv_cache_bytes", "comm_bytes"):
            assert int(numpy.broadcast_to(getattr(vector, key), (3,))[i]) == int(getattr(scalar, key)), key


@pytest.mark.parametrize("tp", [1, 4, 8])
@pytest.mark.parametrize("batch, new", [(1, 1), (16, 1), (2, 1024)])
def test_moe_cost_equals_arithmetic(tp, batch, new):
    model = mantile_core.load_model("gpt-oss-120b")
    moe = next(layer for layer in model.layers if layer.kind == "moe")
    assert isinstance(moe, GptOssMoE)
    cost = moe.cost(make_step(batch, new, 0, tp))
    want = expected_moe(E120, batch, new, tp)
    assert {key: int(getattr(cost, key)) for key in want} == want


# --- plugin wiring ------------------------------------------------------------------------------

def test_plugin_listed(capsys):
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ours = [p for p in doc["plugins"] if p["distribution"] == "mantile-gpt-oss-attention"]
    assert len(ours) == 1 and ours[0]["error"] is None and ours[0]["version"] == "0.1.0"
    assert ours[0]["provides"]["layer_types"] == ["gpt-oss-attention", "gpt-oss-moe"]
    assert ours[0]["provides"]["validation_cases"] == [
        "gpt-oss-attention-bytes", "gpt-oss-attention-flops", "gpt-oss-attention-numerics-full",
        "gpt-oss-attention-numerics-sliding", "gpt-oss-attention-tp-shards"]


def test_missing_plugin_is_one_line_naming_it(mantile_plugins, capsys):
    mantile_plugins(yarn_plugin, swa_plugin)
    with pytest.raises(MissingPluginError) as info:
        mantile_core.load_model("gpt-oss-120b")
    message = str(info.value)
    assert "\n" not in message
    assert "mantile-gpt-oss-attention" in message
    # pip would look its mantile-* requirements up on an index: their directories come first
    assert message.endswith(": pip install ./plugins/rope_yarn ./plugins/swa_cache ./plugins/gpt_oss_attention "
                            "(from the Mantile checkout)")
    assert "mantile-rope-yarn" not in message and "mantile-swa-cache" not in message
    assert main(["estimate", "gpt-oss-120b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mantile-gpt-oss-attention" in err


def test_missing_everything_names_all_three(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="mantile-gpt-oss-attention") as info:
        mantile_core.load_model("gpt-oss-20b")
    assert "mantile-rope-yarn" in str(info.value) and "mantile-swa-cache" in str(info.value)


def test_plugin_alone_with_its_dependencies(mantile_plugins):
    mantile_plugins(gpt_oss_plugin, yarn_plugin, swa_plugin)
    model = mantile_core.load_model("gpt-oss-20b")
    assert model.params() == 20_914_757_184
    assert {layer.type for layer in model.layers if layer.kind in ("attention", "moe")} == {"gpt-oss-attention", "gpt-oss-moe"}


def test_estimating_path_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, mantile_core; mantile_core.estimate('gpt-oss-120b', 'h200', tp=8); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'mantile_gpt_oss_attention.reference' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
