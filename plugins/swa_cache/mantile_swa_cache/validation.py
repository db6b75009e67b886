"""Torch-backed checks for ``mantile validate``: the analytic counts of the ring policy equal
what the reference allocates and masks, and attending over the ring equals attending over the
full cache with the exact sliding mask.

The analytic side goes through the core's own :class:`Attention` layer with the ``ring``
policy in its :class:`Step`, so the checks cover the layer's byte and FLOP formulas too.
"""

from __future__ import annotations

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["CASES", "check_ring_bytes", "check_mask_pairs", "check_ring_equals_full"]

# (batch, query heads, kv heads, head_dim, window)
SHAPE = (2, 8, 2, 16, 32)
# chunks written one after another (tokens): prefill shorter than, equal to and longer than
# the window, chunks crossing its boundary, then decode steps
SCHEDULE = (5, 27, 1, 40, 3, 1, 1, 64, 1, 1)
TOLERANCE = 1e-5


def _layer(window: int):
    from mantile_core.dtypes import get_dtype
    from mantile_core.layers.attention import Attention

    batch, heads, kv_heads, dim, _ = SHAPE
    bf16 = get_dtype("bf16")
    return Attention(hidden=heads * dim, heads=heads, kv_heads=kv_heads, head_dim=dim, rotary_dim=dim,
                     weight_dtype=bf16, bias_dtype=bf16, window=window)


def _step(batch: int, new: int, cached: int, dtype: str = "bf16"):
    from mantile_core.workload import Step

    from .policies import RING

    return Step(batch=batch, new_tokens=new, cached=cached, kv_dtype=dtype, policies={"sliding": RING})


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


CASES = [
    ValidationCase("swa-cache-mask-pairs", check_mask_pairs,
                   "mask entries the ring reference applies = analytic window pairs and attention FLOPs"),
    ValidationCase("swa-cache-ring-bytes", check_ring_bytes,
                   "ring buffer K+V nbytes = analytic resident KV bytes of the layer"),
    ValidationCase("swa-cache-ring-equals-full", check_ring_equals_full,
                   "attention over the ring = full-cache attention with the exact sliding mask (<= 1e-5)"),
]
