"""The model families of mantile-recurrent: how each one's config.json is read (config
readers, in the core's standard spelling) and which blocks it is made of.

A model is a list of blocks, each ``(mixer, ffn)``: mixer one of ``mamba`` (Mamba-1),
``mamba2``, ``linear_attention`` (Gated DeltaNet), ``attention``, or None; ffn ``mlp``,
``moe`` or None. The rules, as transformers builds each family:

- ``mamba``, ``falcon_mamba``: every block a Mamba-1 mixer; ``mamba2``: every block Mamba-2.
- ``jamba``: block i is attention when ``i % attn_layer_period == attn_layer_offset``, else
  Mamba-1 (with B/C/Δ RMSNorms); its ffn is MoE when ``i % expert_layer_period ==
  expert_layer_offset``, else a dense MLP.
- ``qwen3_next``: block i is full attention when ``(i + 1) % full_attention_interval == 0``,
  else Gated DeltaNet; ffn MoE unless in ``mlp_only_layers`` or off ``decoder_sparse_step``
  (the core's rule).
- ``qwen3_5``, ``qwen3_5_moe`` (multimodal wrappers: the text model is ``text_config``):
  ``layer_types`` lists ``linear_attention`` / ``full_attention`` per block; ffn MoE when the
  text config has experts.
- ``nemotron_h``: one mixer *or* ffn per block, from ``hybrid_override_pattern`` (``M``
  Mamba-2, ``*`` attention, ``-`` MLP, ``E`` MoE) or ``layers_block_type`` (``mamba`` /
  ``linear_attention``, ``attention`` / ``full_attention``, ``mlp``, ``moe``). As in
  transformers the pattern fixes the layer count; a ``num_hidden_layers`` that disagrees is
  an error here rather than silently ignored.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["READERS", "FAMILY_MODEL_TYPES", "blocks", "MAMBA1_TYPES", "MAMBA2_TYPES", "QWEN_TYPES",
           "NEMOTRON_TYPES", "JAMBA_TYPES", "MODEL_TYPES"]

MAMBA1_TYPES = frozenset({"mamba", "falcon_mamba"})
MAMBA2_TYPES = frozenset({"mamba2"})
JAMBA_TYPES = frozenset({"jamba"})
QWEN_TYPES = frozenset({"qwen3_next", "qwen3_5", "qwen3_5_moe"})
QWEN35_TEXT = {"qwen3_5_text": "qwen3_5", "qwen3_5_moe_text": "qwen3_5_moe"}
NEMOTRON_TYPES = frozenset({"nemotron_h"})
MODEL_TYPES = MAMBA1_TYPES | MAMBA2_TYPES | JAMBA_TYPES | QWEN_TYPES | NEMOTRON_TYPES

PATTERN = {"M": ("mamba2", None), "*": ("attention", None), "-": (None, "mlp"), "E": (None, "moe")}
BLOCK_TYPES = {"mamba": "M", "linear_attention": "M", "attention": "*", "full_attention": "*", "mlp": "-",
               "moe": "E"}
BLOCKS_KEY = "mantile_blocks"  # the reader's normalised block list, kept in the config dict


def _checks():
    from mantile_core import checks

    return checks


def _error(message: str):
    from mantile_core.errors import ConfigError

    return ConfigError(message)


def _check_state_dtype(data: dict, key: str, where: str) -> None:
    """``mamba_ssm_dtype`` / ``mamba_ssm_cache_dtype``: absent, "auto" or a known dtype name."""
    if data.get(key) in (None, "auto"):
        return
    from mantile_core.dtypes import get_dtype
    from mantile_core.errors import MantileError

    name = _checks().get_str(data, key, where)
    try:
        get_dtype(name)
    except MantileError:
        raise _error(f"{where}: {key}={name!r} is not a known dtype (float32, bfloat16, float16)") from None


# --- readers: raw config.json -> the core's spelling --------------------------------------
def read_mamba(raw: dict, where: str) -> dict:
    """Mamba-1: intermediate_size defaults to expand·hidden, time_step_rank "auto" to
    ceil(hidden/16), tie_word_embeddings to true (MambaConfig, FalconMambaConfig)."""
    c = _checks()
    hidden = c.get_int(raw, "hidden_size", where)
    expand = c.get_int(raw, "expand", where, 2)
    rank = raw.get("time_step_rank", "auto")
    rank = -(-hidden // 16) if rank == "auto" else c.get_int(raw, "time_step_rank", where)
    out = {**raw, "intermediate_size": c.get_int(raw, "intermediate_size", where, expand * hidden),
           "time_step_rank": rank, "state_size": c.get_int(raw, "state_size", where, 16),
           "conv_kernel": c.get_int(raw, "conv_kernel", where, 4),
           "use_bias": c.get_bool(raw, "use_bias", where, False),
           "use_conv_bias": c.get_bool(raw, "use_conv_bias", where, True),
           "tie_word_embeddings": c.get_bool(raw, "tie_word_embeddings", where, True)}
    return _with_blocks(out, where)


def read_mamba2(raw: dict, where: str) -> dict:
    """Mamba-2: intermediate_size = num_heads·head_dim (transformers requires it to equal
    expand·hidden); head_dim is the SSM head's, so it moves to ``ssm_head_dim``."""
    c = _checks()
    hidden = c.get_int(raw, "hidden_size", where)
    heads = c.get_int(raw, "num_heads", where, 128)
    head_dim = c.get_int(raw, "head_dim", where, 64)
    expand = c.get_int(raw, "expand", where, 2)
    if heads * head_dim != expand * hidden:
        raise _error(f"{where}: num_heads·head_dim = {heads * head_dim} must equal expand·hidden_size = "
                     f"{expand * hidden}")
    out = {k: v for k, v in raw.items() if k != "head_dim"}
    out.update(intermediate_size=heads * head_dim, num_heads=heads, ssm_head_dim=head_dim,
               n_groups=c.get_int(raw, "n_groups", where, 8), state_size=c.get_int(raw, "state_size", where, 128),
               conv_kernel=c.get_int(raw, "conv_kernel", where, 4),
               chunk_size=c.get_int(raw, "chunk_size", where, 256),
               use_bias=c.get_bool(raw, "use_bias", where, False),
               use_conv_bias=c.get_bool(raw, "use_conv_bias", where, True),
               tie_word_embeddings=c.get_bool(raw, "tie_word_embeddings", where, False))
    if heads % out["n_groups"]:
        raise _error(f"{where}: num_heads={heads} must be a multiple of n_groups={out['n_groups']}")
    return _with_blocks(out, where)


