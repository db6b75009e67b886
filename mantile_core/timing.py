"""Roofline timing of a layer step, with calibrated efficiencies, kernel overhead and
collectives. All functions work element-wise on numpy arrays (the sweep uses them as is).

time = max(compute, memory) + kernels·kernel_overhead + communication, where

- compute = GEMM FLOPs / (peak(dtype) · gemm_efficiency · T/(T + gemm_half_tokens))
  + attention FLOPs / (bf16 peak · attention_efficiency) + elementwise FLOPs / vector peak;
- memory = (weights read + KV read + KV written + activations written) / (HBM bytes/s ·
  memory_efficiency);
- communication (ring all-reduce over n = tp devices) = collectives · link_latency +
  comm_bytes · 2(n−1)/n / (link bytes/s · allreduce_efficiency).
"""

from __future__ import annotations

import numpy

from .hardware import HardwareSpec
from .workload import LayerCost, Step

__all__ = ["layer_seconds", "allreduce_seconds"]


def allreduce_seconds(payload_bytes, collectives, tp, hw: HardwareSpec):
    """Ring all-reduce time of ``collectives`` calls moving ``payload_bytes`` in all."""
    cal = hw.calibration
    factor = 2.0 * (tp - 1) / tp
    return collectives * hw.link_latency + payload_bytes * factor / (hw.link_bandwidth * cal.allreduce_efficiency)


def layer_seconds(cost: LayerCost, step: Step, hw: HardwareSpec):
    """Seconds one device spends on one layer for one step (see module docstring)."""
    cal = hw.calibration
    tokens = step.tokens
    gemm_rate = hw.peak_for(cost.gemm_dtype) * cal.gemm_efficiency * tokens / (tokens + cal.gemm_half_tokens)
    attention_rate = hw.peak_for("bf16") * cal.attention_efficiency
    compute = ((cost.matmul_flops - cost.attention_flops) / gemm_rate
               + cost.attention_flops / attention_rate
               + (cost.flops - cost.matmul_flops) / hw.vector_flops)
    moved = cost.weight_bytes + cost.kv_read_bytes + cost.kv_write_bytes + cost.activation_bytes
    memory = moved / (hw.hbm_bandwidth * cal.memory_efficiency)
    comm = allreduce_seconds(cost.comm_bytes, cost.collectives, step.tp, hw)
    return numpy.maximum(compute, memory) + cost.kernels * cal.kernel_overhead + comm
