"""Reading DeepSeek-V4 configs (``deepseek_v4``: DeepSeek-V4-Flash / -Pro), checked once.

``deepseek_ref`` (SGLang's spelling of DeepSeek's reference configs, e.g. sgl-project's
DeepSeek-V4-Flash-FP8: the same keys, fp8 experts) is read the same way when its
``architectures`` names DeepseekV4ForCausalLM, and refused in one line otherwise.

The keys and their meaning follow transformers 5.24's ``DeepseekV4Config`` (its
``__post_init__`` folds the legacy spellings the published configs use):

- attention schedule: ``layer_types`` ("sliding_attention", "compressed_sparse_attention",
  "heavily_compressed_attention"), else the legacy per-layer codes ``compress_ratios``
  (0 sliding only, 4 CSA, 128 HCA; a published list has one entry more than
  ``num_hidden_layers``, the MTP layer's, and is cut to the layer count as transformers does),
  else transformers' default (two HCA, then CSA / HCA alternating). The compression rate of each
  type is ``compress_rates`` (default {CSA: 4, HCA: 128}; legacy ``compress_rate_csa`` /
  ``compress_rate_hca`` override it);
- MoE schedule: ``mlp_layer_types`` ("hash_moe" / "moe"), else the first ``num_hash_layers``
  (default 3) layers hash-routed; every layer is MoE (no dense prefix);
- attention widths: ``head_dim`` (shared K = V per token), ``qk_rope_head_dim`` (the rotated
  tail of each head; else ``partial_rotary_factor`` · head_dim, default 64/512), ``q_lora_rank``,
  ``o_groups``, ``o_lora_rank``, ``sliding_window``, ``num_key_value_heads`` (1: shared-KV MQA);
- indexer: ``index_n_heads``, ``index_head_dim``, ``index_topk``;
- hyper-connections: ``hc_mult``, ``hc_sinkhorn_iters``, ``hc_eps``;
- MoE: ``n_routed_experts``, ``n_shared_experts`` (transformers builds one shared MLP of
  ``moe_intermediate_size`` whatever the value, so only 1 is accepted), ``scoring_func``,
  ``swiglu_limit``, ``routed_scaling_factor``, ``norm_topk_prob``;
- storage: ``expert_dtype`` (top level, or inside ``quantization_config``): "fp4" experts are
  e2m1 pairs packed in bytes with one ue8m0 scale per 32 elements of a row; ``scale_fmt``
  "ue8m0": the fp8 linears' 128 × 128 block scales are one byte each;
  ``quantization_config.moe_quant_algo`` "NVFP4" (nvidia's re-publication): nvfp4 experts.

:func:`read_deepseek_v4` returns the standard spelling: ``num_experts``, ``layer_types`` all
"sliding_attention" (every layer attends its window; the core gives each layer
``sliding_window``), the schedule normalised to ``compress_ratios`` codes and
``compress_rates``, ``mlp_layer_types`` per layer, and ``partial_rotary_factor`` =
qk_rope_head_dim / head_dim in the rope parameters.
"""

from __future__ import annotations

import attrs
from mantile_core import checks
from mantile_core.errors import ConfigError

__all__ = ["V4_MODEL_TYPES", "V4Spec", "read_v4_spec", "v4_spec", "read_deepseek_v4", "SLIDING", "CSA", "HCA"]

V4_MODEL_TYPES = frozenset({"deepseek_v4", "deepseek_ref"})
V4_ARCHITECTURE = "DeepseekV4ForCausalLM"
SLIDING, CSA, HCA = "sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention"
CODES = {0: SLIDING, 4: CSA, 128: HCA}  # transformers' legacy compress_ratios codes
DEFAULT_RATES = {CSA: 4, HCA: 128}
DEFAULT_HASH_LAYERS = 3


@attrs.frozen
class V4Spec:
    """The DeepSeek-V4 keys, checked: widths in elements, ``attention[i]`` layer i's type,
    ``ratios[i]`` its compression rate m (0: sliding only), ``hashed[i]`` True when layer i
    routes by the token-id table."""

    hidden: int
    heads: int
    head_dim: int
    rope_dim: int
    q_lora_rank: int
    o_groups: int
    o_lora_rank: int
    window: int
    index_n_heads: int
    index_head_dim: int
    index_topk: int
    hc_mult: int
    hc_sinkhorn_iters: int
    attention: tuple[str, ...]
    ratios: tuple[int, ...]
    hashed: tuple[bool, ...]
    scoring_func: str
    swiglu_limit: float
    expert_format: str  # "fp4", "nvfp4", or "" (the quantization format / checkpoint dtype)
    scale_fmt: str  # "ue8m0" (one-byte block scales) or "float"


