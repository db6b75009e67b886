"""Kernel-level timing terms fitted on measured kernels (attention per-call and per-(sequence, KV
head) cost, KV streaming efficiency, prompt attention's cost per query row, the expert GEMMs' own
falloff, weight streaming and per-call cost), how kernels.toml feeds the calibration, and the
uncertainty bands; expectations written out by hand on toy hardware."""

from __future__ import annotations

from types import SimpleNamespace

import attrs
import pytest

import mantile_core
from mantile_core.engines import get_engine
from mantile_core.hardware import Calibration, HardwareSpec, kernel_calibration
from mantile_core.timing import layer_seconds
from mantile_core.uncertainty import band_fraction, bands
from mantile_core.workload import LayerCost, Step

CAL = Calibration(gemm_efficiency=0.5, gemm_half_rows=16.0, mixed_gemm_efficiency=0.5, attention_efficiency=0.25,
                  memory_efficiency=0.8, kv_memory_efficiency=0.5, attention_overhead=7e-6,
                  attention_sequence_overhead=2e-8, kernel_overhead=2e-6, activation_compute="bf16")
TOY = HardwareSpec(name="toy", description="toy", peak_flops={"bf16": 1e15, "fp8": 2e15, "fp4": 4e15, "fp32": 1e13},
                   hbm_bytes=10**11, hbm_bandwidth=1e12, link_bandwidth=1e11, link_latency=9e-6, calibration=CAL)
ONE = SimpleNamespace(tp=1, dp=1)


