"""Multimodal wrappers estimated through their text_config: the vision tower is named as
excluded, with its exact parameter count where Mantile knows the tower (SigLIP + Gemma 3
projector: figures from transformers 5.24's Gemma3ForConditionalGeneration on the meta device),
never silently dropped."""

from __future__ import annotations

import json

import pytest

import mantile_core
from mantile_core.cli import main
from mantile_core.multimodal import excluded_part, siglip_params

MISTRAL3 = {  # the shape of a Mistral-3 (Pixtral vision) wrapper around a Mistral text model
    "model_type": "mistral3", "torch_dtype": "bfloat16",
    "text_config": {"model_type": "mistral", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000,
                    "sliding_window": None},
    "vision_config": {"model_type": "pixtral", "hidden_size": 1024, "num_hidden_layers": 24},
}


def test_siglip_count_matches_transformers():
    # Gemma-3-27B's SigLIP (transformers: vision tower 416,866,032; projector 6,194,304)
    vision = {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "num_hidden_layers": 27,
              "patch_size": 14, "vision_use_head": False, "model_type": "siglip_vision_model"}
    assert siglip_params(vision) == 416_866_032
    part = excluded_part({"model_type": "gemma3", "vision_config": vision}, {"hidden_size": 5376})
    assert part["params"] == 416_866_032 + 1152 * 5376 + 1152 == 423_060_336
    assert siglip_params({"hidden_size": 4}) is None


def test_siglip_head_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    vision = dict(hidden_size=32, image_size=28, intermediate_size=48, num_hidden_layers=2, patch_size=14,
                  num_attention_heads=4, vision_use_head=True)
    with torch.device("meta"):
        model = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(**vision))
    assert siglip_params(vision) == sum(p.numel() for p in model.parameters())


@pytest.mark.skipif(pytest.importorskip("importlib").util.find_spec("mantile_gemma") is None,
                    reason="mantile-gemma not installed")
def test_gemma3_27b_names_the_excluded_vision_tower(capsys):
    model = mantile_core.load_model("gemma-3-27b")
    assert model.params() == 27_009_346_304
    assert model.extras["excluded"]["params"] == 423_060_336
    assert main(["layers", "gemma-3-27b", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["excluded"]["part"] == "vision" and doc["params"] == 27_009_346_304
    assert main(["layers", "gemma-3-27b", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "note: the gemma3 vision tower (siglip_vision_model" in out and "423,060,336 parameters" in out
    estimate = mantile_core.estimate(model, "h200", input_len=128, output_len=8).to_dict()
    assert estimate["excluded"]["params"] == 423_060_336


def test_unknown_tower_is_named_without_a_count(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MISTRAL3))
    model = mantile_core.load_model(path)
    assert model.config.model_type == "mistral"
    excluded = model.extras["excluded"]
    assert excluded["params"] is None and "pixtral" in excluded["note"] and "not counted" in excluded["note"]
    assert main(["estimate", str(path), "--input-len", "64", "--output-len", "4"]) == 0
    assert "note: the mistral3 vision tower (pixtral" in capsys.readouterr().out


def test_text_only_configs_have_no_note():
    assert "excluded" not in mantile_core.load_model("llama-3.1-8b").extras
    assert "excluded" not in mantile_core.estimate("llama-3.1-8b", "h200", input_len=64, output_len=4).to_dict()
