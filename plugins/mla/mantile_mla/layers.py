"""Layer types and layout of deepseek_v2 / deepseek_v3 / kimi_k2 models.

The stack is the core's standard decoder (embedding; per block input norm, MLA, norm, dense
MLP for the first ``first_k_dense_replace`` layers else DeepSeek MoE; final norm; LM head).
The MTP module (``num_nextn_predict_layers``, DeepSeek-V3/R1: one) is not part of it: serving
without speculative decoding never runs it. :func:`mtp_extras` reports it beside the totals,
as the checkpoint stores it (layer ``model.layers.{L+j}``): its own ``embed_tokens`` (V × H)
and ``shared_head.head`` (V × H) copies, ``enorm`` and ``hnorm`` (H each), ``eh_proj``
(H × 2H, bf16: not block-quantized), one decoder layer (norms, MLA, MoE) and
``shared_head.norm`` (H).
"""

from __future__ import annotations

from mantile_core.layers import GatedMLP
from mantile_core.layers.standard import MLP_LINEARS, moe_kwargs, standard_slots
from mantile_core.layers.simple import RMSNorm
from mantile_core.records import LayerSlot, LayerType, ModelLayout

from .attention import MLAttention
from .config import MODEL_TYPES, dsa_spec, mla_shape, moe_layer_flags, moe_spec, mtp_layers
from .dsa import DSAttention
from .moe import DeepSeekMoE

__all__ = ["LAYER_TYPES", "LAYOUTS", "build_attention", "build_mlp", "build_moe", "mtp_extras", "deepseek_slots"]


def mla_linears(shape) -> tuple[str, ...]:
    """The attention's projections as the checkpoint names them: each is costed at the format
    the checkpoint gives it (nvidia's DeepSeek-V3.1/V3.2-NVFP4 quantize o_proj only)."""
    q = ("q_a_proj", "q_b_proj") if shape.q_lora_rank else ("q_proj",)
    return q + ("kv_a_proj_with_mqa", "kv_b_proj", "o_proj")


def build_attention(config, slot: LayerSlot) -> MLAttention:
    """The MLA of decoder layer ``slot.index``: each linear in its quantization format (unless
    excluded, per projection), norms and biases in the checkpoint dtype; RoPE of the config's rope_type on
    qk_rope_head_dim dims. DeepSeek-V3.2 / GLM-5: DSA, with the layer's own indexer unless the
    schedule shares the previous one (MTP layers run their own)."""
    shape = mla_shape(config)
    rope = config.rope_parameters
    dsa = dsa_spec(config)
    if dsa is not None:
        index = slot.index if slot.index is not None else 0
        return DSAttention(**_mla_kwargs(config, slot, shape, rope), index_n_heads=dsa.index_n_heads,
                           index_head_dim=dsa.index_head_dim, index_topk=dsa.index_topk,
                           index_dtype=config.weight_dtype(slot.name + ".indexer"),
                           indexer=dsa.indexers[index] if index < len(dsa.indexers) else True)
    return MLAttention(**_mla_kwargs(config, slot, shape, rope))


def _mla_kwargs(config, slot: LayerSlot, shape, rope) -> dict:
    formats = config.linear_formats(slot.name, mla_linears(shape))
    return dict(name=slot.name, index=slot.index, hidden=shape.hidden, heads=shape.heads,
                q_lora_rank=shape.q_lora_rank, kv_lora_rank=shape.kv_lora_rank,
                qk_nope_head_dim=shape.qk_nope_head_dim, qk_rope_head_dim=shape.qk_rope_head_dim,
                v_head_dim=shape.v_head_dim,
                weight_dtype=formats.default, per_linear=formats.per_linear,
                kv_scale_bytes=config.quant.kv_scale_bytes if config.quant is not None else 0,
                norm_dtype=config.dtype, attention_bias=shape.attention_bias,
                rope_type=rope.get("rope_type", "default"), max_position=config.max_position_embeddings)


def build_mlp(config, slot: LayerSlot) -> GatedMLP:
    """A dense layer (the first first_k_dense_replace): the core's SwiGLU of intermediate_size."""
    return GatedMLP(name=slot.name, index=slot.index, hidden=config.hidden_size,
                    intermediate=config.intermediate_size,
                    weight_dtype=config.weight_dtype(slot.name, linears=MLP_LINEARS), bias_dtype=config.dtype)


