"""rope_type "proportional" (Gemma 4's global layers), as transformers 5.24 computes it.

With head_dim ``D``, ``p`` = partial_rotary_factor and ``r = int(p·D // 2)`` rotated pairs:
``inv_freq_j = theta^(−2j/D) / factor`` for ``j < r`` (the exponent over the whole head_dim,
unlike partial RoPE's ``2j/(p·D)``); the other ``D/2 − r`` pairs get frequency 0 (cos 1,
sin 0: not rotated). The returned inv_freq holds the r rotated pairs (rotary_dim = 2r, the
elements the attention layer counts 3 FLOPs for); attention_factor 1.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy
from mantile_core.errors import ConfigError
from mantile_core.records import RopeResult, RopeScaling

__all__ = ["proportional_inv_freq", "PROPORTIONAL_SCALING"]


def proportional_inv_freq(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int) -> RopeResult:
    """inv_freq of the rotated pairs (float64) and attention factor 1."""
    try:
        theta = float(rope.get("rope_theta", 10000.0))
        factor = float(rope.get("factor", 1.0) or 1.0)
        proportion = float(rope.get("partial_rotary_factor", 1.0))
    except (TypeError, ValueError):
        raise ConfigError(f"proportional rope parameters must be numbers (got {dict(rope)!r:.80})") from None
    if theta <= 0 or factor <= 0 or not 0 < proportion <= 1:
        raise ConfigError(f"proportional rope needs rope_theta > 0, factor > 0 and 0 < partial_rotary_factor <= 1 "
                          f"(got {theta}, {factor}, {proportion})")
    pairs = int(proportion * head_dim // 2)
    exponent = numpy.arange(0, 2 * pairs, 2, dtype=numpy.int64).astype(numpy.float64) / head_dim
    return RopeResult(1.0 / theta ** exponent / factor, 1.0)


PROPORTIONAL_SCALING = RopeScaling("proportional", proportional_inv_freq,
                                   "Gemma 4: partial RoPE with exponents over the whole head_dim")
