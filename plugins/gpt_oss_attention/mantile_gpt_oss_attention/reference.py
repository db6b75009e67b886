"""torch reference of the GPT-OSS attention (needs the ``[torch]`` extra; only validation code
imports this module, never the estimating path).

:class:`GptOssAttentionReference` holds the same parameters under the same names as
transformers' ``GptOssAttention`` (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` with biases,
``sinks`` of shape (heads,)), so ``load_state_dict(hf_module.state_dict())`` loads it.
Forward, for hidden states (batch, seq, hidden) at absolute positions start..start+seq-1:

1. q, k, v projections (width heads·head_dim, may differ from hidden), biases added;
2. RoPE with the cos/sin tables of mantile-rope-yarn's reference (``rope_cos_sin``,
   ``apply_rotary``, half-split rotation), inv_freq and attention_factor from
   :func:`mantile_core.rope_scaling` (whichever plugin provides the rope_type);
3. the new K/V written to the cache, if any: a sliding layer uses mantile-swa-cache's
   ``RingKVCache`` (window slots, through its ``windowed_attention``: a decode step writes
   then attends over the W slots, a longer chunk attends over [resident, chunk] then writes),
   a full layer :class:`FullKVCache` (every position);
4. attention of mantile-swa-cache's reference (``attention``: GQA, the sink logit joining
   each softmax row) under the exact boolean mask (``sliding_mask``; window None is causal),
   kept in ``last_mask``;
5. o_proj (its bias, when the module has one).

:meth:`GptOssAttentionReference.shard` cuts rank r's share under tensor parallelism (heads,
their biases and sinks, the matching KV heads, replicated when tp > kv_heads, o_proj input
columns, the o_proj bias on rank 0 only): the rank outputs sum (all-reduce) to the full one.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

__all__ = ["GptOssAttentionReference", "FullKVCache", "GPT_OSS_ROPE", "from_layer"]

GPT_OSS_ROPE: Mapping = {
    "rope_type": "yarn",
    "rope_theta": 150000.0,
    "factor": 32.0,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "original_max_position_embeddings": 4096,
    "truncate": False,
}


class FullKVCache:
    """The cache of a full-attention layer: K and V of every written position, each
    (batch, kv_heads, positions, head_dim); ``nbytes`` is what it holds."""

    def __init__(self, batch: int, kv_heads: int, head_dim: int, dtype: torch.dtype = torch.float32) -> None:
        self.k = torch.zeros(batch, kv_heads, 0, head_dim, dtype=dtype)
        self.v = torch.zeros(batch, kv_heads, 0, head_dim, dtype=dtype)
        self.positions = torch.zeros(0, dtype=torch.long)

    def update(self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor):
        """Append the chunk; return (keys, values, key positions) to attend."""
        self.k = torch.cat([self.k, k.to(self.k.dtype)], dim=2)
        self.v = torch.cat([self.v, v.to(self.v.dtype)], dim=2)
        self.positions = torch.cat([self.positions, positions.to(torch.long)])
        return self.k, self.v, self.positions

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


class GptOssAttentionReference(nn.Module):
    """GPT-OSS attention for ``heads`` query heads of ``head_dim`` over ``kv_heads`` KV heads,
    ``window`` None (full) or the sliding window W (key j visible to query i when
    i − W < j <= i). ``o_bias`` False models a tensor-parallel rank other than 0."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, *, window: int | None = None,
                 rope: Mapping | None = None, max_position: int = 131072, o_bias: bool = True,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if heads % kv_heads:
            raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}")
        self.hidden, self.heads, self.kv_heads, self.head_dim = hidden, heads, kv_heads, head_dim
        self.window = window
        self.rope = dict(GPT_OSS_ROPE if rope is None else rope)
        self.max_position = max_position
        width = heads * head_dim
        self.q_proj = nn.Linear(hidden, width, bias=True, dtype=dtype)
        self.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=True, dtype=dtype)
        self.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=True, dtype=dtype)
        self.o_proj = nn.Linear(width, hidden, bias=o_bias, dtype=dtype)
        self.sinks = nn.Parameter(torch.zeros(heads, dtype=dtype))
        self.last_mask: torch.Tensor | None = None
        self._rope_cache = None

    # --- pieces -------------------------------------------------------------------------
    def rope_tables(self, positions: torch.Tensor, dtype: torch.dtype):
        """cos, sin (len(positions), rotary_dim/2) through the registered rope_type."""
        from mantile_core import rope_scaling
        from mantile_rope_yarn.reference import rope_cos_sin

        if self._rope_cache is None:
            self._rope_cache = rope_scaling(self.rope, self.head_dim, self.max_position)
        scaling = self._rope_cache
        return rope_cos_sin(scaling.inv_freq, scaling.attention_factor, positions, dtype)

    def mask(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """The exact (queries, keys) bool mask this layer applies."""
        from mantile_swa_cache.reference import sliding_mask

        return sliding_mask(q_pos, k_pos, self.window)

    def new_cache(self, batch: int, dtype: torch.dtype | None = None):
        """An empty KV cache for this layer: the sliding plugin's ring buffer of ``window``
        slots for a sliding layer, :class:`FullKVCache` for a full one."""
        dtype = dtype or self.q_proj.weight.dtype
        if self.window is None:
            return FullKVCache(batch, self.kv_heads, self.head_dim, dtype)
        from mantile_swa_cache.reference import RingKVCache

        return RingKVCache(batch, self.kv_heads, self.window, self.head_dim, dtype)

    # --- forward ------------------------------------------------------------------------
    def forward(self, hidden_states: torch.Tensor, start: int = 0, cache=None) -> torch.Tensor:
        """(batch, seq, hidden) at positions start..start+seq-1 -> (batch, seq, hidden).
        With ``cache`` the chunk's K/V are written first and attention reads the cache."""
        from mantile_rope_yarn.reference import apply_rotary
        from mantile_swa_cache.reference import attention, windowed_attention

        batch, seq, _ = hidden_states.shape
        positions = torch.arange(start, start + seq)
        q = self.q_proj(hidden_states).view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.rope_tables(positions, torch.float32)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        scale = 1.0 / math.sqrt(self.head_dim)
        if cache is not None and not isinstance(cache, FullKVCache):  # the sliding plugin's ring
            if cache.length != start:
                raise ValueError(f"the ring cache holds {cache.length} tokens; the chunk starts at {start}")
            out, mask = windowed_attention(cache, q, k, v, sinks=self.sinks, scale=scale)
        else:
            keys, values, key_pos = (k, v, positions) if cache is None else cache.update(k, v, positions)
            mask = self.mask(positions, key_pos)
            out = attention(q, keys.to(q.dtype), values.to(q.dtype), mask, sinks=self.sinks, scale=scale)
        self.last_mask = mask
        out = out.transpose(1, 2).reshape(batch, seq, self.heads * self.head_dim)
        return self.o_proj(out)

    # --- tensor parallelism ---------------------------------------------------------------
    def shard(self, rank: int, tp: int) -> "GptOssAttentionReference":
        """Rank ``rank``'s module under ``tp``-way tensor parallelism: heads/tp query heads
        (q rows, q bias, sinks, o_proj input columns), kv_heads/tp KV heads or, when tp >
        kv_heads, the one KV head its query heads share (replicated); o_proj bias on rank 0."""
        if self.heads % tp or (self.kv_heads % tp and tp % self.kv_heads):
            raise ValueError(f"tp={tp} cannot split heads={self.heads}, kv_heads={self.kv_heads}")
        hl, dh = self.heads // tp, self.head_dim
        kvl = max(self.kv_heads // tp, 1)
        group = self.heads // self.kv_heads
        kv0 = rank * kvl if self.kv_heads >= tp else (rank * hl) // group
        q_rows = slice(rank * hl * dh, (rank + 1) * hl * dh)
        kv_rows = slice(kv0 * dh, (kv0 + kvl) * dh)
        dtype = self.q_proj.weight.dtype
        out = GptOssAttentionReference(self.hidden, hl, kvl, dh, window=self.window, rope=self.rope,
                                       max_position=self.max_position, o_bias=rank == 0, dtype=dtype)
        with torch.no_grad():
            out.q_proj.weight.copy_(self.q_proj.weight[q_rows])
            out.q_proj.bias.copy_(self.q_proj.bias[q_rows])
            for name in ("k_proj", "v_proj"):
                getattr(out, name).weight.copy_(getattr(self, name).weight[kv_rows])
                getattr(out, name).bias.copy_(getattr(self, name).bias[kv_rows])
            out.o_proj.weight.copy_(self.o_proj.weight[:, q_rows])
            if rank == 0 and self.o_proj.bias is not None:
                out.o_proj.bias.copy_(self.o_proj.bias)
            out.sinks.copy_(self.sinks[rank * hl:(rank + 1) * hl])
        return out


def from_layer(layer, dtype: torch.dtype = torch.float32, max_position: int | None = None,
               rope: Mapping | None = None) -> GptOssAttentionReference:
    """A reference module with the shapes of an estimator layer (``GptOssAttention`` from
    :mod:`mantile_gpt_oss_attention.layers`), random weights."""
    return GptOssAttentionReference(layer.hidden, layer.heads, layer.kv_heads, layer.head_dim, window=layer.window,
                                    rope=rope, max_position=max_position or layer.max_position,
                                    o_bias=layer.o_bias, dtype=dtype)
