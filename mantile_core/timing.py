"""Time of one layer for one step on one device: a roofline with a small-M GEMM falloff, a
fixed cost per kernel and per-layer collectives. Every function works element-wise on numpy
arrays (the sweep calls them as is); no Python ``if`` / ``min`` / ``max`` touches a value.

For a layer's :class:`~mantile_core.workload.LayerCost` on a :class:`HardwareSpec` with
calibration ``cal`` (see docs/timing.md for the figures and where they come from)::

    time = max(compute, memory) + kernels · cal.kernel_overhead + attention + moe + allreduce

- compute = gemm + attention + vector, where
  gemm = (gemm FLOPs + 2 · gemm_half_rows · weight elements) / (peak(weights, activations)
  · gemm_efficiency · mixed), gemm FLOPs = matmul_flops − attention_flops. The second term
  is the small-M falloff: a GEMM of M rows runs at efficiency · M / (M + gemm_half_rows), and
  M = gemm FLOPs / (2 · weight elements) is the rows per weight matrix (tokens for a dense
  layer, tokens per activated expert for a MoE), so no division by M is needed.
  peak(weights, activations) is the chip's rate for the wider of the two formats (mxfp4
  experts with bf16 activations run at the bf16 rate on Hopper, with fp8 activations at the
  fp8 rate on Blackwell); ``mixed`` is ``cal.mixed_gemm_efficiency`` when the weights are
  stored narrower than the activations (dequantised in the kernel, or a mixed-format MMA),
  else 1, and then the falloff's rows are ``cal.mixed_gemm_half_rows`` when set (the grouped
  expert GEMMs' own tiles, fitted on measured MoE kernels). A MoE layer's rate is further
  scaled by w / (w + ``cal.expert_half_width``), w = ``expert_width`` (the routed experts'
  intermediate width on the device): tensor parallelism narrows each expert to few output
  tiles, which leave the chip part idle (measured MoE kernels on H200 lose 37 % of their rate
  from TP 1 to TP 8 at 8k tokens).
  attention = attention_flops / (bf16 peak · attention_efficiency) + attention_rows ·
  attention_row_overhead: a prompt attention kernel's rate ramps with the prompt length
  because each query tile (128 query rows of one head) carries fixed work beyond its QKᵀ/PV
  FLOPs (loading Q, filling the K/V pipeline, the masked half of the causal diagonal tile,
  normalising and writing O), paid once per (query token, local head) row at full-chip
  parallelism: on H200 FlashAttention-3 reaches 0.66 of the bf16 peak on long prompts and
  ~0.45 ns per row, so a 1k prompt runs at ~0.3 of peak and a 16k one at ~0.6 (measured
  0.27 and 0.5 to 0.65; benchmarks/kernel_fit.py).
  vector = (flops − matmul_flops) / fp32 vector rate.
- memory = (weight bytes + activations written) / (HBM · memory_efficiency) + (KV read + KV
  written) / (HBM · kv_memory_efficiency): attention kernels stream the cache at their own
  achieved bandwidth (FlashAttention decode on H200: ~4.15 TB/s on large caches).
- attention = [layer has attention] · attention_overhead + attention_sequences ·
  attention_sequence_overhead: a decode attention kernel's fixed cost beyond any kernel's
  (split-KV launch and combine: ~10 µs a call on H200 against ~2.5 µs for a small GEMM) and
  its cost per (sequence, local KV head) pair (its thread blocks: batch 2048 × 8 KV heads
  ≈ 0.33 ms on H200 at a 16-token context). Fitted on measured kernels
  (benchmarks/kernel_fit.py).
- moe = moe_calls · moe_overhead: a routed-expert block's fixed cost beyond its kernels'
  (routing, token permutation, the grouped GEMMs' per-call setup), which the measured MoE
  kernels pay at any token count (GPT-OSS-120B's MXFP4 MoE under vLLM on H100: ~38 µs a call
  at 1 token from TP 8 to 32, where its weights take < 5 µs to read).

- allreduce (``collectives`` calls of payload p = comm_bytes / collectives over n = tp devices,
  link bandwidth B · allreduce_efficiency, latency α): the faster of one-shot
  α + (n−1)·p/B (every device reads every peer's buffer: latency-optimal) and two-shot / ring
  2α + 2(n−1)/n·p/B (reduce-scatter then all-gather: bandwidth-optimal), as NCCL's and vLLM's
  custom all-reduce pick by size. On a point-to-point mesh of L links (``mesh_links``, AMD)
  a device reaches n−1 peers over n−1 of its L links: B · (n−1)/L.

- alltoall (MoE dispatch and combine under attention data parallelism: ``alltoalls`` calls
  moving ``alltoall_bytes`` in all from each device to the W − 1 others, W = tp·dp): per call
  α + max(on-node part / (B · allreduce_efficiency), off-node part / scale-out bandwidth),
  the off-node part being the share (W − node)/(W − 1) of the peers on other nodes when W
  exceeds the hardware's ``node_size``.

A step that mixes decode and prefill tokens (chunked prefill) is timed by
:func:`mixed_layer_seconds`: the two parts' compute and KV / activation traffic add, the
weights are read once (the larger set: a prompt activates every expert), the kernels launch
once and the all-reduce carries both payloads.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy

from .hardware import PRECISION_ORDER, HardwareSpec, _family
from .workload import LayerCost, Step, maximum, minimum

__all__ = [
    "LayerTimes",
    "layer_times",
    "layer_seconds",
    "mixed_layer_seconds",
    "allreduce_seconds",
    "alltoall_seconds",
    "BITS_PER_ELEMENT",
]

# storage bits per weight element by the compute family a LayerCost names (mxfp4: 4 + 8/32)
BITS_PER_ELEMENT = {"fp4": 4.25, "fp8": 8.0, "int8": 8.0, "bf16": 16.0, "fp16": 16.0, "fp32": 32.0}

Num = Any  # float or numpy array


@attrs.frozen(eq=False)
class LayerTimes:
    """The parts of one layer's step time, seconds (arrays allowed):

    ``compute`` (GEMMs + attention matmuls + vector work; ``tile`` is the part of it that is
    the small-M falloff term, paid once per weight matrix), ``weight_memory`` (streaming the
    weights), ``other_memory`` (KV read and written, activations written), ``overhead``
    (kernels · kernel_overhead), ``comm`` (all-reduces)."""

    compute: Num
    tile: Num
    weight_memory: Num
    other_memory: Num
    overhead: Num
    comm: Num

    @property
    def total(self) -> Num:
        """max(compute, weight_memory + other_memory) + overhead + comm."""
        return maximum(self.compute, self.weight_memory + self.other_memory) + self.overhead + self.comm


def _link_bandwidth(tp, hw: HardwareSpec):
    """Bytes/s one device can move to its all-reduce peers, one way: the switch port's
    bandwidth, or (n−1)/L of it on a mesh of L point-to-point links."""
    if hw.mesh_links:
        return hw.link_bandwidth * minimum(maximum(tp - 1, 1), hw.mesh_links) / hw.mesh_links
    return hw.link_bandwidth


def _collective_latency(hw: HardwareSpec) -> float:
    """Seconds per collective call beyond its bandwidth term: the calibration's
    allreduce_latency, else the spec's link_latency."""
    latency = hw.calibration.allreduce_latency
    return hw.link_latency if latency is None else latency


