"""Layouts and layer builders of the zoo's families, from the ``_zoo`` facts its config readers
(:mod:`.readers`) put in the config. Every layer is a core layer configured (Attention,
MLP / GatedMLP, MoE, LayerNorm, RMSNorm, PositionEmbedding, LMHead) or one of :mod:`.layers`.

Layout: the core's :func:`~mantile_core.layers.standard.decoder_slots` over the family's
:class:`~mantile_core.layers.standard.DecoderLayout` (module names, sublayers of a block),
plus Granite's embedding multiplier right after the embedding.

MoE: "core" is the core's MoE (softmax top-k, no router bias); "deepseek" is mantile-mla's
:class:`~mantile_mla.moe.DeepSeekMoE`, reused: sigmoid scores with the e_score_correction_bias
(E float32 values per layer, counted as parameters: the checkpoints store them, transformers
holds them as a buffer), grouped top-k, normalised and scaled weights, and the always-active
shared experts (n_shared_experts · moe_intermediate_size, no gate; GLM-4.5). MiMo-V2-Flash
keeps its router weight in float32 (transformers' ``_keep_in_fp32_modules_strict``):
:class:`.layers.Fp32RouterMoE`.
"""

from __future__ import annotations

from mantile_core import checks
from mantile_core.config import ModelConfig
from mantile_core.layers import GatedMLP, LayerNorm, LMHead, MLP, MoE
from mantile_core.layers.mlp import activation_name
from mantile_core.layers.standard import DecoderLayout, attention_kwargs, decoder_slots, moe_kwargs
from mantile_core.records import LayerSlot

from mantile_mla.moe import DeepSeekMoE

from .layers import Scale, ScaledLMHead, ZooAttention, shared_reduce

__all__ = ["zoo_slots", "build_norm", "build_attention", "build_mlp", "build_moe", "build_lm_head",
           "build_scale", "facts"]


def facts(config: ModelConfig) -> dict:
    """The ``_zoo`` facts the family's config reader wrote."""
    return config.raw["_zoo"]


def zoo_slots(config: ModelConfig) -> list[LayerSlot]:
    """The family's decoder stack (and Granite's embedding multiplier after the embedding)."""
    f = facts(config)
    layout = f["layout"]
    slots = decoder_slots(config, DecoderLayout(**layout))
    if f["scales"] is not None:
        slots.insert(1, LayerSlot("scale", None, "model.embedding_multiplier"))
    return slots


def build_norm(config: ModelConfig, slot: LayerSlot):
    """LayerNorm with bias ("ln"), weight only ("ln_nobias") or no parameters ("ln_none")."""
    kind = facts(config)["norm"]
    return LayerNorm(name=slot.name, index=slot.index, hidden=config.hidden_size, dtype=config.dtype,
                     bias=kind == "ln", affine=kind != "ln_none")


def build_attention(config: ModelConfig, slot: LayerSlot):
    """The core attention with the family's biases and mechanisms; MiMo-V2-Flash's sliding
    layers get their own KV heads and the sinks of mantile-gpt-oss-attention."""
    a = facts(config)["attention"]
    kwargs = attention_kwargs(config, slot)
    if not a["rotary"]:
        kwargs.update(rotary_dim=0, rope_type="none")
    flags = dict(q_bias=a["q_bias"], k_bias=a["k_bias"], v_bias=a["v_bias"], o_bias=a["o_bias"],
                 qk_norm=a["qk_norm"] == "head", v_head_dim=a["v_head_dim"])
    sliding = kwargs["window"] is not None
    if a["swa_kv_heads"] is not None and sliding:
        kwargs["kv_heads"] = a["swa_kv_heads"]
    if (a["swa_sinks"] and sliding) or (a["full_sinks"] and not sliding):
        from .sinks import SinkAttention

        return SinkAttention(**kwargs, **flags, v_scale=a["v_scale"])
    return ZooAttention(**kwargs, **flags, alibi=a["alibi"], clip_qkv=a["clip_qkv"],
                        qk_norm_full=a["qk_norm"] == "full", qk_layernorm=a["qk_layernorm"],
                        qk_layernorm_bias=a["qk_layernorm_bias"], v_scale=a["v_scale"])


def _mlp_fields(config: ModelConfig) -> dict:
    m = facts(config)["mlp"]
    return dict(gated=m["gated"], bias=m["bias"],
                activation=activation_name(m["activation"], config.where, m.get("key", "hidden_act")))


