"""The timing model (timing.py), the serving model (serving.py) and engine profiles, against
arithmetic written out here by hand on toy hardware; every function also element-wise."""

from __future__ import annotations

import math
from types import SimpleNamespace

import attrs
import numpy
import pytest

import mantile_core
from mantile_core.engines import get_engine, list_engines
from mantile_core.errors import InputError
from mantile_core.hardware import Calibration, HardwareSpec
from mantile_core.serving import serve
from mantile_core.timing import allreduce_seconds, layer_seconds, layer_times, mixed_layer_seconds
from mantile_core.workload import LayerCost, Step

CAL = Calibration(gemm_efficiency=0.5, gemm_half_rows=16.0, mixed_gemm_efficiency=0.5, attention_efficiency=0.25,
                  memory_efficiency=0.8, kernel_overhead=2e-6, step_overhead=0.0, allreduce_latency=5e-6,
                  allreduce_efficiency=0.5, activation_compute="bf16")
TOY = HardwareSpec(name="toy", description="toy", peak_flops={"bf16": 1e15, "fp8": 2e15, "fp32": 1e13},
                   hbm_bytes=10**11, hbm_bandwidth=1e12, link_bandwidth=1e11, link_latency=9e-6, calibration=CAL)


def test_allreduce_picks_the_faster_algorithm():
    # 8 devices, one call. Bandwidth 1e11 * 0.5 = 5e10 B/s, latency 5e-6 s.
    small, large = 1e4, 1e8
    one_shot_small = 5e-6 + 7 * small / 5e10  # 6.4e-6
    two_shot_small = 10e-6 + 1.75 * small / 5e10
    assert allreduce_seconds(small, 1, 8, TOY) == pytest.approx(min(one_shot_small, two_shot_small))
    assert allreduce_seconds(small, 1, 8, TOY) == pytest.approx(6.4e-6)
    two_shot_large = 10e-6 + 1.75 * large / 5e10  # 3.51e-3: ring beats one-shot's 1.4e-2
    assert allreduce_seconds(large, 1, 8, TOY) == pytest.approx(two_shot_large)
    # several calls split the payload evenly
    assert allreduce_seconds(2 * small, 2, 8, TOY) == pytest.approx(2 * 6.4e-6)
    assert allreduce_seconds(0, 0, 1, TOY) == 0


def test_allreduce_latency_falls_back_to_the_spec():
    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, allreduce_latency=None))
    assert allreduce_seconds(0, 1, 2, hw) == pytest.approx(9e-6)


def test_mesh_fabric_shares_the_links():
    # 7 point-to-point links: 2 devices reach each other over one link, 1/7 of the bandwidth
    mesh = attrs.evolve(TOY, mesh_links=7)
    payload = 1e8
    bandwidth = 1e11 / 7 * 0.5
    expected = min(5e-6 + payload / bandwidth, 10e-6 + payload / bandwidth)
    assert allreduce_seconds(payload, 1, 2, mesh) == pytest.approx(expected)
    # 8 devices use all 7 links: the switch figure
    assert allreduce_seconds(payload, 1, 8, mesh) == pytest.approx(allreduce_seconds(payload, 1, 8, TOY))


def test_layer_time_roofline_parts():
    # a bf16 GEMM of M=64 rows on a 1000x1000 weight (2e6 bytes), plus attention, vector, KV
    cost = LayerCost(flops=128e6 + 4e6 + 1e6, matmul_flops=128e6 + 4e6, attention_flops=4e6, weight_bytes=2e6,
                     kv_read_bytes=1e6, kv_write_bytes=1e4, activation_bytes=5e4, kernels=3, gemm_dtype="bf16")
    t = layer_times(cost, Step(batch=64, new_tokens=1, cached=0), TOY)
    gemm_rate = 1e15 * 0.5
    tile = 2 * 16 * 1e6 / gemm_rate  # 2 · gemm_half_rows · weight elements
    compute = 128e6 / gemm_rate + tile + 4e6 / (1e15 * 0.25) + 1e6 / 1e13
    assert t.tile == pytest.approx(tile)
    assert t.compute == pytest.approx(compute)
    assert t.weight_memory == pytest.approx(2e6 / 0.8e12)
    assert t.other_memory == pytest.approx((1e6 + 1e4 + 5e4) / 0.8e12)
    assert t.overhead == pytest.approx(6e-6)
    assert t.comm == 0
    total = max(compute, (2e6 + 1.06e6) / 0.8e12) + 6e-6
    assert layer_seconds(cost, Step(batch=64, new_tokens=1, cached=0), TOY) == pytest.approx(total)


