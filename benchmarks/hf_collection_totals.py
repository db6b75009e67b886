"""Independent parameter totals of the published config.json collection, from transformers.

For every ``*_config.json`` under ``tests/data/hf_collection/`` (the 89 model configs shipped
by aiconfigurator-core 0.12.0, see its SOURCES.md) this builds transformers' own model on the
meta device and counts it, writing ``tests/data/hf_collection/expected_totals.json``::

    .venv/bin/python benchmarks/hf_collection_totals.py        # transformers==5.24.0, torch

**The 68 buildable configs** are those for which ``AutoModelForCausalLM.from_config`` (the
config parsed by its model_type's transformers config class, ``quantization_config`` dropped:
it does not change the logical shapes) builds a model: 89 files minus 7 whose model_type
transformers 5.24 does not know (``minimax_m3``, ``mimo``, ``kimi_k2``, ``kimi_k3``,
``nemotron-nas``, ``deepseek_ref`` x2: remote code only) and 14 whose config class has no
causal-LM mapping (Qwen3-VL x7, Kimi-K2.5/K2.6/K2.7 x4, Step-3.7 x2, MiniMax-M3-NVFP4: vision-
language wrappers). Quantized re-publications of one architecture stay in the 68 as separate
configs (each is a file a user points Mantile at, and their ``quantization_config`` differs);
``duplicate_of`` names the first file with the same architecture (the config without
quantization keys, dtype, names, version and token ids), ``buildable_architectures`` lists
the distinct ones.

Per file:

- ``model_type``, ``hf_repo`` (from the file name ``org--Name_config.json``), ``mtp``: the
  multi-token-prediction layers the config declares (``num_nextn_predict_layers``, ...).
  transformers builds none of them, so every total here excludes them, as Mantile's do;
- ``buildable`` (the rule above), ``causal_lm_class``, ``total_params``:
  ``sum(p.numel() for p in model.parameters())`` of that model (shared / tied tensors once);
  ``text_params``: its parameters outside any vision / audio tower and projector (parameter
  names containing ``visual``, ``vision``, ``multi_modal_projector``, ``mm_projector``,
  ``embed_vision``, ``audio``) — the figure Mantile's ``Model.params()`` must equal (Gemma 4's
  causal-LM class is its ConditionalGeneration model and carries the tower; Llama 4's is
  text-only);
- ``checkpoint_buffers``: persistent buffers of the text part (in ``state_dict()`` but not
  parameters), ``{name suffix: elements}``. safetensors stores them beside the weights, e.g.
  the router's ``e_score_correction_bias`` (DeepSeek-V3/V3.2/V4, GLM-5, MiniMax-M2, MiMo-V2,
  Nemotron-3: one float per routed expert per MoE layer), DeepSeek-V4's hash-routing table
  ``tid2eid``, Gemma 4's ``layer_scalar``. They are NOT in ``total_params`` / ``text_params``
  (transformers registers them as buffers, not parameters); Mantile's ``params()`` counts
  them (every tensor the checkpoint stores, as the safetensors totals do) and its
  ``buffer_params()`` equals their sum;
- ``full_class``, ``full_params``, ``full_text_params``, ``vision_params``, ``vision_buffers``:
  the published architecture (``architectures[0]``, or ``AutoModelForImageTextToText``) built
  whole, which also counts the vision tower — available for the wrappers outside the 68 too;
- ``reason`` / ``full_reason``: the first line of the exception when a build fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "tests" / "data" / "hf_collection"
VISION_MARKERS = ("visual", "vision", "multi_modal_projector", "mm_projector", "embed_vision", "audio")
MTP_KEYS = ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers", "mtp_num_layers",
            "n_mtp_layers")
# keys that do not change the architecture: dropped before grouping quantized re-publications
NON_ARCH_KEYS = {"quantization_config", "compression_config", "torch_dtype", "dtype", "transformers_version",
                 "_name_or_path", "name_or_path", "architectures", "auto_map", "bos_token_id", "eos_token_id",
                 "pad_token_id", "use_cache", "initializer_range", "output_router_logits", "router_aux_loss_coef",
                 "tokenizer_class", "_attn_implementation_autoset", "unsloth_fixed", "image_token_id",
                 "video_token_id", "vision_start_token_id", "vision_end_token_id"}


def config_files() -> list[Path]:
    """The collection's model configs (not the ``*_hf_quant_config.json`` companions)."""
    return sorted(p for p in COLLECTION.iterdir()
                  if p.name.endswith(("_config.json", "_config.json.gz")) and "_hf_quant_config" not in p.name)


def read_json(path: Path) -> dict:
    """A collection file, gunzipped when stored as ``.json.gz``."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def file_key(path: Path) -> str:
    """``org--Name_config.json[.gz]`` -> ``org--Name``."""
    return path.name.split("_config.json")[0]


def hf_repo(path: Path) -> str:
    return file_key(path).replace("--", "/", 1)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in NON_ARCH_KEYS}
    return value


def architecture_key(data: dict) -> str:
    """The config's architecture fingerprint: quantization, dtype, names and token ids removed."""
    return json.dumps(_strip(data), sort_keys=True)


