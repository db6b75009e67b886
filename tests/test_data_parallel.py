"""Attention data parallelism with expert parallelism (``--dp``): dp groups of tp GPUs run
attention for their own sequences, the MoE spreads its experts over all tp·dp GPUs with an
all-to-all dispatch and combine. Expected figures are written out by hand."""

from __future__ import annotations

import json

import pytest

import mantile_core
from mantile_core.cli import main
from mantile_core.dtypes import get_dtype
from mantile_core.errors import ParallelismError
from mantile_core.hardware import get_hardware
from mantile_core.layers.mlp import MoE
from mantile_core.timing import alltoall_seconds
from mantile_core.workload import Step

BF16 = get_dtype("bf16")


def small_moe(**extra):
    return MoE(hidden=64, experts=8, top_k=2, intermediate=32, expert_dtype=BF16, dense_dtype=BF16, **extra)


def test_moe_under_attention_dp_by_hand():
    # 4 groups of 1 GPU, 3 decode tokens each; ep 4: 2 experts per GPU, whole (I not split)
    cost = small_moe().cost(Step(batch=3, new_tokens=1, cached=10, tp=1, ep=4, dp=4))
    # experts: the 12 pooled tokens · k=2 · (gate, up, down: 3·64·32) · 2 FLOPs, over 4 GPUs
    expert = 2 * 12 * 2 * 3 * 64 * 32 // 4
    router = 2 * 3 * 64 * 8  # each group routes its own 3 tokens
    assert cost.matmul_flops == expert + router == 76800
    # held: router 64·8 + 2 local experts of 3·64·32
    assert cost.resident_weight_bytes == 2 * (64 * 8 + 2 * 3 * 64 * 32)
    # dispatch + combine: 3 tokens · 64 values · 2 bytes to (4 − 1)·(1 − (3/4)²) remote GPUs, twice
    assert cost.alltoall_bytes == round(2 * 3 * 64 * 2 * 3 * (1 - 0.75 ** 2)) == 1008
    assert cost.alltoalls == 2 and cost.comm_bytes == 0  # tp 1: no all-reduce


def test_dp_one_is_tensor_parallelism_unchanged():
    step = Step(batch=5, new_tokens=1, cached=0, tp=2, ep=2)
    assert small_moe().cost(step).as_dict() == small_moe().cost(Step(batch=5, new_tokens=1, cached=0, tp=2, ep=2, dp=1)).as_dict()
    assert small_moe().cost(step).alltoall_bytes == 0


def test_tp_inside_groups_dispatches_a_share_and_keeps_the_allreduce():
    # 2 groups of 2 GPUs: each GPU dispatches ⌈5/2⌉ = 3 of its group's 5 tokens
    cost = small_moe().cost(Step(batch=5, new_tokens=1, cached=0, tp=2, ep=4, dp=2))
    assert cost.alltoall_bytes == round(2 * 3 * 64 * 2 * 3 * (1 - 0.75 ** 2))
    assert cost.comm_bytes == 5 * 64 * 2 and cost.collectives == 1


def test_deployment_checks():
    moe = small_moe()
    moe.check_deployment(1, 8, 8)  # wide EP: one expert per GPU
    with pytest.raises(ParallelismError, match=r"'ep' must divide tp\*dp=6 \(got 4\)"):
        moe.check_deployment(2, 4, 3)
    with pytest.raises(ParallelismError, match=r"'ep' must divide num_experts=8 \(got 16\)"):
        moe.check_deployment(2, 16, 8)


def test_alltoall_time_by_hand():
    h200 = get_hardware("h200")
    cal = h200.calibration
    alpha = h200.link_latency if cal.allreduce_latency is None else cal.allreduce_latency
    on_node = 1e6 / (h200.link_bandwidth * cal.allreduce_efficiency)
    assert alltoall_seconds(2e6, 2, 8, h200) == pytest.approx(2 * (alpha + on_node))
    # 16 GPUs on two nodes: 8 of the 15 peers are on the other node, over 50 GB/s NICs
    off = 8 / 15 * 1e6 / 50e9
    on = 7 / 15 * 1e6 / (h200.link_bandwidth * cal.allreduce_efficiency)
    assert alltoall_seconds(2e6, 2, 16, h200) == pytest.approx(2 * (alpha + max(on, off)))
    assert alltoall_seconds(0, 0, 16, h200) == 0


