"""Layouts and layer types of the recurrent and hybrid families (see :mod:`.families` for the
block rules), built from a parsed :class:`~mantile_core.config.ModelConfig`.

Layer kinds: ``mamba`` (Mamba-1), ``mamba2``, ``linear_attention`` (Gated DeltaNet),
``attention``, ``mlp``, ``moe``, plus the core's generic ``embedding``, ``norm`` and
``lm_head``. Module names follow the checkpoints (they are what ``modules_to_not_convert``
patterns match): ``backbone.*`` for Mamba / Mamba-2 / Nemotron-H, ``model.*`` for Jamba and
the Qwen hybrids.
"""

from __future__ import annotations

from mantile_core.dtypes import get_dtype
from mantile_core.errors import ConfigError
from mantile_core.layers import Attention, GatedMLP, LMHead, MoE
from mantile_core.layers.standard import attention_kwargs, moe_kwargs
from mantile_core.records import LayerSlot, LayerType, ModelLayout

from .attention import GatedAttention
from .deltanet import GatedDeltaNet
from .families import (BLOCKS_KEY, JAMBA_TYPES, MAMBA1_TYPES, MAMBA2_TYPES, NEMOTRON_TYPES, QWEN_TYPES,
                       blocks)
from .ffn import NemotronMoE, Relu2MLP
from .mamba import Mamba1Mixer
from .mamba2 import Mamba2Mixer

__all__ = ["LAYOUTS", "LAYER_TYPES", "model_blocks"]

SSM_DTYPE_KEYS = ("mamba_ssm_dtype", "mamba_ssm_cache_dtype")


def model_blocks(config) -> list[tuple]:
    """(mixer, ffn) per block: the reader's list, or worked out from the config."""
    found = config.get(BLOCKS_KEY)
    if found is None:
        found = blocks(dict(config.raw), f"config {config.name!r}")
    return [tuple(b) for b in found]


def _ssm_dtype(config):
    """The state dtype the checkpoint declares (Qwen3.5 ``mamba_ssm_dtype``, Nemotron-H
    ``mamba_ssm_cache_dtype``), else None (the model's dtype)."""
    for key in SSM_DTYPE_KEYS:
        value = config.get(key)
        if value not in (None, "auto"):
            try:
                return get_dtype(value)
            except Exception as exc:  # noqa: BLE001 - one line naming the key
                raise ConfigError(f"config {config.name!r}: {key}={value!r} is not a known dtype ({exc})") from None
    return None


# --- layouts ---------------------------------------------------------------------------------
def _backbone_slots(config) -> list[LayerSlot]:
    """backbone.embeddings; per block backbone.layers.i.{norm, mixer}; backbone.norm_f; lm_head."""
    slots = [LayerSlot("embedding", None, "backbone.embeddings")]
    for i, (mixer, ffn) in enumerate(model_blocks(config)):
        slots += [LayerSlot("norm", i, f"backbone.layers.{i}.norm"),
                  LayerSlot(mixer or ffn, i, f"backbone.layers.{i}.mixer")]
    return slots + [LayerSlot("norm", None, "backbone.norm_f"), LayerSlot("lm_head", None, "lm_head")]


def _jamba_slots(config) -> list[LayerSlot]:
    """model.embed_tokens; per block input_layernorm, mamba | self_attn, pre_ff_layernorm,
    feed_forward; model.final_layernorm; lm_head."""
    slots = [LayerSlot("embedding", None, "model.embed_tokens")]
    for i, (mixer, ffn) in enumerate(model_blocks(config)):
        p = f"model.layers.{i}"
        slots += [LayerSlot("norm", i, f"{p}.input_layernorm"),
                  LayerSlot(mixer, i, f"{p}.{'self_attn' if mixer == 'attention' else 'mamba'}"),
                  LayerSlot("norm", i, f"{p}.pre_ff_layernorm"), LayerSlot(ffn, i, f"{p}.feed_forward")]
    return slots + [LayerSlot("norm", None, "model.final_layernorm"), LayerSlot("lm_head", None, "lm_head")]


