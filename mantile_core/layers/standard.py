"""Layer types for the architectures the core knows, built from a ModelConfig.

Biases implied by an architecture are included: Qwen2 / Qwen2-MoE have q/k/v biases, Llama
follows ``attention_bias`` / ``mlp_bias``, Qwen3 has q/k RMSNorm and ``attention_bias``; the
MLP's activation is ``hidden_act`` (silu for all of them).

:func:`decoder_slots` describes any decoder stack of the same family of shapes from a
:class:`DecoderLayout` (module names, the block's sublayers in order, an optional learned
position embedding, an optional final norm): the sequential pre-norm block (Llama), the
parallel block with one shared norm (GPT-J, Falcon-7B, Phi-2, Cohere: norm, attention, mlp),
two norms (GPT-NeoX, Falcon-40B: the same slots as sequential, the residual wiring costs
nothing), or post-sublayer norms (OLMo-2). Plugins describe their families with it instead of
copying the stack.
"""

from __future__ import annotations

import attrs

from .. import checks
from ..config import ModelConfig
from ..errors import ConfigError
from ..records import LayerSlot, LayerType
from ..rope import rotary_dim
from .attention import Attention
from .mlp import GatedMLP, MoE, activation_name
from .simple import Embedding, LMHead, PositionEmbedding, RMSNorm

__all__ = ["STANDARD_MODEL_TYPES", "CORE_LAYER_TYPES", "DecoderLayout", "STANDARD_LAYOUT", "decoder_slots",
           "standard_slots", "attention_kwargs", "moe_kwargs", "mlp_kwargs", "ATTENTION_LINEARS", "MLP_LINEARS"]

STANDARD_MODEL_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})


@attrs.frozen
class DecoderLayout:
    """Module names and block structure of a decoder stack.

    ``block`` lists the (kind, module suffix) sublayers of decoder block i in order; kind "mlp"
    becomes "moe" on the layers ``config.moe_layers`` marks. ``positions`` names a learned
    absolute position embedding (kind "position_embedding"), ``final_norm`` the norm before
    the head (None: none).
    """

    embedding: str = "model.embed_tokens"
    layers: str = "model.layers"
    block: tuple[tuple[str, str], ...] = (("norm", "input_layernorm"), ("attention", "self_attn"),
                                          ("norm", "post_attention_layernorm"), ("mlp", "mlp"))
    positions: str | None = None
    final_norm: str | None = "model.norm"
    lm_head: str = "lm_head"


STANDARD_LAYOUT = DecoderLayout()


def decoder_slots(config: ModelConfig, layout: DecoderLayout = STANDARD_LAYOUT) -> list[LayerSlot]:
    """Slots of a decoder stack: embedding (and position embedding); per block the
    ``layout.block`` sublayers (mlp or moe per ``config.moe_layers``); final norm; LM head."""
    slots = [LayerSlot("embedding", None, layout.embedding)]
    if layout.positions:
        slots.append(LayerSlot("position_embedding", None, layout.positions))
    for i in range(config.num_layers):
        prefix = f"{layout.layers}.{i}"
        for kind, suffix in layout.block:
            if kind == "mlp" and config.moe_layers[i]:
                kind = "moe"
            slots.append(LayerSlot(kind, i, f"{prefix}.{suffix}"))
    if layout.final_norm:
        slots.append(LayerSlot("norm", None, layout.final_norm))
    slots.append(LayerSlot("lm_head", None, layout.lm_head))
    return slots


# the projections of the standard attention and gated MLP, as checkpoints name them
ATTENTION_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LINEARS = ("gate_proj", "up_proj", "down_proj")


def standard_slots(config: ModelConfig) -> list[LayerSlot]:
    """The standard decoder stack: embedding; per block input norm, attention,
    post-attention norm, MLP or MoE; final norm; LM head."""
    return decoder_slots(config, STANDARD_LAYOUT)


def attention_kwargs(config: ModelConfig, slot: LayerSlot) -> dict:
    """Shape, dtype, window and RoPE arguments every Attention subclass shares; ConfigError
    when the config declares no attention heads."""
    if not config.num_heads:
        raise ConfigError(f"config {config.name!r}: required key 'num_attention_heads' is missing")
    return dict(
        name=slot.name,
        index=slot.index,
        hidden=config.hidden_size,
        heads=config.num_heads,
        kv_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        rotary_dim=rotary_dim(config.rope_parameters, config.head_dim),
        weight_dtype=config.weight_dtype(slot.name, linears=ATTENTION_LINEARS),
        bias_dtype=config.dtype,
        kv_scale_bytes=config.quant.kv_scale_bytes if config.quant is not None else 0,
        window=config.windows[slot.index],
        rope_type=config.rope_parameters.get("rope_type", "default"),
        max_position=config.max_position_embeddings,
    )


