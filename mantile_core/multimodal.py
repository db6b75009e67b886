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

- Qwen2.5-VL (``qwen2_5_vl``): Conv3d patch embedding without bias ``C·t·p²·D`` (t =
  temporal_patch_size); per block two RMSNorms ``2D``, fused qkv with bias ``3D² + 3D``, proj
  ``D² + D``, a gated MLP with biases ``3·D·I + 2I + D``; the merger: RMSNorm ``D``, then
  ``M = D·s²`` (s = spatial_merge_size) → M → out_hidden_size, with biases:
  ``D + M² + M + M·O + O``. Qwen2.5-VL-7B: 676,550,144 (transformers'
  ``Qwen2_5_VLForConditionalGeneration.model.visual`` on the meta device: the same).
- Pixtral (``pixtral``, Mistral-3): Conv2d patch embedding without bias ``C·D·p²``, ln_pre
  ``D``; per layer two RMSNorms ``2D``, q/k/v/o without bias ``4·D·heads·head_dim``, a
  gated MLP without bias ``3·D·I``. Mistral-3's projector: RMSNorm ``D``, the patch merger
  ``D·s²·D``, linear_1 ``D·n·H_text`` and linear_2 ``H_text²`` (n vision feature layers;
  ``+ H_text`` each with multimodal_projector_bias). Mistral-Small-3.1-24B: 403,305,472 +
  35,652,608 = 438,958,080 (transformers' ``vision_tower`` and ``multi_modal_projector`` on the
  meta device: the same).

Flat wrappers: Qwen2.5-VL's published config.json puts the text model's keys at the top level
beside ``vision_config`` (transformers 5.24 reads them into ``text_config``; configs it re-saved
also carry a ``text_config``, whose keys then win, as in transformers). :func:`text_part`
returns the text model of either spelling, typed as the text architecture Mantile knows
(:data:`TEXT_MODEL_TYPES`); M-RoPE (``mrope``, ``mrope_section``) rotates the same pairs as
RoPE over three position ids, so it is read as the default RoPE (as transformers does).

Other towers are named with their config's shape and "parameters not counted".
"""

from __future__ import annotations

from typing import Any, Mapping

from .checks import MAX_DIM

__all__ = ["excluded_part", "siglip_params", "qwen2_5_vision_params", "pixtral_params", "text_part",
           "TEXT_MODEL_TYPES", "EXCLUDED_KEY"]

EXCLUDED_KEY = "mantile_excluded"

TEXT_MODEL_TYPES = {"qwen2_5_vl": "qwen2", "qwen2_5_vl_text": "qwen2"}
"""Wrapper (flat) or text_config model types -> the text architecture Mantile estimates them as
(Qwen2.5-VL's decoder is Qwen2's: q/k/v biases, RMSNorm, SwiGLU)."""

_NOT_TEXT_KEYS = ("vision_config", "text_config", "audio_config")


def text_part(wrapper: Mapping[str, Any]) -> dict | None:
    """The text model of a wrapper: its ``text_config`` (a flat wrapper's top-level keys
    underneath), with the model_type mapped by TEXT_MODEL_TYPES and M-RoPE read as the default
    RoPE; None when the wrapper carries no typed text model."""
    wrapper_type = wrapper.get("model_type")
    text = wrapper.get("text_config")
    flat = isinstance(wrapper_type, str) and wrapper_type in TEXT_MODEL_TYPES
    if not isinstance(text, Mapping) and not flat:
        return None
    out = {k: v for k, v in wrapper.items() if k not in _NOT_TEXT_KEYS} if flat else {}
    out.update(text if isinstance(text, Mapping) else {})
    text_type = out.get("model_type")
    if not isinstance(text_type, str):
        return None
    out["model_type"] = TEXT_MODEL_TYPES.get(text_type, text_type)
    for key in ("rope_scaling", "rope_parameters"):
        rope = out.get(key)
        if isinstance(rope, Mapping) and "mrope" in (rope.get("rope_type"), rope.get("type")):
            out[key] = {**{k: v for k, v in rope.items() if k != "type"}, "rope_type": "default"}
    return out


def _ints(mapping: Mapping, *keys, defaults: Mapping | None = None) -> tuple[int, ...] | None:
    """Positive integers of ``keys`` (``defaults`` fill missing ones), each at most the
    largest dimension a config may give; None if one is missing or odd (a float, a bool, an
    infinity, a string)."""
    values = []
    for key in keys:
        value = mapping.get(key, (defaults or {}).get(key))
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
            return None
        values.append(value)
    return tuple(values)


def qwen2_5_vision_params(vision: Mapping[str, Any]) -> int | None:
    """Parameters of Qwen2.5-VL's vision tower and merger (module docstring); None if a key is
    missing or odd. Defaults are transformers 5.24's Qwen2_5_VLVisionConfig."""
    shape = _ints(vision, "depth", "hidden_size", "intermediate_size", "out_hidden_size", "patch_size",
                  "temporal_patch_size", "spatial_merge_size", "in_channels",
                  defaults={"in_channels": vision.get("in_chans", 3), "temporal_patch_size": 2, "spatial_merge_size": 2,
                            "patch_size": 14})
    if shape is None:
        return None
    depth, dim, inter, out, patch, temporal, merge, channels = shape
    embed = channels * temporal * patch * patch * dim
    block = 2 * dim + 3 * dim * dim + 3 * dim + dim * dim + dim + 3 * dim * inter + 2 * inter + dim
    merged = dim * merge * merge
    merger = dim + merged * merged + merged + merged * out + out
    return embed + depth * block + merger