def _qwen_slots(config) -> list[LayerSlot]:
    """model.embed_tokens; per block input_layernorm, linear_attn | self_attn,
    post_attention_layernorm, mlp; model.norm; lm_head (Qwen3.5's text model lives under
    model.language_model)."""
    root = "model.language_model" if config.model_type in ("qwen3_5", "qwen3_5_moe") else "model"
    slots = [LayerSlot("embedding", None, f"{root}.embed_tokens")]
    for i, (mixer, ffn) in enumerate(model_blocks(config)):
        p = f"{root}.layers.{i}"
        slots += [LayerSlot("norm", i, f"{p}.input_layernorm"),
                  LayerSlot(mixer, i, f"{p}.{'self_attn' if mixer == 'attention' else 'linear_attn'}"),
                  LayerSlot("norm", i, f"{p}.post_attention_layernorm"), LayerSlot(ffn, i, f"{p}.mlp")]
    return slots + [LayerSlot("norm", None, f"{root}.norm"), LayerSlot("lm_head", None, "lm_head")]


LAYOUTS = [
    ModelLayout("recurrent-backbone", MAMBA1_TYPES | MAMBA2_TYPES | NEMOTRON_TYPES, slots=_backbone_slots,
                description="Mamba / Mamba-2 / Nemotron-H: per block an RMSNorm and one mixer (or MLP / MoE)"),
    ModelLayout("recurrent-jamba", JAMBA_TYPES, slots=_jamba_slots,
                description="Jamba: Mamba-1 or attention, then MLP or MoE, per block"),
    ModelLayout("recurrent-qwen-hybrid", QWEN_TYPES, slots=_qwen_slots,
                description="Qwen3-Next / Qwen3.5: Gated DeltaNet or gated attention, then MoE or MLP, per block"),
]


# --- layer builders --------------------------------------------------------------------------
def build_mamba(config, slot: LayerSlot) -> Mamba1Mixer:
    """Mamba-1 from MambaConfig / FalconMambaConfig keys, or Jamba's mamba_* keys."""
    common = dict(name=slot.name, index=slot.index, hidden=config.hidden_size,
                  weight_dtype=config.weight_dtype(slot.name), dtype=config.dtype, ssm_dtype=_ssm_dtype(config))
    if config.model_type in JAMBA_TYPES:
        return Mamba1Mixer(**common, intermediate=config.get("mamba_expand") * config.hidden_size,
                           state=config.get("mamba_d_state"), conv_kernel=config.get("mamba_d_conv"),
                           dt_rank=config.get("mamba_dt_rank"), use_bias=bool(config.get("mamba_proj_bias", False)),
                           conv_bias=bool(config.get("mamba_conv_bias", True)), bcdt_norm="weighted")
    return Mamba1Mixer(**common, intermediate=config.intermediate_size, state=config.get("state_size"),
                       conv_kernel=config.get("conv_kernel"), dt_rank=config.get("time_step_rank"),
                       use_bias=config.get("use_bias"), conv_bias=config.get("use_conv_bias"),
                       bcdt_norm="weightless" if config.model_type == "falcon_mamba" else "")


def build_mamba2(config, slot: LayerSlot) -> Mamba2Mixer:
    """Mamba-2 from Mamba2Config keys, or Nemotron-H's mamba_* keys."""
    if config.model_type in NEMOTRON_TYPES:
        heads, head_dim, state = config.get("mamba_num_heads"), config.get("mamba_head_dim"), config.get("ssm_state_size")
    else:
        heads, head_dim, state = config.get("num_heads"), config.get("ssm_head_dim"), config.get("state_size")
    return Mamba2Mixer(name=slot.name, index=slot.index, hidden=config.hidden_size, heads=heads, head_dim=head_dim,
                       groups=config.get("n_groups"), state=state, conv_kernel=config.get("conv_kernel"),
                       chunk=config.get("chunk_size"),
                       weight_dtype=config.weight_dtype(slot.name, linears=("in_proj", "out_proj")),
                       dtype=config.dtype, use_bias=bool(config.get("use_bias", False)),
                       conv_bias=bool(config.get("use_conv_bias", True)), ssm_dtype=_ssm_dtype(config))


def build_deltanet(config, slot: LayerSlot) -> GatedDeltaNet:
    """Gated DeltaNet from the linear_* keys of Qwen3-Next / Qwen3.5."""
    return GatedDeltaNet(name=slot.name, index=slot.index, hidden=config.hidden_size,
                         key_heads=config.get("linear_num_key_heads"), value_heads=config.get("linear_num_value_heads"),
                         key_dim=config.get("linear_key_head_dim"), value_dim=config.get("linear_value_head_dim"),
                         conv_kernel=config.get("linear_conv_kernel_dim"), weight_dtype=config.weight_dtype(slot.name),
                         dtype=config.dtype, ssm_dtype=_ssm_dtype(config),
                         fused_inputs=config.model_type == "qwen3_next")


