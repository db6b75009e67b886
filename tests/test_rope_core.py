"""Core RoPE types against the formulas written out independently here."""

from __future__ import annotations

import math

import numpy
import pytest

import mantile_core
from mantile_core.errors import ConfigError


def test_default_inv_freq():
    r = mantile_core.rope_scaling({"rope_type": "default", "rope_theta": 10000.0}, 8, 2048)
    numpy.testing.assert_allclose(r.inv_freq, [1.0, 0.1, 0.01, 0.001], rtol=1e-15)
    assert r.attention_factor == 1.0


def test_partial_rotary_factor_halves_dims():
    r = mantile_core.rope_scaling({"rope_type": "default", "rope_theta": 100.0, "partial_rotary_factor": 0.5}, 8, 2048)
    numpy.testing.assert_allclose(r.inv_freq, [1.0, 0.1], rtol=1e-15)


def test_linear_divides_by_factor():
    r = mantile_core.rope_scaling({"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}, 8, 2048)
    numpy.testing.assert_allclose(r.inv_freq, [0.25, 0.025, 0.0025, 0.00025], rtol=1e-15)


def test_llama3_bands():
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    r = mantile_core.rope_scaling(rope, 128, 131072)
    for j, value in enumerate(r.inv_freq):
        base = 500000.0 ** (-2 * j / 128)
        wavelen = 2 * math.pi / base
        if wavelen < 8192 / 4.0:
            expected = base
        elif wavelen > 8192 / 1.0:
            expected = base / 8.0
        else:
            smooth = (8192 / wavelen - 1.0) / 3.0
            expected = (1 - smooth) * base / 8.0 + smooth * base
        assert value == pytest.approx(expected, rel=1e-12)


def test_llama3_against_transformers():
    pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.modeling_rope_utils")
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=4096, num_attention_heads=32, max_position_embeddings=131072,
                         rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    expected, _ = utils.ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    ours = mantile_core.rope_scaling({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, 128, 131072)
    numpy.testing.assert_allclose(ours.inv_freq, expected.double().numpy(), rtol=1e-6)


def test_bad_rope_parameters():
    with pytest.raises(ConfigError, match="'factor' must be positive"):
        mantile_core.rope_scaling({"rope_type": "linear", "factor": -1.0}, 8, 2048)
    with pytest.raises(ConfigError, match="needs 'low_freq_factor'"):
        mantile_core.rope_scaling({"rope_type": "llama3", "factor": 8.0}, 8, 2048)


LLAMA4_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 16.0, "low_freq_factor": 1.0,
               "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}  # Llama-4-Scout/Maverick


def test_llama3_equal_band_factors_is_a_step():
    """low_freq_factor == high_freq_factor (Llama 4): wavelengths above 8192 / 1 are divided by
    the factor, the others kept; no blend, no division by zero."""
    r = mantile_core.rope_scaling(LLAMA4_ROPE, 128, 10485760)
    assert numpy.isfinite(r.inv_freq).all()
    scaled = 0
    for j, value in enumerate(r.inv_freq):
        base = 500000.0 ** (-2 * j / 128)
        long_wave = 2 * math.pi / base > 8192
        scaled += long_wave
        assert value == pytest.approx(base / 16.0 if long_wave else base, rel=1e-12)
    # 2π·500000^(2j/128) > 8192  <=>  j > 64·ln(8192 / 2π) / ln(500000) = 34.98: j = 35..63
    assert scaled == 29


def test_llama3_equal_band_factors_against_transformers():
    pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.modeling_rope_utils")
    from transformers import LlamaConfig

    params = {k: v for k, v in LLAMA4_ROPE.items() if k != "rope_theta"}
    config = LlamaConfig(hidden_size=5120, num_attention_heads=40, head_dim=128, max_position_embeddings=10485760,
                         rope_theta=500000.0, rope_scaling=params)
    expected, _ = utils.ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    ours = mantile_core.rope_scaling(LLAMA4_ROPE, 128, 10485760)
    numpy.testing.assert_allclose(ours.inv_freq, expected.double().numpy(), rtol=1e-6)


def test_llama3_inverted_band_factors_rejected():
    with pytest.raises(ConfigError, match="0 < low_freq_factor <= high_freq_factor"):
        mantile_core.rope_scaling({**LLAMA4_ROPE, "low_freq_factor": 4.0}, 128, 8192)
    with pytest.raises(ConfigError, match="'low_freq_factor' must be a positive finite number"):
        mantile_core.rope_scaling({**LLAMA4_ROPE, "low_freq_factor": 0.0, "high_freq_factor": 0.0}, 128, 8192)
