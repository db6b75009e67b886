"""Reading DeepSeek-V2/V3/R1 and Kimi-K2 configs: the MLA and DeepSeek-MoE keys, checked once.

The standard keys (hidden_size, num_hidden_layers, num_attention_heads, vocab_size,
intermediate_size, n_routed_experts -> num_experts, num_experts_per_tok, moe_intermediate_size,
rope_scaling, torch_dtype, quantization_config) are the core's. This module reads the rest:

- MLA (:class:`MlaShape`): ``q_lora_rank`` (null: a plain q_proj, DeepSeek-V2-Lite),
  ``kv_lora_rank``, ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``,
  ``attention_bias``;
- DeepSeek MoE (:class:`MoeSpec`): ``n_shared_experts`` (always active, one fused MLP of
  n_shared·moe_intermediate_size), ``first_k_dense_replace`` and ``moe_layer_freq`` (layer i is
  MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0, DeepSeek's own modelling
  code), ``n_group`` / ``topk_group`` (grouped top-k), ``topk_method`` ("noaux_tc": sigmoid
  scores plus the ``e_score_correction_bias`` of E parameters; "greedy" / "group_limited_greedy":
  softmax scores, no bias), ``routed_scaling_factor``, ``norm_topk_prob``, ``scoring_func``;
- DeepSeek Sparse Attention (``deepseek_v32``, ``glm_moe_dsa``; :class:`DsaSpec`):
  ``index_n_heads``, ``index_head_dim``, ``index_topk``; GLM-5's per-layer indexer schedule
  ``indexer_types`` ("full" runs an indexer, "shared" reuses the previous full layer's top-k),
  else ``index_topk_pattern`` ("F"/"S" per layer), else ``index_topk_freq`` and
  ``index_skip_topk_offset`` (layer i full when max(i − offset + 1, 0) % freq == 0; defaults
  1 and 2: every layer), and GLM's ``mlp_layer_types`` ("dense"/"sparse" per layer), which
  replaces first_k_dense_replace / moe_layer_freq when given;
- ``num_nextn_predict_layers``: the MTP module, not part of the model served without
  speculation (reported apart, see :mod:`.layout`).

:func:`read_deepseek` is the config reader: it returns the standard spelling with
``head_dim`` = qk_rope_head_dim (the rotated width, as transformers sets it), ``num_key_value_heads``
= heads and the MoE layer pattern as ``mlp_only_layers``.
"""

from __future__ import annotations

import attrs
from mantile_core import checks
from mantile_core.errors import ConfigError

__all__ = ["MODEL_TYPES", "DSA_MODEL_TYPES", "DsaSpec", "dsa_spec", "read_dsa_spec", "MlaShape", "MoeSpec", "mla_shape", "moe_spec", "moe_layer_flags", "read_deepseek",
           "mtp_layers"]

DSA_MODEL_TYPES = frozenset({"deepseek_v32", "glm_moe_dsa"})
MODEL_TYPES = frozenset({"deepseek_v2", "deepseek_v3", "kimi_k2"}) | DSA_MODEL_TYPES
CORRECTION_BIAS_METHODS = frozenset({"noaux_tc"})
TOPK_METHODS = ("greedy", "group_limited_greedy", "noaux_tc")


@attrs.frozen
class MlaShape:
    """MLA widths in elements: ``q_lora_rank`` None when q is projected directly."""

    hidden: int
    heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    attention_bias: bool


def read_mla_shape(raw, where: str) -> MlaShape:
    """The MLA keys of a raw config dict, checked (ConfigError naming key and value)."""
    rope = checks.get_int(raw, "qk_rope_head_dim", where)
    if rope % 2:
        raise ConfigError(f"{where}: 'qk_rope_head_dim' must be even (got {rope})")
    return MlaShape(
        hidden=checks.get_int(raw, "hidden_size", where),
        heads=checks.get_int(raw, "num_attention_heads", where),
        q_lora_rank=checks.get_int(raw, "q_lora_rank", where, None),
        kv_lora_rank=checks.get_int(raw, "kv_lora_rank", where),
        qk_nope_head_dim=checks.get_int(raw, "qk_nope_head_dim", where),
        qk_rope_head_dim=rope,
        v_head_dim=checks.get_int(raw, "v_head_dim", where),
        attention_bias=checks.get_bool(raw, "attention_bias", where, False),
    )


