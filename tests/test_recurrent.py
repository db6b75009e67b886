"""mantile-recurrent: Mamba-1 / Falcon-Mamba / Jamba, Mamba-2, Gated DeltaNet and the hybrid
layouts (Qwen3-Next, Qwen3.5 / 3.6, Nemotron-H / Nemotron-3).

Expected numbers are independent of Mantile: hand arithmetic written out below from the
published shapes, transformers 5.24's models built on the meta device (skipped without
torch / transformers), and ``tests/data/hf_collection/expected_totals.json`` (also
transformers' counts, written by benchmarks/hf_collection_totals.py). Config sources:
tests/data/recurrent/SOURCES.md and tests/data/hf_collection/SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

pytest.importorskip("mantile_recurrent")

import mantile_core  # noqa: E402
from mantile_core.errors import ConfigError, MissingPluginError, ParallelismError  # noqa: E402
from mantile_core.workload import Step  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
RECURRENT = DATA / "recurrent"
COLLECTION = DATA / "hf_collection"
FAMILIES = {"mamba", "falcon_mamba", "mamba2", "jamba", "qwen3_next", "qwen3_5", "qwen3_5_moe", "nemotron_h"}


def load(name: str):
    return mantile_core.load_model(RECURRENT / f"{name}.json")


def rows(model, **kwargs):
    return mantile_core.estimate(model, "h200", **kwargs).to_dict()


# --- totals --------------------------------------------------------------------------------
def test_qwen3_next_total_by_hand():
    """H=2048, 48 blocks (36 Gated DeltaNet + 12 gated attention), MoE on every block."""
    # DeltaNet: key width 16·128 = 2048, value width 32·128 = 4096
    qkvz = 2048 * (2 * 2048 + 2 * 4096)  # 25,165,824
    ba = 2048 * 2 * 32  # 131,072
    conv = (2 * 2048 + 4096) * 4  # 32,768 (no bias)
    deltanet = qkvz + ba + conv + 2 * 32 + 128 + 4096 * 2048  # + dt_bias, A_log, norm, out_proj
    assert deltanet == 33_718_464
    # attention: q_proj doubles for the output gate, 16 heads of 256; 2 KV heads; q/k norms
    attention = 2048 * 16 * 256 * 2 + 2 * 2048 * 2 * 256 + 16 * 256 * 2048 + 2 * 256
    assert attention == 27_263_488
    # MoE: router 512·2048, 512 experts of 3·2048·512, shared expert 3·2048·512 + its gate 2048
    moe = 512 * 2048 + 512 * 3 * 2048 * 512 + 3 * 2048 * 512 + 2048
    assert moe == 1_614_809_088
    total = 36 * deltanet + 12 * attention + 48 * moe + 48 * 2 * 2048 + 2048 + 2 * 151936 * 2048
    assert total == 79_674_391_296
    assert load("qwen3-next-80b-a3b").params() == total


def test_falcon_mamba_total_by_hand():
    """H=4096, I=8192, N=16, K=4, R=256, 64 blocks, untied; the B/C/Δ norms have no weights."""
    mixer = (2 * 8192 * 4096 + 8192 * 4 + 8192 + 8192 * (256 + 32) + 256 * 8192 + 8192 + 8192 * 16 + 8192
             + 8192 * 4096)
    assert mixer == 105_308_160
    total = 64 * mixer + 64 * 4096 + 4096 + 2 * 65024 * 4096
    assert total == 7_272_665_088
    assert load("falcon-mamba-7b").params() == total


def _collection():
    totals = json.loads((COLLECTION / "expected_totals.json").read_text())["configs"]
    # transformers' parameters + the buffers the checkpoint stores (Nemotron-H's
    # e_score_correction_bias), which Mantile counts as parameters
    return sorted((rec["file"], rec["text_params"] + sum((rec.get("checkpoint_buffers") or {}).values()))
                  for rec in totals.values() if rec["model_type"] in FAMILIES and rec.get("buildable"))


COLLECTED = _collection()


def test_the_collection_has_the_families():
    # Qwen3.5 x4, Qwen3.5/3.6 NVFP4 x4, Nemotron-3 Nano/Super/Ultra/3.5 x8, Nemotron-H-56B
    assert len(COLLECTED) == 17


@pytest.mark.parametrize("file, expected", COLLECTED, ids=[f for f, _ in COLLECTED])
def test_collection_totals_equal_transformers(file, expected):
    # decoded by Python's json, which takes the published ``time_step_limit: [0.0, Infinity]``
    # of three Nemotron-H files (the core's file reader refuses non-standard JSON constants)
    from mantile_core.model import Model, build_layers, read_model_config

    config = read_model_config(json.loads((COLLECTION / file).read_text()), name=file)
    assert Model(config, build_layers(config)).params() == expected


@pytest.mark.parametrize("name", ["qwen3-next-80b-a3b", "falcon-mamba-7b", "jamba-v0.1", "mamba-codestral-7b"])
def test_totals_equal_transformers_meta_device(name):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    raw = json.loads((RECURRENT / f"{name}.json").read_text())
    config_class = transformers.models.auto.configuration_auto.CONFIG_MAPPING[raw["model_type"]]
    config = config_class(**{k: v for k, v in raw.items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert load(name).params() == sum(p.numel() for p in model.parameters())


def test_bundled_by_name():
    expected = {"qwen3-next-80b-a3b": 79_674_391_296, "falcon-mamba-7b": 7_272_665_088, "jamba-v0.1": 51_570_323_328,
                "mamba-codestral-7b": 7_285_403_648, "qwen3.5-397b-a17b": 396_346_350_336,
                # transformers' parameters + the stored e_score_correction_bias (E per MoE layer:
                # 512 x 40, 128 x 23), which Mantile counts as parameters
                "nemotron-3-super": 120_668_687_360 + 20_480, "nemotron-3-nano": 31_577_937_344 + 2_944}
    assert {name: mantile_core.load_model(name).params() for name in expected} == expected


# --- layouts -------------------------------------------------------------------------------
def test_layouts():
    qwen = load("qwen3-next-80b-a3b")
    mixers = [layer.kind for layer in qwen.layers if layer.kind in ("attention", "linear_attention")]
    assert mixers == (["linear_attention"] * 3 + ["attention"]) * 12
    assert {layer.kind for layer in qwen.layers if layer.index == 0} == {"norm", "linear_attention", "moe"}
    jamba = load("jamba-v0.1")
    per_block = [tuple(layer.kind for layer in jamba.layers if layer.index == i and layer.kind != "norm")
                 for i in range(32)]
    # attention at i % 8 == 4, MoE at odd i
    assert per_block[:8] == [("mamba", "mlp"), ("mamba", "moe"), ("mamba", "mlp"), ("mamba", "moe"),
                             ("attention", "mlp"), ("mamba", "moe"), ("mamba", "mlp"), ("mamba", "moe")]
    assert sum(kinds[0] == "attention" for kinds in per_block) == 4
    nano = mantile_core.load_model("nemotron-3-nano")
    pattern = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"
    kinds = [layer.kind for layer in nano.layers if layer.index is not None and layer.kind != "norm"]
    assert kinds == [{"M": "mamba2", "E": "moe", "*": "attention"}[s] for s in pattern]


def test_nemotron_layers_block_type_gives_the_count():
    """Nemotron-3 Ultra's config gives the pattern as layers_block_type, no num_hidden_layers."""
    raw = json.loads((COLLECTION / "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16_config.json").read_text())
    assert "num_hidden_layers" not in raw and "hybrid_override_pattern" not in raw
    model = mantile_core.load_model(COLLECTION / "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16_config.json")
    assert model.config.num_layers == len(raw["layers_block_type"]) == 108


