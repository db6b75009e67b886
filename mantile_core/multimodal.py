"""Multimodal wrappers: which part of an image-text checkpoint an estimate leaves out.

A wrapper config (Gemma-3 ``gemma3``, Llama 4 ``llama4``, Mistral-3 ``mistral3``, Qwen2.5-VL
``qwen2_5_vl``, ...) holds the text model in ``text_config`` and the vision tower in
``vision_config``. Mantile estimates the text model (the decoder that prefills and decodes);
the vision tower runs once per image and is **excluded**, and said so: ``mantile layers`` and
``mantile estimate`` print one line naming it, their JSON carries ``excluded``, and where the
tower's shape is known here its parameter count is given exactly:

- SigLIP (``siglip_vision_model``, Gemma 3): patch embedding ``3·D·p² + D``, position
  embedding ``(image/p)²·D``, per layer two LayerNorms ``4D``, q/k/v/o with biases
  ``4(D² + D)``, MLP ``2·D·I + I + D``; post-LayerNorm ``2D``; the head when
  ``vision_use_head``. Gemma 3's projector: ``D·H_text`` + an RMSNorm ``D``. Gemma-3-27B:
  416,866,032 + 6,194,304 = 423,060,336 (transformers' ``Gemma3ForConditionalGeneration`` on
  the meta device: the same).

Other towers are named with their config's shape and "parameters not counted".
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["excluded_part", "siglip_params", "EXCLUDED_KEY"]

EXCLUDED_KEY = "mantile_excluded"


def siglip_params(vision: Mapping[str, Any]) -> int | None:
    """Parameters of a SigLIP vision tower from its config (None if a key is missing or odd)."""
    try:
        hidden, inter = int(vision["hidden_size"]), int(vision["intermediate_size"])
        layers, patch = int(vision["num_hidden_layers"]), int(vision["patch_size"])
        image = int(vision["image_size"])
        channels = int(vision.get("num_channels", 3))
    except (KeyError, TypeError, ValueError):
        return None
    if min(hidden, inter, layers, patch, image, channels) <= 0 or image % patch:
        return None
    embeddings = channels * hidden * patch * patch + hidden + (image // patch) ** 2 * hidden
    per_layer = 4 * hidden + 4 * (hidden * hidden + hidden) + 2 * hidden * inter + inter + hidden
    head = 0
    if vision.get("vision_use_head", True):
        heads_probe = hidden  # multihead attention pooling: probe, in/out projections, LayerNorm, MLP
        head = heads_probe + 3 * hidden * hidden + 3 * hidden + hidden * hidden + hidden + 2 * hidden \
            + 2 * hidden * inter + inter + hidden
    return embeddings + layers * per_layer + 2 * hidden + head


def _projector(wrapper_type: str, vision: Mapping, text: Mapping) -> int | None:
    if wrapper_type == "gemma3":
        try:
            return int(vision["hidden_size"]) * int(text["hidden_size"]) + int(vision["hidden_size"])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def excluded_part(wrapper: Mapping[str, Any], text: Mapping[str, Any]) -> dict | None:
    """What an estimate of ``text`` leaves out of ``wrapper``: {"part", "model_type",
    "params" (int or None), "note"}; None when the wrapper has no vision_config."""
    vision = wrapper.get("vision_config")
    if not isinstance(vision, Mapping):
        return None
    wrapper_type = str(wrapper.get("model_type"))
    vision_type = str(vision.get("model_type") or "vision tower")
    params = None
    if vision_type == "siglip_vision_model":
        tower, projector = siglip_params(vision), _projector(wrapper_type, vision, text)
        if tower is not None and projector is not None:
            params = tower + projector
    shape = ", ".join(f"{k} {vision[k]}" for k in ("num_hidden_layers", "hidden_size") if k in vision)
    count = f"{params:,} parameters" if params is not None else "parameters not counted"
    note = (f"the {wrapper_type} vision tower ({vision_type}{', ' + shape if shape else ''}) and its projector "
            f"are excluded: {count}; the estimate covers the text model only")
    return {"part": "vision", "model_type": vision_type, "params": params, "note": note}