def pixtral_params(vision: Mapping[str, Any], wrapper: Mapping[str, Any], text: Mapping[str, Any]) -> int | None:
    """Parameters of a Pixtral vision tower and Mistral-3's projector (module docstring); None
    if a key is missing or odd."""
    shape = _ints(vision, "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                  "patch_size", "num_channels", defaults={"num_channels": 3})
    hidden = _ints(text, "hidden_size")
    merge = _ints(wrapper, "spatial_merge_size", defaults={"spatial_merge_size": 2})
    if shape is None or hidden is None or merge is None:
        return None
    layers, dim, inter, heads, patch, channels = shape
    head_dim = vision.get("head_dim", dim // heads)
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
        return None
    tower = channels * dim * patch * patch + dim + layers * (2 * dim + 4 * dim * heads * head_dim + 3 * dim * inter)
    feature = wrapper.get("vision_feature_layer", -1)
    features = len(feature) if isinstance(feature, list) else 1
    bias = bool(wrapper.get("multimodal_projector_bias", False))
    (text_hidden,), (s,) = hidden, merge
    projector = (dim + dim * s * s * dim + dim * features * text_hidden + text_hidden * text_hidden
                 + 2 * bias * text_hidden)
    return tower + projector


def siglip_params(vision: Mapping[str, Any]) -> int | None:
    """Parameters of a SigLIP vision tower from its config (None if a key is missing or odd)."""
    shape = _ints(vision, "hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size",
                  "num_channels", defaults={"num_channels": 3})
    if shape is None:
        return None
    hidden, inter, layers, patch, image, channels = shape
    if image % patch:
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
        widths = _ints(vision, "hidden_size"), _ints(text, "hidden_size")
        if None in widths:
            return None
        (vision_hidden,), (text_hidden,) = widths
        return vision_hidden * text_hidden + vision_hidden
    return None


def excluded_part(wrapper: Mapping[str, Any], text: Mapping[str, Any]) -> dict | None:
    """What an estimate of ``text`` leaves out of ``wrapper``: {"part", "model_type",
    "params" (int or None), "note"}; None when the wrapper has no vision_config."""
    vision = wrapper.get("vision_config")
    if not isinstance(vision, Mapping):
        return None
    wrapper_type = str(wrapper.get("model_type"))
    vision_type = str(vision.get("model_type") or wrapper_type)
    params = None
    if vision_type == "siglip_vision_model":
        tower, projector = siglip_params(vision), _projector(wrapper_type, vision, text)
        if tower is not None and projector is not None:
            params = tower + projector
    elif wrapper_type == "qwen2_5_vl":
        params = qwen2_5_vision_params(vision)
    elif wrapper_type == "mistral3" and vision_type == "pixtral":
        params = pixtral_params(vision, wrapper, text)
    shape_keys = ("num_hidden_layers", "hidden_size") if "depth" not in vision else ("depth", "hidden_size")
    shape = ", ".join(f"{k} {vision[k]}" for k in shape_keys if k in vision)
    count = f"{params:,} parameters" if params is not None else "parameters not counted"
    note = (f"the {wrapper_type} vision tower ({vision_type}{', ' + shape if shape else ''}) and its projector "
            f"are excluded: {count}; the estimate covers the text model only")
    return {"part": "vision", "model_type": vision_type, "params": params, "note": note}
