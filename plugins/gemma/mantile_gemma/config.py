"""Reading Gemma 2 / 3 configs (hook ``mantile_config_readers``) into the core's spelling.

Published Gemma configs lean on transformers' defaults (Gemma-3-27B's ``text_config`` has no
``vocab_size``, ``layer_types`` or ``rope_theta``), so an absent key takes the default of
transformers 5.24's ``Gemma2Config`` / ``Gemma3TextConfig`` (:data:`DEFAULTS`); a key set to
null means null (``final_logit_softcapping: null`` switches the cap off). What the reader
fills in:

- ``layer_types``: Gemma 2 alternates, sliding first (layer i slides when ``(i+1) % 2``);
  Gemma 3 slides every layer but each ``sliding_window_pattern``-th (default 6: 5 local, 1
  global);
- rope: the global parameters (``rope_theta``, default 1e6 for Gemma 3, 10000 for Gemma 2, plus
  ``rope_scaling``: Gemma-3-27B linear ×8) as ``rope_parameters``; the local ones
  (``rope_local_base_freq``, default 10000, unscaled) as ``rope_local_parameters``, which the
  attention of sliding layers uses. transformers' nested form (``rope_parameters`` keyed by
  ``full_attention`` / ``sliding_attention``) is read as well;
- ``head_dim``, ``query_pre_attn_scalar`` (default 256), ``attn_logit_softcapping`` and
  ``final_logit_softcapping`` (Gemma 2: 50 and 30; Gemma 3: none), ``tie_word_embeddings``
  (default true), checked with :mod:`mantile_core.checks`.
"""

from __future__ import annotations

from typing import Any

from mantile_core import checks
from mantile_core.errors import ConfigError

from .softcap import check_cap

__all__ = ["DEFAULTS", "read_gemma", "READERS"]

_COMMON = {
    "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26, "num_attention_heads": 8,
    "num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True, "query_pre_attn_scalar": 256,
    "sliding_window": 4096, "hidden_activation": "gelu_pytorch_tanh",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma2": _COMMON | {"vocab_size": 256_000, "max_position_embeddings": 8192, "rope_theta": 10_000.0,
                         "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0},
    "gemma3_text": _COMMON | {"vocab_size": 262_208, "max_position_embeddings": 131_072, "rope_theta": 1_000_000.0,
                              "rope_local_base_freq": 10_000.0, "final_logit_softcapping": None,
                              "attn_logit_softcapping": None},
}
GELU_TANH = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_new")


def _cap(data: dict, key: str, where: str, default: float | None) -> float | None:
    return check_cap(data[key] if key in data else default, key, where)


def _rope(data: dict, where: str, model_type: str) -> tuple[dict, dict | None]:
    """(global rope parameters, local rope parameters or None for Gemma 2)."""
    defaults = DEFAULTS[model_type]
    params = data.get("rope_parameters")
    nested = isinstance(params, dict) and ("full_attention" in params or "sliding_attention" in params)
    if nested:
        full = dict(checks.get_mapping(params, "full_attention", where + " rope_parameters", default={}))
        local = dict(checks.get_mapping(params, "sliding_attention", where + " rope_parameters", default={}))
    else:
        full = dict(checks.get_mapping(data, "rope_parameters", where, default=None)
                    or checks.get_mapping(data, "rope_scaling", where, default=None) or {})
        local = {}
    if "type" in full and "rope_type" not in full:
        full["rope_type"] = full.pop("type")
    full.setdefault("rope_type", "default")
    full.setdefault("rope_theta", checks.get_float(data, "rope_theta", where, default=defaults["rope_theta"],
                                                   positive=True))
    if model_type == "gemma2":
        return full, None
    local.setdefault("rope_type", "default")
    local.setdefault("rope_theta", checks.get_float(data, "rope_local_base_freq", where,
                                                    default=defaults["rope_local_base_freq"], positive=True))
    local["rope_theta"] = checks.get_float(local, "rope_theta", where + " local rope", positive=True)
    return full, local


def _layer_types(data: dict, where: str, model_type: str, layers: int) -> list[str]:
    given = checks.get_str_list(data, "layer_types", where, default=None, length=layers,
                                choices=("sliding_attention", "full_attention"))
    if given is not None:
        return list(given)
    if model_type == "gemma2":
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(layers)]
    pattern = checks.get_int(data, "sliding_window_pattern", where, default=6, maximum=checks.MAX_LAYERS)
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)]


def read_gemma(raw: dict, where: str) -> dict:
    """A gemma2 / gemma3_text config dict in the core's spelling (module docstring)."""
    model_type = checks.get_str(raw, "model_type", where, choices=DEFAULTS)
    defaults = DEFAULTS[model_type]
    if checks.get_bool(raw, "use_bidirectional_attention", where, default=False):
        raise ConfigError(f"{where}: use_bidirectional_attention (EmbeddingGemma) is not supported: "
                          "mantile-gemma models causal decoders")
    data = {key: raw.get(key, value) if raw.get(key) is not None else value
            for key, value in defaults.items() if not key.endswith("softcapping")}
    out = {**raw, **data}
    layers = checks.get_int(out, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    activation = checks.get_str(out, "hidden_activation", where)
    if activation not in GELU_TANH:
        raise ConfigError(f"{where}: 'hidden_activation' {activation!r} is not supported by mantile-gemma "
                          f"(the tanh GELU: {', '.join(GELU_TANH)})")
    full, local = _rope(raw, where, model_type)
    out["rope_parameters"] = full
    out.pop("rope_scaling", None)
    if local is not None:
        out["rope_local_parameters"] = local
    out["layer_types"] = _layer_types(raw, where, model_type, layers)
    out["query_pre_attn_scalar"] = checks.get_float(out, "query_pre_attn_scalar", where, positive=True)
    out["attn_logit_softcapping"] = _cap(raw, "attn_logit_softcapping", where, defaults["attn_logit_softcapping"])
    out["final_logit_softcapping"] = _cap(raw, "final_logit_softcapping", where,
                                          defaults["final_logit_softcapping"])
    out["tie_word_embeddings"] = checks.get_bool(out, "tie_word_embeddings", where)
    return out


def _readers():
    from mantile_core.records import ConfigReader

    from .gemma4 import read_gemma4

    return [ConfigReader("gemma", frozenset(DEFAULTS), read_gemma,
                         description="Gemma 2 / 3 text configs: transformers' defaults, layer_types, local/global rope"),
            ConfigReader("gemma4", frozenset({"gemma4_text"}), read_gemma4,
                         description="Gemma 4 text configs: per-layer head_dim / KV heads / k=v, MoE block, rope per layer type")]


READERS = _readers()
