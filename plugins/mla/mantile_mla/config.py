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

__all__ = ["MODEL_TYPES", "MlaShape", "MoeSpec", "mla_shape", "moe_spec", "moe_layer_flags", "read_deepseek",
           "mtp_layers"]

MODEL_TYPES = frozenset({"deepseek_v2", "deepseek_v3", "kimi_k2"})
CORRECTION_BIAS_METHODS = frozenset({"noaux_tc"})
TOPK_METHODS = ("greedy", "group_limited_greedy", "noaux_tc")


def _where(config) -> str:
    return f"config {config.name!r}"


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
    return read_mla_shape(config.raw, _where(config))


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
    return read_moe_spec(config.raw, _where(config))


def moe_layer_flags(spec: MoeSpec | None, num_layers: int) -> tuple[bool, ...]:
    """Layer i is MoE when i >= first_k_dense_replace and i % moe_layer_freq == 0."""
    if spec is None:
        return (False,) * num_layers
    return tuple(i >= spec.first_k_dense_replace and i % spec.moe_layer_freq == 0 for i in range(num_layers))


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
    out = dict(raw)
    out["head_dim"] = shape.qk_rope_head_dim
    out["num_key_value_heads"] = shape.heads
    if spec is not None:
        flags = moe_layer_flags(spec, layers)
        out["num_experts"] = spec.n_routed_experts
        out["mlp_only_layers"] = [i for i, moe in enumerate(flags) if not moe]
        out.pop("decoder_sparse_step", None)
    return out