def read_jamba(raw: dict, where: str) -> dict:
    """Jamba: the Mamba keys checked (mamba_d_state, mamba_d_conv, mamba_expand,
    mamba_dt_rank "auto" = ceil(hidden/16)) and the attention / expert periods."""
    c = _checks()
    hidden = c.get_int(raw, "hidden_size", where)
    rank = raw.get("mamba_dt_rank", "auto")
    rank = -(-hidden // 16) if rank == "auto" else c.get_int(raw, "mamba_dt_rank", where)
    out = {**raw, "mamba_dt_rank": rank}
    for key, default in (("mamba_d_state", 16), ("mamba_d_conv", 4), ("mamba_expand", 2)):
        out[key] = c.get_int(raw, key, where, default)
    for key, default in (("attn_layer_period", 8), ("attn_layer_offset", 4), ("expert_layer_period", 2),
                         ("expert_layer_offset", 1)):
        out[key] = c.get_int(raw, key, where, default, minimum=0 if key.endswith("offset") else 1)
    out["mamba_proj_bias"] = c.get_bool(raw, "mamba_proj_bias", where, False)
    out["mamba_conv_bias"] = c.get_bool(raw, "mamba_conv_bias", where, True)
    for period, offset in (("attn_layer_period", "attn_layer_offset"), ("expert_layer_period", "expert_layer_offset")):
        if out[offset] >= out[period]:
            raise _error(f"{where}: {offset}={out[offset]} must be smaller than {period}={out[period]}")
    if c.get_int(raw, "num_experts", where, 16) == 1:
        out["num_experts"] = 0  # one expert everywhere is a dense MLP in transformers
    return _with_blocks(out, where)


def read_qwen_hybrid(raw: dict, where: str) -> dict:
    """Qwen3-Next and Qwen3.5 / 3.6: unwrap ``text_config`` (keeping the wrapper's
    quantization_config and tie_word_embeddings), name the model type by its wrapper
    (qwen3_5_moe_text -> qwen3_5_moe), move ``layer_types`` (linear_attention entries the
    core's attention masks do not know) to ``linear_layer_types``, check the DeltaNet keys."""
    c = _checks()
    data = dict(raw)
    if data.get("text_config") is not None:
        text = c.get_mapping(data, "text_config", where)
        # the wrapper's quantization_config / tie flag win, unless absent or null (a text
        # config's own quantization_config is kept then)
        outer = {k: data[k] for k in ("quantization_config", "tie_word_embeddings") if data.get(k) is not None}
        data = {**text, **outer}
    data["model_type"] = QWEN35_TEXT.get(data.get("model_type"), data.get("model_type"))
    layer_types = data.pop("layer_types", None)
    if layer_types is not None:
        data["linear_layer_types"] = c.get_str_list({"layer_types": layer_types}, "layer_types", where)
    for key in ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
                "linear_conv_kernel_dim"):
        data[key] = c.get_int(data, key, where)
    _check_state_dtype(data, "mamba_ssm_dtype", where)
    if data["linear_num_value_heads"] % data["linear_num_key_heads"]:
        raise _error(f"{where}: linear_num_value_heads={data['linear_num_value_heads']} must be a multiple of "
                     f"linear_num_key_heads={data['linear_num_key_heads']}")
    return _with_blocks(data, where)


