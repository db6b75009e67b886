"""Torch-backed checks for ``mantile validate``: the analytic counts of the ring policy equal
what the reference allocates and masks, and attending over the ring equals attending over the
full cache with the exact sliding mask.

The analytic side goes through the core's own :class:`Attention` layer with the ``ring``
policy in its :class:`Step`, so the checks cover the layer's byte and FLOP formulas too.
"""

from __future__ import annotations

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["CASES", "check_ring_bytes", "check_mask_pairs", "check_ring_equals_full", "check_chunked_mask_pairs",
           "check_chunked_resident", "check_chunked_equals_full"]

# (batch, query heads, kv heads, head_dim, window)
SHAPE = (2, 8, 2, 16, 32)
# chunks written one after another (tokens): prefill shorter than, equal to and longer than
# the window, chunks crossing its boundary, then decode steps
SCHEDULE = (5, 27, 1, 40, 3, 1, 1, 64, 1, 1)
TOLERANCE = 1e-5


# chunked attention: chunk of 16 positions, a schedule crossing several chunk boundaries in
# prefill chunks and in decode (positions 47 -> 48 open a chunk)
CHUNK = 16
CHUNK_SCHEDULE = (5, 20, 1, 1, 13, 7, 1, 1, 1, 40, 1)


def _layer(window: int | None, chunk: int | None = None):
    from mantile_core.dtypes import get_dtype
    from mantile_core.layers.attention import Attention

    batch, heads, kv_heads, dim, _ = SHAPE
    bf16 = get_dtype("bf16")
    return Attention(hidden=heads * dim, heads=heads, kv_heads=kv_heads, head_dim=dim, rotary_dim=dim,
                     weight_dtype=bf16, bias_dtype=bf16, window=window, chunk=chunk)


def _step(batch: int, new: int, cached: int, dtype: str = "bf16"):
    from mantile_core.workload import Step

    from .policies import CHUNKED_RING, RING

    return Step(batch=batch, new_tokens=new, cached=cached, kv_dtype=dtype,
                policies={"sliding": RING, "chunked": CHUNKED_RING})


def check_ring_bytes() -> ValidationOutcome:
    """After a decode step at context C ≥ W−1, the ring's K+V nbytes (bf16) equal the layer's
    analytic kv_cache_bytes 2·B·Hkv·min(C+1, W)·D·2."""
    import torch

    from .reference import RingKVCache

    batch, _, kv_heads, dim, window = SHAPE
    layer = _layer(window)
    lines, ok = [], True
    for context in (window - 1, window, 3 * window + 7, 1000):
        cache = RingKVCache(batch, kv_heads, window, dim, torch.bfloat16)
        cache.write(torch.zeros(batch, kv_heads, context + 1, dim, dtype=torch.bfloat16),
                    torch.zeros(batch, kv_heads, context + 1, dim, dtype=torch.bfloat16))
        analytic = int(layer.cost(_step(batch, 1, context)).kv_cache_bytes)
        ok &= cache.nbytes == analytic and cache.resident()[2].numel() == window
        lines.append(f"C={context}: {cache.nbytes}={analytic}")
    return ValidationOutcome(ok, "ring nbytes vs analytic: " + ", ".join(lines))


def check_mask_pairs() -> ValidationOutcome:
    """Over a chunked prefill and decode schedule, the allowed entries of every mask the
    reference applies equal the analytic window pairs, and the layer's attention FLOPs equal
    4·D·Hq·B·pairs."""
    import torch

    from .counts import window_pairs
    from .reference import RingKVCache, windowed_attention

    batch, heads, kv_heads, dim, window = SHAPE
    layer = _layer(window)
    cache = RingKVCache(batch, kv_heads, window, dim)
    counted = analytic = 0
    ok = True
    for new in SCHEDULE:
        cached = cache.length
        q = torch.zeros(batch, heads, new, dim)
        kv = torch.zeros(batch, kv_heads, new, dim)
        _, mask = windowed_attention(cache, q, kv, kv)
        pairs = int(window_pairs(new, cached, window))
        flops = int(layer.cost(_step(batch, new, cached)).attention_flops)
        ok &= int(mask.sum()) == pairs and flops == 4 * dim * heads * batch * int(mask.sum())
        counted += int(mask.sum())
        analytic += pairs
    return ValidationOutcome(ok, f"mask entries {counted} = analytic pairs {analytic} over chunks {SCHEDULE}, W={window}")


