"""Reading Llama 4 text configs (``llama4_text``; hook ``mantile_config_readers``).

transformers 5.24's ``Llama4TextConfig`` semantics, absent keys at its defaults:

- ``no_rope_layers[i]`` is 1 when layer i applies RoPE, 0 for a NoPE layer; absent (or empty),
  every ``no_rope_layer_interval``-th layer (default 4: layers 3, 7, ...) is NoPE;
- chunked layers: ``layer_types`` if given (``chunked_attention`` / ``full_attention``), else
  every RoPE layer when ``attention_chunk_size`` (default 8192) is set; NoPE layers attend
  the whole context;
- MoE layers: ``moe_layers`` if given, else ``range(interleave_moe_layer_step − 1, L, step)``
  (Scout: step 1, all 48; Maverick: step 2, the odd layers); the others are dense SwiGLU MLPs
  of ``intermediate_size_mlp``. Experts and the shared expert have ``intermediate_size``;
  ``num_local_experts`` experts, ``num_experts_per_tok`` (1) routed per token.

Returned in the core's spelling: ``intermediate_size`` = the dense MLP's, ``moe_intermediate_size``
and ``shared_expert_intermediate_size`` = the experts', ``mlp_only_layers`` = the dense layers;
``llama4_layer_types`` (chunked/full per layer) and ``llama4_rope_layers`` (1/0) for the layers.
"""

from __future__ import annotations

from mantile_core import checks
from mantile_core.errors import ConfigError

__all__ = ["read_llama4", "READERS", "MODEL_TYPES"]

MODEL_TYPES = frozenset({"llama4_text"})
DEFAULTS = {"vocab_size": 202_048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16_384,
            "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
            "max_position_embeddings": 131_072, "num_experts_per_tok": 1, "num_local_experts": 16,
            "interleave_moe_layer_step": 1, "no_rope_layer_interval": 4, "attention_chunk_size": 8192,
            "rope_theta": 500_000.0}


def read_llama4(raw: dict, where: str) -> dict:
    """A llama4_text config in the core's spelling (module docstring)."""
    out = dict(raw)
    for key, value in DEFAULTS.items():
        if key not in raw or (raw[key] is None and key != "attention_chunk_size"):
            out[key] = value
    if checks.get_str(raw, "hidden_act", where, default="silu") != "silu":
        raise ConfigError(f"{where}: 'hidden_act' {raw['hidden_act']!r} is not supported by mantile-llama4 (silu)")
    layers = checks.get_int(out, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    step = checks.get_int(out, "interleave_moe_layer_step", where, maximum=checks.MAX_LAYERS)
    moe = checks.get_int_list(raw, "moe_layers", where, default=None, maximum=layers - 1)
    moe = set(moe) if moe is not None else set(range(step - 1, layers, step))
    interval = checks.get_int(out, "no_rope_layer_interval", where, maximum=checks.MAX_LAYERS)
    rope_layers = checks.get_int_list(raw, "no_rope_layers", where, default=None, maximum=1) or None
    if rope_layers is None:
        rope_layers = tuple(int((i + 1) % interval != 0) for i in range(layers))
    elif len(rope_layers) != layers:
        raise ConfigError(f"{where}: 'no_rope_layers' has {len(rope_layers)} entries for num_hidden_layers={layers}")
    chunk = checks.get_int(out, "attention_chunk_size", where, default=None, maximum=checks.MAX_POSITIONS)
    given = checks.get_str_list(raw, "layer_types", where, default=None, length=layers,
                                choices=("chunked_attention", "full_attention"))
    if given is None:
        given = tuple("chunked_attention" if use and chunk is not None else "full_attention" for use in rope_layers)
    if "chunked_attention" in given and chunk is None:
        raise ConfigError(f"{where}: layer_types has chunked_attention but attention_chunk_size is null")
    experts = checks.get_int(out, "num_local_experts", where, maximum=1 << 16)
    expert_inter = checks.get_int(out, "intermediate_size", where)
    out.update({
        "intermediate_size": checks.get_int(out, "intermediate_size_mlp", where),
        "moe_intermediate_size": expert_inter,
        "shared_expert_intermediate_size": expert_inter,
        "num_local_experts": experts,
        "mlp_only_layers": [i for i in range(layers) if i not in moe],
        "decoder_sparse_step": 1,
        "llama4_layer_types": list(given),
        "llama4_rope_layers": list(rope_layers),
        "use_qk_norm": checks.get_bool(raw, "use_qk_norm", where, default=True),
        "attn_temperature_tuning": checks.get_bool(raw, "attn_temperature_tuning", where, default=True),
        "tie_word_embeddings": checks.get_bool(raw, "tie_word_embeddings", where, default=False),
    })
    for key in ("layer_types", "sliding_window", "moe_layers", "num_experts", "n_routed_experts"):
        out.pop(key, None)
    return out


def _readers():
    from mantile_core.records import ConfigReader

    return [ConfigReader("llama4", MODEL_TYPES, read_llama4,
                         description="Llama 4 text: interleaved MoE, NoPE layers, chunked attention")]


READERS = _readers()