def read_nemotron_h(raw: dict, where: str) -> dict:
    """Nemotron-H / Nemotron-3: the block pattern (``hybrid_override_pattern`` or
    ``layers_block_type``) fixes num_hidden_layers; n_routed_experts is the core's
    num_experts; the Mamba-2 keys are checked."""
    c = _checks()
    out = dict(raw)
    for key, default in (("mamba_num_heads", 128), ("mamba_head_dim", 64), ("n_groups", 8),
                         ("ssm_state_size", 128), ("conv_kernel", 4), ("chunk_size", 128)):
        out[key] = c.get_int(raw, key, where, default)
    if out["mamba_num_heads"] % out["n_groups"]:
        raise _error(f"{where}: mamba_num_heads={out['mamba_num_heads']} must be a multiple of "
                     f"n_groups={out['n_groups']}")
    for key, default in (("use_bias", False), ("use_conv_bias", True), ("mlp_bias", False)):
        out[key] = c.get_bool(raw, key, where, default)
    _check_state_dtype(raw, "mamba_ssm_cache_dtype", where)
    out = _with_blocks(out, where)
    ffns = {ffn for _, ffn in out[BLOCKS_KEY]}
    if "mlp" in ffns:
        c.get_int(out, "intermediate_size", where)
    if "moe" in ffns:
        # transformers maps num_local_experts onto n_routed_experts
        key = "num_local_experts" if raw.get("num_local_experts") is not None else "n_routed_experts"
        out["n_routed_experts"] = c.get_int(raw, key, where)
        out.pop("num_local_experts", None)
        c.get_int(raw, "num_experts_per_tok", where, maximum=out["n_routed_experts"])
        out["moe_shared_expert_intermediate_size"] = c.get_int(raw, "moe_shared_expert_intermediate_size", where)
        out["moe_latent_size"] = c.get_int(raw, "moe_latent_size", where, None)
    return out


