"""YaRN RoPE scaling (Peng et al. 2023, arXiv:2309.00071) in the code form transformers and vLLM run.

With ``d`` = rotary_dim = int(head_dim · partial_rotary_factor), ``theta`` = rope_theta,
``L`` = original_max_position_embeddings, ``s`` = factor and pair index ``j = 0 .. d/2 - 1``:

- extrapolated (unscaled) frequency ``e_j = theta^(-2j/d)``, interpolated ``i_j = e_j / s``;
- correction dim of ``r`` rotations over ``L`` positions:
  ``c(r) = d · ln(L / (2π r)) / (2 ln theta)``; ``low = c(beta_fast)``, ``high = c(beta_slow)``,
  floored / ceiled when ``truncate`` (default true; GPT-OSS sets false), then clamped to
  ``[0, d - 1]`` (d - 1, not d/2 - 1: the bound every implementation uses);
- ramp ``r_j = clip((j - low) / (high - low), 0, 1)``, with ``high += 0.001`` when ``low == high``;
- ``inv_freq_j = e_j · (1 - r_j) + i_j · r_j``: pairs below ``low`` keep their frequency
  (they turn many times within ``L``), pairs above ``high`` are interpolated by ``s``;
- ``attention_factor`` (multiplies cos and sin, so q·k by its square): the explicit
  ``attention_factor`` if given, else DeepSeek's ``m(s, mscale) / m(s, mscale_all_dim)`` when both
  are given and non-zero, else ``m(s, 1)``, where ``m(s, k) = 0.1 · k · ln(s) + 1`` for ``s > 1``
  and 1 otherwise.

``factor`` absent (or null) means ``max_position_embeddings / L``; ``L`` absent with a factor
given falls back to ``max_position_embeddings``, as transformers does.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs
import numpy
from mantile_core import ConfigError
from mantile_core.records import RopeResult, RopeScaling
from mantile_core.rope import rotary_dim

__all__ = [
    "YarnParameters",
    "yarn_parameters",
    "get_mscale",
    "correction_dim",
    "correction_range",
    "linear_ramp",
    "yarn_inv_freq",
    "compute_yarn",
    "YARN_SCALING",
    "DEFAULT_BETA_FAST",
    "DEFAULT_BETA_SLOW",
]

DEFAULT_BETA_FAST = 32.0
DEFAULT_BETA_SLOW = 1.0
RAMP_SINGULARITY_GUARD = 0.001  # added to high when low == high (transformers, vLLM)


@attrs.frozen
class YarnParameters:
    """Validated YaRN parameters: ``theta`` (rope_theta), ``rotary_dim`` (rotated dims per head),
    ``factor`` (context extension ratio), ``original_max_position_embeddings`` (pre-training
    context, positions), ``beta_fast`` / ``beta_slow`` (rotations bounding the ramp),
    ``truncate`` (integer correction range) and the resulting ``attention_factor``."""

    theta: float
    rotary_dim: int
    factor: float
    original_max_position_embeddings: float
    beta_fast: float = DEFAULT_BETA_FAST
    beta_slow: float = DEFAULT_BETA_SLOW
    truncate: bool = True
    attention_factor: float = 1.0


def _number(rope: Mapping[str, Any], key: str) -> float | None:
    """rope[key] as a float, None when absent or null; ConfigError when not a number."""
    value = rope.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, numpy.integer, numpy.floating)):
        raise ConfigError(f"yarn rope '{key}' must be a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"yarn rope '{key}' must be finite (got {value})")
    return value


def _positive(rope: Mapping[str, Any], key: str, allow_zero: bool = False) -> float | None:
    value = _number(rope, key)
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        bound = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"yarn rope '{key}' must be {bound} (got {value:g})")
    return value


def get_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN magnitude correction ``0.1 · mscale · ln(scale) + 1`` for scale > 1, else 1."""
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def correction_dim(num_rotations: float, dim: int, theta: float, original: float) -> float:
    """The (fractional) dim index whose frequency turns ``num_rotations`` times over ``original``
    positions: ``dim · ln(original / (2π · num_rotations)) / (2 · ln theta)``."""
    return dim * math.log(original / (num_rotations * 2 * math.pi)) / (2 * math.log(theta))


def correction_range(beta_fast: float, beta_slow: float, dim: int, theta: float, original: float,
                     truncate: bool = True) -> tuple[float, float]:
    """(low, high) bounds of the ramp in pair indices: correction dims of beta_fast and
    beta_slow, floor / ceil when ``truncate``, clamped to ``[0, dim - 1]``."""
    low = correction_dim(beta_fast, dim, theta, original)
    high = correction_dim(beta_slow, dim, theta, original)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    return max(low, 0), min(high, dim - 1)


def linear_ramp(low: float, high: float, pairs: int) -> numpy.ndarray:
    """``clip((j - low) / (high - low), 0, 1)`` for j in 0..pairs-1, float64; ``high`` gets
    +0.001 when equal to ``low`` (a step at ``low`` instead of a division by zero)."""
    if low == high:
        high = high + RAMP_SINGULARITY_GUARD
    j = numpy.arange(pairs, dtype=numpy.float64)
    return numpy.clip((j - low) / (high - low), 0.0, 1.0)


