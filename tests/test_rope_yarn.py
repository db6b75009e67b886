"""mantile-rope-yarn: YaRN inv_freq / attention_factor against a float64 derivation written out
here and against transformers; registration, missing-plugin errors, estimates, torch reference."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mantile_rope_yarn")

import mantile_core  # noqa: E402
from mantile_core import ConfigError, MantileError, MissingPluginError  # noqa: E402

import mantile_rope_yarn.plugin as yarn_plugin  # noqa: E402

DATA = Path(__file__).parent / "data"
QWEN_YARN = DATA / "qwen2.5-7b-yarn.json"

GPT_OSS = {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
           "original_max_position_embeddings": 4096, "truncate": False}

# (name, rope dict, head_dim, max_position_embeddings): every YaRN form in use plus degenerate cases
VARIANTS = [
    ("gpt-oss", GPT_OSS, 64, 131072),
    ("gpt-oss-truncate", {**GPT_OSS, "truncate": True}, 64, 131072),
    ("qwen3", {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
               "original_max_position_embeddings": 32768}, 128, 131072),
    ("deepseek-v3", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "beta_fast": 32, "beta_slow": 1,
                     "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096}, 64, 163840),
    ("deepseek-mscale-ratio", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "mscale": 0.707,
                               "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096}, 64, 163840),
    ("mscale-without-all-dim", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "mscale": 0.707,
                                "original_max_position_embeddings": 4096}, 64, 163840),
    ("explicit-attention-factor", {"rope_type": "yarn", "rope_theta": 500000.0, "factor": 8.0,
                                   "attention_factor": 0.9, "original_max_position_embeddings": 8192}, 128, 65536),
    ("partial-rotary", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "partial_rotary_factor": 0.5,
                        "original_max_position_embeddings": 4096}, 128, 16384),
    ("factor-from-lengths", {"rope_type": "yarn", "rope_theta": 1000000.0,
                             "original_max_position_embeddings": 4096}, 128, 65536),
    ("factor-one", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 1.0,
                    "original_max_position_embeddings": 4096}, 64, 4096),
    ("factor-below-one", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 0.5,
                          "original_max_position_embeddings": 4096}, 64, 2048),
    ("beta-equal", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 16.0, "beta_fast": 4.0, "beta_slow": 4.0,
                    "truncate": False, "original_max_position_embeddings": 2048}, 64, 32768),
    ("beta-equal-truncate", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 16.0, "beta_fast": 4.0,
                             "beta_slow": 4.0, "original_max_position_embeddings": 2048}, 64, 32768),
    ("range-clamped-low", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                           "original_max_position_embeddings": 100}, 64, 800),
    ("range-clamped-high", {"rope_type": "yarn", "rope_theta": 500.0, "factor": 8.0,
                            "original_max_position_embeddings": 10000000}, 64, 80000000),
]


def expected_yarn(rope: dict, head_dim: int, max_pos: int) -> tuple[list[float], float]:
    """YaRN written out pair by pair in float64 Python, from the paper's code form (transformers /
    vLLM): used as the independent expectation."""
    theta = rope["rope_theta"]
    dim = int(head_dim * rope.get("partial_rotary_factor", 1.0))
    original = rope.get("original_max_position_embeddings", max_pos)
    factor = rope.get("factor")
    if factor is None:
        factor = max_pos / original
    fast, slow = rope.get("beta_fast", 32.0), rope.get("beta_slow", 1.0)

    def dim_of(rotations):  # the dim index whose wavelength fits `rotations` times into `original`
        return dim * math.log(original / (2 * math.pi * rotations)) / (2 * math.log(theta))

    low, high = dim_of(fast), dim_of(slow)
    if rope.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if high == low:
        high = high + 0.001
    values = []
    for j in range(dim // 2):
        unscaled = 1.0 / theta ** (2 * j / dim)
        ramp = min(1.0, max(0.0, (j - low) / (high - low)))  # 0: keep, 1: interpolate
        values.append(unscaled * (1 - ramp) + unscaled / factor * ramp)

    def m(scale, k=1.0):
        return 1.0 if scale <= 1 else 0.1 * k * math.log(scale) + 1.0

    if rope.get("attention_factor") is not None:
        attention = rope["attention_factor"]
    elif rope.get("mscale") and rope.get("mscale_all_dim"):
        attention = m(factor, rope["mscale"]) / m(factor, rope["mscale_all_dim"])
    else:
        attention = m(factor)
    return values, attention


@pytest.fixture
def yarn(mantile_plugins):
    """Only the core and this plugin, in process."""
    mantile_plugins(yarn_plugin, distribution="mantile-rope-yarn")


# ---------------------------------------------------------------- the numbers


def test_gpt_oss_figures(yarn):
    r = mantile_core.rope_scaling(GPT_OSS, 64, 131072)
    assert isinstance(r.inv_freq, numpy.ndarray) and r.inv_freq.dtype == numpy.float64
    assert r.inv_freq.shape == (32,)
    assert r.attention_factor == 1.3465735902799727
    assert r.attention_factor == pytest.approx(0.1 * math.log(32) + 1, rel=1e-15)
    assert r.inv_freq[0] == 1.0
    assert r.inv_freq[-1] == pytest.approx(1 / (32 * 150000.0 ** (62 / 64)), rel=1e-12)
    assert r.inv_freq[-1] == pytest.approx(3.0235114e-07, rel=1e-7)


def test_gpt_oss_truncate_changes_only_the_ramp(yarn):
    # correction dims by hand: 64 ln(4096 / (2 pi r)) / (2 ln 150000) for r = 32 and r = 1
    low = 64 * math.log(4096 / (2 * math.pi * 32)) / (2 * math.log(150000.0))
    high = 64 * math.log(4096 / (2 * math.pi * 1)) / (2 * math.log(150000.0))
    assert 8 < low < 9 and 17 < high < 18  # 8.09 and 17.40: ramp strictly inside (0, 1) for pairs 9..17
    free = mantile_core.rope_scaling(GPT_OSS, 64, 131072).inv_freq
    truncated = mantile_core.rope_scaling({**GPT_OSS, "truncate": True}, 64, 131072).inv_freq
    changed = numpy.nonzero(~numpy.isclose(free, truncated, rtol=1e-12, atol=0))[0]
    assert changed.tolist() == list(range(9, 18))
    base = [150000.0 ** (-2 * j / 64) for j in range(32)]
    numpy.testing.assert_allclose(free[:9], base[:9], rtol=1e-13)  # extrapolated: unchanged
    numpy.testing.assert_allclose(free[18:], numpy.array(base[18:]) / 32, rtol=1e-13)  # interpolated
    assert truncated[8] == pytest.approx(base[8], rel=1e-13)  # truncated ramp runs 8 -> 18
    assert truncated[9] == pytest.approx(base[9] * 0.9 + base[9] / 32 * 0.1, rel=1e-13)


@pytest.mark.parametrize("name,rope,head_dim,max_pos", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variants_match_float64_derivation(yarn, name, rope, head_dim, max_pos):
    values, attention = expected_yarn(rope, head_dim, max_pos)
    r = mantile_core.rope_scaling(rope, head_dim, max_pos)
    numpy.testing.assert_allclose(r.inv_freq, values, rtol=1e-13)
    assert r.attention_factor == pytest.approx(attention, rel=1e-15)


def _transformers_yarn(rope: dict, head_dim: int, max_pos: int):
    pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.modeling_rope_utils")
    import transformers

    params = {"factor": None, **rope}  # transformers reads the key; None means max_pos / original
    config = transformers.PretrainedConfig()
    config.hidden_size, config.num_attention_heads, config.head_dim = head_dim, 1, head_dim
    config.max_position_embeddings = max_pos
    if hasattr(config, "standardize_rope_params"):
        config.rope_parameters = params
    else:
        config.rope_scaling, config.rope_theta = params, params["rope_theta"]
        config.partial_rotary_factor = params.get("partial_rotary_factor", 1.0)
    inv_freq, attention = utils.ROPE_INIT_FUNCTIONS["yarn"](config, None)
    return inv_freq.double().numpy(), float(attention)


@pytest.mark.parametrize("name,rope,head_dim,max_pos", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variants_match_transformers(yarn, name, rope, head_dim, max_pos):
    expected, attention = _transformers_yarn(rope, head_dim, max_pos)
    r = mantile_core.rope_scaling(rope, head_dim, max_pos)
    assert r.inv_freq.shape == expected.shape
    numpy.testing.assert_allclose(r.inv_freq, expected, rtol=1e-6)
    assert r.attention_factor == pytest.approx(attention, rel=1e-12)


def test_degenerate_cases(yarn):
    plain = mantile_core.rope_scaling({"rope_type": "default", "rope_theta": 10000.0}, 64, 4096)
    one = mantile_core.rope_scaling({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 1.0,
                                     "original_max_position_embeddings": 4096}, 64, 4096)
    numpy.testing.assert_allclose(one.inv_freq, plain.inv_freq, rtol=1e-14)
    assert one.attention_factor == 1.0
    # beta_fast == beta_slow: a step, pairs above the single correction dim interpolated
    rope = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 16.0, "beta_fast": 4.0, "beta_slow": 4.0,
            "truncate": False, "original_max_position_embeddings": 2048}
    r = mantile_core.rope_scaling(rope, 64, 32768)
    edge = 64 * math.log(2048 / (2 * math.pi * 4)) / (2 * math.log(10000.0))
    base = numpy.array([10000.0 ** (-2 * j / 64) for j in range(32)])
    for j in range(32):
        want = base[j] if j <= edge else base[j] / 16
        assert r.inv_freq[j] == pytest.approx(want, rel=1e-13), j
    assert numpy.all(numpy.isfinite(r.inv_freq))


def test_factor_and_original_fallbacks(yarn):
    derived = mantile_core.rope_scaling({"rope_type": "yarn", "rope_theta": 1e6,
                                         "original_max_position_embeddings": 32768}, 128, 131072)
    explicit = mantile_core.rope_scaling({"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                                          "original_max_position_embeddings": 32768}, 128, 131072)
    numpy.testing.assert_array_equal(derived.inv_freq, explicit.inv_freq)
    assert derived.attention_factor == explicit.attention_factor == pytest.approx(0.1 * math.log(4) + 1)
    # factor given, original absent: transformers uses max_position_embeddings as the original
    no_original = mantile_core.rope_scaling({"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}, 128, 131072)
    with_max = mantile_core.rope_scaling({"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                                          "original_max_position_embeddings": 131072}, 128, 131072)
    numpy.testing.assert_array_equal(no_original.inv_freq, with_max.inv_freq)
    # old-style "type" key
    old = mantile_core.rope_scaling({"type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                                     "original_max_position_embeddings": 32768}, 128, 131072)
    numpy.testing.assert_array_equal(old.inv_freq, explicit.inv_freq)


@pytest.mark.parametrize("rope,match", [
    ({"factor": -2.0}, "'factor' must be positive"),
    ({"factor": 0}, "'factor' must be positive"),
    ({"factor": "4"}, "'factor' must be a number"),
    ({"factor": None, "original_max_position_embeddings": None}, "needs 'original_max_position_embeddings'"),
    ({"original_max_position_embeddings": -1}, "'original_max_position_embeddings' must be positive"),
    ({"beta_fast": 1.0, "beta_slow": 32.0}, "beta_fast >= beta_slow"),
    ({"beta_fast": -1.0}, "'beta_fast' must be positive"),
    ({"attention_factor": -1.0}, "'attention_factor' must be positive"),
    ({"mscale": -1.0, "mscale_all_dim": 1.0}, "'mscale' must be non-negative"),
    ({"truncate": "no"}, "'truncate' must be true or false"),
    ({"rope_theta": 1.0}, "'rope_theta' must be greater than 1"),
    ({"partial_rotary_factor": 1.5}, "'partial_rotary_factor' must be in"),
    ({"partial_rotary_factor": 0.3}, "even rotary_dim"),
])
def test_bad_parameters_are_mantile_errors(yarn, rope, match):
    params = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 4096}
    params.update(rope)
    params = {k: v for k, v in params.items() if v is not None or k == "factor"}
    with pytest.raises(ConfigError, match=match) as info:
        mantile_core.rope_scaling(params, 64, 16384)
    assert isinstance(info.value, MantileError)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- registration and estimates


def test_registered_under_rope_type_yarn(yarn):
    registries = mantile_core.get_plugin_manager().registries
    assert "yarn" in registries.rope_scalings
    assert registries.owners[("rope_scalings", "yarn")] == "mantile-rope-yarn"
    assert {"rope-yarn-vs-transformers", "rope-yarn-rotation",
            "rope-yarn-relative-position"} <= set(registries.validation_cases)


def test_mantile_plugins_lists_the_distribution():
    try:
        metadata.distribution("mantile-rope-yarn")
    except metadata.PackageNotFoundError:
        pytest.skip("mantile-rope-yarn is importable but not installed as a distribution")
    from mantile_core.cli.info_cmds import plugins_document

    doc = plugins_document()
    ours = [p for p in doc["plugins"] if p["distribution"] == "mantile-rope-yarn"]
    assert len(ours) == 1 and ours[0]["error"] is None
    assert ours[0]["name"] == "rope_yarn" and ours[0]["version"] == "0.1.0"
    assert ours[0]["provides"]["rope_scalings"] == ["yarn"]


def test_without_plugin_yarn_config_names_the_plugin(mantile_plugins):
    mantile_plugins()  # core built-ins only: no yarn
    with pytest.raises(MissingPluginError) as info:
        mantile_core.load_model(QWEN_YARN)
    message = str(info.value)
    assert "\n" not in message
    assert "mantile-rope-yarn" in message and "pip install ./plugins/rope_yarn (from the Mantile checkout)" in message
    with pytest.raises(MissingPluginError, match="mantile-rope-yarn"):
        mantile_core.rope_scaling(GPT_OSS, 64, 131072)


def test_without_plugin_cli_exits_2_with_one_line():
    env = {**os.environ, "MANTILE_DISABLE_PLUGINS": "mantile-rope-yarn"}
    proc = subprocess.run([sys.executable, "-m", "mantile_core", "estimate", str(QWEN_YARN), "--hardware", "h100"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "mantile-rope-yarn" in lines[0]
    assert "Traceback" not in proc.stderr


def test_yarn_estimate_costs_the_same_as_plain_rope(yarn, tmp_path):
    model = mantile_core.load_model(QWEN_YARN)
    attention = [layer for layer in model.layers if layer.kind == "attention"]
    assert attention and all(layer.rope_type == "yarn" for layer in attention)
    h100 = mantile_core.get_hardware("h100")
    est = mantile_core.estimate(model, h100, tp=1, batch=2, input_len=1000, output_len=200).to_dict()
    # cos + sin tables: 2 x 131072 positions x 64 pairs x 4 bytes (float32, attention_factor folded in)
    assert est["memory"]["rope_table_bytes"] == 2 * 131072 * 64 * 4 == 67108864
    # the same model with plain RoPE: YaRN only changes inv_freq and the table values, not the cost
    plain = json.loads(QWEN_YARN.read_text())
    plain.pop("rope_scaling")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(plain))
    base = mantile_core.estimate(mantile_core.load_model(path), h100, tp=1, batch=2, input_len=1000,
                                 output_len=200).to_dict()
    assert est["memory"]["rope_table_bytes"] == base["memory"]["rope_table_bytes"]
    for ours, theirs in zip(est["layers"], base["layers"]):
        for phase in ("prefill", "decode"):
            assert ours[phase]["flops"] == theirs[phase]["flops"]
    assert est["ttft_ms"] == base["ttft_ms"] and est["tpot_ms"] == base["tpot_ms"]


def test_rope_flops_per_element_is_the_documented_three():
    from mantile_core.layers.attention import ROPE_FLOPS_PER_ELEMENT

    readme = (Path(yarn_plugin.__file__).parents[1] / "README.md")
    if not readme.is_file():
        pytest.skip("README not shipped with this installation")
    assert ROPE_FLOPS_PER_ELEMENT == 3
    assert "3 FLOPs per rotated element" in readme.read_text()


def test_plugin_import_does_not_import_torch():
    code = ("import sys, mantile_core, mantile_rope_yarn.plugin; "
            "mantile_core.rope_scaling({'rope_type': 'yarn', 'rope_theta': 1e4, 'factor': 4.0, "
            "'original_max_position_embeddings': 4096}, 64, 16384); "
            "import mantile_rope_yarn.reference, mantile_rope_yarn.validation; "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ---------------------------------------------------------------- torch reference


def _gpt_oss_tables(positions, dtype=None):
    torch = pytest.importorskip("torch")
    from mantile_rope_yarn.reference import rope_cos_sin

    r = mantile_core.rope_scaling(GPT_OSS, 64, 131072)
    cos, sin = rope_cos_sin(r.inv_freq, r.attention_factor, positions, dtype=dtype or torch.float32)
    return r, cos, sin


def test_rope_cos_sin_tables(yarn):
    torch = pytest.importorskip("torch")
    positions = [0, 1, 5, 4096, 131071]
    r, cos, sin = _gpt_oss_tables(positions, torch.float64)
    assert cos.shape == sin.shape == (5, 32) and cos.dtype == torch.float64
    af = 0.1 * math.log(32) + 1
    numpy.testing.assert_allclose(cos[0].numpy(), af, rtol=1e-15)
    numpy.testing.assert_allclose(sin[0].numpy(), 0.0, atol=0)
    numpy.testing.assert_allclose((cos ** 2 + sin ** 2).numpy(), af ** 2, rtol=1e-13)
    for row, p in enumerate(positions):
        for j in (0, 13, 31):
            assert cos[row, j].item() == pytest.approx(af * math.cos(p * r.inv_freq[j]), abs=1e-12)
            assert sin[row, j].item() == pytest.approx(af * math.sin(p * r.inv_freq[j]), abs=1e-12)
    _, cos32, _ = _gpt_oss_tables(torch.arange(3))
    assert cos32.dtype == torch.float32 and cos32.shape == (3, 32)


def test_apply_rotary_matches_float64_formula(yarn):
    torch = pytest.importorskip("torch")
    from mantile_rope_yarn.reference import apply_rotary

    positions = numpy.array([0, 3, 127, 4095, 65536])
    r, cos, sin = _gpt_oss_tables(positions)
    x = torch.randn(2, 8, 5, 64, generator=torch.Generator().manual_seed(3))
    got = apply_rotary(x, cos, sin)
    assert got.shape == x.shape and got.dtype == x.dtype
    xs = x.double().numpy()
    af = 0.1 * math.log(32) + 1
    for p_index, p in enumerate(positions):
        for j in range(32):
            c, s = af * math.cos(p * r.inv_freq[j]), af * math.sin(p * r.inv_freq[j])
            a, b = xs[:, :, p_index, j], xs[:, :, p_index, j + 32]
            numpy.testing.assert_allclose(got[:, :, p_index, j].double().numpy(), a * c - b * s, atol=2e-6)
            numpy.testing.assert_allclose(got[:, :, p_index, j + 32].double().numpy(), b * c + a * s, atol=2e-6)


def test_apply_rotary_partial_passes_the_rest_through(yarn):
    torch = pytest.importorskip("torch")
    from mantile_rope_yarn.reference import apply_rotary, rope_cos_sin

    rope = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "partial_rotary_factor": 0.5,
            "original_max_position_embeddings": 4096}
    r = mantile_core.rope_scaling(rope, 128, 16384)
    cos, sin = rope_cos_sin(r.inv_freq, r.attention_factor, range(7), dtype=torch.float64)
    x = torch.randn(1, 2, 7, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = apply_rotary(x, cos, sin)
    assert torch.equal(out[..., 64:], x[..., 64:])
    assert torch.allclose(out[..., :64], apply_rotary(x[..., :64], cos, sin))


def test_relative_position_property(yarn):
    torch = pytest.importorskip("torch")
    from mantile_rope_yarn.reference import apply_rotary, rope_cos_sin

    r = mantile_core.rope_scaling(GPT_OSS, 64, 131072)
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(1, 1, 1, 64, dtype=torch.float64, generator=gen)
    k = torch.randn(1, 1, 1, 64, dtype=torch.float64, generator=gen)

    def score(m, n):
        cq, sq = rope_cos_sin(r.inv_freq, r.attention_factor, [m], dtype=torch.float64)
        ck, sk = rope_cos_sin(r.inv_freq, r.attention_factor, [n], dtype=torch.float64)
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum().item()

    for m, n in ((0, 9), (9, 0), (200, 330), (4096, 4100)):
        for shift in (1, 77, 100000):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), rel=1e-9, abs=1e-9)


def test_reference_matches_transformers_gpt_oss(yarn):
    torch = pytest.importorskip("torch")
    gpt_oss = pytest.importorskip("transformers.models.gpt_oss.modeling_gpt_oss")
    from transformers import GptOssConfig

    from mantile_rope_yarn.reference import apply_rotary

    config = GptOssConfig(num_hidden_layers=2, rope_parameters=dict(GPT_OSS))
    rotary = gpt_oss.GptOssRotaryEmbedding(config)
    positions = torch.arange(40)[None]
    hf_cos, hf_sin = rotary(torch.zeros(1, 40, 64), positions)
    _, cos, sin = _gpt_oss_tables(range(40))
    numpy.testing.assert_allclose(cos.numpy(), hf_cos[0].numpy(), atol=2e-6)
    numpy.testing.assert_allclose(sin.numpy(), hf_sin[0].numpy(), atol=2e-6)
    gen = torch.Generator().manual_seed(6)
    q = torch.randn(1, 64, 40, 64, generator=gen)
    k = torch.randn(1, 8, 40, 64, generator=gen)
    hf_q, hf_k = gpt_oss.apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    # with transformers' own tables the rotation is bit-for-bit the same
    assert torch.equal(apply_rotary(q, hf_cos[0], hf_sin[0]), hf_q)
    assert torch.equal(apply_rotary(k, hf_cos[0], hf_sin[0]), hf_k)


def test_validation_cases_pass(yarn):
    pytest.importorskip("torch")
    from mantile_core.cli.validate_cmd import run_cases

    results = {r["name"]: r for r in run_cases("rope-yarn")}
    assert set(results) == {"rope-yarn-vs-transformers", "rope-yarn-rotation", "rope-yarn-relative-position"}
    for result in results.values():
        assert result["status"] in ("passed", "skipped"), result
    assert results["rope-yarn-rotation"]["status"] == "passed"
    assert results["rope-yarn-relative-position"]["status"] == "passed"
