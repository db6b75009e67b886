"""Bundled models against their published parameter totals (Hugging Face safetensors metadata,
see mantile_core/data/models/SOURCES.md): expected numbers are the published figures."""

from __future__ import annotations

import pytest

import mantile_core

PUBLISHED_TOTALS = {
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.2-1b": 1_235_814_400,
    "mixtral-8x7b": 46_702_792_704,
    "qwen2.5-7b": 7_615_616_512,
    "qwen3-8b": 8_190_735_360,
    "qwen3-30b-a3b": 30_532_122_624,
}


@pytest.mark.parametrize("name,total", sorted(PUBLISHED_TOTALS.items()))
def test_core_models_match_published_totals(name, total):
    assert mantile_core.load_model(name).params() == total


def test_mistral_matches_published_total_with_sliding_plugin():
    pytest.importorskip("mantile_swa_cache")
    assert mantile_core.load_model("mistral-7b").params() == 7_241_732_096


def test_bf16_weight_bytes_are_two_per_param():
    model = mantile_core.load_model("llama-3.1-8b")
    assert model.weight_bytes() == 2 * 8_030_261_248


def test_tied_embeddings_counted_once():
    # Llama-3.2-1B: 128256 x 2048 embedding shared with the LM head.
    model = mantile_core.load_model("llama-3.2-1b")
    head = [layer for layer in model.layers if layer.kind == "lm_head"][0]
    assert head.params() == 0
    embedding = [layer for layer in model.layers if layer.kind == "embedding"][0]
    assert embedding.params() == 128256 * 2048