def allreduce_seconds(payload_bytes, collectives, tp, hw: HardwareSpec):
    """Time of ``collectives`` all-reduces over ``tp`` devices moving ``payload_bytes`` in all
    (each carries payload/collectives): per call the faster of one-shot α + (n−1)·p/B and
    two-shot 2α + 2(n−1)/n·p/B (see the module docstring). 0 when there is no collective."""
    cal = hw.calibration
    alpha = _collective_latency(hw)
    bandwidth = _link_bandwidth(tp, hw) * cal.allreduce_efficiency
    calls = maximum(collectives, 1)
    per_call = payload_bytes / calls
    one_shot = alpha + (tp - 1) * per_call / bandwidth
    two_shot = 2 * alpha + 2.0 * (tp - 1) / tp * per_call / bandwidth
    return collectives * minimum(one_shot, two_shot)


def alltoall_seconds(payload_bytes, calls, world, hw: HardwareSpec):
    """Time of ``calls`` all-to-alls in which each device sends ``payload_bytes`` in all to
    the other ``world`` − 1 devices: per call α + max(on-node bytes / scale-up bandwidth,
    off-node bytes / scale-out bandwidth). 0 when there is none."""
    cal = hw.calibration
    alpha = _collective_latency(hw)
    peers = maximum(world - 1, 1)
    off_node = maximum(world - hw.node_size, 0) / peers
    per_call = payload_bytes / maximum(calls, 1)
    on = (1 - off_node) * per_call / (_link_bandwidth(world, hw) * cal.allreduce_efficiency)
    off = off_node * per_call / hw.scale_out_bandwidth
    return calls * (alpha + maximum(on, off))


def _narrower(cost: LayerCost, hw: HardwareSpec) -> bool:
    """Whether the layer's weights are stored narrower than the activations' format."""
    activation = hw.calibration.activation_compute
    return PRECISION_ORDER.index(_family(cost.gemm_dtype)) < PRECISION_ORDER.index(_family(activation))