def test_small_m_falloff_is_efficiency_times_m_over_m_plus_half():
    # rows M = gemm flops / (2 · weight elements): at M = 16 the GEMM runs at half its rate
    elements = 1e6
    for rows in (16, 160):
        cost = LayerCost(flops=2 * rows * elements, matmul_flops=2 * rows * elements, weight_bytes=2 * elements,
                         gemm_dtype="bf16")
        t = layer_times(cost, Step(batch=rows, new_tokens=1, cached=0), TOY)
        rate = 1e15 * 0.5 * rows / (rows + 16)
        assert t.compute == pytest.approx(2 * rows * elements / rate)


def test_mixed_gemm_factor_when_weights_are_narrower_than_activations():
    step = Step(batch=1, new_tokens=1, cached=0)

    def compute(dtype, hw):
        return layer_times(LayerCost(flops=1e12, matmul_flops=1e12, weight_bytes=0, gemm_dtype=dtype), step, hw).compute

    # mxfp4 weights ("fp4") against bf16 activations: the bf16 rate, times the mixed factor
    assert compute("fp4", TOY) == pytest.approx(1e12 / (1e15 * 0.5 * 0.5))
    # bf16 weights: a plain dense GEMM
    assert compute("bf16", TOY) == pytest.approx(1e12 / (1e15 * 0.5))
    # fp8 activations (Blackwell's MXFP8 x MXFP4 MoE): the fp8 rate, still mixed
    fp8_acts = attrs.evolve(TOY, peak_flops={"bf16": 1e15, "fp8": 2e15, "fp4": 4e15, "fp32": 1e13},
                            calibration=attrs.evolve(CAL, activation_compute="fp8"))
    assert compute("fp4", fp8_acts) == pytest.approx(1e12 / (2e15 * 0.5 * 0.5))
    assert compute("fp8", fp8_acts) == pytest.approx(1e12 / (2e15 * 0.5))
    # bf16 weights with fp8 activations run at the wider format's rate
    assert compute("bf16", fp8_acts) == pytest.approx(1e12 / (1e15 * 0.5))


def test_mixed_step_reads_weights_once():
    decode = LayerCost(flops=2e6, matmul_flops=2e6, weight_bytes=1e8, kv_read_bytes=1e6, kernels=4,
                       comm_bytes=1e3, collectives=1, gemm_dtype="bf16")
    prefill = LayerCost(flops=2e12, matmul_flops=2e12, weight_bytes=1e8, activation_bytes=1e7, kernels=4,
                        comm_bytes=1e6, collectives=1, gemm_dtype="bf16")
    step = Step(batch=1, new_tokens=1, cached=0, tp=2)
    a, b = layer_times(decode, step, TOY), layer_times(prefill, step, TOY)
    compute = a.compute + b.compute - min(a.tile, b.tile)
    memory = 1e8 / 0.8e12 + (1e6 + 1e7) / 0.8e12
    expected = max(compute, memory) + 8e-6 + allreduce_seconds(1e3 + 1e6, 1, 2, TOY)
    assert mixed_layer_seconds(decode, step, prefill, step, TOY) == pytest.approx(expected)
    assert mixed_layer_seconds(decode, step, prefill, step, TOY) < layer_seconds(decode, step, TOY) + layer_seconds(prefill, step, TOY)