def mtp_layers(data: dict) -> dict:
    found = {}
    for scope in (data, data.get("text_config") or {}):
        for key in MTP_KEYS:
            if scope.get(key):
                found[key] = scope[key]
    return found


def _config(data: dict):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    data = {k: v for k, v in data.items() if k not in ("quantization_config", "compression_config", "auto_map")}
    model_type = data.get("model_type")
    if model_type not in CONFIG_MAPPING:
        import transformers

        raise ValueError(f"model_type {model_type!r} is not in transformers {transformers.__version__}")
    return CONFIG_MAPPING[model_type].from_dict(data)


def build_causal_lm(data: dict):
    """``AutoModelForCausalLM.from_config`` on the meta device (the rule for the 68)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _config(data)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def build_full(data: dict):
    """The published architecture (``architectures[0]`` when transformers has that class, else
    ``AutoModelForImageTextToText``) on the meta device: text model plus any vision tower."""
    import torch
    import transformers
    from transformers import AutoModelForImageTextToText

    config = _config(data)
    arch = (data.get("architectures") or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    with torch.device("meta"):
        if cls is not None:
            return cls._from_config(config)
        return AutoModelForImageTextToText.from_config(config)


def _is_vision(name: str) -> bool:
    return any(marker in name for marker in VISION_MARKERS)


def count(model) -> dict:
    """Parameters of the text part and of the vision part, and the persistent buffers (those
    safetensors stores) of each, ``{name suffix: elements}``."""
    text = vision = 0
    for name, param in model.named_parameters():
        if _is_vision(name):
            vision += param.numel()
        else:
            text += param.numel()
    param_names = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    buffers: dict[str, dict[str, int]] = {"text": {}, "vision": {}}
    for name, tensor in model.state_dict().items():
        if name not in param_names:
            part = buffers["vision" if _is_vision(name) else "text"]
            suffix = name.rsplit(".", 1)[-1]
            part[suffix] = part.get(suffix, 0) + tensor.numel()
    return {"class": type(model).__name__, "params": text + vision, "text_params": text,
            "vision_params": vision, "text_buffers": buffers["text"], "vision_buffers": buffers["vision"]}


def _reason(exc: Exception) -> str:
    line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {line}"[:300]


def evaluate(data: dict) -> dict:
    """The record of one config: its causal-LM build (defines buildability), the full build."""
    out: dict = {}
    try:
        causal = count(build_causal_lm(data))
        out.update({"buildable": True, "causal_lm_class": causal["class"], "total_params": causal["params"],
                    "text_params": causal["text_params"], "checkpoint_buffers": causal["text_buffers"]})
    except Exception as exc:  # noqa: BLE001 - any failure is recorded as the reason
        out.update({"buildable": False, "reason": _reason(exc)})
    try:
        full = count(build_full(data))
        out.update({"full_class": full["class"], "full_params": full["params"],
                    "full_text_params": full["text_params"], "vision_params": full["vision_params"],
                    "vision_buffers": full["vision_buffers"]})
        out.setdefault("checkpoint_buffers", full["text_buffers"])
    except Exception as exc:  # noqa: BLE001
        out["full_reason"] = _reason(exc)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(COLLECTION / "expected_totals.json"))
    args = parser.parse_args(argv)
    import torch
    import transformers

    results: dict[str, dict] = {}
    groups: dict[str, str] = {}
    for path in config_files():
        key = file_key(path)
        data = read_json(path)
        entry = {"file": path.name, "hf_repo": hf_repo(path), "model_type": data.get("model_type"),
                 "mtp": mtp_layers(data)}
        arch = architecture_key(data)
        if arch in groups:
            entry["duplicate_of"] = groups[arch]
        else:
            groups[arch] = key
        start = time.perf_counter()
        entry.update(evaluate(data))
        results[key] = entry
        if entry["buildable"]:
            print(f"{key:58s} {entry['total_params']:>17,d} text {entry['text_params']:>17,d} "
                  f"buffers {entry['checkpoint_buffers']} ({time.perf_counter() - start:.1f} s)", flush=True)
        else:
            extra = f" (full model: text {entry['full_text_params']:,d})" if "full_params" in entry else ""
            print(f"{key:58s} not buildable: {entry['reason'][:90]}{extra}", flush=True)
    buildable = sorted(k for k, v in results.items() if v["buildable"])
    doc = {
        "_about": "independent parameter totals from transformers' models built on the meta device; "
                  "written by benchmarks/hf_collection_totals.py (its docstring documents each field)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "buildable": buildable,
        "buildable_architectures": sorted(k for k in buildable if "duplicate_of" not in results[k]),
        "configs": dict(sorted(results.items())),
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(results)} configs; {len(buildable)} buildable by AutoModelForCausalLM; "
          f"{len(doc['buildable_architectures'])} distinct architectures among them -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
