"""Logit soft-capping: ``cap · tanh(x / cap)`` squashes logits smoothly into (−cap, cap).

Gemma 2 caps attention logits (``attn_logit_softcapping`` = 50) and final logits
(``final_logit_softcapping`` = 30); Gemma 4 caps final logits. One implementation serves both
places (and any other family that imports it):

- FLOPs: :data:`SOFTCAP_FLOPS_PER_ELEMENT` = 3 per capped element (divide by cap, tanh,
  multiply by cap), counted as elementwise work (no GEMM);
- attention: the capped elements are the (query, key) logits actually attended, per query
  head: ``3 · heads_local · pairs``;
- final logits: ``3 · batch · vocab_local`` for the sampled position of each sequence.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SOFTCAP_FLOPS_PER_ELEMENT", "softcap_flops", "check_cap"]

SOFTCAP_FLOPS_PER_ELEMENT = 3


def softcap_flops(cap: float | None, elements: Any) -> Any:
    """FLOPs of capping ``elements`` logits: 3 per element, 0 when ``cap`` is None."""
    return 0 if cap is None else SOFTCAP_FLOPS_PER_ELEMENT * elements


def check_cap(value: Any, key: str, where: str) -> float | None:
    """A soft-cap from a config: None (absent or null) or a positive finite number."""
    import math

    from mantile_core.errors import ConfigError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: {key!r} must be a positive number or null (got {value!r})")
    return float(value)