def _rates(raw, where: str) -> dict[str, int]:
    rates = dict(DEFAULT_RATES)
    given = checks.get_mapping(raw, "compress_rates", where, default=None)
    if given is not None:
        for key in given:
            if key not in (CSA, HCA):
                raise ConfigError(f"{where}: 'compress_rates' has {key!r}; its keys are {CSA!r} and {HCA!r}")
            rates[key] = checks.get_int(given, key, where + " compress_rates", maximum=checks.MAX_POSITIONS)
    for key, name in (("compress_rate_csa", CSA), ("compress_rate_hca", HCA)):
        value = checks.get_int(raw, key, where, default=None, maximum=checks.MAX_POSITIONS)
        if value is not None:
            rates[name] = value
    if rates[CSA] == rates[HCA]:
        raise ConfigError(f"{where}: the CSA and HCA compression rates must differ (both {rates[CSA]})")
    return rates


def _attention_types(raw, where: str, layers: int) -> tuple[str, ...]:
    types = checks.get_str_list(raw, "layer_types", where, default=None)
    if types is not None:
        bad = sorted(set(types) - {SLIDING, CSA, HCA})
        if bad:
            raise ConfigError(f"{where}: layer_types has {bad[0]!r}; a DeepSeek-V4 layer is one of "
                              f"{SLIDING!r}, {CSA!r}, {HCA!r}")
    else:
        codes = checks.get_int_list(raw, "compress_ratios", where, default=None, minimum=0)
        if codes is not None:
            bad = sorted(set(codes) - set(CODES))
            if bad:
                raise ConfigError(f"{where}: 'compress_ratios' has {bad[0]}; its codes are 0 (sliding only), "
                                  f"4 (CSA) and 128 (HCA)")
            types = [CODES[c] for c in codes]
        else:
            types = [HCA] * min(layers, 2) + [CSA if i % 2 else HCA for i in range(max(layers - 2, 0))]
    if len(types) < layers:
        raise ConfigError(f"{where}: the attention schedule has {len(types)} entries for "
                          f"num_hidden_layers={layers}")
    return tuple(types[:layers])


def _hashed(raw, where: str, layers: int) -> tuple[bool, ...]:
    types = checks.get_str_list(raw, "mlp_layer_types", where, default=None, choices=("hash_moe", "moe"))
    if types is None:
        count = checks.get_int(raw, "num_hash_layers", where, DEFAULT_HASH_LAYERS, minimum=0,
                               maximum=checks.MAX_LAYERS)
        types = ["hash_moe"] * min(layers, count) + ["moe"] * max(layers - count, 0)
    if len(types) < layers:
        raise ConfigError(f"{where}: 'mlp_layer_types' has {len(types)} entries for num_hidden_layers={layers}")
    return tuple(t == "hash_moe" for t in types[:layers])


def _expert_format(raw, where: str) -> tuple[str, str]:
    quant = checks.get_mapping(raw, "quantization_config", where, default=None)
    if quant is None:
        return "", "float"
    qwhere = where + " quantization_config"
    scale_fmt = checks.get_str(quant, "scale_fmt", qwhere, default="float", choices=("float", "ue8m0"))
    if checks.get_str(quant, "moe_quant_algo", qwhere, default=None) == "NVFP4":
        return "nvfp4", scale_fmt
    fmt = checks.get_str(quant, "expert_dtype", qwhere, default=None, choices=("fp8", "fp4"))
    if fmt is None:
        fmt = checks.get_str(raw, "expert_dtype", where, default="fp8", choices=("fp8", "fp4"))
    return ("fp4" if fmt == "fp4" else ""), scale_fmt