def check_ring_equals_full() -> ValidationOutcome:
    """Windowed attention over the ring (chunked prefill crossing the window, decode) equals
    full-cache attention with the exact sliding mask, float32, GQA, with and without sinks."""
    import torch

    from .reference import RingKVCache, full_cache_attention, windowed_attention

    batch, heads, kv_heads, dim, window = SHAPE
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for with_sinks in (False, True):
        sinks = torch.randn(heads, generator=generator) if with_sinks else None
        cache = RingKVCache(batch, kv_heads, window, dim)
        k_all = torch.empty(batch, kv_heads, 0, dim)
        v_all = torch.empty(batch, kv_heads, 0, dim)
        for new in SCHEDULE:
            q = torch.randn(batch, heads, new, dim, generator=generator)
            k = torch.randn(batch, kv_heads, new, dim, generator=generator)
            v = torch.randn(batch, kv_heads, new, dim, generator=generator)
            k_all, v_all = torch.cat([k_all, k], dim=2), torch.cat([v_all, v], dim=2)
            ring, _ = windowed_attention(cache, q, k, v, sinks=sinks)
            full = full_cache_attention(q, k_all, v_all, window, sinks=sinks)
            worst = max(worst, float((ring - full).abs().max()))
    return ValidationOutcome(worst <= TOLERANCE, f"max |ring - full| = {worst:.3g} (tolerance {TOLERANCE:g}) over "
                                                  f"{sum(SCHEDULE)} tokens, W={window}, GQA {heads}/{kv_heads}, sinks on/off")


def _transformers_chunked_mask(q_pos, k_pos, chunk: int):
    """transformers' own chunked causal mask over the same positions, or None without it."""
    try:
        import torch
        from transformers.masking_utils import chunked_causal_mask_function
    except ImportError:
        return None
    fn = chunked_causal_mask_function(chunk, torch.zeros(1, dtype=torch.long))
    zero = torch.zeros((), dtype=torch.long)
    return torch.stack([torch.stack([torch.as_tensor(fn(zero, zero, q, k)) for k in k_pos]) for q in q_pos])


def check_chunked_mask_pairs() -> ValidationOutcome:
    """Over chunked prefill and decode crossing chunk boundaries: allowed entries of every mask
    the chunk-cache reference applies = analytic ``chunk_pairs``, the layer's attention FLOPs =
    4·D·Hq·B·pairs, and the reference's mask over the whole sequence equals transformers'
    ``chunked_causal_mask_function`` (when transformers is installed)."""
    import torch

    from .counts import chunk_pairs
    from .reference import ChunkKVCache, chunked_attention, chunked_mask

    batch, heads, kv_heads, dim, _ = SHAPE
    layer = _layer(None, CHUNK)
    cache = ChunkKVCache(batch, kv_heads, CHUNK, dim)
    counted = analytic = 0
    ok = True
    for new in CHUNK_SCHEDULE:
        cached = cache.length
        q = torch.zeros(batch, heads, new, dim)
        kv = torch.zeros(batch, kv_heads, new, dim)
        _, mask = chunked_attention(cache, q, kv, kv)
        pairs = int(chunk_pairs(new, cached, CHUNK))
        flops = int(layer.cost(_step(batch, new, cached)).attention_flops)
        ok &= int(mask.sum()) == pairs and flops == 4 * dim * heads * batch * pairs
        counted += int(mask.sum())
        analytic += pairs
    total = sum(CHUNK_SCHEDULE)
    positions = torch.arange(total)
    ours = chunked_mask(positions, positions, CHUNK)
    theirs = _transformers_chunked_mask(positions, positions, CHUNK)
    same = "transformers not installed" if theirs is None else f"mask = transformers' {bool(torch.equal(ours, theirs))}"
    ok &= theirs is None or bool(torch.equal(ours, theirs))
    ok &= int(ours.sum()) == int(chunk_pairs(total, 0, CHUNK))
    return ValidationOutcome(ok, f"mask entries {counted} = analytic pairs {analytic} over chunks {CHUNK_SCHEDULE}, "
                                 f"C={CHUNK}; {same}")