def test_dense_model_dp_is_independent_replicas():
    """A dense model has no all-to-all: dp groups are replicas, so dp=2 at batch 8 costs per
    device what one group at batch 4 costs, and holds twice the sequences."""
    one = mantile_core.estimate("llama-3.1-8b", "h100", tp=2, batch=4, input_len=512, output_len=128)
    two = mantile_core.estimate("llama-3.1-8b", "h100", tp=2, dp=2, batch=8, input_len=512, output_len=128)
    a, b = one.to_dict(), two.to_dict()
    assert (b["dp"], b["devices"]) == (2, 4)
    for key in ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu"):
        assert b[key] == pytest.approx(a[key])
    for key in ("weight_bytes", "kv_cache_bytes", "total_bytes"):
        assert b["memory"][key] == a["memory"][key]
    assert b["memory"]["max_batch"] == 2 * a["memory"]["max_batch"]


def test_uneven_groups_count_only_real_sequences():
    even = mantile_core.estimate("llama-3.2-1b", "h100", dp=2, batch=4, input_len=64, output_len=16).to_dict()
    odd = mantile_core.estimate("llama-3.2-1b", "h100", dp=2, batch=3, input_len=64, output_len=16).to_dict()
    # the busiest group still runs 2 sequences: same steps, 3/4 of the tokens per GPU
    assert odd["tpot_ms"] == pytest.approx(even["tpot_ms"])
    assert odd["throughput_tok_s_per_gpu"] == pytest.approx(0.75 * even["throughput_tok_s_per_gpu"])


def test_idle_groups_add_gpus_and_no_tokens():
    one = mantile_core.estimate("llama-3.2-1b", "h100", batch=1, input_len=64, output_len=16).to_dict()
    idle = mantile_core.estimate("llama-3.2-1b", "h100", dp=4, batch=2, input_len=64, output_len=16).to_dict()
    # each busy group runs one sequence like the single GPU; 2 of 4 GPUs busy
    assert idle["tpot_ms"] == pytest.approx(one["tpot_ms"])
    assert idle["throughput_tok_s_per_gpu"] == pytest.approx(one["throughput_tok_s_per_gpu"] / 2)


def test_sweep_with_dp_equals_estimate():
    result = mantile_core.sweep("mixtral-8x7b", "h100", tp=(1, 2), ep=(1, 2, 4), dp=(1, 2), batch=(3, 16),
                                input_len=(256,), output_len=(64,))
    assert {p[2] for p in result.parallelism} == {1, 2}
    for row in result.table:
        tp, ep, dp, batch = int(row["tp"]), int(row["ep"]), int(row["dp"]), int(row["batch"])
        doc = mantile_core.estimate("mixtral-8x7b", "h100", tp=tp, ep=ep, dp=dp, batch=batch, input_len=256,
                                    output_len=64).to_dict()
        assert row["devices"] == tp * dp == doc["devices"]
        for key in ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu"):
            assert row[key] == pytest.approx(doc[key], rel=1e-9), (tp, ep, dp, batch, key)
        assert row["max_batch"] == doc["memory"]["max_batch"]
        assert row["kv_cache_bytes"] == doc["memory"]["kv_cache_bytes"]


def test_cli_dp(capsys):
    assert main(["estimate", "mixtral-8x7b", "--hardware", "h100", "--tp", "2", "--dp", "2", "--ep", "4",
                 "--batch", "16", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["tp"], doc["ep"], doc["dp"], doc["devices"]) == (2, 4, 2, 4)
    moe = [row for row in doc["layers"] if row["kind"] == "moe"][0]
    assert moe["decode"]["alltoall_bytes"] > 0
    assert main(["estimate", "mixtral-8x7b", "--hardware", "h100", "--tp", "2", "--dp", "3", "--ep", "4",
                 "--batch", "16"]) == 2
    assert "'ep' must divide tp*dp=6 (got 4)" in capsys.readouterr().err


def test_a_benchmark_gives_each_attention_dp_group_its_share_of_the_prompts():
    # a dense model's attention-DP groups are independent replicas (no MoE, no all-to-all): 16
    # prompts at concurrency 8 over 2 groups is, for each group, 8 prompts at concurrency 4,
    # the same benchmark as one replica of batch 4 given 8 prompts (2 waves, not 4)
    model = mantile_core.load_model("llama-3.1-8b")
    both = mantile_core.estimate(model, "h100", tp=1, dp=2, batch=8, input_len=512, output_len=256, prompts=16, engine="vllm")
    one = mantile_core.estimate(model, "h100", tp=1, dp=1, batch=4, input_len=512, output_len=256, prompts=8, engine="vllm")
    for metric in ("ttft_s", "tpot_s", "throughput_tok_s_per_gpu"):
        assert getattr(both.serving, metric) == pytest.approx(getattr(one.serving, metric), rel=1e-12), metric