# --- memory: KV on attention layers only, fixed-size state on the recurrent ones -------------
def test_qwen3_next_memory_at_input_8191():
    """The issue's figure: input 8191 (+1 output: 8192 tokens at the end of the request)."""
    doc = rows(load("qwen3-next-80b-a3b"), tp=1, batch=1, input_len=8191, output_len=1)
    memory = doc["memory"]
    # 12 attention layers: K and V, 2 KV heads of 256, 8192 positions, bf16
    assert memory["kv_cache_bytes"] == 12 * 2 * 2 * 256 * 8192 * 2 == 201_326_592
    # 36 DeltaNet layers: conv (2·2048 + 4096)·3 bf16 + delta state 32·128·128 bf16
    per_layer = (2 * 2048 + 4096) * 3 * 2 + 32 * 128 * 128 * 2
    assert per_layer == 49_152 + 1_048_576 == 1_097_728
    assert memory["recurrent_state_bytes"] == 36 * per_layer == 39_518_208
    assert memory["recurrent_state_bytes_per_sequence"] == 39_518_208
    layers = doc["layers"]
    attention = [r for r in layers if r["kind"] == "attention"]
    linear = [r for r in layers if r["kind"] == "linear_attention"]
    assert (len(attention), len(linear)) == (12, 36)
    assert {r["prefill"]["kv_cache_bytes"] for r in attention} == {2 * 2 * 256 * 8191 * 2}
    assert {r["prefill"]["recurrent_state_bytes"] for r in attention} == {0}
    assert {r["prefill"]["kv_cache_bytes"] for r in linear} == {0}
    assert {r["prefill"]["recurrent_state_bytes"] for r in linear} == {per_layer}
    room = memory["capacity_bytes"] - memory["weight_bytes"] - memory["activation_bytes"] - memory["rope_table_bytes"]
    assert memory["max_batch"] == max(room // (201_326_592 + 39_518_208), 0)
    assert memory["total_bytes"] == (memory["weight_bytes"] + 201_326_592 + 39_518_208 + memory["activation_bytes"]
                                     + memory["rope_table_bytes"])


def test_state_is_fixed_and_max_batch_follows():
    model = load("qwen3-next-80b-a3b")
    short = mantile_core.estimate(model, "h200", tp=4, batch=8, input_len=1000, output_len=24).memory
    long = mantile_core.estimate(model, "h200", tp=4, batch=8, input_len=100_000, output_len=24).memory
    # tp=4: 8 value heads per device; conv (2·512 + 1024)·3 bf16, state 8·128·128 bf16
    per_layer = 2048 * 3 * 2 + 8 * 128 * 128 * 2
    assert short["recurrent_state_bytes"] == long["recurrent_state_bytes"] == 8 * 36 * per_layer
    # KV: 8 sequences, 12 layers, K and V of one KV head (2 heads over tp=4: replicated), 256, bf16
    assert short["kv_cache_bytes"] == 8 * 12 * 2 * 256 * 1024 * 2
    assert long["kv_cache_bytes"] == 8 * 12 * 2 * 256 * 100_024 * 2
    assert long["max_batch"] < short["max_batch"]


def test_declared_state_dtypes():
    """Qwen3.5 declares mamba_ssm_dtype float32, Nemotron-H mamba_ssm_cache_dtype float32: the
    SSM / delta state is float32, the conv state stays bf16."""
    qwen = mantile_core.load_model("qwen3.5-397b-a17b")
    deltanet = next(layer for layer in qwen.layers if layer.kind == "linear_attention")
    conv = (2 * 16 * 128 + 64 * 128) * 3 * 2  # bf16
    assert deltanet.cost(Step(batch=1, new_tokens=1, cached=9)).recurrent_state_bytes == conv + 64 * 128 * 128 * 4
    nano = mantile_core.load_model("nemotron-3-nano")
    mamba = next(layer for layer in nano.layers if layer.kind == "mamba2")
    # 64 heads of 64, 8 groups of state 128: conv (4096 + 2·8·128)·3 bf16; SSM 64·64·128 fp32
    assert mamba.cost(Step(batch=2, new_tokens=1, cached=9)).recurrent_state_bytes == 2 * ((4096 + 2048) * 3 * 2
                                                                                            + 64 * 64 * 128 * 4)


def test_falcon_mamba_state_and_no_kv():
    memory = mantile_core.estimate(load("falcon-mamba-7b"), "h200", batch=4, input_len=4096, output_len=64).memory
    assert memory["kv_cache_bytes"] == 0
    assert memory["recurrent_state_bytes"] == 4 * 64 * (8192 * 3 * 2 + 8192 * 16 * 2)


# --- FLOPs by hand --------------------------------------------------------------------------
def test_deltanet_flops_by_hand():
    layer = next(layer for layer in load("qwen3-next-80b-a3b").layers if layer.kind == "linear_attention")
    projections = 2 * 2048 * (2 * 2048 + 2 * 4096 + 2 * 32) + 2 * 4096 * 2048
    assert projections == 67_371_008
    decode = layer.cost(Step(batch=3, new_tokens=1, cached=500))
    assert decode.matmul_flops == 3 * projections  # the recurrent update is elementwise
    assert decode.kv_read_bytes == decode.recurrent_state_bytes == 3 * 1_097_728
    prefill = layer.cost(Step(batch=1, new_tokens=100, cached=0))
    # chunks of 64 and 36: ΣL² = 4096 + 1296; per head (6·128 + 4·128)·ΣL² + 6·128·128·100
    scan = 32 * ((6 * 128 + 4 * 128) * (4096 + 1296) + 6 * 128 * 128 * 100)
    assert scan == 535_429_120
    assert prefill.matmul_flops == 100 * projections + scan
    assert prefill.kv_read_bytes == 0


def test_mamba2_flops_by_hand():
    layer = next(layer for layer in load("mamba-codestral-7b").layers if layer.kind == "mamba2")
    # in_proj 4096 → 2·8192 + 2·8·128 + 128, out_proj 8192 → 4096
    projections = 2 * 4096 * (16384 + 2048 + 128) + 2 * 8192 * 4096
    prefill = layer.cost(Step(batch=2, new_tokens=300, cached=0))
    # chunks of 256 and 44: ΣL² = 65536 + 1936; CB per group 2·128·ΣL²; per head 2·64·ΣL² + 4·128·64·300
    squares = 65536 + 1936
    scan = 8 * 2 * 128 * squares + 128 * (2 * 64 * squares + 4 * 128 * 64 * 300)
    assert scan == 2_501_935_104
    assert prefill.matmul_flops == 2 * (300 * projections + scan)
    decode = layer.cost(Step(batch=2, new_tokens=1, cached=300))
    assert decode.matmul_flops == 2 * projections


def test_jamba_mamba_norms_and_attention_without_rope():
    jamba = load("jamba-v0.1")
    mamba = next(layer for layer in jamba.layers if layer.kind == "mamba")
    # I = 2·4096, N 16, K 4, R 256, conv bias, no projection bias; B/C/Δ norms 256 + 2·16
    assert mamba.params() == (2 * 8192 * 4096 + 8192 * 4 + 8192 + 8192 * 288 + 256 * 8192 + 8192 + 8192 * 16 + 8192
                              + 8192 * 4096 + 288)
    attention = next(layer for layer in jamba.layers if layer.kind == "attention")
    assert attention.rotary_dim == 0 and attention.rope_table_bytes() == 0


def test_vectorised_costs_equal_scalar_ones():
    for name, kind in (("qwen3-next-80b-a3b", "linear_attention"), ("mamba-codestral-7b", "mamba2"),
                       ("falcon-mamba-7b", "mamba")):
        layer = next(layer for layer in load(name).layers if layer.kind == kind)
        batch, new, cached = numpy.array([1, 2, 4]), numpy.array([1, 300, 65]), numpy.array([7, 0, 10])
        vector = layer.cost(Step(batch=batch, new_tokens=new, cached=cached, tp=numpy.array([1, 2, 1])))
        for i, tp in enumerate((1, 2, 1)):
            scalar = layer.cost(Step(batch=int(batch[i]), new_tokens=int(new[i]), cached=int(cached[i]), tp=tp))
            for field in ("flops", "matmul_flops", "recurrent_state_bytes", "kv_read_bytes", "activation_bytes"):
                assert int(getattr(vector, field)[i]) == int(getattr(scalar, field)), (name, field, i)


def test_sweep_reports_the_state():
    from mantile_core.sweep import sweep

    table = sweep("falcon-mamba-7b", "h200", tp=[1], batch=[1, 4], input_len=[1024], output_len=[128]).table
    assert list(table["recurrent_state_bytes"]) == [64 * 311_296, 4 * 64 * 311_296]


# --- errors -----------------------------------------------------------------------------------
def test_parallelism_errors():
    with pytest.raises(ParallelismError, match="linear_num_key_heads=16"):
        mantile_core.estimate("qwen3-next-80b-a3b", "h200", tp=32)
    with pytest.raises(ParallelismError, match="n_groups=8"):
        mantile_core.estimate("mamba-codestral-7b", "h200", tp=16)


def _broken(tmp_path, source: Path, **changes):
    raw = json.loads(source.read_text())
    raw.pop("time_step_limit", None)  # [0.0, Infinity] in Nemotron-3 Super: not standard JSON
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_reader_errors(tmp_path):
    super_config = COLLECTION / "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8_config.json"
    with pytest.raises(ConfigError, match="num_hidden_layers=87 disagrees with the 88 blocks"):
        mantile_core.load_model(_broken(tmp_path, super_config, num_hidden_layers=87))
    with pytest.raises(ConfigError, match="unknown block symbols \\['X'\\]"):
        mantile_core.load_model(_broken(tmp_path, super_config, hybrid_override_pattern="MEX"))
    with pytest.raises(ConfigError, match="'hybrid_override_pattern' \\(or 'layers_block_type'\\) is missing"):
        mantile_core.load_model(_broken(tmp_path, super_config, hybrid_override_pattern=None))
    with pytest.raises(ConfigError, match="num_heads·head_dim = 8320 must equal expand·hidden_size = 8192"):
        mantile_core.load_model(_broken(tmp_path, RECURRENT / "mamba-codestral-7b.json", num_heads=130))
    with pytest.raises(ConfigError, match="attn_layer_offset=8 must be smaller than attn_layer_period=8"):
        mantile_core.load_model(_broken(tmp_path, RECURRENT / "jamba-v0.1.json", attn_layer_offset=8))
    with pytest.raises(ConfigError, match="'linear_num_key_heads'"):
        mantile_core.load_model(_broken(tmp_path, RECURRENT / "qwen3-next-80b-a3b.json", linear_num_key_heads=None))


def test_without_the_plugin_the_error_names_it(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="mantile-recurrent"):
        mantile_core.load_model(RECURRENT / "qwen3-next-80b-a3b.json")


def test_the_example_and_the_plugin_conflict_clearly(mantile_plugins):
    pytest.importorskip("mantile_mamba")
    from mantile_core.errors import PluginConflictError
    from mantile_mamba import plugin as example
    from mantile_recurrent import plugin as real

    pm = mantile_plugins(real, distribution="mantile-recurrent")
    pm.register_plugin(example, "mantile_mamba.plugin", "mantile-mamba")
    with pytest.raises(PluginConflictError, match="mantile-mamba.*mantile-recurrent.*MANTILE_DISABLE_PLUGINS"):
        mantile_core.load_model(Path(__file__).resolve().parent.parent / "examples" / "mamba_mixer" / "config.json")


# --- torch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["mamba1-scan", "mamba1-flops", "mamba2-scan", "mamba2-flops", "deltanet-scan",
                                  "deltanet-flops"])