def check_chunked_resident() -> ValidationOutcome:
    """After every step of the schedule, the positions the chunk cache keeps live equal the
    policy's ``chunked-ring`` resident positions, their K+V bytes (bf16) equal the layer's
    analytic kv_cache_bytes, and never exceed the C-slot allocation."""
    import torch

    from .reference import ChunkKVCache, chunked_attention

    batch, heads, kv_heads, dim, _ = SHAPE
    layer = _layer(None, CHUNK)
    cache = ChunkKVCache(batch, kv_heads, CHUNK, dim, torch.bfloat16)
    ok, seen = True, []
    for new in CHUNK_SCHEDULE:
        cached = cache.length
        q = torch.zeros(batch, heads, new, dim, dtype=torch.bfloat16)
        kv = torch.zeros(batch, kv_heads, new, dim, dtype=torch.bfloat16)
        chunked_attention(cache, q, kv, kv)
        k, v, pos = cache.resident()
        live = int(k.nbytes + v.nbytes)
        analytic = int(layer.cost(_step(batch, new, cached)).kv_cache_bytes)
        ok &= live == analytic and live <= cache.nbytes
        seen.append(pos.numel())
    return ValidationOutcome(ok, f"live positions per step {seen} (C={CHUNK}) = analytic; bytes <= {cache.nbytes}")


def check_chunked_equals_full() -> ValidationOutcome:
    """Attention over the current-chunk cache equals full-cache attention with the exact chunked
    mask, float32, GQA, over the schedule (max abs error <= 1e-5)."""
    import torch

    from .reference import ChunkKVCache, chunked_attention, full_cache_attention

    batch, heads, kv_heads, dim, _ = SHAPE
    generator = torch.Generator().manual_seed(1)
    cache = ChunkKVCache(batch, kv_heads, CHUNK, dim)
    k_all = torch.empty(batch, kv_heads, 0, dim)
    v_all = torch.empty(batch, kv_heads, 0, dim)
    worst = 0.0
    for new in CHUNK_SCHEDULE:
        q = torch.randn(batch, heads, new, dim, generator=generator)
        k = torch.randn(batch, kv_heads, new, dim, generator=generator)
        v = torch.randn(batch, kv_heads, new, dim, generator=generator)
        k_all, v_all = torch.cat([k_all, k], dim=2), torch.cat([v_all, v], dim=2)
        ours, _ = chunked_attention(cache, q, k, v)
        full = full_cache_attention(q, k_all, v_all, None, chunk=CHUNK)
        worst = max(worst, float((ours - full).abs().max()))
    return ValidationOutcome(worst <= TOLERANCE, f"max |chunk cache - full| = {worst:.3g} (tolerance {TOLERANCE:g}) "
                                                  f"over {sum(CHUNK_SCHEDULE)} tokens, C={CHUNK}")


CASES = [
    ValidationCase("swa-cache-chunked-equals-full", check_chunked_equals_full,
                   "attention over the current-chunk cache = full-cache attention with the exact chunked mask"),
    ValidationCase("swa-cache-chunked-mask-pairs", check_chunked_mask_pairs,
                   "chunked mask entries = analytic chunk pairs and attention FLOPs; mask = transformers'"),
    ValidationCase("swa-cache-chunked-resident", check_chunked_resident,
                   "live chunk-cache K+V bytes = analytic chunked-ring resident KV bytes of the layer"),
    ValidationCase("swa-cache-mask-pairs", check_mask_pairs,
                   "mask entries the ring reference applies = analytic window pairs and attention FLOPs"),
    ValidationCase("swa-cache-ring-bytes", check_ring_bytes,
                   "ring buffer K+V nbytes = analytic resident KV bytes of the layer"),
    ValidationCase("swa-cache-ring-equals-full", check_ring_equals_full,
                   "attention over the ring = full-cache attention with the exact sliding mask (<= 1e-5)"),
]