def test_mixed_step_of_k_prompts_hides_prompt_compute_once():
    """k prompts in one step: their compute and traffic k times, weights and the small-M term
    once; hand arithmetic on the toy chip (bf16 1e15 FLOP/s at 0.5, HBM 1e12 B/s at 0.8)."""
    decode = LayerCost(weight_bytes=1e9, kv_read_bytes=3e9, kernels=2, gemm_dtype="bf16")  # memory-bound: 5 ms
    prefill = LayerCost(flops=1e12, matmul_flops=1e12, weight_bytes=1e9, activation_bytes=1e6, kernels=2,
                        gemm_dtype="bf16")
    step = Step(batch=1, new_tokens=1, cached=0, tp=1)
    tile = 2 * 16.0 * (1e9 * 8 / 16) / 0.5e15  # the prompt's small-M term (weight elements 5e8)
    compute_one = 1e12 / 0.5e15 + tile  # 2.032 ms
    for k in (1, 2, 3.5, 8):
        compute = k * 1e12 / 0.5e15 + tile
        memory = (1e9 + 3e9 + k * 1e6) / 0.8e12
        expected = max(compute, memory) + 2 * 2e-6
        assert mixed_layer_seconds(decode, step, prefill, step, TOY, k) == pytest.approx(expected)
    # one prompt hides entirely behind the decode's memory time; three do not: X(k) > k·X(1)
    d = layer_seconds(decode, step, TOY)
    x = {k: mixed_layer_seconds(decode, step, prefill, step, TOY, k) - d for k in (1, 3)}
    assert compute_one < 5e-3 and x[1] == pytest.approx(1e6 / 0.8e12)
    assert x[3] > 3 * x[1]


def test_tpot_does_not_fall_as_the_context_grows_issue_15():
    """The issue's deployment: qwen2.5-7b on b200, tp 2, batch 256, 32768-token prompts; with
    128 output tokens TPOT fell from 464 ms at context 29,156 to 392 ms at 93,407, because an
    overloaded model let every decode step carry more prompts than the step's budget holds."""
    model = mantile_core.load_model("qwen2.5-7b")
    tpot = [float(mantile_core.estimate(model, "b200", tp=2, batch=256, input_len=32768, output_len=128,
                                        context=c).serving.tpot_s) for c in (1000, 29156, 50000, 93407)]
    assert tpot == sorted(tpot)
    # a step holds at most the budget's prompts: TPOT at most the decode step plus one full mixed step
    e = mantile_core.estimate(model, "b200", tp=2, batch=256, input_len=32768, output_len=128, context=29156)
    assert float(e.serving.tpot_s) <= float(e.decode.seconds_total) + float(e.request_prefill.seconds_total) + 2e-3


def test_ttft_does_not_fall_as_the_prompt_grows_on_a_prompt_only_engine():
    """ATOM runs prompt-only steps: a step of k prompts reads the weights once, so k short
    prompts cost far less than k times one prompt's step (the old Δ = P made TTFT fall as the
    prompts grew: gpt-oss-120b-like counts of 16 -> 23 tokens)."""
    model = mantile_core.load_model("llama-3.2-1b")
    ttft = [float(mantile_core.estimate(model, "mi355x", tp=4, batch=256, input_len=i, output_len=1024,
                                        engine="atom", prompts=2560).serving.ttft_s) for i in (16, 64, 128, 256, 1024)]
    assert ttft == sorted(ttft)


def test_timing_is_elementwise():
    tokens = numpy.array([1, 8, 512, 8192])
    tp = numpy.array([1, 2, 4, 8])
    cost = LayerCost(flops=2 * tokens * 1e6, matmul_flops=2 * tokens * 1e6, weight_bytes=2e6 // tp,
                     kv_read_bytes=tokens * 100, comm_bytes=tokens * 5760 * (tp > 1), collectives=1 * (tp > 1),
                     kernels=3 + (tp > 1), gemm_dtype="bf16")
    arrays = layer_seconds(cost, Step(batch=tokens, new_tokens=1, cached=0, tp=tp), TOY)
    for i in range(4):
        one = LayerCost(**{f.name: (getattr(cost, f.name)[i] if isinstance(getattr(cost, f.name), numpy.ndarray)
                                    else getattr(cost, f.name)) for f in attrs.fields(LayerCost)})
        assert arrays[i] == pytest.approx(layer_seconds(one, Step(batch=int(tokens[i]), new_tokens=1, cached=0,
                                                                   tp=int(tp[i])), TOY))


# ---- serving -----------------------------------------------------------------------------

def test_serve_old_call_still_works():
    s = serve(0.1, 0.01, batch=4, input_len=1000, output_len=100, devices=2)
    assert float(s.e2e_s) == pytest.approx(float(s.ttft_s) + 99 * float(s.tpot_s))
    assert float(s.throughput_tok_s_per_gpu) == pytest.approx(4 * 1100 / float(s.e2e_s) / 2)
    assert float(s.output_tok_s_per_gpu) == pytest.approx(4 * 100 / float(s.e2e_s) / 2)