def build_mlp(config: ModelConfig, slot: LayerSlot):
    """The family's MLP: gated (SwiGLU) or not (GPT-2, NeoX, Falcon, Phi, StarCoder2), with or
    without biases, its activation."""
    fields = _mlp_fields(config)
    cls = GatedMLP if fields["gated"] else MLP
    if facts(config)["mlp"].get("shared_reduce"):
        cls = _SHARED_REDUCE[cls]
    if config.intermediate_size is None:
        from mantile_core.errors import ConfigError

        raise ConfigError(f"{config.where}: required key 'intermediate_size' is missing")
    return cls(name=slot.name, index=slot.index, hidden=config.hidden_size, intermediate=config.intermediate_size,
               weight_dtype=config.weight_dtype(slot.name), bias_dtype=config.dtype, **fields)


_SHARED_REDUCE = {MLP: shared_reduce(MLP), GatedMLP: shared_reduce(GatedMLP)}


def build_moe(config: ModelConfig, slot: LayerSlot):
    """The core MoE ("core") or with DeepSeek-style shared experts and correction bias
    ("deepseek")."""
    f = facts(config)
    activation = _mlp_fields(config)["activation"]
    if f["moe"] != "deepseek":
        return MoE(**moe_kwargs(config, slot), activation=activation)
    from .layers import Fp32RouterMoE

    raw, where = config.raw, config.where
    shared = checks.get_int(raw, "n_shared_experts", where, default=0, minimum=0)
    kwargs = dict(moe_kwargs(config, slot), activation=activation, router_bias=True,
                  shared_intermediate=shared * config.moe_intermediate_size, n_shared_experts=shared,
                  shared_dtype=config.weight_dtype(slot.name + ".shared_experts") if shared else None,
                  n_group=checks.get_int(raw, "n_group", where, default=1),
                  topk_group=checks.get_int(raw, "topk_group", where, default=1),
                  routed_scaling_factor=checks.get_float(raw, "routed_scaling_factor", where, default=1.0),
                  norm_topk_prob=checks.get_bool(raw, "norm_topk_prob", where, default=True),
                  scoring_func=checks.get_str(raw, "scoring_func", where, default="sigmoid"))
    return Fp32RouterMoE(**kwargs) if f["fp32_router"] else DeepSeekMoE(**kwargs)


def build_lm_head(config: ModelConfig, slot: LayerSlot):
    """The core LM head with Phi's bias, or scaled logits (Cohere, Granite)."""
    head = facts(config)["lm_head"]
    kwargs = dict(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.head_dtype(slot.name), tied=config.tie_word_embeddings,
                  bias=head["bias"], bias_dtype=config.dtype)
    if head["scale"] is not None:
        return ScaledLMHead(**kwargs, scale=head["scale"])
    return LMHead(**kwargs)


def build_scale(config: ModelConfig, slot: LayerSlot):
    """Granite's multipliers: the embedding's after the embedding, the residual one after each
    attention and MLP."""
    scales = facts(config)["scales"]
    what = "embedding_multiplier" if slot.index is None else "residual_multiplier"
    factor = scales["embedding"] if slot.index is None else scales["residual"]
    return Scale(name=slot.name, index=slot.index, hidden=config.hidden_size, factor=factor, what=what)


def zoo_extras(config: ModelConfig) -> dict:
    """Figures beside the totals: the next-token-prediction (MTP) layers the checkpoint carries
    beyond the main model. GLM-4.5 stores DeepSeek-V3's MTP layout: per layer a full decoder
    layer (attention, MoE), enorm, hnorm, eh_proj (H × 2H), shared_head.norm and copies of the
    embedding and LM head (2·V·H) — ``mtp_params`` counts them (not in the total).
    MiniMax-M2's MTP modules (num_mtp_modules) are not described by transformers: only their
    number is reported."""
    f = facts(config)
    count = f["mtp"]
    if not count:
        return {}
    if config.model_type != "glm4_moe":
        return {"mtp_layers": count}
    hidden, vocab = config.hidden_size, config.vocab_size
    params = weight_bytes = 0
    for j in range(count):
        index = config.num_layers + j
        prefix = f"model.layers.{index}"
        first_dense = checks.get_int(config.raw, "first_k_dense_replace", config.where, default=0, minimum=0)
        last = config.num_layers - 1  # shapes (window, rope) of the last decoder layer
        mlp_slot = LayerSlot("moe" if index >= first_dense else "mlp", last, f"{prefix}.mlp")
        layers = [build_attention(config, LayerSlot("attention", last, f"{prefix}.self_attn")),
                  build_moe(config, mlp_slot) if mlp_slot.kind == "moe" else build_mlp(config, mlp_slot)]
        plain = 2 * vocab * hidden + 2 * hidden * hidden + 5 * hidden  # embed, head, eh_proj, 5 RMSNorms
        params += sum(layer.params() for layer in layers) + plain
        weight_bytes += sum(layer.weight_bytes() for layer in layers) + config.dtype.nbytes(plain)
    return {"mtp_layers": count, "mtp_params": params, "mtp_weight_bytes": weight_bytes}
