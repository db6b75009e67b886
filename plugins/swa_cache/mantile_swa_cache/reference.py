"""Torch reference of sliding-window attention over a ring-buffer KV cache.

torch is imported inside the functions (``pip install './plugins/swa_cache[torch]'`` from the Mantile checkout), never when
the estimator imports the plugin. The public names ``RingKVCache``, ``sliding_mask`` and
``attention`` are imported by other plugins' references (the GPT-OSS attention); keep them.

Conventions: q is (B, Hq, S, D), k and v are (B, Hkv, L, D) with Hq a multiple of Hkv (query
head h uses KV head h // (Hq/Hkv), as transformers' ``repeat_kv``); a mask is bool, True where
a key is visible, broadcastable to (B, Hq, S, L). A window W includes the query itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RingKVCache", "ChunkKVCache", "sliding_mask", "chunked_mask", "attention", "windowed_attention",
           "chunked_attention", "full_cache_attention"]


def _torch():
    import torch

    return torch


def _dtype(dtype: Any):
    torch = _torch()
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


class RingKVCache:
    """A KV cache of exactly ``window`` slots per sequence and KV head.

    The token at absolute position p lives in slot ``p % window``; ``positions[s]`` is the
    absolute position held by slot s (−1: never written). Tokens are written in order, so after
    ``length`` tokens the slots hold positions max(0, length−W) .. length−1. Memory is fixed at
    allocation: ``nbytes = 2·B·Hkv·W·D·itemsize`` (K and V).
    """

    def __init__(self, batch: int, kv_heads: int, window: int, head_dim: int, dtype: Any = "float32",
                 device: Any = None) -> None:
        torch = _torch()
        if window <= 0:
            raise ValueError(f"'window' must be positive (got {window})")
        self.window = window
        shape = (batch, kv_heads, window, head_dim)
        self.k = torch.zeros(shape, dtype=_dtype(dtype), device=device)
        self.v = torch.zeros(shape, dtype=_dtype(dtype), device=device)
        self.positions = torch.full((window,), -1, dtype=torch.long, device=device)
        self.length = 0

    @property
    def nbytes(self) -> int:
        """Bytes allocated for K and V: 2·B·Hkv·W·D·itemsize."""
        return int(self.k.nbytes + self.v.nbytes)

    def write(self, k, v, start: int | None = None) -> None:
        """Store a chunk of new K/V (B, Hkv, S, D) for absolute positions start..start+S−1
        (``start`` defaults to, and must equal, the tokens written so far). Of a chunk longer
        than the window only its last W tokens survive, as in any ring."""
        torch = _torch()
        start = self.length if start is None else start
        if start != self.length:
            raise ValueError(f"ring writes must be contiguous: next position is {self.length}, got {start}")
        count = k.shape[2]
        positions = torch.arange(start, start + count, device=self.positions.device)
        keep = positions[-self.window:]
        slots = keep % self.window
        self.k[:, :, slots] = k[:, :, -self.window:].to(self.k.dtype)
        self.v[:, :, slots] = v[:, :, -self.window:].to(self.v.dtype)
        self.positions[slots] = keep
        self.length = start + count

    def resident(self):
        """(k, v, positions): the held K/V (B, Hkv, n, D) in increasing absolute position and
        those positions (n,), n = min(length, W)."""
        torch = _torch()
        filled = torch.nonzero(self.positions >= 0).flatten()
        order = filled[torch.argsort(self.positions[filled])]
        return self.k[:, :, order], self.v[:, :, order], self.positions[order]


def sliding_mask(q_pos, k_pos, window: int | None):
    """Bool (len(q_pos), len(k_pos)): key j visible to query i when i − W < j <= i
    (transformers' ``sliding_window_causal_mask_function``); ``window`` None is causal j <= i."""
    torch = _torch()
    q = torch.as_tensor(q_pos).reshape(-1, 1)
    k = torch.as_tensor(k_pos).reshape(1, -1)
    mask = k <= q
    if window is not None:
        mask = mask & (k > q - window)
    return mask


def chunked_mask(q_pos, k_pos, chunk: int):
    """Bool (len(q_pos), len(k_pos)): key j visible to query i when floor(j/C) = floor(i/C) and
    j <= i (transformers' ``chunked_causal_mask_function`` without padding)."""
    torch = _torch()
    q = torch.as_tensor(q_pos).reshape(-1, 1)
    k = torch.as_tensor(k_pos).reshape(1, -1)
    return (k <= q) & (torch.div(k, chunk, rounding_mode="floor") == torch.div(q, chunk, rounding_mode="floor"))


class ChunkKVCache(RingKVCache):
    """A KV cache of ``chunk`` slots per sequence and KV head that keeps the current chunk only.

    Position p lives in slot ``p % C``; the live positions are those of the chunk of the last
    written position, ``floor(p/C)·C .. p``: ``((length−1) mod C) + 1`` of them. Memory is fixed
    at allocation, ``nbytes = 2·B·Hkv·C·D·itemsize``: the chunked layer's bound.
    """

    def __init__(self, batch: int, kv_heads: int, chunk: int, head_dim: int, dtype: Any = "float32",
                 device: Any = None) -> None:
        super().__init__(batch, kv_heads, chunk, head_dim, dtype, device)
        self.chunk = chunk

    def resident(self):
        """(k, v, positions) of the current chunk in increasing position."""
        torch = _torch()
        if self.length == 0:
            return super().resident()
        start = ((self.length - 1) // self.chunk) * self.chunk
        live = torch.nonzero(self.positions >= start).flatten()
        order = live[torch.argsort(self.positions[live])]
        return self.k[:, :, order], self.v[:, :, order], self.positions[order]


def chunked_attention(cache: ChunkKVCache, q, k, v, scale: float | None = None):
    """Attend a chunk of queries (B, Hq, S, D) at positions cache.length.. with their new K/V
    over the current-chunk cache, then leave them in it; returns (out, mask applied). Decode
    writes first and attends the live chunk; a longer span attends [live chunk, new] before
    writing (its first queries may belong to the chunk the new tokens close)."""
    torch = _torch()
    start, count = cache.length, q.shape[2]
    q_pos = torch.arange(start, start + count, device=q.device)
    if count == 1:
        cache.write(k, v)
        keys, values, k_pos = cache.resident()
    else:
        old_k, old_v, old_pos = cache.resident()
        keys = torch.cat([old_k.to(k.dtype), k], dim=2)
        values = torch.cat([old_v.to(v.dtype), v], dim=2)
        k_pos = torch.cat([old_pos, q_pos])
        cache.write(k, v)
    mask = chunked_mask(q_pos, k_pos, cache.chunk)
    return attention(q, keys, values, mask, scale=scale), mask


def attention(q, k, v, mask, sinks=None, scale: float | None = None, softcap: float | None = None):
    """softmax(q·kᵀ·scale masked) · v with grouped KV heads.

    ``sinks`` (Hq,) are per-head logits that join the softmax denominator and are then dropped:
    probabilities = softmax([logits, sink])[..., :L], so out = softmax_out · sigmoid(lse − sink).
    ``scale`` defaults to D^−1/2; ``softcap`` caps the scaled logits, ``cap·tanh(x/cap)``,
    before masking (Gemma 2). Returns (B, Hq, S, D) in q's dtype.
    """
    torch = _torch()
    batch, heads, queries, dim = q.shape
    kv_heads = k.shape[1]
    if heads % kv_heads:
        raise ValueError(f"query heads {heads} must be a multiple of KV heads {kv_heads}")
    groups = heads // kv_heads
    k = k.repeat_interleave(groups, dim=1)
    v = v.repeat_interleave(groups, dim=1)
    scale = dim ** -0.5 if scale is None else scale
    logits = torch.matmul(q, k.transpose(-1, -2)) * scale
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    logits = logits.masked_fill(~mask.to(torch.bool), float("-inf"))
    if sinks is not None:
        sink = sinks.to(logits.dtype).reshape(1, heads, 1, 1).expand(batch, heads, queries, 1)
        logits = torch.cat([logits, sink], dim=-1)
    logits = logits - logits.amax(dim=-1, keepdim=True)
    wide = torch.promote_types(logits.dtype, torch.float32)  # softmax in at least float32
    probs = torch.softmax(logits.to(wide), dim=-1).to(q.dtype)
    if sinks is not None:
        probs = probs[..., :-1]
    return torch.matmul(probs, v)


def windowed_attention(cache: RingKVCache, q, k, v, sinks=None, scale: float | None = None):
    """Attend a chunk of queries q (B, Hq, S, D) at positions cache.length.. with their new K/V
    over the ring, then leave the chunk in the ring. Returns (out, mask) — the mask actually
    applied, whose True entries are the (query, key) pairs attended per sequence and head.

    Decode (S = 1) writes first and attends over the W slots alone (the window includes the
    query, so W slots suffice); a longer chunk attends over [resident, chunk] before writing,
    since its first queries still need keys the chunk will overwrite.
    """
    torch = _torch()
    start, count = cache.length, q.shape[2]
    q_pos = torch.arange(start, start + count, device=q.device)
    if count == 1:
        cache.write(k, v)
        keys, values, k_pos = cache.resident()
    else:
        old_k, old_v, old_pos = cache.resident()
        keys = torch.cat([old_k.to(k.dtype), k], dim=2)
        values = torch.cat([old_v.to(v.dtype), v], dim=2)
        k_pos = torch.cat([old_pos, q_pos])
        cache.write(k, v)
    mask = sliding_mask(q_pos, k_pos, cache.window)
    return attention(q, keys, values, mask, sinks=sinks, scale=scale), mask


def full_cache_attention(q, k_all, v_all, window: int | None, sinks=None, scale: float | None = None,
                         chunk: int | None = None):
    """The comparison path: every position 0..L−1 cached, queries the last S of them, the exact
    sliding (or, with ``chunk``, chunked) mask over the whole cache."""
    torch = _torch()
    total, count = k_all.shape[2], q.shape[2]
    q_pos = torch.arange(total - count, total, device=q.device)
    k_pos = torch.arange(total, device=q.device)
    mask = chunked_mask(q_pos, k_pos, chunk) if chunk is not None else sliding_mask(q_pos, k_pos, window)
    return attention(q, k_all, v_all, mask, sinks=sinks, scale=scale)