def build_moe(config, slot: LayerSlot) -> DeepSeekMoE:
    """A DeepSeek MoE layer: routed experts and shared experts in the quantization format,
    router in the checkpoint dtype, e_score_correction_bias for topk_method noaux_tc."""
    spec = moe_spec(config)
    shared = spec.n_shared_experts * config.moe_intermediate_size
    return DeepSeekMoE(**moe_kwargs(config, slot), router_bias=spec.correction_bias, shared_intermediate=shared,
                       shared_dtype=config.weight_dtype(slot.name + ".shared_experts", linears=MLP_LINEARS)
                       if shared else None,
                       n_group=spec.n_group, topk_group=spec.topk_group,
                       routed_scaling_factor=spec.routed_scaling_factor, norm_topk_prob=spec.norm_topk_prob,
                       scoring_func=spec.scoring_func, n_shared_experts=spec.n_shared_experts)


def _mtp_layers(config) -> list:
    """The layers of the MTP module as stored (see the module docstring), unsharded."""
    count = mtp_layers(config.raw, config.where)
    hidden, vocab = config.hidden_size, config.vocab_size
    spec = moe_spec(config)
    out = []
    for j in range(count):
        index = config.num_layers + j
        prefix = f"model.layers.{index}"
        moe = spec is not None and index >= spec.first_k_dense_replace and index % spec.moe_layer_freq == 0
        mlp_slot = LayerSlot("moe" if moe else "mlp", index, f"{prefix}.mlp")
        out += [
            RMSNorm(name=f"{prefix}.enorm", hidden=hidden, dtype=config.dtype),
            RMSNorm(name=f"{prefix}.hnorm", hidden=hidden, dtype=config.dtype),
            RMSNorm(name=f"{prefix}.input_layernorm", hidden=hidden, dtype=config.dtype),
            build_attention(config, LayerSlot("attention", index, f"{prefix}.self_attn")),
            RMSNorm(name=f"{prefix}.post_attention_layernorm", hidden=hidden, dtype=config.dtype),
            build_moe(config, mlp_slot) if moe else build_mlp(config, mlp_slot),
            RMSNorm(name=f"{prefix}.shared_head.norm", hidden=hidden, dtype=config.dtype),
        ]
    return out


def mtp_extras(config) -> dict:
    """``mtp_layers``, ``mtp_params`` and ``mtp_weight_bytes`` of the MTP module as the
    checkpoint stores it (embedding and head copies included), reported beside the totals."""
    layers = _mtp_layers(config)
    count = mtp_layers(config.raw, config.where)
    if not count:
        return {"mtp_layers": 0, "mtp_params": 0, "mtp_weight_bytes": 0}
    hidden, vocab = config.hidden_size, config.vocab_size
    # per MTP layer: embed_tokens and shared_head.head (V × H) and eh_proj (H × 2H), bf16
    plain = count * (2 * vocab * hidden + 2 * hidden * hidden)
    return {"mtp_layers": count,
            "mtp_params": sum(layer.params() for layer in layers) + plain,
            "mtp_weight_bytes": sum(layer.weight_bytes() for layer in layers) + config.dtype.nbytes(plain)}


def deepseek_slots(config) -> list[LayerSlot]:
    """The standard decoder stack with DeepSeek's MoE pattern: layer i is MoE when
    i >= first_k_dense_replace and i % moe_layer_freq == 0."""
    flags = moe_layer_flags(moe_spec(config), config.num_layers, config.raw, config.where)
    return [LayerSlot("moe" if flags[s.index] else "mlp", s.index, s.name) if s.kind in ("mlp", "moe") else s
            for s in standard_slots(config)]


LAYER_TYPES = [
    LayerType("mla-attention", "attention", build_attention, MODEL_TYPES,
              description="Multi-head Latent Attention: q LoRA (optional), latent KV (kv_lora_rank + "
                          "qk_rope_head_dim per token, replicated across tp), prefill expanded, decode absorbed"),
    LayerType("deepseek-mlp", "mlp", build_mlp, MODEL_TYPES,
              description="dense SwiGLU of the first first_k_dense_replace layers"),
    LayerType("deepseek-moe", "moe", build_moe, MODEL_TYPES,
              description="DeepSeek MoE: routed + always-active shared experts, grouped top-k, "
                          "e_score_correction_bias, routed_scaling_factor"),
]

LAYOUTS = [
    ModelLayout("deepseek", MODEL_TYPES, slots=deepseek_slots, extras=mtp_extras,
                description="standard decoder stack; the MTP module (num_nextn_predict_layers) reported "
                            "apart as mtp_params"),
]