# --- blocks -------------------------------------------------------------------------------
def _nemotron_blocks(data: dict, where: str) -> list[tuple[Any, Any]]:
    c = _checks()
    if data.get("hybrid_override_pattern") is not None:
        pattern = c.get_str(data, "hybrid_override_pattern", where)
        key = "hybrid_override_pattern"
    elif data.get("layers_block_type") is not None:
        names = c.get_str_list(data, "layers_block_type", where)
        bad = sorted(set(names) - set(BLOCK_TYPES))
        if bad:
            raise _error(f"{where}: layers_block_type has unknown block types {bad} (expected {sorted(BLOCK_TYPES)})")
        pattern = "".join(BLOCK_TYPES[n] for n in names)
        key = "layers_block_type"
    else:
        raise _error(f"{where}: required key 'hybrid_override_pattern' (or 'layers_block_type') is missing")
    bad = sorted(set(pattern) - set(PATTERN))
    if bad:
        raise _error(f"{where}: {key} has unknown block symbols {bad} (M mamba, * attention, - mlp, E moe)")
    if len(pattern) > c.MAX_LAYERS:
        raise _error(f"{where}: {key} gives {len(pattern)} blocks (at most {c.MAX_LAYERS:,} layers)")
    given = data.get("num_hidden_layers")
    if given is not None and c.get_int(data, "num_hidden_layers", where, None, maximum=c.MAX_LAYERS) != len(pattern):
        raise _error(f"{where}: num_hidden_layers={given} disagrees with the {len(pattern)} blocks of {key}")
    return [PATTERN[s] for s in pattern]


def _qwen_blocks(data: dict, where: str, layers: int) -> list[tuple[Any, Any]]:
    c = _checks()
    types = data.get("linear_layer_types")
    if types is None:
        interval = c.get_int(data, "full_attention_interval", where, 4)
        types = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    if len(types) != layers:
        raise _error(f"{where}: layer_types has {len(types)} entries for num_hidden_layers={layers}")
    mixers = {"linear_attention": "linear_attention", "full_attention": "attention"}
    bad = sorted(set(types) - set(mixers))
    if bad:
        raise _error(f"{where}: layer_types has unknown entries {bad} (linear_attention, full_attention)")
    experts = c.get_int(data, "num_experts", where, 0, minimum=0)
    step = c.get_int(data, "decoder_sparse_step", where, 1)
    dense = set(c.get_int_list(data, "mlp_only_layers", where, [], minimum=0) or [])
    return [(mixers[t], "moe" if experts and i not in dense and (i + 1) % step == 0 else "mlp")
            for i, t in enumerate(types)]


def blocks(data: dict, where: str) -> list[tuple[Any, Any]]:
    """The (mixer, ffn) of every block of a config already normalised by its reader."""
    c = _checks()
    model_type = data.get("model_type")
    if model_type in NEMOTRON_TYPES:
        return _nemotron_blocks(data, where)
    layers = c.get_int(data, "num_hidden_layers", where, maximum=c.MAX_LAYERS)
    if model_type in MAMBA1_TYPES:
        return [("mamba", None)] * layers
    if model_type in MAMBA2_TYPES:
        return [("mamba2", None)] * layers
    if model_type in JAMBA_TYPES:
        experts = c.get_int(data, "num_experts", where, 16, minimum=0)
        return [("attention" if i % data["attn_layer_period"] == data["attn_layer_offset"] else "mamba",
                 "moe" if experts and i % data["expert_layer_period"] == data["expert_layer_offset"] else "mlp")
                for i in range(layers)]
    return _qwen_blocks(data, where, layers)


def _with_blocks(data: dict, where: str) -> dict:
    found = blocks(data, where)
    return {**data, "num_hidden_layers": len(found), BLOCKS_KEY: [list(b) for b in found]}


READERS: dict[str, tuple[frozenset[str], Callable[[dict, str], dict], str]] = {
    "recurrent-mamba": (MAMBA1_TYPES, read_mamba, "Mamba-1 / Falcon-Mamba config.json"),
    "recurrent-mamba2": (MAMBA2_TYPES, read_mamba2, "Mamba-2 config.json (num_heads, head_dim, n_groups)"),
    "recurrent-jamba": (JAMBA_TYPES, read_jamba, "Jamba: attention / expert periods and offsets, mamba_* keys"),
    "recurrent-qwen-hybrid": (QWEN_TYPES | frozenset(QWEN35_TEXT), read_qwen_hybrid,
                              "Qwen3-Next / Qwen3.5 / Qwen3.6: text_config, layer_types with linear_attention"),
    "recurrent-nemotron-h": (NEMOTRON_TYPES, read_nemotron_h,
                             "Nemotron-H / Nemotron-3: hybrid_override_pattern or layers_block_type"),
}
FAMILY_MODEL_TYPES = MODEL_TYPES
