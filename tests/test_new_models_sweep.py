"""The new families vectorise: a sweep over tp, batch and lengths (numpy arrays in every Step:
no Python ``if``/``max`` on a step value in their layers) gives at sampled points exactly what
``estimate`` gives (the sweep's contract, tests/test_sweep.py)."""

from __future__ import annotations

import importlib.util

import pytest

import mantile_core
from test_sweep import assert_sweep_matches_estimate


@pytest.mark.parametrize("name, plugin", [("gemma-2-9b", "mantile_gemma"), ("gemma-4-31b", "mantile_gemma"),
                                          ("llama-4-scout", "mantile_llama4"), ("llama-4-maverick", "mantile_llama4")])
def test_sweep_equals_estimate(name, plugin):
    if importlib.util.find_spec(plugin) is None:
        pytest.skip(f"{plugin} not installed")
    model = mantile_core.load_model(name)
    result = mantile_core.sweep(model, "h200,b200", tp="1,2,4,8", ep="1,2,4,8" if model.config.is_moe else "1",
                                batch="1,16,100", input_len="100,9000", output_len="1,64", chunk=500)
    assert_sweep_matches_estimate(model, result, samples=12, seed=3)