def _attention_factor(rope: Mapping[str, Any], factor: float) -> float:
    explicit = _positive(rope, "attention_factor")
    if explicit is not None:
        return explicit
    mscale = _positive(rope, "mscale", allow_zero=True)
    mscale_all_dim = _positive(rope, "mscale_all_dim", allow_zero=True)
    if mscale and mscale_all_dim:
        return get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    return get_mscale(factor)


def yarn_parameters(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int) -> YarnParameters:
    """Validate a transformers-style ``rope_parameters`` dict of rope_type "yarn"; every bad
    value is a ConfigError naming the key, the value and what is expected."""
    theta = _number(rope, "rope_theta")
    theta = 10000.0 if theta is None else theta
    if theta <= 1:
        raise ConfigError(f"yarn rope 'rope_theta' must be greater than 1 (got {theta:g})")
    partial = _number(rope, "partial_rotary_factor")
    if partial is not None and not 0 < partial <= 1:
        raise ConfigError(f"'partial_rotary_factor' must be in (0, 1] (got {partial:g})")
    if int(head_dim) <= 0:
        raise ConfigError(f"yarn rope needs a positive head_dim (got {head_dim})")
    dim = rotary_dim(rope, int(head_dim))
    if dim < 2 or dim % 2:
        raise ConfigError(
            f"yarn rope needs an even rotary_dim >= 2 (got {dim} = head_dim {head_dim} "
            f"x partial_rotary_factor {partial if partial is not None else 1.0:g})"
        )

    factor = _number(rope, "factor")
    original = _positive(rope, "original_max_position_embeddings")
    if factor is None:
        if original is None:
            raise ConfigError(
                "yarn rope without 'factor' needs 'original_max_position_embeddings' to derive it "
                "as max_position_embeddings / original_max_position_embeddings: add one of them"
            )
        if max_position_embeddings is None or max_position_embeddings <= 0:
            raise ConfigError(f"yarn rope without 'factor' needs a positive max_position_embeddings "
                              f"(got {max_position_embeddings})")
        factor = float(max_position_embeddings) / original
    elif factor <= 0:
        raise ConfigError(f"yarn rope 'factor' must be positive (got {factor:g}); YaRN configs use >= 1")
    if original is None:
        if max_position_embeddings is None or max_position_embeddings <= 0:
            raise ConfigError("yarn rope needs 'original_max_position_embeddings' (the pre-training "
                              "context) when max_position_embeddings is not given")
        original = float(max_position_embeddings)

    beta_fast = _positive(rope, "beta_fast")
    beta_slow = _positive(rope, "beta_slow")
    beta_fast = DEFAULT_BETA_FAST if beta_fast is None else beta_fast
    beta_slow = DEFAULT_BETA_SLOW if beta_slow is None else beta_slow
    if beta_fast < beta_slow:
        raise ConfigError(
            f"yarn rope needs beta_fast >= beta_slow (got beta_fast={beta_fast:g}, beta_slow={beta_slow:g}); "
            f"the defaults are {DEFAULT_BETA_FAST:g} and {DEFAULT_BETA_SLOW:g}"
        )
    truncate = rope.get("truncate")
    if truncate is None:
        truncate = True
    if not isinstance(truncate, (bool, numpy.bool_)):
        raise ConfigError(f"yarn rope 'truncate' must be true or false (got {truncate!r})")

    return YarnParameters(
        theta=theta,
        rotary_dim=dim,
        factor=factor,
        original_max_position_embeddings=original,
        beta_fast=beta_fast,
        beta_slow=beta_slow,
        truncate=bool(truncate),
        attention_factor=_attention_factor(rope, factor),
    )


def yarn_inv_freq(params: YarnParameters) -> numpy.ndarray:
    """inv_freq (float64, rotary_dim/2 values, radians per position) of validated parameters."""
    dim = params.rotary_dim
    extrapolated = params.theta ** (-numpy.arange(0, dim, 2, dtype=numpy.float64) / dim)
    interpolated = extrapolated / params.factor
    low, high = correction_range(params.beta_fast, params.beta_slow, dim, params.theta,
                                 params.original_max_position_embeddings, params.truncate)
    ramp = linear_ramp(low, high, dim // 2)
    return extrapolated * (1.0 - ramp) + interpolated * ramp


def compute_yarn(rope: Mapping[str, Any], head_dim: int, max_position_embeddings: int) -> RopeResult:
    """The ``RopeScaling.compute`` of rope_type "yarn": inv_freq and attention_factor."""
    params = yarn_parameters(rope, head_dim, max_position_embeddings)
    return RopeResult(yarn_inv_freq(params), float(params.attention_factor))


YARN_SCALING = RopeScaling(
    "yarn",
    compute_yarn,
    "YaRN: ramp between extrapolated and interpolated frequencies, attention_factor 0.1*ln(factor)+1",
)