def _attention(config: ModelConfig, slot: LayerSlot) -> Attention:
    mt = config.model_type
    flag = checks.get_bool(config.raw, "attention_bias", config.where, default=False)
    qkv_bias = mt in ("qwen2", "qwen2_moe") or (flag and mt in ("llama", "qwen3", "qwen3_moe"))
    o_bias = flag and mt in ("llama", "qwen3", "qwen3_moe")
    return Attention(**attention_kwargs(config, slot), q_bias=qkv_bias, k_bias=qkv_bias, v_bias=qkv_bias,
                     o_bias=o_bias, qk_norm=mt in ("qwen3", "qwen3_moe"))


def mlp_kwargs(config: ModelConfig, slot: LayerSlot, *, key: str = "hidden_act", default: str = "silu",
               linears: tuple[str, ...] = MLP_LINEARS) -> dict:
    """Shape, dtype and activation arguments every MLP shares: hidden, intermediate_size,
    weights in the quantization format unless excluded, biases in the checkpoint dtype, the
    activation named by config key ``key`` (transformers' spelling, ConfigError if unknown);
    ``linears`` names its projections as the checkpoint does (per-projection exclusions)."""
    if config.intermediate_size is None:
        raise ConfigError(f"{config.where}: required key 'intermediate_size' is missing")
    name = checks.get_str(config.raw, key, config.where, default=default)
    return dict(name=slot.name, index=slot.index, hidden=config.hidden_size,
                intermediate=config.intermediate_size,
                weight_dtype=config.weight_dtype(slot.name, linears=linears),
                bias_dtype=config.dtype, activation=activation_name(name, config.where, key))


def _mlp(config: ModelConfig, slot: LayerSlot) -> GatedMLP:
    return GatedMLP(**mlp_kwargs(config, slot),
                    bias=checks.get_bool(config.raw, "mlp_bias", config.where, default=False))


def moe_kwargs(config: ModelConfig, slot: LayerSlot) -> dict:
    """Shape and dtype arguments every MoE subclass shares: E experts, top k, expert
    intermediate, experts in the quantization format unless excluded, the rest in the
    checkpoint dtype."""
    return dict(name=slot.name, index=slot.index, hidden=config.hidden_size, experts=config.num_experts,
                top_k=config.experts_per_token, intermediate=config.moe_intermediate_size,
                expert_dtype=config.weight_dtype(slot.name + ".experts"), dense_dtype=config.dtype)


def _moe(config: ModelConfig, slot: LayerSlot) -> MoE:
    shared = config.shared_expert_intermediate_size or 0
    return MoE(**moe_kwargs(config, slot), shared_intermediate=shared, shared_gate=bool(shared),
               shared_dtype=config.weight_dtype(slot.name + ".shared_expert", linears=MLP_LINEARS)
               if shared else None)


def _embedding(config: ModelConfig, slot: LayerSlot) -> Embedding:
    return Embedding(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                     dtype=config.weight_dtype(slot.name, quantizable=False))


def _norm(config: ModelConfig, slot: LayerSlot) -> RMSNorm:
    return RMSNorm(name=slot.name, index=slot.index, hidden=config.hidden_size, dtype=config.dtype)


def _position_embedding(config: ModelConfig, slot: LayerSlot) -> PositionEmbedding:
    return PositionEmbedding(name=slot.name, index=slot.index, positions=config.max_position_embeddings,
                             hidden=config.hidden_size, dtype=config.weight_dtype(slot.name, quantizable=False))


def _lm_head(config: ModelConfig, slot: LayerSlot) -> LMHead:
    return LMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.head_dtype(slot.name), tied=config.tie_word_embeddings)


CORE_LAYER_TYPES = [
    LayerType("embedding", "embedding", _embedding, description="token embedding, vocab-parallel"),
    LayerType("rmsnorm", "norm", _norm, description="RMSNorm, replicated"),
    LayerType("learned-positions", "position_embedding", _position_embedding,
              description="learned absolute position embedding (max_position_embeddings rows), replicated"),
    LayerType("lm-head", "lm_head", _lm_head, description="LM head (tied or not), vocab-parallel"),
    LayerType("gqa-attention", "attention", _attention, STANDARD_MODEL_TYPES,
              description="grouped-query attention with RoPE, architecture-implied biases, q/k norm"),
    LayerType("gated-mlp", "mlp", _mlp, STANDARD_MODEL_TYPES, description="SwiGLU MLP, tp shards intermediate"),
    LayerType("moe", "moe", _moe, STANDARD_MODEL_TYPES,
              description="top-k MoE of gated experts (+ Qwen shared expert), ep shards experts"),
]