def build_attention(config, slot: LayerSlot) -> Attention:
    """Gated attention (Qwen hybrids) or attention without RoPE (Jamba, Nemotron-H)."""
    if config.model_type in QWEN_TYPES:
        return GatedAttention(**(attention_kwargs(config, slot) | {"window": None}))
    kwargs = attention_kwargs(config, slot) | {"rotary_dim": 0, "rope_type": "none", "window": None}
    return Attention(**kwargs)


def build_mlp(config, slot: LayerSlot):
    """SwiGLU MLP (Jamba, Qwen hybrids) or Nemotron-H's squared-ReLU MLP."""
    if config.model_type in NEMOTRON_TYPES:
        return Relu2MLP(name=slot.name, index=slot.index, hidden=config.hidden_size,
                        intermediate=config.intermediate_size,
                        weight_dtype=config.weight_dtype(slot.name, linears=("up_proj", "down_proj")),
                        bias_dtype=config.dtype, bias=bool(config.get("mlp_bias", False)))
    if config.intermediate_size is None:
        raise ConfigError(f"config {config.name!r}: required key 'intermediate_size' is missing")
    return GatedMLP(name=slot.name, index=slot.index, hidden=config.hidden_size, intermediate=config.intermediate_size,
                    weight_dtype=config.weight_dtype(slot.name), bias_dtype=config.dtype)


def build_moe(config, slot: LayerSlot):
    """The core's MoE (Jamba; Qwen hybrids with the gated shared expert) or Nemotron-H's."""
    if config.model_type in NEMOTRON_TYPES:
        return NemotronMoE(name=slot.name, index=slot.index, hidden=config.hidden_size, experts=config.num_experts,
                           top_k=config.experts_per_token, intermediate=config.moe_intermediate_size,
                           shared_intermediate=config.get("moe_shared_expert_intermediate_size"),
                           latent=config.get("moe_latent_size") or 0,
                           expert_dtype=config.weight_dtype(slot.name + ".experts"), dense_dtype=config.dtype,
                           shared_dtype=config.weight_dtype(slot.name + ".shared_experts",
                                                            linears=("up_proj", "down_proj")),
                           latent_dtype=config.weight_dtype(slot.name, linears=("fc1_latent_proj", "fc2_latent_proj")),
                           bias=bool(config.get("mlp_bias", False)))
    shared = (config.shared_expert_intermediate_size or 0) if config.model_type in QWEN_TYPES else 0
    return MoE(**moe_kwargs(config, slot), shared_intermediate=shared, shared_gate=bool(shared))


def build_lm_head(config, slot: LayerSlot) -> LMHead:
    """The core's LM head, tied as the reader says (Mamba-1's configs default to tied)."""
    return LMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.head_dtype(slot.name),
                  tied=bool(config.get("tie_word_embeddings", False)))


ALL = MAMBA1_TYPES | MAMBA2_TYPES | JAMBA_TYPES | QWEN_TYPES | NEMOTRON_TYPES
LAYER_TYPES = [
    LayerType("mamba1-mixer", "mamba", build_mamba, MAMBA1_TYPES | JAMBA_TYPES,
              description="Mamba-1 selective SSM (Falcon-Mamba's weightless and Jamba's B/C/Δ norms); recurrent state"),
    LayerType("mamba2-mixer", "mamba2", build_mamba2, MAMBA2_TYPES | NEMOTRON_TYPES,
              description="Mamba-2 with the chunked SSD scan (heads, groups); recurrent state"),
    LayerType("gated-deltanet", "linear_attention", build_deltanet, QWEN_TYPES,
              description="Gated DeltaNet (Qwen3-Next / Qwen3.5 linear attention), chunked delta rule; recurrent state"),
    LayerType("hybrid-attention", "attention", build_attention, QWEN_TYPES | JAMBA_TYPES | NEMOTRON_TYPES,
              description="gated attention with q/k norm and partial RoPE (Qwen), attention without RoPE (Jamba, Nemotron-H)"),
    LayerType("hybrid-mlp", "mlp", build_mlp, QWEN_TYPES | JAMBA_TYPES | NEMOTRON_TYPES,
              description="SwiGLU MLP (Jamba, Qwen), squared-ReLU MLP (Nemotron-H)"),
    LayerType("hybrid-moe", "moe", build_moe, QWEN_TYPES | JAMBA_TYPES | NEMOTRON_TYPES,
              description="MoE: gated experts (+ gated shared expert for Qwen), Nemotron-H's latent ReLU² experts"),
    LayerType("recurrent-lm-head", "lm_head", build_lm_head, ALL,
              description="LM head, tied as the model's config class defaults (Mamba-1: tied)"),
]
