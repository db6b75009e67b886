"""LongRoPE (Ding et al. 2024, arXiv:2402.13753) in the form transformers 5.24 runs for Phi-3.

With ``d`` = rotary_dim = int(head_dim · partial_rotary_factor), ``theta`` = rope_theta,
``L`` = original_max_position_embeddings and per-pair rescale factors ``short_factor`` /
``long_factor`` (d/2 values each):

- ``inv_freq_j = 1 / (ext_j · theta^(2j/d))`` with ``ext`` = ``long_factor`` when the sequence
  is longer than L, ``short_factor`` otherwise (transformers switches per forward on
  ``max(position_ids) + 1 > L``); :func:`compute_longrope` (the registry's compute) returns the
  short table, as transformers' ``_compute_longrope_parameters`` without ``seq_len``;
  :func:`longrope_inv_freq` takes the sequence length;
- ``factor`` = the explicit ``factor`` else ``max_position_embeddings / L``;
- ``attention_factor`` (scales cos and sin): the explicit ``attention_factor``, else
  ``sqrt(1 + ln(factor) / ln(L))`` for factor > 1, else 1. Phi-3-mini-128k (factor 32, L 4096):
  1.1902380714238083. (Phi-3.5-MoE's modelling uses its ``short_mscale`` / ``long_mscale``
  instead, a family detail its layers own; the inv_freq are the same.)

Cost: the same 3 FLOPs per rotated element as any RoPE (counted by the attention layer); the
switch between tables costs nothing per token.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy
from mantile_core.errors import ConfigError
from mantile_core.records import RopeResult, RopeScaling
from mantile_core.rope import rotary_dim

__all__ = ["longrope_parameters", "longrope_inv_freq", "compute_longrope", "LONGROPE_SCALING"]


def _number(rope: Mapping, key: str, *, positive: bool = True) -> float | None:
    value = rope.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise ConfigError(f"longrope '{key}' must be a positive number (got {value!r})")
    return float(value)


def _factors(rope: Mapping, key: str, half: int) -> numpy.ndarray:
    value = rope.get(key)
    if not isinstance(value, (list, tuple)) or len(value) != half:
        size = len(value) if isinstance(value, (list, tuple)) else value
        raise ConfigError(f"longrope '{key}' must be a list of rotary_dim/2 = {half} numbers (got {size!r})")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item <= 0:
            raise ConfigError(f"longrope '{key}[{i}]' must be a positive number (got {item!r})")
        out.append(float(item))
    return numpy.asarray(out, dtype=numpy.float64)


def longrope_parameters(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int) -> dict:
    """Validated parameters: theta, dim, short / long factors, original length, factor and the
    attention factor (module docstring)."""
    theta = _number(rope, "rope_theta") or 10000.0
    dim = rotary_dim(rope, head_dim)
    if dim <= 0 or dim % 2:
        raise ConfigError(f"longrope needs an even positive rotary dim (got {dim})")
    original = _number(rope, "original_max_position_embeddings")
    if original is None:
        raise ConfigError("rope_type 'longrope' needs 'original_max_position_embeddings'")
    factor = _number(rope, "factor")
    if factor is None:
        factor = max_position_embeddings / original
    attention = _number(rope, "attention_factor")
    if attention is None:
        attention = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    return {"theta": theta, "dim": dim, "short": _factors(rope, "short_factor", dim // 2),
            "long": _factors(rope, "long_factor", dim // 2), "original": original, "factor": factor,
            "attention_factor": attention}


def longrope_inv_freq(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int,
                      seq_len: int | None = None) -> RopeResult:
    """inv_freq (float64) and attention factor for a sequence of ``seq_len`` positions: the
    long factors beyond original_max_position_embeddings, the short ones otherwise."""
    p = longrope_parameters(rope, head_dim, max_position_embeddings)
    ext = p["long"] if seq_len and seq_len > p["original"] else p["short"]
    exponent = numpy.arange(0, p["dim"], 2, dtype=numpy.int64).astype(numpy.float64) / p["dim"]
    return RopeResult(1.0 / (ext * p["theta"] ** exponent), p["attention_factor"])


def compute_longrope(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int) -> RopeResult:
    """The registry's compute: the short table (transformers' initial inv_freq)."""
    return longrope_inv_freq(rope, head_dim, max_position_embeddings)


LONGROPE_SCALING = RopeScaling("longrope", compute_longrope,
                               "LongRoPE: per-pair short/long rescale factors, sqrt(1 + ln f / ln L) attention factor")