def read_v4_spec(raw, where: str) -> V4Spec:
    """The DeepSeek-V4 keys of a raw config, checked (ConfigError naming key and value)."""
    layers = checks.get_int(raw, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    heads = checks.get_int(raw, "num_attention_heads", where, maximum=1 << 16)
    head_dim = checks.get_int(raw, "head_dim", where, maximum=checks.MAX_DIM)
    kv_heads = checks.get_int(raw, "num_key_value_heads", where, 1)
    if kv_heads != 1:
        raise ConfigError(f"{where}: 'num_key_value_heads' must be 1 for DeepSeek-V4 (one shared K = V head; "
                          f"got {kv_heads})")
    rope_dim = checks.get_int(raw, "qk_rope_head_dim", where, default=None, maximum=head_dim)
    if rope_dim is None:
        factor = checks.get_float(raw, "partial_rotary_factor", where, default=64 / 512, positive=True, maximum=1.0)
        rope_dim = int(head_dim * factor)
    if rope_dim % 2:
        raise ConfigError(f"{where}: the rotated dims per head ({rope_dim}) must be even")
    groups = checks.get_int(raw, "o_groups", where, maximum=heads)
    if heads % groups:
        raise ConfigError(f"{where}: 'o_groups'={groups} must divide num_attention_heads={heads}")
    shared = checks.get_int(raw, "n_shared_experts", where, 1, minimum=0)
    if shared != 1:
        raise ConfigError(f"{where}: 'n_shared_experts' must be 1 for DeepSeek-V4 (one shared MLP of "
                          f"moe_intermediate_size; got {shared})")
    rates = _rates(raw, where)
    attention = _attention_types(raw, where, layers)
    expert_format, scale_fmt = _expert_format(raw, where)
    return V4Spec(
        hidden=checks.get_int(raw, "hidden_size", where, maximum=checks.MAX_DIM),
        heads=heads,
        head_dim=head_dim,
        rope_dim=rope_dim,
        q_lora_rank=checks.get_int(raw, "q_lora_rank", where, maximum=checks.MAX_DIM),
        o_groups=groups,
        o_lora_rank=checks.get_int(raw, "o_lora_rank", where, maximum=checks.MAX_DIM),
        window=checks.get_int(raw, "sliding_window", where, maximum=checks.MAX_POSITIONS),
        index_n_heads=checks.get_int(raw, "index_n_heads", where, maximum=1 << 16),
        index_head_dim=checks.get_int(raw, "index_head_dim", where, minimum=rope_dim, maximum=checks.MAX_DIM),
        index_topk=checks.get_int(raw, "index_topk", where, maximum=checks.MAX_POSITIONS),
        hc_mult=checks.get_int(raw, "hc_mult", where, 4, maximum=64),
        hc_sinkhorn_iters=checks.get_int(raw, "hc_sinkhorn_iters", where, 20, maximum=10_000),
        attention=attention,
        ratios=tuple(rates.get(t, 0) for t in attention),
        hashed=_hashed(raw, where, layers),
        scoring_func=checks.get_str(raw, "scoring_func", where, "sqrtsoftplus",
                                    choices=("sqrtsoftplus", "softmax", "sigmoid")),
        swiglu_limit=checks.get_float(raw, "swiglu_limit", where, 10.0, positive=True),
        expert_format=expert_format,
        scale_fmt=scale_fmt,
    )


def v4_spec(config) -> V4Spec:
    """:func:`read_v4_spec` of a ModelConfig's raw dict, the reader's normalised output: its
    ``layer_types`` are the core's (every layer sliding), the schedule is ``compress_ratios``."""
    raw = {key: value for key, value in config.raw.items() if key != "layer_types"}
    return read_v4_spec(raw, config.where)


def read_deepseek_v4(raw: dict, where: str) -> dict:
    """The config reader of deepseek_v4 (module docstring): every V4 key checked, returned in
    the standard spelling with the schedules normalised."""
    if raw.get("model_type") == "deepseek_ref":
        architectures = checks.get_str_list(raw, "architectures", where, default=())
        if V4_ARCHITECTURE not in architectures:
            raise ConfigError(f"{where}: model_type 'deepseek_ref' is read as DeepSeek-V4 only (architectures "
                              f"[{V4_ARCHITECTURE!r}]; got {list(architectures)!r})")
    spec = read_v4_spec(raw, where)
    checks.get_int(raw, "num_nextn_predict_layers", where, 0, minimum=0, maximum=checks.MAX_LAYERS)
    layers = len(spec.attention)
    out = dict(raw)
    out["layer_types"] = [SLIDING] * layers
    codes = {t: c for c, t in CODES.items()}
    out["compress_ratios"] = [codes[t] for t in spec.attention]
    out["compress_rates"] = _rates(raw, where)
    for key in ("compress_rate_csa", "compress_rate_hca"):
        out.pop(key, None)
    out["mlp_layer_types"] = ["hash_moe" if h else "moe" for h in spec.hashed]
    out["num_experts"] = checks.get_int(raw, "n_routed_experts", where, maximum=1 << 16)
    out["qk_rope_head_dim"] = spec.rope_dim
    rope = raw.get("rope_parameters") if raw.get("rope_parameters") is not None else raw.get("rope_scaling")
    if isinstance(rope, dict) and isinstance(rope.get("main"), dict):  # transformers' nested form
        rope = rope.get("compress")
    rope = dict(rope) if isinstance(rope, dict) else {}
    rope["partial_rotary_factor"] = spec.rope_dim / spec.head_dim
    out.pop("rope_parameters", None)
    out["rope_scaling"] = rope
    return out
