"""The sliding-window KV-cache policies: ``ring`` (default), ``paged`` and ``full``.

All three attend the same pairs (the mask is the model's, whatever the cache keeps) and a
decode step reads the window's ``min(tokens, W)`` keys (a windowed kernel starts at key
p−W+1 whatever else is resident); they differ in what stays resident:

- ``ring``: W slots per sequence, ``min(tokens, W)`` positions held;
- ``paged``: whole blocks of ``block`` tokens as vLLM retains them,
  ``paged_blocks(tokens, W, block) · block`` positions;
- ``full``: every written token (engines without sliding-window eviction).

Chunked attention (mask ``"chunked"``, span = the chunk C) has the same three retentions,
selected by the same ``--kv-policy`` names (``retention``): ``chunked-ring`` (default) holds
the current chunk, ``((tokens−1) mod C) + 1`` positions; ``chunked-paged`` whole blocks from the
chunk's start; ``chunked-full`` every written token. All attend ``chunk_pairs`` and a decode step
reads the current chunk's keys.
"""

from __future__ import annotations

from mantile_core.records import CachePolicy

from .counts import (chunk_paged_positions, chunk_pairs, chunk_positions, paged_positions, window_pairs,
                     window_positions)

__all__ = ["RING", "PAGED", "FULL", "CHUNKED_RING", "CHUNKED_PAGED", "CHUNKED_FULL", "POLICIES", "SLIDING",
           "CHUNKED"]

SLIDING = "sliding"
CHUNKED = "chunked"


def window_keys(tokens, window, block=16):
    """min(tokens, W) positions, the window's: what a ring of W slots holds and what a decode
    step writing token number ``tokens`` reads (``block`` is ignored)."""
    return window_positions(tokens, window)


def paged_resident(tokens, window, block=16):
    """Whole blocks from floor(relu(p−W+1)/block) to floor(p/block), p = tokens−1, times block."""
    return paged_positions(tokens, window, block)


def full_resident(tokens, window, block=16):
    """Every written token stays (no eviction)."""
    return tokens


RING = CachePolicy(
    name="ring",
    mask=SLIDING,
    resident_positions=window_keys,
    attended_pairs=window_pairs,
    read_positions=window_keys,
    default=True,
    description="ring buffer of W slots per sequence: min(tokens, W) positions resident",
)

PAGED = CachePolicy(
    name="paged",
    mask=SLIDING,
    resident_positions=paged_resident,
    attended_pairs=window_pairs,
    read_positions=window_keys,
    description="paged blocks of --kv-block tokens as vLLM frees them: blocks "
                "floor(max(0,p-W+1)/b)..floor(p/b) resident",
)

FULL = CachePolicy(
    name="full",
    mask=SLIDING,
    resident_positions=full_resident,
    attended_pairs=window_pairs,
    read_positions=window_keys,
    description="whole context kept (no sliding-window eviction); still attends and reads the window",
)


def current_chunk(tokens, chunk, block=16):
    """((tokens−1) mod C) + 1 positions, the current chunk's: what a chunked ring holds and what
    a decode step writing token number ``tokens`` reads (``block`` is ignored)."""
    return chunk_positions(tokens, chunk)


def chunk_paged_resident(tokens, chunk, block=16):
    """Whole blocks from the current chunk's start to position tokens−1, times block."""
    return chunk_paged_positions(tokens, chunk, block)


CHUNKED_RING = CachePolicy(
    name="chunked-ring",
    mask=CHUNKED,
    resident_positions=current_chunk,
    attended_pairs=chunk_pairs,
    read_positions=current_chunk,
    default=True,
    retention="ring",
    description="a buffer of C slots per sequence holding the current chunk: ((tokens-1) mod C)+1 positions",
)

CHUNKED_PAGED = CachePolicy(
    name="chunked-paged",
    mask=CHUNKED,
    resident_positions=chunk_paged_resident,
    attended_pairs=chunk_pairs,
    read_positions=current_chunk,
    retention="paged",
    description="paged blocks of --kv-block tokens from the current chunk's start, as vLLM frees them",
)

CHUNKED_FULL = CachePolicy(
    name="chunked-full",
    mask=CHUNKED,
    resident_positions=full_resident,
    attended_pairs=chunk_pairs,
    read_positions=current_chunk,
    retention="full",
    description="whole context kept (no per-chunk eviction); still attends and reads the current chunk",
)

POLICIES = [CHUNKED_FULL, CHUNKED_PAGED, CHUNKED_RING, FULL, PAGED, RING]