def test_validation_cases(case):
    pytest.importorskip("torch")
    from mantile_recurrent.validation import VALIDATION_CASES

    outcome = next(c for c in VALIDATION_CASES if c.name == f"recurrent-{case}").run()
    assert outcome.passed, outcome.detail


@pytest.mark.parametrize("case", ["mamba1-transformers", "mamba2-transformers", "deltanet-transformers"])
def test_reference_equals_transformers(case):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mantile_recurrent.validation import VALIDATION_CASES

    outcome = next(c for c in VALIDATION_CASES if c.name == f"recurrent-{case}").run()
    assert outcome.passed, outcome.detail


# --- weight bytes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["qwen3-next-80b-a3b", "falcon-mamba-7b", "jamba-v0.1", "mamba-codestral-7b",
                                  "qwen3.5-397b-a17b"])
def test_bf16_weight_bytes_are_two_per_parameter(name):
    model = mantile_core.load_model(name)
    assert model.weight_bytes() == 2 * model.params()


def test_nemotron_router_is_float32():
    """transformers builds Nemotron-H's router in float32 and keeps e_score_correction_bias (a
    stored buffer, one float32 per expert, counted among the parameters) beside it: 2 more
    bytes per router element and per bias value than bf16."""
    model = mantile_core.load_model("nemotron-3-nano")
    moe_layers = "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME".count("E")
    assert moe_layers == 23
    assert model.buffer_params() == moe_layers * 128
    assert model.weight_bytes() == 2 * model.params() + moe_layers * (128 * 2688 * 2 + 128 * 2)