def mla_shape(config) -> MlaShape:
    """:func:`read_mla_shape` of a ModelConfig's raw dict."""
    return read_mla_shape(config.raw, config.where)


@attrs.frozen
class MoeSpec:
    """DeepSeek MoE keys: shared experts, dense prefix and frequency, grouped routing."""

    n_routed_experts: int
    n_shared_experts: int
    first_k_dense_replace: int
    moe_layer_freq: int
    n_group: int
    topk_group: int
    topk_method: str
    routed_scaling_factor: float
    norm_topk_prob: bool
    scoring_func: str

    @property
    def correction_bias(self) -> bool:
        """True when the router holds ``e_score_correction_bias`` (E values, topk_method noaux_tc)."""
        return self.topk_method in CORRECTION_BIAS_METHODS


def read_moe_spec(raw, where: str) -> MoeSpec | None:
    """The DeepSeek MoE keys of a raw config (None without ``n_routed_experts``)."""
    experts = checks.get_int(raw, "n_routed_experts", where, None)
    if experts is None:
        return None
    n_group = checks.get_int(raw, "n_group", where, 1)
    topk_group = checks.get_int(raw, "topk_group", where, 1, maximum=n_group)
    if experts % n_group:
        raise ConfigError(f"{where}: 'n_group'={n_group} must divide n_routed_experts={experts}")
    method = checks.get_str(raw, "topk_method", where,
                            "noaux_tc" if raw.get("model_type") in ("deepseek_v3", "kimi_k2") else "greedy",
                            choices=TOPK_METHODS)
    default_scoring = "sigmoid" if method == "noaux_tc" else "softmax"
    return MoeSpec(
        n_routed_experts=experts,
        n_shared_experts=checks.get_int(raw, "n_shared_experts", where, 0, minimum=0),
        first_k_dense_replace=checks.get_int(raw, "first_k_dense_replace", where, 0, minimum=0,
                                             maximum=checks.MAX_LAYERS),
        moe_layer_freq=checks.get_int(raw, "moe_layer_freq", where, 1),
        n_group=n_group,
        topk_group=topk_group,
        topk_method=method,
        routed_scaling_factor=checks.get_float(raw, "routed_scaling_factor", where, 1.0, positive=True),
        norm_topk_prob=checks.get_bool(raw, "norm_topk_prob", where, False),
        scoring_func=checks.get_str(raw, "scoring_func", where, default_scoring, choices=("sigmoid", "softmax")),
    )


def moe_spec(config) -> MoeSpec | None:
    """:func:`read_moe_spec` of a ModelConfig's raw dict."""
    return read_moe_spec(config.raw, config.where)


def moe_layer_flags(spec: MoeSpec | None, num_layers: int, raw=None, where: str = "config") -> tuple[bool, ...]:
    """Layer i is MoE per ``mlp_layer_types`` ("sparse") when the raw config gives it, else when
    i >= first_k_dense_replace and i % moe_layer_freq == 0."""
    if spec is None:
        return (False,) * num_layers
    if raw is not None:
        types = checks.get_str_list(raw, "mlp_layer_types", where, None, length=num_layers,
                                    choices=("dense", "sparse"))
        if types is not None:
            return tuple(t == "sparse" for t in types)
    return tuple(i >= spec.first_k_dense_replace and i % spec.moe_layer_freq == 0 for i in range(num_layers))


@attrs.frozen
class DsaSpec:
    """DeepSeek Sparse Attention keys: indexer heads and width, top-k, and which layers run
    their own indexer (``indexers[i]``)."""

    index_n_heads: int
    index_head_dim: int
    index_topk: int
    indexers: tuple[bool, ...]


