"""Coverage of the published config collection: which of the 68 buildable configs Mantile loads
with totals exactly equal to transformers', and estimates.

    .venv/bin/python benchmarks/hf_collection_coverage.py            # table
    .venv/bin/python benchmarks/hf_collection_coverage.py --all      # the 21 others too
    .venv/bin/python benchmarks/hf_collection_coverage.py --json     # one record per config

Expected totals come from ``tests/data/hf_collection/expected_totals.json`` (transformers 5.24
on the meta device, ``benchmarks/hf_collection_totals.py``; text model only, MTP layers
excluded). Each config is loaded as its repository publishes it: ``config.json`` with modelopt's
``hf_quant_config.json`` beside it when there is one. Outcomes:

- ``exact``: loads, ``Model.params()`` equals transformers' text parameters plus the persistent
  buffers the checkpoint stores (``checkpoint_buffers``: ``e_score_correction_bias``, Gemma 4's
  ``layer_scalar``; Mantile counts every stored tensor, as the published safetensors totals
  do), ``Model.buffer_params()`` equals those buffers, and an estimate (H200, TP1, batch 1,
  1024 in / 128 out) gives finite, positive TTFT / TPOT / throughput;
- ``mismatch``: loads, but either figure differs (the differences are printed);
- ``error``: the model_type is supported but loading or estimating fails (its one line);
- ``unsupported``: no installed plugin supports the model_type (its one line).

The issue's bar: ``exact`` for at least 90 % of the 68 (62 configs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "tests" / "data" / "hf_collection"

# model_type -> the family (and helper plugin) it belongs to, for the per-family table
FAMILIES = {
    "llama": "Llama 3.1", "mixtral": "Mixtral", "qwen3": "Qwen3", "qwen3_moe": "Qwen3-MoE",
    "gpt_oss": "GPT-OSS", "deepseek_v3": "DeepSeek-V3 (MLA)", "deepseek_v32": "DeepSeek-V3.2 (DSA)",
    "glm_moe_dsa": "GLM-5 (DSA)", "deepseek_v4": "DeepSeek-V4", "deepseek_ref": "DeepSeek-V4",
    "qwen3_5": "Qwen3.5/3.6 (DeltaNet)",
    "qwen3_5_moe": "Qwen3.5/3.6 (DeltaNet)", "nemotron_h": "Nemotron-H / Nemotron-3", "gemma4": "Gemma 4",
    "llama4": "Llama 4", "minimax_m2": "MiniMax-M2", "mimo_v2_flash": "MiMo-V2-Flash",
}


def _read(path: Path) -> dict:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def materialise(key: str, entry: dict, root: Path) -> Path:
    """``root/key/config.json`` (+ ``hf_quant_config.json`` when published)."""
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(_read(COLLECTION / entry["file"])))
    for companion in COLLECTION.glob(key + "_hf_quant_config.json*"):
        (folder / "hf_quant_config.json").write_text(json.dumps(_read(companion)))
    return folder


def _line(exc: Exception) -> str:
    """The error's line without its ``config 'name': `` prefix (so reasons group by family)."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("config '") and ": " in text else text


def evaluate(key: str, entry: dict, root: Path) -> dict:
    """One config's outcome record."""
    import mantile_core
    from mantile_core.errors import MantileError, UnsupportedModelError

    record = {"config": key, "model_type": entry["model_type"], "buildable": entry["buildable"],
              "family": FAMILIES.get(entry["model_type"], entry["model_type"])}
    expected = entry.get("text_params", entry.get("full_text_params"))
    buffers = sum((entry.get("checkpoint_buffers") or {}).values())
    record["expected_params"] = None if expected is None else expected + buffers
    record["expected_buffer_params"] = buffers
    try:
        model = mantile_core.load_model(materialise(key, entry, root))
    except UnsupportedModelError as exc:
        return {**record, "outcome": "unsupported", "reason": _line(exc).split(" (")[0]}
    except MantileError as exc:
        return {**record, "outcome": "error", "reason": _line(exc)}
    record["params"], record["buffer_params"] = model.params(), model.buffer_params()
    if expected is not None and (model.params(), model.buffer_params()) != (expected + buffers, buffers):
        return {**record, "outcome": "mismatch",
                "reason": f"{model.params() - expected - buffers:+,d} parameters, "
                          f"{model.buffer_params() - buffers:+,d} buffer parameters"}
    try:
        doc = mantile_core.estimate(model, "h200", tp=1, batch=1, input_len=1024, output_len=128).to_dict()
    except MantileError as exc:
        return {**record, "outcome": "error", "reason": f"estimate: {_line(exc)}"}
    figures = [doc[k] for k in ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu")]
    if not all(math.isfinite(v) and v > 0 for v in figures):
        return {**record, "outcome": "error", "reason": f"estimate figures not finite and positive: {figures}"}
    record["weight_bytes"] = model.weight_bytes()
    return {**record, "outcome": "exact" if expected is not None else "loads"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the 21 configs transformers' causal LM cannot build")
    parser.add_argument("--json", action="store_true", help="one JSON record per config")
    args = parser.parse_args(argv)
    expected = json.loads((COLLECTION / "expected_totals.json").read_text())
    keys = sorted(expected["configs"]) if args.all else expected["buildable"]
    with tempfile.TemporaryDirectory() as tmp:
        records = [evaluate(key, expected["configs"][key], Path(tmp)) for key in keys]
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    width = max(len(r["config"]) for r in records)
    for r in records:
        extra = f"  {r['reason']}" if "reason" in r else ""
        print(f"{r['config']:{width}s}  {r['model_type']:14s} {r['outcome']:11s}{extra}")
    buildable = [r for r in records if r["buildable"]]
    exact = sum(r["outcome"] == "exact" for r in buildable)
    print(f"\nloaded with exact totals and estimated: {exact} / {len(buildable)} buildable configs "
          f"({100 * exact / len(buildable):.1f} %; the bar is 90 %)")
    families: dict[str, list[dict]] = defaultdict(list)
    for r in buildable:
        families[r["family"]].append(r)
    print(f"\n{'family':28s} {'exact':>5s} / {'of':<3s} missing (reason)")
    for family, rows in sorted(families.items()):
        good = sum(r["outcome"] == "exact" for r in rows)
        reasons = sorted({f"{r['outcome']}: {r.get('reason', '')}"[:150] for r in rows if r["outcome"] != "exact"})
        print(f"{family:28s} {good:5d} / {len(rows):<3d} {'; '.join(reasons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