def test_block_scaled_fp8_counts_a_scale_per_tile():
    """fp8 with one float32 scale per 128×128 tile of each matrix (Qwen3-Next-FP8's layout):
    the fused in_proj_qkvz (12288 × 2048), in_proj_ba (64 × 2048) and out_proj (2048 × 4096)."""
    from mantile_core.dtypes import block_scaled, get_dtype
    from mantile_recurrent.deltanet import GatedDeltaNet

    layer = GatedDeltaNet(hidden=2048, key_heads=16, value_heads=32, key_dim=128, value_dim=128, conv_kernel=4,
                          weight_dtype=block_scaled("fp8", (128, 128)), dtype=get_dtype("bf16"), fused_inputs=True)
    matrices = (12288 * 2048 + 96 * 16 * 4) + (64 * 2048 + 1 * 16 * 4) + (2048 * 4096 + 16 * 32 * 4)
    small = 2 * ((2 * 2048 + 4096) * 4 + 2 * 32 + 128)
    assert layer.weight_bytes() == matrices + small == 33_759_680
    assert layer.cost(Step(batch=1, new_tokens=1, cached=0)).resident_weight_bytes == 33_759_680


def test_nemotron_moe_refuses_attention_data_parallelism():
    with pytest.raises(ParallelismError, match="'dp' must be 1 for Nemotron-H's MoE"):
        mantile_core.estimate("nemotron-3-nano", "h200", tp=2, ep=2, dp=2)


