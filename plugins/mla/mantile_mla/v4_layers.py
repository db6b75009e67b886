"""Layer types and layout of DeepSeek-V4 (``deepseek_v4``), and how its checkpoint stores them.

**Stack** (transformers' ``DeepseekV4Model``): ``model.embed_tokens``; per decoder layer i
``attn_hc`` (hyper-connection), ``input_layernorm``, ``self_attn``
(:class:`~mantile_mla.v4_attention.V4Attention` of layer_types[i]), ``ffn_hc``,
``post_attention_layernorm``, ``mlp`` (:class:`~mantile_mla.moe.DeepSeekV4MoE`, hash-routed on
the first ``num_hash_layers``); then ``hc_head``, ``model.norm``, ``lm_head``. The MTP layer
(``num_nextn_predict_layers``) is not built (transformers ignores it too); ``mtp_layers`` is
reported beside the totals.

**Parameter totals** equal transformers' meta-device count plus the two buffers the checkpoint
stores: ``tid2eid`` (vocab × top_k per hash layer) and ``e_score_correction_bias`` (E per other
MoE layer), counted as parameters as the safetensors totals do. Per model:
2·V·H (embedding, head) + H (norm) + n·n·H + n + 1 (hc_head) + Σ_layers [attention (see
``v4_attention``) + 2·((2+n)·n·n·H + (2+n)·n + 3) (two HC modules) + 2·H (norms) + E·H
(router) + 3·E·I·H (experts) + 3·H·I (shared MLP) + V·k (hash layer) or E (the bias)].
DeepSeek-V4-Flash: 284,332,230,231 + 2,327,040 + 10,240; -Pro: 1,572,997,179,491 + 2,327,040
+ 22,272.

**Storage** (as transformers' fp8 quantizer allocates the checkpoint's tensors for
``quant_method`` fp8, ``weight_block_size`` [128, 128], ``scale_fmt`` ue8m0, ``expert_dtype``
fp4):

- fp8 e4m3 with one ue8m0 **byte** per 128 × 128 block: q_a_proj, q_b_proj, kv_proj,
  o_a_proj, o_b_proj, the indexer's q_b_proj, the shared MLP;
- routed experts: fp4 e2m1 (two per byte) with one ue8m0 byte per 32 elements of a row;
  nvidia's NVFP4 re-publication (``moe_quant_algo`` NVFP4, its ``quantized_layers`` named
  ``layers.N.ffn.experts`` in DeepSeek's own spelling): modelopt NVFP4 (an e4m3 byte per 16,
  and a float32 ``weight_scale_2`` and ``input_scale`` per expert matrix);
- bf16: embedding, LM head, router weight, the compressor's and indexer's kv / gate
  projections and ``weights_proj`` (transformers keeps them unquantized);
- float32: every norm weight, sinks, position biases, hyper-connection parameters,
  e_score_correction_bias (``_keep_in_fp32_modules_strict``); ``tid2eid`` int64.

A config without ``quantization_config`` stores everything but the float32 set in its
``torch_dtype``.
"""

from __future__ import annotations

import attrs
from mantile_core import checks
from mantile_core.dtypes import DTYPES, block_scaled
from mantile_core.layers.simple import RMSNorm
from mantile_core.quant import MODELOPT_FORMATS
from mantile_core.layers.standard import moe_kwargs
from mantile_core.records import LayerSlot, LayerType, ModelLayout

from .hyper import HyperConnection
from .moe import DeepSeekV4MoE
from .v4_attention import V4Attention
from .v4_config import CSA, V4_MODEL_TYPES, v4_spec

__all__ = ["V4_LAYER_TYPES", "V4_LAYOUTS", "v4_slots", "v4_quant_dtype", "v4_expert_dtype", "FP32"]

FP32 = DTYPES["fp32"]
FP4_ROW_BLOCK = 32  # e2m1 experts: one ue8m0 scale per 32 elements of a row


def v4_quant_dtype(config, module: str):
    """The fp8 linears' storage: the core's block-scaled fp8 with one-byte scales under
    ``scale_fmt`` ue8m0 (DeepSeek-V4's checkpoints; DeepSeek-V3.x store float32 scales)."""
    dtype = config.weight_dtype(module)
    if dtype.tile and v4_spec(config).scale_fmt == "ue8m0":
        scaled = block_scaled(dtype.compute_name, dtype.tile, scale_bits=8)
        return attrs.evolve(scaled, name=scaled.name + "-ue8m0")
    return dtype


def v4_expert_dtype(config, module: str):
    """Routed experts: fp4 e2m1 with a ue8m0 byte per 32 elements of a row (a (1, 32) block),
    nvfp4 for nvidia's re-publication, else the quantization format / checkpoint dtype."""
    fmt = v4_spec(config).expert_format
    if config.quant_method is None or config.weight_dtype(module) == config.dtype:
        return config.weight_dtype(module)
    if fmt == "fp4":
        return block_scaled(DTYPES["mxfp4"], (1, FP4_ROW_BLOCK), scale_bits=8)
    if fmt == "nvfp4":
        return MODELOPT_FORMATS["NVFP4"]
    return v4_quant_dtype(config, module)


def _small_dtype(config):
    """Norms, sinks, position biases, HC: float32 (the checkpoint's and transformers')."""
    return FP32


