"""The published config collection (tests/data/hf_collection, aiconfigurator-core 0.12.0, sources
in its SOURCES.md) against transformers' own parameter totals (expected_totals.json, written by
benchmarks/hf_collection_totals.py from models built on the meta device — never from Mantile)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

COLLECTION = Path(__file__).parent / "data" / "hf_collection"
EXPECTED = json.loads((COLLECTION / "expected_totals.json").read_text())
CONFIGS = EXPECTED["configs"]
BUILDABLE = EXPECTED["buildable"]


def read_collection_file(name: str) -> dict:
    path = COLLECTION / name
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def test_collection_is_complete():
    """89 model configs, each with its expectation; 68 of them build in transformers."""
    files = sorted(p.name for p in COLLECTION.iterdir() if "_config.json" in p.name and "_hf_quant_" not in p.name)
    assert len(files) == 89
    assert sorted(entry["file"] for entry in CONFIGS.values()) == files
    assert len(BUILDABLE) == 68
    assert EXPECTED["transformers"] == "5.24.0"
    for key, entry in CONFIGS.items():
        data = read_collection_file(entry["file"])
        assert data["model_type"] == entry["model_type"], key
        assert entry["hf_repo"] in (COLLECTION / "SOURCES.md").read_text(), key


def test_every_quant_companion_has_its_config():
    companions = [p.name for p in COLLECTION.iterdir() if "_hf_quant_config.json" in p.name]
    assert len(companions) == 28
    for name in companions:
        assert name.split("_hf_quant_config")[0] in CONFIGS


# --- coverage: every config whose model_type the installed plugins support loads exactly -------

def _materialise(key: str, tmp_path: Path) -> Path:
    """The config as its repository publishes it: ``<dir>/config.json`` and, where modelopt
    published one, ``<dir>/hf_quant_config.json`` beside it."""
    entry = CONFIGS[key]
    folder = tmp_path / key
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(read_collection_file(entry["file"])))
    companions = [p for p in COLLECTION.iterdir() if p.name.startswith(key + "_hf_quant_config.json")]
    if companions:
        (folder / "hf_quant_config.json").write_text(json.dumps(read_collection_file(companions[0].name)))
    return folder


def _claimed_type(data: dict, supported) -> str | None:
    """The model_type Mantile reads the config as (a wrapper's own type, else its text
    config's), when an installed plugin supports it."""
    if data.get("model_type") in supported:
        return data["model_type"]
    text = data.get("text_config")
    if isinstance(text, dict) and text.get("model_type") in supported:
        return text["model_type"]
    return None


def stored_total(entry: dict) -> tuple[int, int] | None:
    """(transformers' text-model parameters, the elements of the persistent buffers safetensors
    stores beside them: ``e_score_correction_bias``, ``tid2eid``, ``layer_scalar``), both from the
    meta-device build in expected_totals.json; None when transformers cannot build the config.
    Mantile's convention: ``params()`` counts every tensor the checkpoint stores (their sum),
    ``buffer_params()`` the buffers."""
    text = entry.get("text_params", entry.get("full_text_params"))
    if text is None:
        return None
    return text, sum((entry.get("checkpoint_buffers") or {}).values())


def _check_estimate(model) -> None:
    import math

    import mantile_core

    doc = mantile_core.estimate(model, "h200", tp=1, batch=1, input_len=1024, output_len=128).to_dict()
    for key in ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu"):
        assert math.isfinite(doc[key]) and doc[key] > 0, (key, doc[key])
    assert doc["memory"]["weight_bytes"] > 0 and doc["memory"]["kv_cache_bytes"] >= 0
    for phase in ("prefill", "decode"):
        assert doc[phase]["flops"] > 0 and doc[phase]["time_ms"] > 0
        for row in doc["layers"]:
            for name, value in row[phase].items():
                if isinstance(value, (int, float)):
                    assert math.isfinite(value) and value >= 0, (row["index"], row["kind"], phase, name, value)


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_collection_config_loads_exactly_or_names_its_type(key, tmp_path):
    """Supported model_type: loads, its total equals transformers' text-model parameters plus
    the buffers the checkpoint stores (MTP layers and vision towers excluded: SOURCES.md), the
    buffers being exactly ``buffer_params()``; estimate gives finite, positive figures.
    Unsupported: one line naming the model_type, never blaming a key."""
    import mantile_core
    from mantile_core.errors import MantileError
    from mantile_core.model import supported_model_types

    entry = CONFIGS[key]
    data = read_collection_file(entry["file"])
    path = _materialise(key, tmp_path)
    claimed = _claimed_type(data, supported_model_types())
    if claimed is None:
        with pytest.raises(MantileError) as info:
            mantile_core.load_model(path)
        message = str(info.value)
        assert "\n" not in message
        assert f"model_type {data['model_type']!r}" in message or (
            isinstance(data.get("text_config"), dict)
            and f"model_type {data['text_config'].get('model_type')!r}" in message), message
        assert "required key" not in message and " must be " not in message, message
        return
    if key in KNOWN_REFUSALS:
        with pytest.raises(MantileError, match=KNOWN_REFUSALS[key]) as info:
            mantile_core.load_model(path)
        assert "\n" not in str(info.value)
        return
    model = mantile_core.load_model(path)
    expected = stored_total(entry)
    if expected is not None:
        params, buffers = expected
        assert (model.params(), model.buffer_params()) == (params + buffers, buffers), \
            f"{key}: {model.params():,} ({model.buffer_params():,} buffers) != transformers {params:,} + {buffers:,}"
    _check_estimate(model)


# checkpoints refused in one line rather than costed wrong
KNOWN_REFUSALS = {
    # int4 pack-quantized experts (compressed-tensors) inside text_config
    "moonshotai--Kimi-K2.5": "quantization method 'compressed-tensors' is not supported",
}


# bundled name -> the collection file it was copied from (mantile_core/data/models/SOURCES.md)
BUNDLED = {
    "deepseek-v3.2": "deepseek-ai--DeepSeek-V3.2", "deepseek-v4-flash": "deepseek-ai--DeepSeek-V4-Flash",
    "deepseek-v4-pro": "deepseek-ai--DeepSeek-V4-Pro", "glm-5": "zai-org--GLM-5",
    "gemma-4-26b-a4b": "google--gemma-4-26B-A4B", "gemma-4-31b": "nvidia--Gemma-4-31B-IT-NVFP4",
    "llama-4-maverick": "meta-llama--Llama-4-Maverick-17B-128E-Instruct",
    "llama-4-scout": "meta-llama--Llama-4-Scout-17B-16E-Instruct", "minimax-m2.5": "MiniMaxAI--MiniMax-M2.5",
    "mimo-v2-flash": "XiaomiMiMo--MiMo-V2-Flash", "qwen3-coder-480b-a35b": "Qwen--Qwen3-Coder-480B-A35B-Instruct",
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_flagship(name):
    """The bundled flagship is its collection file (gemma-4-31b: without quantization_config)
    and, once its family's plugin is installed, loads with transformers' total."""
    import mantile_core
    from mantile_core.model import DATA, supported_model_types

    key = BUNDLED[name]
    bundled = json.loads((DATA / f"{name}.json").read_text())
    published = read_collection_file(CONFIGS[key]["file"])
    if name == "gemma-4-31b":
        published.pop("quantization_config")
    assert bundled == published
    if _claimed_type(bundled, supported_model_types()) is not None:
        params, buffers = stored_total(CONFIGS[key])
        model = mantile_core.load_model(name)
        assert (model.params(), model.buffer_params()) == (params + buffers, buffers)
