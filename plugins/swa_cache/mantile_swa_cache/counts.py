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
"""

from __future__ import annotations

from typing import Any

__all__ = ["relu", "triangle", "window_positions", "window_pairs", "paged_blocks", "paged_positions"]

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