@pytest.mark.parametrize("name,change", [
    ("qwen3-next-80b-a3b", {"num_hidden_layers": 10**30}),
    ("mamba-codestral-7b", {"num_hidden_layers": 2**24}),
    ("falcon-mamba-7b", {"num_hidden_layers": 10_001}),
])
def test_layer_counts_are_bounded(name, change):
    # found by the long fuzz profile: 10**30 layers built a Python list until the process was
    # OOM-killed; every family now refuses more than the core's MAX_LAYERS (10,000) in one line
    from mantile_core.model import read_model_config

    raw = {**json.loads((RECURRENT / f"{name}.json").read_text()), **change}
    raw.pop("layer_types", None)
    with pytest.raises(ConfigError, match=r"'num_hidden_layers' must be an integer in \[1, 10000\]"):
        read_model_config(raw, name=name)


def test_block_patterns_are_bounded():
    from mantile_core.model import read_model_config

    raw = json.loads((COLLECTION / "nvidia--NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16_config.json").read_text())
    raw = {k: v for k, v in raw.items() if k != "num_hidden_layers"}
    raw["layers_block_type"] = ["mamba"] * 10_001
    with pytest.raises(ConfigError, match=r"layers_block_type gives 10001 blocks \(at most 10,000 layers\)"):
        read_model_config(raw, name="nemotron")


def test_nemotron_moe_pays_the_routed_block_cost_like_the_core_moe():
    # timing's moe_overhead is per routed-expert block: one per MoE layer, as the core MoE sets it
    model = mantile_core.load_model("nemotron-3-nano")
    moes = [layer for layer in model.layers if layer.kind == "moe"]
    assert moes and all(layer.cost(Step(batch=4, new_tokens=1, cached=10)).moe_calls == 1 for layer in moes)
    core_moe = mantile_core.load_model("qwen3-30b-a3b").layers
    assert {layer.cost(Step(batch=4, new_tokens=1, cached=10)).moe_calls for layer in core_moe if layer.kind == "moe"} == {1}