def test_serve_free_prompts_leave_decode_alone():
    # Δ = 0 and no host floor: TPOT is the decode step, TTFT r + lag·τ + τ + the queue wait
    tau, r = 0.01, 0.02
    s = serve(0.0, tau, batch=2, input_len=100, output_len=50, devices=1, prefill_extra_s=0.0,
              max_batched_tokens=1000, request_overhead_s=r, schedule_lag_steps=1.5)
    assert float(s.tpot_s) == pytest.approx(tau)
    e2e = float(s.e2e_s)
    service = (tau + 0.0) / ((1000 - 2) / 100)  # a queued prompt's share of a full step
    rho = 2 * service / e2e
    wait = 0.5 * service * (0 + min(rho, math.sqrt(2)))
    assert float(s.ttft_s) == pytest.approx(r + 1.5 * tau + tau + wait, rel=1e-6)
    assert e2e == pytest.approx(float(s.ttft_s) + 49 * tau, rel=1e-6)


def test_serve_prompt_share_of_decode_steps():
    # light load: each prompt alone in its step, X(1) = Δ; τ solves τ = τ0 + (1 − e^{−λτ})·Δ·...
    tau0, delta = 0.01, 0.05
    s = serve(0.06, tau0, batch=8, input_len=1000, output_len=1000, devices=1, prefill_extra_s=delta,
              max_batched_tokens=8192)
    tau, e2e = float(s.tpot_s), float(s.e2e_s)
    m = 8 / e2e * tau  # prompts arriving per decode step
    p = 1 - math.exp(-m)
    k = m / p
    assert tau == pytest.approx(tau0 + p * k * delta, rel=1e-3)
    assert float(s.prefill_share) == pytest.approx(1 - tau0 / tau)


def test_host_floor_is_shared_by_prompts_in_one_step():
    # a prompt step lasts at least H: with Δ = 0 each prompt step costs H − τ0 beyond a decode step
    tau0, H = 0.01, 0.03
    s = serve(0.0, tau0, batch=64, input_len=100, output_len=100, devices=1, prefill_extra_s=0.0,
              max_batched_tokens=10**6, host_floor_s=H)
    tau, e2e = float(s.tpot_s), float(s.e2e_s)
    m = 64 / e2e * tau
    assert tau == pytest.approx(tau0 + (1 - math.exp(-m)) * (H - tau0), rel=1e-3)


def test_first_wave_of_a_benchmark():
    # one wave of 4 prompts of 1000 tokens, budget 1000: one prompt per step, mean 2.5 steps
    P, delta = 0.1, 0.08
    s = serve(P, 0.01, batch=4, input_len=1000, output_len=10, devices=1, prefill_extra_s=delta,
              max_batched_tokens=1000, prompts=4, request_overhead_s=0.005)
    assert float(s.ttft_s) == pytest.approx(0.005 + 2.5 * P)
    # a budget holding all four: one step of F + 4Δ
    s = serve(P, 0.01, batch=4, input_len=1000, output_len=10, devices=1, prefill_extra_s=delta,
              max_batched_tokens=4000, prompts=4)
    assert float(s.ttft_s) == pytest.approx((P - delta) + 4 * delta)


def test_front_end_tokenises_one_prompt_at_a_time():
    # one wave of 4 prompts of 1000 tokens, budget 1000 (one prompt per step, mean 2.5 steps of
    # P), 2 us of front-end work per prompt token: h = 2 ms each; the j-th request also waits for
    # the j - 1 ahead of it, (4 - 1)/2 = 1.5 h on average
    P, delta = 0.1, 0.08
    s = serve(P, 0.01, batch=4, input_len=1000, output_len=10, devices=1, prefill_extra_s=delta,
              max_batched_tokens=1000, prompts=4, request_overhead_s=0.005, request_token_s=2e-6)
    assert float(s.ttft_s) == pytest.approx(0.005 + 0.002 + 1.5 * 0.002 + 2.5 * P)
    # in the steady state the front end's work adds to TTFT at least once, and more the longer
    # the prompt: TTFT(h) - TTFT(0) >= h
    args = dict(batch=16, input_len=1000, output_len=200, devices=1, prefill_extra_s=0.02, max_batched_tokens=8192)
    base = float(serve(0.05, 0.01, **args).ttft_s)
    slow = float(serve(0.05, 0.01, request_token_s=2e-6, **args).ttft_s)
    assert slow - base >= 0.002 * (1 - 1e-9)