def _gemm_rate(cost: LayerCost, hw: HardwareSpec):
    """FLOP/s of the layer's GEMMs before the small-M falloff: the wider of the weight and
    activation formats' peak, times gemm_efficiency, times mixed_gemm_efficiency when the
    weights are narrower than the activations."""
    cal = hw.calibration
    mixed = cal.mixed_gemm_efficiency if _narrower(cost, hw) else 1.0
    return hw.peak_for(cost.gemm_dtype) * cal.gemm_efficiency * mixed


def layer_times(cost: LayerCost, step: Step, hw: HardwareSpec) -> LayerTimes:
    """The parts of the layer's step time (see the module docstring for each formula)."""
    cal = hw.calibration
    gemm_flops = cost.matmul_flops - cost.attention_flops
    bits = BITS_PER_ELEMENT.get(cost.gemm_dtype, 16.0)
    weight_elements = cost.weight_bytes * 8.0 / bits
    gemm_rate = _gemm_rate(cost, hw)
    half_rows = cal.gemm_half_rows
    if cal.mixed_gemm_half_rows is not None and _narrower(cost, hw):
        half_rows = cal.mixed_gemm_half_rows
    # a routed expert narrowed below a few output tiles runs its GEMMs slower: rate · w / (w + w½)
    width, half = cost.expert_width, cal.expert_half_width
    gemm_rate = gemm_rate * (1.0 - half * (width > 0) / (width + half + (width <= 0)))
    # the falloff term only where there is a GEMM (an embedding gathers rows, no matmul)
    tile = (gemm_flops > 0) * 2.0 * half_rows * weight_elements / gemm_rate
    attention_rate = hw.peak_for("bf16", "bf16") * cal.attention_efficiency
    compute = (gemm_flops / gemm_rate + tile + cost.attention_flops / attention_rate
               + cost.attention_rows * cal.attention_row_overhead
               + (cost.flops - cost.matmul_flops) / hw.vector_flops)
    bandwidth = hw.hbm_bandwidth * cal.memory_efficiency
    weight_bandwidth = bandwidth
    if cal.mixed_memory_efficiency is not None and _narrower(cost, hw):
        weight_bandwidth = hw.hbm_bandwidth * cal.mixed_memory_efficiency
    kv_efficiency = cal.memory_efficiency if cal.kv_memory_efficiency is None else cal.kv_memory_efficiency
    weight_memory = cost.weight_bytes / weight_bandwidth
    other_memory = (cost.activation_bytes / bandwidth
                    + (cost.kv_read_bytes + cost.kv_write_bytes) / (hw.hbm_bandwidth * kv_efficiency))
    comm = (allreduce_seconds(cost.comm_bytes, cost.collectives, step.tp, hw)
            + alltoall_seconds(cost.alltoall_bytes, cost.alltoalls, step.tp * step.dp, hw))
    sequences = cost.attention_sequences
    attention = (sequences > 0) * cal.attention_overhead + sequences * cal.attention_sequence_overhead
    return LayerTimes(compute=compute, tile=tile, weight_memory=weight_memory, other_memory=other_memory,
                      overhead=cost.kernels * cal.kernel_overhead + attention + cost.moe_calls * cal.moe_overhead,
                      comm=comm)


def layer_seconds(cost: LayerCost, step: Step, hw: HardwareSpec):
    """Seconds one device spends on one layer for one step (see the module docstring)."""
    return layer_times(cost, step, hw).total


def mixed_layer_seconds(decode: LayerCost, decode_step: Step, prefill: LayerCost, prefill_step: Step,
                        hw: HardwareSpec, prompts=1):
    """Seconds of one layer in a step that runs ``decode``'s tokens and ``prompts`` chunks
    like ``prefill``'s together: compute and KV / activation traffic add (the prompts' k
    times), weights are read once (the larger set), the small-M term is paid once (the
    larger), kernels launch once, and one all-reduce carries every payload. ``prompts`` may
    be fractional or an array (a step holding k prompts on average)."""
    a = layer_times(decode, decode_step, hw)
    b = layer_times(prefill, prefill_step, hw)
    k = prompts
    compute = a.compute - a.tile + k * (b.compute - b.tile) + maximum(a.tile, b.tile)
    memory = maximum(a.weight_memory, b.weight_memory) + a.other_memory + k * b.other_memory
    comm = (allreduce_seconds(decode.comm_bytes + k * prefill.comm_bytes,
                              maximum(decode.collectives, prefill.collectives), decode_step.tp, hw)
            + alltoall_seconds(decode.alltoall_bytes + k * prefill.alltoall_bytes,
                               maximum(decode.alltoalls, prefill.alltoalls), decode_step.tp * decode_step.dp, hw))
    return maximum(compute, memory) + maximum(a.overhead, b.overhead) + comm
