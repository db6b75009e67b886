"""Closed-form counts of a sliding-window attention layer, per sequence and per KV head.

A window of ``W`` keys includes the query itself: key j is visible to query i when
``i - W < j <= i``. Every function is pure integer arithmetic (``+ - * //`` and comparisons
turned into 0/1 factors), so it takes Python ints or numpy int64 arrays of one shape and returns
the same kind, element-wise; no Python ``min``/``max``/``if`` touches an argument. ``window``
must be positive (the core calls a sliding policy only for layers that have a window).

Formulas (T(n) = n(n+1)/2, relu(x) = x·[x > 0]):

- ``window_positions(tokens, W) = min(tokens, W) = tokens − relu(tokens − W)``;
- ``window_pairs(S, P, W) = Σ_{i=P}^{P+S−1} min(i+1, W)
  = S·P + T(S) − T(relu(P+S−W)) + T(relu(P−W))``
  (the causal count minus the keys that fell out of each query's window);
- ``paged_blocks(tokens, W, b)``: the step that writes position ``p = tokens − 1`` holds blocks
  ``floor(relu(p−W+1)/b) .. floor(p/b)``, i.e. ``floor((tokens−1)/b) − floor(relu(tokens−W)/b) + 1``
  blocks (0 when tokens = 0).

Chunked attention (Llama 4's ``attention_chunk_size`` C): key j is visible to query i when
``floor(j/C) = floor(i/C)`` and ``j <= i``, so the query at position i sees ``(i mod C) + 1``
keys, and only the current chunk's keys are ever needed again:

- ``chunk_positions(tokens, C) = ((tokens − 1) mod C) + 1`` (0 when tokens = 0): the keys the
  query at position tokens−1 sees, and what a per-chunk buffer holds;
- ``chunk_pairs(S, P, C) = F(P+S) − F(P)`` with ``F(n) = Σ_{i<n} ((i mod C) + 1)
  = floor(n/C)·T(C) + T(n mod C)``;
- ``chunk_paged_blocks(tokens, C, b)``: the step writing position p holds blocks
  ``floor(floor(p/C)·C / b) .. floor(p/b)`` (vLLM frees every block before the chunk start).
"""

from __future__ import annotations

from typing import Any

__all__ = ["relu", "triangle", "window_positions", "window_pairs", "paged_blocks", "paged_positions",
           "chunk_positions", "chunk_prefix_pairs", "chunk_pairs", "chunk_paged_blocks", "chunk_paged_positions"]

Int = Any  # int or numpy int64 array


def relu(x: Int) -> Int:
    """max(x, 0) element-wise, as ``x · [x > 0]`` (keeps ints ints and arrays arrays)."""
    return x * (x > 0)


def triangle(n: Int) -> Int:
    """T(n) = n(n+1)/2 = 1 + 2 + ... + n."""
    return n * (n + 1) // 2


def window_positions(tokens: Int, window: Int) -> Int:
    """min(tokens, W): the keys a query at position tokens−1 sees, and a ring buffer's
    occupied slots after ``tokens`` tokens were written."""
    return tokens - relu(tokens - window)


def window_pairs(new: Int, cached: Int, window: Int) -> Int:
    """(query, key) pairs of ``new`` queries at positions cached..cached+new−1 under a window
    of W: Σ min(i+1, W) = S·P + T(S) − T(relu(P+S−W)) + T(relu(P−W)). Prefill of S tokens
    (P = 0, S ≥ W) gives S·W − W(W−1)/2."""
    return (new * cached + triangle(new)
            - triangle(relu(cached + new - window)) + triangle(relu(cached - window)))


def paged_blocks(tokens: Int, window: Int, block: Int) -> Int:
    """Blocks of ``block`` tokens a paged engine (vLLM) holds once ``tokens`` tokens are
    written: floor((tokens−1)/block) − floor(relu(tokens−W)/block) + 1."""
    return (tokens - 1) // block - relu(tokens - window) // block + 1


def paged_positions(tokens: Int, window: Int, block: Int) -> Int:
    """Slots of those blocks: paged_blocks · block (whole blocks are allocated)."""
    return paged_blocks(tokens, window, block) * block


def chunk_positions(tokens: Int, chunk: Int) -> Int:
    """((tokens−1) mod C) + 1, 0 when tokens = 0: the keys the query at position tokens−1 sees
    under chunked attention, and the positions a per-chunk buffer holds after ``tokens`` writes."""
    return (tokens - chunk * ((tokens - 1) // chunk)) * (tokens > 0)


def chunk_prefix_pairs(n: Int, chunk: Int) -> Int:
    """F(n) = Σ_{i<n} ((i mod C) + 1) = floor(n/C)·T(C) + T(n mod C): the (query, key) pairs of
    the first n positions under chunked attention."""
    return (n // chunk) * triangle(chunk) + triangle(n % chunk)


def chunk_pairs(new: Int, cached: Int, chunk: Int) -> Int:
    """(query, key) pairs of ``new`` queries at positions cached..cached+new−1 under chunks of
    C: F(cached + new) − F(cached)."""
    return chunk_prefix_pairs(cached + new, chunk) - chunk_prefix_pairs(cached, chunk)


def chunk_paged_blocks(tokens: Int, chunk: Int, block: Int) -> Int:
    """Blocks a paged engine holds once ``tokens`` are written under chunked attention: from the
    block of the current chunk's start floor(p/C)·C to the block of p = tokens−1, i.e.
    floor(p/b) − floor(floor(p/C)·C/b) + 1 (0 when tokens = 0)."""
    last = tokens - 1
    start = (last // chunk) * chunk
    return (last // block - start // block + 1) * (tokens > 0)


def chunk_paged_positions(tokens: Int, chunk: Int, block: Int) -> Int:
    """Slots of those blocks: chunk_paged_blocks · block."""
    return chunk_paged_blocks(tokens, chunk, block) * block