def test_prompt_only_engine_pays_whole_prompt_steps():
    # no mixing: a prompt step replaces no decode work, X(1) = max(F + Δ, H) = P
    tau0, P = 0.01, 0.05
    s = serve(P, tau0, batch=8, input_len=1000, output_len=1000, devices=1, prefill_extra_s=P, mixed_prefill=False,
              max_batched_tokens=16384)
    tau, e2e = float(s.tpot_s), float(s.e2e_s)
    m = 8 / e2e * tau
    assert tau == pytest.approx(tau0 + (1 - math.exp(-m)) * (m / (1 - math.exp(-m))) * P, rel=1e-3)


def test_disaggregated_decode_is_not_slowed():
    s = serve(0.2, 0.01, batch=16, input_len=1000, output_len=100, devices=5, prefill_instances=1,
              transfer_s=0.001, output_devices=4, max_batched_tokens=20000)
    assert float(s.tpot_s) == pytest.approx(0.01)
    assert float(s.output_tok_s_per_gpu) * 4 == pytest.approx(float(s.throughput_tok_s_per_gpu) * 5 * 100 / 1100)


def test_serve_is_elementwise():
    batch = numpy.array([1, 16, 128])
    kw = dict(input_len=numpy.array([1000, 1000, 8000]), output_len=numpy.array([100, 1000, 1000]), devices=1,
              max_batched_tokens=8192, prompts=10 * batch, request_overhead_s=0.01)
    arrays = serve(numpy.array([0.1, 0.2, 0.4]), numpy.array([0.01, 0.02, 0.03]), batch=batch,
                   prefill_extra_s=numpy.array([0.05, 0.1, 0.3]), host_floor_s=numpy.array([0.0, 0.03, 0.03]), **kw)
    for i in range(3):
        one = serve([0.1, 0.2, 0.4][i], [0.01, 0.02, 0.03][i], batch=int(batch[i]),
                    prefill_extra_s=[0.05, 0.1, 0.3][i], host_floor_s=[0.0, 0.03, 0.03][i],
                    **{k: (v[i] if isinstance(v, numpy.ndarray) else v) for k, v in kw.items()})
        for field in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s_per_gpu"):
            assert getattr(arrays, field)[i] == pytest.approx(float(getattr(one, field)))


# ---- engine profiles ---------------------------------------------------------------------

def test_engine_profiles_and_aliases():
    assert set(list_engines()) >= {"vllm", "trtllm", "atom"}
    assert get_engine("TRT").name == "trtllm"
    assert get_engine("tensorrt-llm").name == "trtllm"
    vllm = get_engine("vllm")
    assert vllm.max_batched_tokens == 8192 and vllm.mixed_prefill and vllm.graph_max_tokens == 2048
    assert vllm.kv_dtype_for("b200") == "fp8" and vllm.kv_dtype_for("h200") == "bf16"
    assert not get_engine("atom").mixed_prefill
    with pytest.raises(InputError, match="unknown engine 'sglang-x'"):
        get_engine("sglang-x")


def test_engine_calibration_overrides_the_hardware():
    b200 = mantile_core.get_hardware("b200")
    trt = get_engine("trtllm").calibrated(b200)
    assert trt.calibration.kernel_overhead != b200.calibration.kernel_overhead
    assert trt.calibration.memory_efficiency == b200.calibration.memory_efficiency  # a hardware figure
    assert get_engine("vllm").calibrated(b200) is b200  # the reference engine has no overrides


def test_every_bundled_calibration_is_physical():
    for hw in mantile_core.get_plugin_manager().registries.hardware.values():
        cal = hw.calibration
        assert 0 < cal.memory_efficiency <= 1 and 0 < cal.gemm_efficiency <= 1 and 0 < cal.mixed_gemm_efficiency <= 1
        assert 0 < cal.kernel_overhead < 2e-5 and 0 <= cal.request_overhead < 0.2
        for engine in list_engines().values():
            tuned = engine.calibrated(hw).calibration
            assert 0 < tuned.kernel_overhead < 2e-5