def read_dsa_spec(raw, where: str) -> DsaSpec | None:
    """The DSA keys of a deepseek_v32 / glm_moe_dsa config (None for other model types)."""
    if raw.get("model_type") not in DSA_MODEL_TYPES:
        return None
    layers = checks.get_int(raw, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    types = checks.get_str_list(raw, "indexer_types", where, None, length=layers, choices=("full", "shared"))
    if types is None and isinstance(raw.get("index_topk_pattern"), str):
        pattern = checks.get_str(raw, "index_topk_pattern", where)
        if len(pattern) != layers or set(pattern) - {"F", "S"}:
            raise ConfigError(f"{where}: 'index_topk_pattern' must have one 'F' or 'S' per layer ({layers}) "
                              f"(got {pattern!r})")
        types = tuple("full" if c == "F" else "shared" for c in pattern)
    elif types is None and raw.get("index_topk_pattern") is not None:
        types = checks.get_str_list(raw, "index_topk_pattern", where, length=layers, choices=("full", "shared"))
    if types is None:
        freq = checks.get_int(raw, "index_topk_freq", where, 1)
        offset = checks.get_int(raw, "index_skip_topk_offset", where, 2, minimum=0, maximum=checks.MAX_LAYERS)
        types = tuple("full" if max(i - offset + 1, 0) % freq == 0 else "shared" for i in range(layers))
    if types and types[0] != "full":
        raise ConfigError(f"{where}: the first layer must run its own indexer ('full'), not {types[0]!r}")
    return DsaSpec(
        index_n_heads=checks.get_int(raw, "index_n_heads", where),
        index_head_dim=checks.get_int(raw, "index_head_dim", where),
        index_topk=checks.get_int(raw, "index_topk", where, maximum=checks.MAX_POSITIONS),
        indexers=tuple(t == "full" for t in types),
    )


def dsa_spec(config) -> DsaSpec | None:
    """:func:`read_dsa_spec` of a ModelConfig's raw dict."""
    return read_dsa_spec(config.raw, config.where)


def mtp_layers(raw, where: str) -> int:
    """``num_nextn_predict_layers`` (0 when absent)."""
    return checks.get_int(raw, "num_nextn_predict_layers", where, 0, minimum=0, maximum=checks.MAX_LAYERS)


def read_deepseek(raw: dict, where: str) -> dict:
    """The config reader of deepseek_v2 / deepseek_v3 / kimi_k2: every MLA and MoE key checked,
    returned in the standard spelling (head_dim = qk_rope_head_dim, one KV "head" per query
    head as transformers declares, MoE pattern as mlp_only_layers, n_routed_experts as
    num_experts); the family keys stay for the layers."""
    shape = read_mla_shape(raw, where)
    layers = checks.get_int(raw, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    spec = read_moe_spec(raw, where)
    mtp_layers(raw, where)
    dsa = read_dsa_spec(raw, where)
    if dsa is not None and dsa.index_head_dim < shape.qk_rope_head_dim:
        raise ConfigError(f"{where}: 'index_head_dim'={dsa.index_head_dim} must be at least "
                          f"qk_rope_head_dim={shape.qk_rope_head_dim} (the indexer rotates that many dims)")
    out = dict(raw)
    # GLM-5.2/5.3 (nvidia's NVFP4 re-publication) list every layer as "deepseek_sparse_attention":
    # full causal attention as far as the core's masks go (DSA's own sparsity is the layer's)
    kinds = checks.get_str_list(raw, "layer_types", where, default=None, length=layers)
    if kinds is not None:
        unknown = sorted(set(kinds) - {"deepseek_sparse_attention", "full_attention", "attention"})
        if unknown:
            raise ConfigError(f"{where}: layer_types has {unknown[0]!r}; a DeepSeek / GLM-5 model's layers are "
                              f"'deepseek_sparse_attention' or 'full_attention'")
        out["layer_types"] = ["full_attention"] * layers
    out["head_dim"] = shape.qk_rope_head_dim
    out["num_key_value_heads"] = shape.heads
    if spec is not None:
        flags = moe_layer_flags(spec, layers, raw, where)
        out["num_experts"] = spec.n_routed_experts
        out["mlp_only_layers"] = [i for i, moe in enumerate(flags) if not moe]
        out.pop("decoder_sparse_step", None)
    return out
