"""The sliding-window KV-cache policies: ``ring`` (default), ``paged`` and ``full``.

All three attend the same pairs (the mask is the model's, whatever the cache keeps) and a
decode step reads the window's ``min(tokens, W)`` keys (a windowed kernel starts at key
p−W+1 whatever else is resident); they differ in what stays resident:

- ``ring``: W slots per sequence, ``min(tokens, W)`` positions held;
- ``paged``: whole blocks of ``block`` tokens as vLLM retains them,
  ``paged_blocks(tokens, W, block) · block`` positions;
- ``full``: every written token (engines without sliding-window eviction).
"""

from __future__ import annotations

from mantile_core.records import CachePolicy

from .counts import paged_positions, window_pairs, window_positions

__all__ = ["RING", "PAGED", "FULL", "POLICIES", "SLIDING"]

SLIDING = "sliding"


def ring_resident(tokens, window, block=16):
    """min(tokens, W) positions: a ring of W slots (``block`` is ignored)."""
    return window_positions(tokens, window)


def paged_resident(tokens, window, block=16):
    """Whole blocks from floor(relu(p−W+1)/block) to floor(p/block), p = tokens−1, times block."""
    return paged_positions(tokens, window, block)


def full_resident(tokens, window, block=16):
    """Every written token stays (no eviction)."""
    return tokens


def window_read(tokens, window, block=16):
    """Keys a decode step writing token number ``tokens`` reads: min(tokens, W)."""
    return window_positions(tokens, window)


RING = CachePolicy(
    name="ring",
    mask=SLIDING,
    resident_positions=ring_resident,
    attended_pairs=window_pairs,
    read_positions=window_read,
    default=True,
    description="ring buffer of W slots per sequence: min(tokens, W) positions resident",
)

PAGED = CachePolicy(
    name="paged",
    mask=SLIDING,
    resident_positions=paged_resident,
    attended_pairs=window_pairs,
    read_positions=window_read,
    description="paged blocks of --kv-block tokens as vLLM frees them: blocks "
                "floor(max(0,p-W+1)/b)..floor(p/b) resident",
)

FULL = CachePolicy(
    name="full",
    mask=SLIDING,
    resident_positions=full_resident,
    attended_pairs=window_pairs,
    read_positions=window_read,
    description="whole context kept (no sliding-window eviction); still attends and reads the window",
)

POLICIES = [FULL, PAGED, RING]