def test_estimate_applies_the_engine():
    model = mantile_core.load_model("qwen3-30b-a3b")  # a core MoE model: no plugin needed
    plain = mantile_core.estimate(model, "b200", tp=2, batch=8, input_len=512, output_len=256)
    vllm = mantile_core.estimate(model, "b200", tp=2, batch=8, input_len=512, output_len=256, engine="vllm")
    trt = mantile_core.estimate(model, "b200", tp=2, batch=8, input_len=512, output_len=256, engine="trtllm")
    assert plain.kv_dtype == "bf16" and vllm.kv_dtype == "fp8" and trt.kv_dtype == "fp8"
    assert vllm.memory["kv_cache_bytes"] * 2 == plain.memory["kv_cache_bytes"]
    assert trt.hardware.calibration.kernel_overhead == get_engine("trtllm").calibration["b200"]["kernel_overhead"]
    bench = mantile_core.estimate(model, "b200", tp=2, batch=8, input_len=512, output_len=256, engine="vllm", prompts=80)
    assert bench.serving.ttft_s != vllm.serving.ttft_s  # the first wave's burst


def test_estimate_rejects_bad_prompts():
    with pytest.raises(InputError, match="'prompts' must be an integer from 1 to"):
        mantile_core.estimate("llama-3.2-1b", "h100", prompts=0)


def _phases(decode_s, prompt_s, kernels):
    """Phase stand-ins for phase_serving: one distinct layer standing for all kernels, its
    time ``kernels`` · 2 µs of launches plus activation traffic at 0.8 TB/s making up the rest
    (so a step of k such prompts lasts kernels · 2 µs + k · (prompt_s − kernels · 2 µs))."""
    step = Step(batch=1, new_tokens=1, cached=0)

    def cost(seconds):
        return LayerCost(activation_bytes=(seconds - kernels * 2e-6) * 0.8e12, kernels=kernels)

    decode = SimpleNamespace(seconds_total=decode_s, costs=(cost(decode_s),), seconds=(decode_s,), step=step)
    prompt = SimpleNamespace(seconds_total=prompt_s, costs=(cost(prompt_s),), seconds=(prompt_s,), step=step)
    return SimpleNamespace(decode=decode, request_prefill=prompt)


def test_host_floor_only_beyond_the_graph_sizes():
    from mantile_core.serving import phase_serving

    # prompt-only engine: a step of k prompts lasts F + k·Δ, F = 100 kernels · 2 µs launched
    # once, Δ = 0.02 − F; 100 kernels at 1 ms each from the host = 0.1 s floor
    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, eager_kernel_overhead=1e-3))
    atom = attrs.evolve(get_engine("atom"), graph_max_tokens=2048, schedule_lag_steps=0.0)
    common = dict(counts=(1,), batch=1, output_len=10, devices=1, engine=atom)
    short = phase_serving(_phases(0.01, 0.02, 100), hw, input_len=1000, **common)
    long = phase_serving(_phases(0.01, 0.02, 100), hw, input_len=4000, **common)
    # TTFT = own step + collisions s/2 · ρ (C = 1), s = max(F + k·Δ, H)/k with k = 16384/I prompts a step
    fixed, delta = 100 * 2e-6, 0.02 - 100 * 2e-6
    k = 16384 / 1000
    s_short = (fixed + k * delta) / k
    assert float(short.ttft_s) == pytest.approx(0.02 + 0.5 * s_short * s_short / float(short.e2e_s), rel=1e-4)
    k = 16384 / 4000
    s_long = max(fixed + k * delta, 0.1) / k
    assert float(long.ttft_s) == pytest.approx(0.1 + 0.5 * s_long * s_long / float(long.e2e_s), rel=1e-4)


def test_attention_dp_waits_more_steps():
    from mantile_core.serving import phase_serving

    hw = attrs.evolve(TOY, calibration=attrs.evolve(CAL, attention_dp_wait_steps=20.0))
    atom = attrs.evolve(get_engine("atom"), schedule_lag_steps=0.0)
    common = dict(counts=(1,), batch=1, input_len=1000, output_len=10, devices=1, engine=atom)
    plain = phase_serving(_phases(0.01, 0.02, 10), hw, **common)
    dp = phase_serving(_phases(0.01, 0.02, 10), hw, attention_dp=True, **common)
    assert float(dp.ttft_s) - float(plain.ttft_s) == pytest.approx(20 * float(dp.tpot_s), rel=1e-2)
