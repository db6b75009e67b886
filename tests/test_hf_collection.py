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