def _benchmark(name: str):
    """A script module of benchmarks/ (kernel_fit, crossval), imported from the checkout."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module(name)


def test_decode_attention_kernel_fixed_and_per_sequence_cost():
    # 256 sequences x 8 KV heads, 1e8 KV bytes read at 0.5 of 1 TB/s = 200 us; memory-bound
    cost = LayerCost(flops=1e6, matmul_flops=1e6, attention_flops=1e6, kv_read_bytes=1e8, kernels=1,
                     attention_sequences=256 * 8)
    memory = 1e8 / 0.5e12
    fixed = 2e-6 + 7e-6 + 2048 * 2e-8  # kernel + attention call + 2048 pairs x 20 ns = 49.96 us
    assert layer_seconds(cost, ONE, TOY) == pytest.approx(memory + fixed)


def test_layers_without_attention_pay_no_attention_cost():
    cost = LayerCost(flops=2e9, matmul_flops=2e9, weight_bytes=2e6, kernels=1)
    # GEMM: M = 2e9 / (2 * 1e6 elements) = 1000 rows; compute (2e9 + 2*16*1e6) / 5e14 = 4.064 us;
    # memory 2e6 / 8e11 = 2.5 us
    assert layer_seconds(cost, ONE, TOY) == pytest.approx(4.064e-6 + 2e-6)


def test_weights_and_kv_stream_at_their_own_efficiencies():
    cost = LayerCost(weight_bytes=8e6, kv_read_bytes=5e6, activation_bytes=0)
    assert layer_seconds(cost, ONE, TOY) == pytest.approx(8e6 / 0.8e12 + 5e6 / 0.5e12)
    unset = attrs.evolve(TOY, calibration=attrs.evolve(CAL, kv_memory_efficiency=None))
    assert layer_seconds(cost, ONE, unset) == pytest.approx(13e6 / 0.8e12)  # falls back to memory_efficiency


def test_expert_gemms_use_their_own_falloff():
    # fp4 weights (4.25 bits) against bf16 activations: the mixed path at 1e15 * 0.5 * 0.5 = 2.5e14;
    # 1e6 weight elements = 531,250 bytes; M = 4 rows: 8e6 FLOPs
    cost = LayerCost(flops=8e6, matmul_flops=8e6, weight_bytes=531_250, gemm_dtype="fp4")
    memory = 531_250 / 0.8e12
    for half_rows, expected_rows in ((None, 16.0), (64.0, 64.0)):
        hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, mixed_gemm_half_rows=half_rows))
        compute = (8e6 + 2 * expected_rows * 1e6) / 2.5e14
        assert layer_seconds(cost, ONE, hw) == pytest.approx(max(compute, memory))
    # a dense bf16 GEMM ignores mixed_gemm_half_rows
    dense = LayerCost(flops=8e6, matmul_flops=8e6, weight_bytes=2e6)
    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, mixed_gemm_half_rows=64.0))
    assert layer_seconds(dense, ONE, hw) == pytest.approx(max((8e6 + 32e6) / 5e14, 2e6 / 0.8e12))


def test_prompt_attention_pays_per_query_row():
    # a causal 1024-token prompt of 4 heads x head_dim 128, one sequence: 4 dh h s(s+1)/2
    # = 4*128*4*524,800 = 1,074,790,400 FLOPs at 0.25 of 1e15 = 4.299 us;
    # 4096 rows x 0.5 ns = 2.048 us; fixed: kernel 2 us + attention call 7 us + 4 pairs x 20 ns
    flops = 4 * 128 * 4 * 1024 * 1025 // 2
    cost = LayerCost(flops=flops, matmul_flops=flops, attention_flops=flops, kernels=1, attention_sequences=4,
                     attention_rows=1024 * 4)
    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, attention_row_overhead=5e-10))
    expected = 1_074_790_400 / 2.5e14 + 4096 * 5e-10 + 2e-6 + 7e-6 + 4 * 2e-8
    assert layer_seconds(cost, ONE, hw) == pytest.approx(expected)
    assert layer_seconds(cost, ONE, TOY) == pytest.approx(expected - 4096 * 5e-10)  # default: no row cost


def test_attention_rows_only_in_prompt_steps():
    model = mantile_core.load_model("llama-3.1-8b")  # 32 heads, 8 KV heads
    attention = next(layer for layer, _ in model.unique_layers if layer.kind == "attention")
    prompt = attention.cost(Step(batch=3, new_tokens=512, cached=0, tp=2, policies={"causal": _full()}))
    assert prompt.attention_rows == 3 * 512 * 16  # tokens x local query heads (32 / 2)
    decode = attention.cost(Step(batch=3, new_tokens=1, cached=512, tp=2, policies={"causal": _full()}))
    assert decode.attention_rows == 0  # a decode kernel pays per (sequence, KV head) instead


def test_expert_weights_stream_at_their_own_efficiency_and_moe_pays_its_call():
    # 1e6 fp4 weight elements = 531,250 bytes read at 0.25 of 1 TB/s = 2.125 us; M = 1 row: compute
    # (2e6 + 2*16*1e6) / 2.5e14 = 0.136 us; fixed: 5 kernels x 2 us + one MoE call 30 us
    cost = LayerCost(flops=2e6, matmul_flops=2e6, weight_bytes=531_250, gemm_dtype="fp4", kernels=5, moe_calls=1)
    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, mixed_memory_efficiency=0.25, moe_overhead=3e-5))
    assert layer_seconds(cost, ONE, hw) == pytest.approx(531_250 / 0.25e12 + 5 * 2e-6 + 3e-5)
    # unset: weights at memory_efficiency (0.8), no MoE call cost
    assert layer_seconds(cost, ONE, TOY) == pytest.approx(531_250 / 0.8e12 + 5 * 2e-6)
    # bf16 weights are not narrower than the activations: memory_efficiency applies
    dense = LayerCost(weight_bytes=2e6, kernels=1)
    assert layer_seconds(dense, ONE, hw) == pytest.approx(2e6 / 0.8e12 + 2e-6)


def test_moe_layer_counts_one_call():
    model = mantile_core.load_model("qwen3-30b-a3b")
    moe = next(layer for layer, _ in model.unique_layers if layer.kind == "moe")
    assert moe.cost(Step(batch=8, new_tokens=1, cached=0)).moe_calls == 1
    mlp_free = [layer for layer, _ in model.unique_layers if layer.kind != "moe"]
    assert all(layer.cost(Step(batch=8, new_tokens=1, cached=0, policies={"causal": _full()})).moe_calls == 0
               for layer in mlp_free)


def test_skipped_kernel_figures_stay_out_of_a_serving_calibrated_gpu():
    # hardware.toml skips the tables' MoE figures for the GPUs whose serving runs used another MoE kernel
    for gpu in ("h100", "h200", "b200"):
        assert kernel_calibration(gpu, "vllm")["moe_overhead"] > 0
        for engine in ("vllm", "trtllm"):
            cal = get_engine(engine).calibrated(mantile_core.get_hardware(gpu)).calibration
            assert cal.moe_overhead == 0.0 and cal.mixed_memory_efficiency is None, (gpu, engine)
    # a GPU without serving data takes them
    assert mantile_core.get_hardware("b300").calibration.moe_overhead == kernel_calibration("b300", "vllm")["moe_overhead"]


def test_attention_layer_counts_sequence_kv_head_pairs():
    model = mantile_core.load_model("llama-3.1-8b")  # 32 heads, 8 KV heads
    attention = next(layer for layer, _ in model.unique_layers if layer.kind == "attention")
    for tp, local_kv in ((1, 8), (2, 4), (8, 1)):
        cost = attention.cost(Step(batch=64, new_tokens=1, cached=100, tp=tp, policies={"causal": _full()}))
        assert cost.attention_sequences == 64 * local_kv


def _full():
    from mantile_core.plugins import get_plugin_manager

    return get_plugin_manager().registries.cache_policies["causal"]


def test_kernel_figures_feed_gpus_without_serving_calibration():
    a100 = mantile_core.get_hardware("a100")
    figures = kernel_calibration("a100", "vllm")
    assert figures, "kernels.toml covers the A100"
    for name, value in figures.items():
        assert getattr(a100.calibration, name) == value
    # every fitted efficiency is a fraction of a peak, every fixed cost positive and under 20 us
    for gpu in ("a100", "l40s", "b300", "gb300", "h100", "h200", "b200"):
        cal = kernel_calibration(gpu, "vllm")
        for name in ("gemm_efficiency", "memory_efficiency", "kv_memory_efficiency", "attention_efficiency"):
            assert 0 < cal[name] <= 1, (gpu, name)
        for name in ("kernel_overhead", "attention_overhead", "allreduce_latency"):
            assert 0 <= cal[name] < 2e-5, (gpu, name)


def test_serving_calibrated_figures_win_over_kernel_tables():
    h200 = mantile_core.get_hardware("h200")
    assert h200.calibration.memory_efficiency != kernel_calibration("h200", "vllm")["memory_efficiency"]
    assert h200.calibration.attention_sequence_overhead == kernel_calibration("h200", "vllm")["attention_sequence_overhead"]
    b200 = mantile_core.get_hardware("b200")
    trt = get_engine("trtllm").calibrated(b200)
    assert trt.calibration.memory_efficiency == b200.calibration.memory_efficiency  # stated in hardware.toml
    assert trt.calibration.attention_overhead == kernel_calibration("b200", "trtllm")["attention_overhead"]


def test_uncertainty_band_is_the_worst_error_of_the_regimes():
    from mantile_core.uncertainty import _table

    table = _table()
    h200 = table["h200"]
    f = band_fraction("h200", "tpot_ms", input_len=900, output_len=7000, batch=128, tp=8)
    expected = max(h200[r]["tpot_ms"] for r in ("length 1k/8k", "concurrency high", "tp high")) / 100
    assert f == pytest.approx(expected)
    out = bands("h200", {"tpot_ms": 10.0}, input_len=900, output_len=7000, batch=128, tp=8)
    assert out["tpot_ms_band"] == pytest.approx([10.0 * (1 - expected), 10.0 * (1 + expected)])
    # a GPU with no serving rows gets the no-serving-data error
    assert band_fraction("a100", "ttft_ms", input_len=1024, output_len=1024, batch=1, tp=1) == pytest.approx(
        table["no_serving_data"]["all"]["ttft_ms"] / 100)


def test_estimate_json_carries_the_bands():
    doc = mantile_core.estimate("llama-3.1-8b", "h200", tp=2, batch=64).to_dict()
    for key in ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu"):
        lo, hi = doc[f"{key}_band"]
        assert lo <= doc[key] <= hi and lo < hi


def test_engine_default_figures_fill_only_what_a_gpu_does_not_state():
    from mantile_core.engines import EngineProfile

    engine = EngineProfile(name="toy-engine", calibration={"default": {"request_overhead": 0.5, "step_overhead": 7e-4}})
    h100 = mantile_core.get_hardware("h100")  # hardware.toml states request_overhead, not step_overhead
    assert "request_overhead" in h100.calibrated and "step_overhead" not in h100.calibrated
    cal = engine.calibrated(h100).calibration
    assert cal.request_overhead == h100.calibration.request_overhead
    assert cal.step_overhead == 7e-4
    a100 = mantile_core.get_hardware("a100")  # no serving calibration: both defaults apply
    cal = engine.calibrated(a100).calibration
    assert (cal.request_overhead, cal.step_overhead) == (0.5, 7e-4)
    # a per-GPU entry still wins over everything
    engine = EngineProfile(name="toy-engine", calibration={"default": {"step_overhead": 7e-4},
                                                           "h100": {"step_overhead": 1e-3, "request_overhead": 0.1}})
    cal = engine.calibrated(h100).calibration
    assert (cal.request_overhead, cal.step_overhead) == (0.1, 1e-3)


def test_allreduce_table_sizes_are_elements_of_their_dtype():
    # aiconfigurator-core's all-reduce collector reduces a tensor of message_size elements:
    # 2**20 bf16 elements over 8 GPUs move 2 MiB, the same time Mantile gives a 2 MiB payload
    pandas = pytest.importorskip("pandas")
    from mantile_core.timing import allreduce_seconds

    kernel_fit = _benchmark("kernel_fit")

    df = pandas.DataFrame({"num_gpus": [8, 8], "message_size": [2**20, 2**20], "allreduce_dtype": ["bfloat16", "float32"]})
    got = kernel_fit.allreduce_predict(df, TOY)
    assert got[0] == pytest.approx(CAL.kernel_overhead + allreduce_seconds(2 * 2**20, 1, 8, TOY))
    assert got[1] == pytest.approx(CAL.kernel_overhead + allreduce_seconds(4 * 2**20, 1, 8, TOY))


def test_narrow_experts_run_their_gemms_slower():
    # 1e12 GEMM FLOPs at 0.5 of 1e15 = 2 ms; an expert 360 columns wide per device with a
    # half-rate width of 120 runs at 360 / 480 of that rate: 2 ms x 480 / 360 = 2.6667 ms;
    # a layer without routed experts (width 0), or a calibration with the falloff off, keeps 2 ms
    cal = attrs.evolve(CAL, gemm_half_rows=0.0, kernel_overhead=0.0, expert_half_width=120.0)
    hw = attrs.evolve(TOY, calibration=cal)
    moe = LayerCost(flops=10**12, matmul_flops=10**12, weight_bytes=10**6, expert_width=360)
    assert layer_seconds(moe, ONE, hw) == pytest.approx(2e-3 * 480 / 360)
    assert layer_seconds(attrs.evolve(moe, expert_width=0), ONE, hw) == pytest.approx(2e-3)
    off = attrs.evolve(TOY, calibration=attrs.evolve(cal, expert_half_width=0.0))
    assert layer_seconds(moe, ONE, off) == pytest.approx(2e-3)
    # the core MoE layer reports its per-device expert width: intermediate / (tp / ep)
    model = mantile_core.load_model("mixtral-8x7b")  # 14336-wide experts
    layer = next(layer for layer, _ in model.unique_layers if layer.kind == "moe")
    for tp, ep, width in ((1, 1, 14336), (8, 1, 1792), (8, 8, 14336), (8, 2, 3584)):
        assert layer.cost(Step(batch=4, new_tokens=1, cached=0, tp=tp, ep=ep, policies={"causal": _full()})).expert_width == width


def test_a_calibrated_schedule_lag_replaces_the_engine_profiles():
    from mantile_core.serving import ASYNC_SCHEDULING_LAG, schedule_lag

    vllm = get_engine("vllm")
    assert schedule_lag(Calibration(), vllm) == vllm.schedule_lag_steps
    assert schedule_lag(Calibration(), None) == ASYNC_SCHEDULING_LAG
    assert schedule_lag(Calibration(schedule_lag_steps=2.25), vllm) == 2.25
    # one more step of lag adds one step to a request's TTFT (the mean step a decoding request
    # sees: its TPOT); the longer request arrives a little less often, so the step, and the
    # TPOT, can only shrink, by the arrivals' share (here 2e-5)
    model = mantile_core.load_model("llama-3.1-8b")
    h100 = mantile_core.get_hardware("h100")
    base = mantile_core.estimate(model, attrs.evolve(h100, calibration=attrs.evolve(h100.calibration, schedule_lag_steps=1.0)),
                                 batch=1, input_len=256, output_len=64, engine="vllm")
    more = mantile_core.estimate(model, attrs.evolve(h100, calibration=attrs.evolve(h100.calibration, schedule_lag_steps=2.0)),
                                 batch=1, input_len=256, output_len=64, engine="vllm")
    assert base.serving.tpot_s * (1 - 1e-4) < more.serving.tpot_s <= base.serving.tpot_s
    assert more.serving.ttft_s - base.serving.ttft_s == pytest.approx(base.serving.tpot_s, rel=1e-4)


def test_a_table_shape_is_costed_as_that_shape_under_balanced_routing():
    # aiconfigurator times Hopper's Marlin MoE only at hidden 3584, expert width 3072, 896
    # experts, top-16; the fit costs those rows with GPT-OSS's MoE at that shape. Balanced
    # routing: 1 token touches its 16 experts, 64 tokens (1024 assignments) touch all 896
    for plugin in ("mantile_gpt_oss_attention", "mantile_rope_yarn", "mantile_swa_cache"):  # GPT-OSS's layers
        pytest.importorskip(plugin)
    kernel_fit = _benchmark("kernel_fit")
    model = kernel_fit.shaped_moe_model(3584, 3072, 896, 16)
    layer = next(layer for layer, _ in model.unique_layers if layer.kind == "moe")
    assert (layer.hidden, layer.experts, layer.top_k) == (3584, 896, 16)
    rows = {"num_tokens": [1, 64, 64], "moe_tp_size": [1, 1, 4], "moe_ep_size": [1, 1, 1]}  # a table's columns
    costs = kernel_fit.moe_costs(rows, model)
    # an expert: gate/up (3584 x 6144) and down (3072 x 3584) in MXFP4 at 4.25 bits, plus bf16
    # biases (6144 + 3584): 17,566,720 bytes; the router (3584 x 896 and its bias, bf16): 6,424,320
    expert, router = 3 * 3072 * 3584 * 4.25 / 8 + (6144 + 3584) * 2, (3584 * 896 + 896) * 2
    assert costs.weight_bytes[0] == pytest.approx(router + 16 * expert)
    assert costs.weight_bytes[1] == pytest.approx(router + 896 * expert)
    # 3072 columns per expert at TP 1, a quarter of them at TP 4
    assert list(costs.expert_width) == [3072, 3072, 768]
    # one token: 2 FLOPs x (3 x 3072 x 3584 per expert x 16 experts + the router's 3584 x 896)
    assert costs.matmul_flops[0] == pytest.approx(2 * (16 * 3 * 3072 * 3584 + 3584 * 896))


def test_kernel_fit_starts_from_the_datasheet_not_from_its_previous_output():
    # kernels.toml is kernel_fit's own output: a figure no stage of a fit sets (TensorRT-LLM's
    # H100 MoE table has too few TP sizes for expert_half_width) must not come from the last run
    kernel_fit = _benchmark("kernel_fit")
    from mantile_core.hardware import REFERENCE_ENGINE

    h100 = mantile_core.get_hardware("h100")
    start = kernel_fit._hw("h100", {}, "trtllm").calibration
    fitted = (set(kernel_calibration("h100", REFERENCE_ENGINE)) | set(kernel_calibration("h100", "trtllm"))) - h100.calibrated
    assert "expert_half_width" in fitted and h100.calibration.expert_half_width != Calibration().expert_half_width
    for name in fitted:
        assert getattr(start, name) == getattr(Calibration(), name), name
    # what hardware.toml states stays (H100's serving-fitted memory efficiency)
    assert "memory_efficiency" in h100.calibrated
    assert start.memory_efficiency == h100.calibration.memory_efficiency


def test_cross_validation_pools_every_gpus_held_out_rows():
    # a MAPE is a mean over rows: 10 rows at 2 % and 30 at 6 % are 40 rows at 5 %; a GPU
    # without held-out rows (or without predictions) does not count
    crossval = _benchmark("crossval")
    nan = float("nan")
    errs = {"h100": {"tpot_ms": 2.0, "ttft_ms": 10.0, "throughput_tok_s_per_gpu": 1.0, "rows": 10},
            "h200": {"tpot_ms": 6.0, "ttft_ms": 2.0, "throughput_tok_s_per_gpu": 5.0, "rows": 30},
            "b200": {"tpot_ms": 50.0, "ttft_ms": 50.0, "throughput_tok_s_per_gpu": 50.0, "rows": 0},
            "mi355x": {"tpot_ms": nan, "ttft_ms": nan, "throughput_tok_s_per_gpu": nan, "rows": 5}}
    got = crossval.pooled(errs)
    assert got["rows"] == 40
    assert (got["tpot_ms"], got["ttft_ms"], got["throughput_tok_s_per_gpu"]) == pytest.approx((5.0, 4.0, 4.0))
    none = crossval.pooled({g: dict(e, rows=0) for g, e in errs.items()})
    assert none["rows"] == 0 and none["tpot_ms"] != none["tpot_ms"]


def test_a_gpu_without_tables_takes_its_silicons_kernel_figures():
    # the H100 PCIe (no tables) runs on the H100 SXM's fitted kernel figures, less the all-reduce
    # ones measured on NVLink, with its own prompt-row cost stated; so the same fractions of its
    # own, lower datasheet peaks, and never faster than the SXM part
    from mantile_core.hardware import REFERENCE_ENGINE

    pcie, sxm = mantile_core.get_hardware("h100-pcie"), mantile_core.get_hardware("h100")
    figures = kernel_calibration("h100", REFERENCE_ENGINE)
    for name, value in figures.items():
        if name in ("allreduce_latency", "allreduce_efficiency", "attention_row_overhead"):
            continue
        assert getattr(pcie.calibration, name) == value, name
    assert pcie.calibration.allreduce_latency == Calibration().allreduce_latency
    assert pcie.calibration.allreduce_efficiency == Calibration().allreduce_efficiency
    assert pcie.calibration.attention_row_overhead == pytest.approx(figures["attention_row_overhead"] * 989 / 756, rel=0.01)
    model = mantile_core.load_model("llama-3.1-8b")
    slow = mantile_core.estimate(model, pcie, batch=8, input_len=2048, output_len=128, engine="vllm")
    fast = mantile_core.estimate(model, sxm, batch=8, input_len=2048, output_len=128, engine="vllm")
    assert slow.serving.tpot_s > fast.serving.tpot_s and slow.request_prefill.seconds_total > fast.request_prefill.seconds_total
