"""RoPE scalings the core provides (default, linear, dynamic, llama3) and the public
``rope_scaling`` dispatcher. Other rope_types (yarn, ...) come from plugins.

inv_freq[j] = 1 / theta^(2j / rotary_dim) for j < rotary_dim/2, rotary_dim =
head_dim · partial_rotary_factor. The scalings differ in inv_freq only; their cost is the same
(3 FLOPs per rotated element, counted by the attention layer).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy

from .errors import ConfigError, MissingPluginError
from .records import RopeResult, RopeScaling

__all__ = ["rope_scaling", "rotary_dim", "base_inv_freq", "CORE_ROPE_SCALINGS", "ROPE_PLUGINS"]

ROPE_PLUGINS = {"yarn": "mantile-rope-yarn", "longrope": "mantile-rope-longrope", "proportional": "mantile-gemma"}


def rotary_dim(rope: Mapping, head_dim: int) -> int:
    """Rotated dims per head: int(head_dim · partial_rotary_factor)."""
    return int(head_dim * float(rope.get("partial_rotary_factor", 1.0)))


def base_inv_freq(rope: Mapping, head_dim: int) -> numpy.ndarray:
    """Unscaled inverse frequencies 1 / theta^(arange(0, dim, 2) / dim), float64."""
    theta = float(rope.get("rope_theta", 10000.0))
    if theta <= 0:
        raise ConfigError(f"rope_theta must be positive (got {theta})")
    dim = rotary_dim(rope, head_dim)
    return 1.0 / theta ** (numpy.arange(0, dim, 2, dtype=numpy.int64).astype(numpy.float64) / dim)


def _factor(rope: Mapping) -> float:
    factor = rope.get("factor")
    if factor is None:
        raise ConfigError(f"rope_type {rope.get('rope_type')!r} needs a 'factor'")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise ConfigError(f"rope 'factor' must be positive (got {factor!r:.60})")
    return float(factor)


def _positive_number(rope: Mapping, key: str) -> float:
    """A required positive finite rope parameter; ConfigError naming it otherwise."""
    value = rope.get(key)
    if value is None:
        raise ConfigError(f"rope_type {rope.get('rope_type')!r} needs {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"rope_parameters: {key!r} must be a positive finite number (got {value!r:.60})")
    return float(value)


def _default(rope: Mapping, head_dim: int, max_position_embeddings: int) -> RopeResult:
    return RopeResult(base_inv_freq(rope, head_dim), 1.0)


def _linear(rope: Mapping, head_dim: int, max_position_embeddings: int) -> RopeResult:
    return RopeResult(base_inv_freq(rope, head_dim) / _factor(rope), 1.0)


def _llama3(rope: Mapping, head_dim: int, max_position_embeddings: int) -> RopeResult:
    """Llama 3.1 bands over wavelen = 2π / inv_freq, with L = original_max_position_embeddings:
    wavelen > L / low_freq_factor -> inv_freq / factor; wavelen < L / high_freq_factor ->
    inv_freq; between them a linear blend with smooth = (L / wavelen - low) / (high - low).
    ``low_freq_factor == high_freq_factor`` (Llama 4: both 1.0) leaves no band between: a step
    at L / low (transformers computes the same; its 0/0 at exactly wavelen == L / low is taken
    as unscaled here)."""
    inv = base_inv_freq(rope, head_dim)
    factor = _factor(rope)
    low = _positive_number(rope, "low_freq_factor")
    high = _positive_number(rope, "high_freq_factor")
    original = _positive_number(rope, "original_max_position_embeddings")
    if high < low:
        raise ConfigError(f"llama3 rope needs 0 < low_freq_factor <= high_freq_factor (got {low} and {high})")
    wavelen = 2 * math.pi / inv
    scaled = numpy.where(wavelen > original / low, inv / factor, inv)
    if high == low:  # no band to blend (Llama 4): a step at original / low, as transformers computes it
        return RopeResult(scaled, 1.0)
    smooth = (original / wavelen - low) / (high - low)
    blended = (1 - smooth) * inv / factor + smooth * inv
    out = numpy.where(wavelen > original / low, inv / factor, numpy.where(wavelen < original / high, inv, blended))
    return RopeResult(out, 1.0)


CORE_ROPE_SCALINGS = [
    RopeScaling("default", _default, "unscaled RoPE"),
    RopeScaling("linear", _linear, "position interpolation: inv_freq / factor"),
    RopeScaling("dynamic", _default, "dynamic NTK: equals default up to max_position_embeddings"),
    RopeScaling("llama3", _llama3, "Llama 3.1 band-wise scaling"),
]


def rope_scaling(rope: Mapping, head_dim: int, max_position_embeddings: int) -> RopeResult:
    """inv_freq and attention_factor of a transformers-style ``rope_parameters`` dict, through
    whichever installed plugin provides its rope_type."""
    from .plugins import get_plugin_manager

    rope = dict(rope)
    if "type" in rope and "rope_type" not in rope:
        rope["rope_type"] = rope.pop("type")
    rope_type = rope.get("rope_type", "default")
    scalings = get_plugin_manager().registries.rope_scalings
    if rope_type not in scalings:
        raise MissingPluginError(missing_rope_message(rope_type, scalings))
    return scalings[rope_type].compute(rope, head_dim, max_position_embeddings)


def missing_rope_message(rope_type: str, scalings: Mapping) -> str:
    plugin = ROPE_PLUGINS.get(rope_type)
    if plugin:
        from .install_hints import install_hint

        return f"rope_type {rope_type!r} needs {plugin}: {install_hint(plugin)}"
    return f"rope_type {rope_type!r} is not provided by any installed plugin (installed: {', '.join(scalings)})"
