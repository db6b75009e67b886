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


# --- Qwen2.5-VL (a flat wrapper) and Mistral-3 (Pixtral): published configs, towers counted -----
# sources: tests/data/multimodal/SOURCES.md
DATA = __import__("pathlib").Path(__file__).parent / "data" / "multimodal"
QWEN25_VL = DATA / "qwen2.5-vl-7b-instruct.json"
MISTRAL_SMALL = DATA / "mistral-small-3.1-24b-instruct-2503.json"


def _qwen2_7b_text() -> int:
    """Qwen2.5-7B's decoder by hand: untied embedding and head, per layer q/k/v with biases, o,
    SwiGLU, two RMSNorms; final norm."""
    h, i, layers, vocab, kv = 3584, 18944, 28, 152064, 4 * 128
    per_layer = h * h + h + 2 * (h * kv + kv) + h * h + 3 * h * i + 2 * h
    return 2 * vocab * h + layers * per_layer + h


def _qwen25_vision() -> int:
    """Qwen2.5-VL-7B's vision tower and merger by hand (D 1280, I 3420, 32 blocks, patch 14,
    temporal 2, merge 2 -> M 5120, out 3584)."""
    d, i, m, out = 1280, 3420, 5120, 3584
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * (d * i + i) + (i * d + d)
    return 3 * 2 * 14 * 14 * d + 32 * block + d + (m * m + m) + (m * out + out)


def test_qwen2_5_vl_flat_config_is_its_text_model_and_counted_tower():
    """Qwen2.5-VL-7B-Instruct: 7,615,616,512 text + 676,550,144 vision = 8,292,166,656, the
    Hub's published total (numParameters)."""
    model = mantile_core.load_model(QWEN25_VL)
    assert model.config.model_type == "qwen2"
    assert model.config.rope_parameters["rope_type"] == "default"  # M-RoPE rotates the same pairs
    assert set(model.config.windows) == {None}  # use_sliding_window false
    assert model.params() == _qwen2_7b_text() == 7_615_616_512
    excluded = model.extras["excluded"]
    assert excluded["params"] == _qwen25_vision() == 676_550_144
    assert model.params() + excluded["params"] == 8_292_166_656
    assert "qwen2_5_vl vision tower" in excluded["note"] and "676,550,144 parameters" in excluded["note"]


def test_qwen2_5_vl_resaved_with_text_config(tmp_path):
    """The spelling transformers >= 4.53 saves: a text_config (model_type qwen2_5_vl_text, a
    stale float32 dtype, rope_type default with mrope_section) beside the top-level keys."""
    raw = json.loads(QWEN25_VL.read_text())
    text = {k: v for k, v in raw.items() if k not in ("vision_config", "architectures")}
    text.update(model_type="qwen2_5_vl_text", torch_dtype="float32",
                rope_scaling={"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"})
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**raw, "text_config": text}))
    model = mantile_core.load_model(path)
    assert model.params() == 7_615_616_512 and model.config.dtype.name == "bf16"
    assert model.weight_bytes() == 2 * 7_615_616_512
    assert model.extras["excluded"]["params"] == 676_550_144


def test_qwen2_5_vl_tower_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    config = transformers.AutoConfig.for_model(**json.loads(QWEN25_VL.read_text()))
    with torch.device("meta"):
        tower = Qwen2_5_VisionTransformerPretrainedModel._from_config(config.vision_config)
    assert sum(p.numel() for p in tower.parameters()) == 676_550_144


def _mistral_small_text() -> int:
    h, i, layers, vocab, q, kv = 5120, 32768, 40, 131072, 32 * 128, 8 * 128
    return 2 * vocab * h + layers * (2 * h * q + 2 * h * kv + 3 * h * i + 2 * h) + h


def _pixtral_and_projector() -> int:
    d, i, layers, text_h = 1024, 4096, 24, 5120
    tower = 3 * d * 14 * 14 + d + layers * (2 * d + 4 * d * d + 3 * d * i)
    return tower + d + 4 * d * d + d * text_h + text_h * text_h


def test_mistral3_pixtral_counted():
    """Mistral-Small-3.1-24B-Instruct-2503: 23,572,403,200 text (untied head, as the checkpoint
    stores lm_head) + 438,958,080 Pixtral and projector = 24,011,361,280, keras-hub's published
    count. (transformers 5.24's Mistral3Config defaults tie_word_embeddings to True at the top
    level, so its whole-model count of this config ties the head away: 671,088,640 fewer.)"""
    model = mantile_core.load_model(MISTRAL_SMALL)
    assert model.config.model_type == "mistral"
    assert model.params() == _mistral_small_text() == 23_572_403_200
    assert model.extras["excluded"]["params"] == _pixtral_and_projector() == 438_958_080
    assert model.params() + model.extras["excluded"]["params"] == 24_011_361_280


def test_pixtral_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.mistral3.modeling_mistral3 import Mistral3MultiModalProjector

    config = transformers.AutoConfig.for_model(**json.loads(MISTRAL_SMALL.read_text()))
    with torch.device("meta"):
        tower = transformers.PixtralVisionModel(config.vision_config)
        projector = Mistral3MultiModalProjector(config)
    counted = sum(p.numel() for p in tower.parameters()) + sum(p.numel() for p in projector.parameters())
    assert counted == 438_958_080


def test_qwen2_5_vl_estimate_names_the_tower(capsys):
    assert main(["estimate", str(QWEN25_VL), "--input-len", "256", "--output-len", "8"]) == 0
    out = capsys.readouterr().out
    assert "note: the qwen2_5_vl vision tower" in out and "676,550,144 parameters" in out


@pytest.mark.parametrize("odd", [float("inf"), 5376.5, True, "5376", 2**40, -1])
def test_odd_widths_leave_the_tower_uncounted_never_a_traceback(odd):
    # found by the long fuzz profile: a text hidden_size of Infinity raised OverflowError in
    # the projector count (int(inf)); an odd value now leaves the count unknown (None) and the
    # text model's own parse refuses it in one line
    vision = {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "num_hidden_layers": 27,
              "patch_size": 14, "vision_use_head": False, "model_type": "siglip_vision_model"}
    assert excluded_part({"model_type": "gemma3", "vision_config": vision}, {"hidden_size": odd})["params"] is None
    assert siglip_params({**vision, "num_hidden_layers": odd}) is None
