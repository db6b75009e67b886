"""What one forward step asks of a layer (:class:`Step`) and what it costs (:class:`LayerCost`).

Every count is per device (rank 0's share under tensor / expert parallelism). Fields may be
Python ints or numpy arrays of one shape: the same arithmetic serves one estimate and a
vectorised sweep.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy

from .dtypes import DType, get_dtype

__all__ = ["Step", "LayerCost", "round_int", "maximum", "minimum", "COST_FIELDS"]

Int = Any  # int or numpy integer array


def maximum(a, b):
    """numpy.maximum, without numpy's per-call cost when neither side is an array."""
    if isinstance(a, numpy.ndarray) or isinstance(b, numpy.ndarray):
        return numpy.maximum(a, b)
    return a if a >= b else b


def minimum(a, b):
    """numpy.minimum, without numpy's per-call cost when neither side is an array."""
    if isinstance(a, numpy.ndarray) or isinstance(b, numpy.ndarray):
        return numpy.minimum(a, b)
    return a if a <= b else b


def round_int(x):
    """Nearest integer of an expectation (numpy arrays element-wise); exact ints pass through."""
    if isinstance(x, numpy.ndarray):
        return numpy.rint(x).astype(numpy.int64)
    if isinstance(x, (int, numpy.integer)):
        return int(x)
    return int(round(float(x)))


@attrs.frozen(eq=False)
class Step:
    """``batch`` sequences each add ``new_tokens`` queries after ``cached`` tokens already in
    the KV cache; run on ``tp``-way tensor and ``ep``-way expert parallelism.

    ``dp`` > 1 is attention data parallelism: ``dp`` groups of ``tp`` devices each run the
    attention (and dense layers) of their own ``batch`` sequences, while the MoE layers pool
    the tokens of all groups over the ``tp·dp`` devices (``ep`` divides tp·dp) with an
    all-to-all dispatch and combine.

    ``policies`` maps a mask ("causal", "sliding") to the :class:`CachePolicy` in force;
    ``kv_block`` is the paged-cache block in tokens.
    """

    batch: Int
    new_tokens: Int
    cached: Int
    tp: Int = 1
    ep: Int = 1
    dp: Int = 1
    act_dtype: DType = attrs.field(default="bf16", converter=get_dtype)
    kv_dtype: DType = attrs.field(default="bf16", converter=get_dtype)
    policies: Mapping[str, Any] = attrs.field(factory=dict)
    kv_block: Int = 16

    @property
    def tokens(self) -> Int:
        """Query tokens in the step over the whole batch: batch·new_tokens."""
        return self.batch * self.new_tokens

    @property
    def written(self) -> Int:
        """Tokens per sequence in the cache once the step has written its own: cached+new."""
        return self.cached + self.new_tokens

    def policy(self, mask: str):
        from .cache import MASK_PLUGINS
        from .errors import MissingPluginError
        from .install_hints import install_hint

        try:
            return self.policies[mask]
        except KeyError:
            plugin = MASK_PLUGINS.get(mask)
            raise MissingPluginError(
                f"no KV-cache policy for {mask} attention layers is installed"
                + (f": {install_hint(plugin)}" if plugin else "")
            ) from None


COST_FIELDS = (
    "flops",
    "matmul_flops",
    "attention_flops",
    "weight_bytes",
    "kv_cache_bytes",
    "recurrent_state_bytes",
    "kv_read_bytes",
    "kv_write_bytes",
    "activation_bytes",
    "comm_bytes",
    "alltoall_bytes",
)


@attrs.frozen(eq=False)
class LayerCost:
    """Per-device cost of one layer for one step.

    - ``flops``: all floating-point operations (matmul + elementwise);
      ``matmul_flops``: GEMMs and attention matmuls, 2·M·K·N each (what FlopCounterMode counts);
      ``attention_flops``: the part of matmul_flops that is QKᵀ and PV (4·dh per pair per head).
    - ``weight_bytes``: weights read by the step; ``resident_weight_bytes``: weights held.
    - ``kv_cache_bytes``: KV held after the step; ``kv_read_bytes`` / ``kv_write_bytes``: cache
      traffic of the step (KV, and the recurrent state of a state-space / linear-attention layer).
    - ``recurrent_state_bytes``: fixed-size per-sequence state a recurrent layer (Mamba, Gated
      DeltaNet) holds after the step (convolution + SSM / delta state, whatever the context);
      memory and ``max_batch`` count it next to the KV cache.
    - ``activation_bytes``: activation tensors the layer writes in the step.
    - ``comm_bytes``: collective payload (all-reduce: tokens·hidden·bytes); ``collectives``:
      how many collectives; ``alltoall_bytes``: bytes this device sends in all-to-alls (MoE
      dispatch + combine under attention data parallelism), ``alltoalls``: how many; ``kernels``: kernel launches; ``gemm_dtype``: the format the
      layer's main GEMMs are stored in (timing picks the tensor-core rate from it);
      ``attention_sequences``: the (sequence, local KV head) pairs the attention kernel
      works on, batch · kv_heads_local (0 for a layer without attention): decode
      attention kernels cost a fixed time per pair (timing's ``attention_sequence_overhead``);
      ``attention_rows``: the (query token, local query head) rows a prompt attention kernel
      works on in a step of more than one new token per sequence, tokens · heads_local (0 for
      a decode step, whose kernel's per-sequence cost is the pair term): each query tile of a
      FlashAttention prompt kernel has a fixed cost (timing's ``attention_row_overhead``);
      ``moe_calls``: routed-expert blocks in the layer (1 for a MoE layer), each with a fixed
      cost beyond its kernels (timing's ``moe_overhead``); ``expert_width``: the routed
      experts' intermediate width on this device, intermediate / (devices per expert) (the
      grouped GEMMs' N for gate / up and K for down; 0 for a layer without routed experts):
      a narrow expert fills few output tiles, so its GEMMs run below the layer's rate
      (timing's ``expert_half_width``).
    """

    flops: Int = 0
    matmul_flops: Int = 0
    attention_flops: Int = 0
    weight_bytes: Int = 0
    resident_weight_bytes: Int = 0
    kv_cache_bytes: Int = 0
    recurrent_state_bytes: Int = 0
    kv_read_bytes: Int = 0
    kv_write_bytes: Int = 0
    activation_bytes: Int = 0
    comm_bytes: Int = 0
    alltoall_bytes: Int = 0
    collectives: Int = 0
    alltoalls: Int = 0
    kernels: Int = 0
    gemm_dtype: str = "bf16"
    attention_sequences: Int = 0
    attention_rows: Int = 0
    moe_calls: Int = 0
    expert_width: Int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain ints (the JSON contract's per-phase object, less time)."""
        return {f: int(getattr(self, f)) for f in ("flops", "matmul_flops", "weight_bytes", "kv_cache_bytes",
                                                     "recurrent_state_bytes", "kv_read_bytes", "activation_bytes",
                                                     "comm_bytes", "alltoall_bytes", "kernels")}