def build_attention(config, slot: LayerSlot) -> V4Attention:
    spec = v4_spec(config)
    i = slot.index
    ratio = spec.ratios[i]
    indexer = spec.attention[i] == CSA
    rope = config.rope_parameters
    return V4Attention(
        name=slot.name, index=i, hidden=spec.hidden, heads=spec.heads, head_dim=spec.head_dim,
        rope_dim=spec.rope_dim, q_lora_rank=spec.q_lora_rank, o_groups=spec.o_groups, o_lora_rank=spec.o_lora_rank,
        window=spec.window, ratio=ratio, indexer=indexer,
        index_n_heads=spec.index_n_heads if indexer else 0, index_head_dim=spec.index_head_dim if indexer else 0,
        index_topk=spec.index_topk if indexer else 0,
        weight_dtype=v4_quant_dtype(config, slot.name), plain_dtype=config.dtype, small_dtype=_small_dtype(config),
        layer_type=spec.attention[i], rope_type=rope.get("rope_type", "default") if ratio else "default",
        max_position=config.max_position_embeddings)


def build_moe(config, slot: LayerSlot) -> DeepSeekV4MoE:
    spec = v4_spec(config)
    hashed = spec.hashed[slot.index]
    kwargs = moe_kwargs(config, slot) | {"expert_dtype": v4_expert_dtype(config, slot.name + ".experts")}
    return DeepSeekV4MoE(**kwargs, router_bias=not hashed, shared_intermediate=config.moe_intermediate_size,
                         shared_dtype=v4_quant_dtype(config, slot.name + ".shared_experts"),
                         routed_scaling_factor=checks.get_float(config.raw, "routed_scaling_factor", config.where,
                                                                1.5, positive=True),
                         norm_topk_prob=checks.get_bool(config.raw, "norm_topk_prob", config.where, True),
                         scoring_func=spec.scoring_func, n_shared_experts=1,
                         hash_vocab=config.vocab_size if hashed else 0, swiglu_limit=spec.swiglu_limit)


def build_hyper(config, slot: LayerSlot) -> HyperConnection:
    spec = v4_spec(config)
    return HyperConnection(name=slot.name, index=slot.index, hidden=spec.hidden, streams=spec.hc_mult,
                           sinkhorn_iters=spec.hc_sinkhorn_iters, head=slot.index is None, dtype=FP32)


def build_norm(config, slot: LayerSlot) -> RMSNorm:
    return RMSNorm(name=slot.name, index=slot.index, hidden=config.hidden_size, dtype=FP32)


def v4_slots(config) -> list[LayerSlot]:
    """Embedding; per layer attn_hc, input norm, attention, ffn_hc, post-attention norm, MoE;
    hc_head, final norm, LM head."""
    slots = [LayerSlot("embedding", None, "model.embed_tokens")]
    for i in range(config.num_layers):
        prefix = f"model.layers.{i}"
        slots += [LayerSlot("hyper_connection", i, f"{prefix}.attn_hc"),
                  LayerSlot("norm", i, f"{prefix}.input_layernorm"),
                  LayerSlot("attention", i, f"{prefix}.self_attn"),
                  LayerSlot("hyper_connection", i, f"{prefix}.ffn_hc"),
                  LayerSlot("norm", i, f"{prefix}.post_attention_layernorm"),
                  LayerSlot("moe", i, f"{prefix}.mlp")]
    slots += [LayerSlot("hyper_connection", None, "model.hc_head"), LayerSlot("norm", None, "model.norm"),
              LayerSlot("lm_head", None, "lm_head")]
    return slots


def v4_extras(config) -> dict:
    """``mtp_layers``: the MTP layers the checkpoint carries (not built, not costed)."""
    return {"mtp_layers": checks.get_int(config.raw, "num_nextn_predict_layers", config.where, 0, minimum=0)}


V4_LAYER_TYPES = [
    LayerType("deepseek-v4-attention", "attention", build_attention, V4_MODEL_TYPES,
              description="DeepSeek-V4: shared-KV MQA (head_dim 512) over a sliding window + compressed entries "
                          "(CSA: lightning-indexer top-k; HCA: all), q LoRA, grouped low-rank output, sinks"),
    LayerType("deepseek-v4-moe", "moe", build_moe, V4_MODEL_TYPES,
              description="DeepSeek-V4 MoE: hash-routed first layers (tid2eid), sqrtsoftplus router, clamped SwiGLU, "
                          "fp4 experts, one shared MLP"),
    LayerType("hyper-connection", "hyper_connection", build_hyper, V4_MODEL_TYPES,
              description="manifold-constrained hyper-connections: hc_mult residual streams mixed per sublayer "
                          "(Sinkhorn), float32"),
    LayerType("deepseek-v4-rmsnorm", "norm", build_norm, V4_MODEL_TYPES,
              description="RMSNorm with a float32 weight (DeepSeek-V4 keeps norms in float32)"),
]

V4_LAYOUTS = [
    ModelLayout("deepseek-v4", V4_MODEL_TYPES, slots=v4_slots, extras=v4_extras,
                description="DeepSeek-V4: hyper-connections around each sublayer, hc_head before the final norm; "
                            "the MTP layer reported apart"),
]
