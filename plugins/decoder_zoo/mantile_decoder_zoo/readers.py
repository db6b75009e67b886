"""Config readers: each family's config.json spelling -> the standard (Llama-style) keys the
core parses, plus one ``_zoo`` object of normalised facts the zoo's layer builders read.

Every key is read once here, through :mod:`mantile_core.checks`; defaults are transformers'
(5.24) config defaults for the family, so a published config that omits a key means what it
means to transformers. The ``_zoo`` facts:

- ``norm``: "rms" (RMSNorm), "ln" (LayerNorm with bias), "ln_nobias" (weight only),
  "ln_none" (no affine parameters, OLMo);
- ``layout``: module names and the block's (kind, module) sublayers in order
  (:class:`mantile_core.layers.standard.DecoderLayout` fields);
- ``attention``: biases (q, k, v, o), ``alibi``, ``clip_qkv``, ``qk_norm`` ("head" per-head
  RMSNorm, "full" RMSNorm over the whole q / k projection), ``qk_layernorm`` (+ ``_bias``),
  ``v_scale``, and for MiMo-V2-Flash the sliding layers' KV heads and sinks;
- ``mlp``: ``gated``, ``bias``, ``activation`` (transformers' name);
- ``moe``: "core" (softmax top-k router, no bias: OLMoE, DBRX, Granite-MoE) or "deepseek"
  (sigmoid scores + e_score_correction_bias, shared experts: GLM-4.5, MiniMax-M2, MiMo-V2);
- ``lm_head``: ``bias`` (Phi), ``scale`` (Cohere logit_scale, 1/Granite logits_scaling);
- ``scales``: Granite's embedding / residual multipliers (None elsewhere);
- ``mtp``: next-token-prediction modules the checkpoint carries beyond the main model (not in
  the total; transformers does not build them either).
"""

from __future__ import annotations

from typing import Any, Callable

from mantile_core import checks
from mantile_core.errors import ConfigError

__all__ = ["READERS", "MODEL_TYPES", "read"]

STANDARD = dict(embedding="model.embed_tokens", layers="model.layers", positions=None,
                final_norm="model.norm", lm_head="lm_head")
SEQUENTIAL = (("norm", "input_layernorm"), ("attention", "self_attn"), ("norm", "post_attention_layernorm"),
              ("mlp", "mlp"))
PARALLEL_SHARED_NORM = (("norm", "input_layernorm"), ("attention", "self_attn"), ("mlp", "mlp"))


def _attention(**flags) -> dict:
    out = dict(rotary=True, q_bias=False, k_bias=False, v_bias=False, o_bias=False, alibi=False, clip_qkv=False,
               qk_norm=None, qk_layernorm=False, qk_layernorm_bias=False, v_scale=False,
               swa_kv_heads=None, swa_sinks=False, full_sinks=False, v_head_dim=None)
    out.update(flags)
    return out


def _facts(*, norm: str, block=SEQUENTIAL, names=None, attention: dict, mlp: dict, moe: str | None = None,
           lm_head: dict | None = None, scales: dict | None = None, mtp: int = 0, fp32_router: bool = False) -> dict:
    layout = dict(STANDARD, **(names or {}), block=tuple(tuple(b) for b in block))
    return dict(norm=norm, layout=layout, attention=attention, mlp=mlp, moe=moe,
                lm_head=dict(dict(bias=False, scale=None), **(lm_head or {})), scales=scales, mtp=mtp,
                fp32_router=fp32_router)


def _copy(raw: dict, out: dict, key: str, value: Any) -> None:
    """Set a standard key unless the raw config already has it (standard spellings win)."""
    if raw.get(key) is None and value is not None:
        out[key] = value


def _rope_theta(raw: dict, where: str, key: str, default: float) -> float:
    return checks.get_float(raw, key, where, default=default, positive=True)


def _clip(raw: dict, where: str, key: str = "clip_qkv") -> bool:
    value = checks.get_float(raw, key, where, default=None, positive=True)
    return value is not None


# --- GPT-2 ------------------------------------------------------------------------------------
def read_gpt2(raw: dict, where: str) -> dict:
    """GPT-2: n_embd / n_layer / n_head / n_inner (default 4·n_embd) / n_positions; learned
    absolute positions, LayerNorm with bias, fused c_attn with bias, c_proj with bias,
    non-gated MLP (activation_function, default gelu_new) with biases, tied head."""
    hidden = checks.get_int(raw, "n_embd", where)
    out = dict(raw, hidden_size=hidden, num_hidden_layers=checks.get_int(raw, "n_layer", where, maximum=checks.MAX_LAYERS),
               num_attention_heads=checks.get_int(raw, "n_head", where, maximum=1 << 16),
               intermediate_size=checks.get_int(raw, "n_inner", where, default=4 * hidden),
               max_position_embeddings=checks.get_int(raw, "n_positions", where, default=1024,
                                                      maximum=checks.MAX_POSITIONS),
               vocab_size=checks.get_int(raw, "vocab_size", where),
               tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=True))
    act = checks.get_str(raw, "activation_function", where, default="gelu_new")
    out["_zoo"] = _facts(
        norm="ln", block=(("norm", "ln_1"), ("attention", "attn"), ("norm", "ln_2"), ("mlp", "mlp")),
        names=dict(embedding="transformer.wte", positions="transformer.wpe", layers="transformer.h",
                   final_norm="transformer.ln_f"),
        attention=_attention(q_bias=True, k_bias=True, v_bias=True, o_bias=True, rotary=False),
        mlp=dict(gated=False, bias=True, activation=act, key="activation_function"))
    return out


# --- GPT-NeoX / Pythia ------------------------------------------------------------------------
def read_gpt_neox(raw: dict, where: str) -> dict:
    """GPT-NeoX / Pythia: rotary_pct (default 0.25) of each head rotated, rotary_emb_base
    (default 10000); LayerNorm with bias; fused query_key_value and dense with bias
    (attention_bias, default true); non-gated MLP (hidden_act, default gelu) with biases;
    use_parallel_residual (default true) wires attention and MLP in parallel off two norms
    (same slots as sequential); untied embed_out by default."""
    out = dict(raw)
    _copy(raw, out, "partial_rotary_factor", checks.get_float(raw, "rotary_pct", where, default=0.25,
                                                                 minimum=0.0, maximum=1.0))
    _copy(raw, out, "rope_theta", _rope_theta(raw, where, "rotary_emb_base", 10000.0))
    out["tie_word_embeddings"] = checks.get_bool(raw, "tie_word_embeddings", where, default=False)
    checks.get_bool(raw, "use_parallel_residual", where, default=True)
    bias = checks.get_bool(raw, "attention_bias", where, default=True)
    out["_zoo"] = _facts(
        norm="ln", block=(("norm", "input_layernorm"), ("attention", "attention"),
                          ("norm", "post_attention_layernorm"), ("mlp", "mlp")),
        names=dict(embedding="gpt_neox.embed_in", layers="gpt_neox.layers", final_norm="gpt_neox.final_layer_norm",
                   lm_head="embed_out"),
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias),
        mlp=dict(gated=False, bias=True, activation=checks.get_str(raw, "hidden_act", where, default="gelu")))
    return out


# --- Falcon -----------------------------------------------------------------------------------
def read_falcon(raw: dict, where: str) -> dict:
    """Falcon (also the pre-transformers model_types RefinedWebModel / RefinedWeb and their
    n_embed / n_layer / n_head / n_head_kv keys): Falcon-7B is multi-query (one KV head,
    ``multi_query``, default true) with attention and MLP in parallel off one LayerNorm;
    ``new_decoder_architecture`` (Falcon-40B/180B) has num_kv_heads KV heads and two norms
    (ln_attn, ln_mlp; one when num_ln_in_parallel_attn is 1). ``bias`` (default false) on every
    linear; MLP 4·hidden (ffn_hidden_size), gelu (``activation``); ``alibi`` replaces RoPE;
    tied head (default true). In a parallel block engines all-reduce attention + MLP once
    (vLLM's reduce_row_parallel_results)."""
    model_type = raw.get("model_type")
    hidden = checks.get_int(raw, "hidden_size", where, default=None) or checks.get_int(raw, "n_embed", where)
    layers = checks.get_int(raw, "num_hidden_layers", where, default=None, maximum=checks.MAX_LAYERS) \
        or checks.get_int(raw, "n_layer", where, maximum=checks.MAX_LAYERS)
    heads = checks.get_int(raw, "num_attention_heads", where, default=None, maximum=1 << 16) \
        or checks.get_int(raw, "n_head", where, maximum=1 << 16)
    new_arch = checks.get_bool(raw, "new_decoder_architecture", where, default=model_type == "RefinedWeb")
    multi_query = checks.get_bool(raw, "multi_query", where, default=True)
    kv_key = "num_kv_heads" if raw.get("num_kv_heads") is not None else "n_head_kv"
    if new_arch:
        kv_heads = checks.get_int(raw, kv_key, where, default=heads, maximum=1 << 16)
    else:
        kv_heads = 1 if multi_query else heads
    parallel = checks.get_bool(raw, "parallel_attn", where, default=True)
    norms = checks.get_int(raw, "num_ln_in_parallel_attn", where, default=2 if new_arch else 1, maximum=2)
    bias = checks.get_bool(raw, "bias", where, default=False)
    alibi = checks.get_bool(raw, "alibi", where, default=False)
    out = dict(raw, model_type="falcon", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
               num_key_value_heads=kv_heads,
               intermediate_size=checks.get_int(raw, "ffn_hidden_size", where, default=4 * hidden),
               max_position_embeddings=checks.get_int(raw, "max_position_embeddings", where, default=2048,
                                                      maximum=checks.MAX_POSITIONS),
               tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=True))
    out.pop("head_dim", None)
    if new_arch and norms == 2:
        block = (("norm", "ln_attn"), ("attention", "self_attention"), ("norm", "ln_mlp"), ("mlp", "mlp"))
    elif parallel or new_arch:
        block = (("norm", "input_layernorm"), ("attention", "self_attention"), ("mlp", "mlp"))
    else:
        block = (("norm", "input_layernorm"), ("attention", "self_attention"), ("norm", "post_attention_layernorm"),
                 ("mlp", "mlp"))
    out["_zoo"] = _facts(
        norm="ln", block=block,
        names=dict(embedding="transformer.word_embeddings", layers="transformer.h", final_norm="transformer.ln_f"),
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, alibi=alibi, rotary=not alibi),
        mlp=dict(gated=False, bias=bias, activation=checks.get_str(raw, "activation", where, default="gelu"),
                 key="activation", shared_reduce=parallel or new_arch))
    return out


# --- Phi-1/1.5/2 ------------------------------------------------------------------------------
def read_phi(raw: dict, where: str) -> dict:
    """Phi-1/1.5/2: attention and MLP in parallel off one LayerNorm (with bias); q/k/v and dense
    with biases; partial_rotary_factor (default 0.5); optional per-head q/k LayerNorm
    (qk_layernorm); non-gated fc1/fc2 with biases (hidden_act, default gelu_new); final
    LayerNorm; an untied LM head *with a bias*."""
    out = dict(raw, partial_rotary_factor=checks.get_float(raw, "partial_rotary_factor", where, default=0.5,
                                                            minimum=0.0, maximum=1.0))
    qk_ln = checks.get_bool(raw, "qk_layernorm", where, default=False)
    out["_zoo"] = _facts(
        norm="ln", block=PARALLEL_SHARED_NORM, names=dict(final_norm="model.final_layernorm"),
        attention=_attention(q_bias=True, k_bias=True, v_bias=True, o_bias=True, qk_layernorm=qk_ln,
                             qk_layernorm_bias=True),
        mlp=dict(gated=False, bias=True, activation=checks.get_str(raw, "hidden_act", where, default="gelu_new")),
        lm_head=dict(bias=True))
    return out


# --- StarCoder2 -------------------------------------------------------------------------------
def read_starcoder2(raw: dict, where: str) -> dict:
    """StarCoder2: LayerNorm with bias; GQA with biases on q/k/v/o (use_bias, default true);
    non-gated c_fc/c_proj with biases (hidden_act, default gelu_pytorch_tanh); sliding_window on
    every layer; tied head by default."""
    bias = checks.get_bool(raw, "use_bias", where, default=True)
    out = dict(raw, tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=True))
    out["_zoo"] = _facts(
        norm="ln", attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias),
        mlp=dict(gated=False, bias=bias,
                 activation=checks.get_str(raw, "hidden_act", where, default="gelu_pytorch_tanh")))
    return out


# --- Cohere (Command-R) -----------------------------------------------------------------------
def read_cohere(raw: dict, where: str) -> dict:
    """Command-R: attention and a gated SiLU MLP in parallel off one LayerNorm *without bias*;
    optional per-head q/k LayerNorm without bias (use_qk_norm); attention_bias (default
    false); logits multiplied by logit_scale (default 0.0625); tied head (default true)."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    qk = checks.get_bool(raw, "use_qk_norm", where, default=False)
    scale = checks.get_float(raw, "logit_scale", where, default=0.0625)
    out = dict(raw, tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=True))
    out["_zoo"] = _facts(
        norm="ln_nobias", block=PARALLEL_SHARED_NORM,
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, qk_layernorm=qk),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        lm_head=dict(scale=scale))
    return out


# --- OLMo, OLMo-2, OLMoE ----------------------------------------------------------------------
def read_olmo(raw: dict, where: str) -> dict:
    """OLMo (1): LayerNorm with no parameters at all; optional clip_qkv; gated SiLU MLP; no
    biases (attention_bias, default false)."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    out = dict(raw)
    out["_zoo"] = _facts(
        norm="ln_none", attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias,
                                             clip_qkv=_clip(raw, where)),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")))
    return out


def read_olmo2(raw: dict, where: str) -> dict:
    """OLMo-2: RMSNorms *after* attention and MLP (post_attention_layernorm,
    post_feedforward_layernorm), RMSNorm over the full q and k projections."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    out = dict(raw)
    out["_zoo"] = _facts(
        norm="rms", block=(("attention", "self_attn"), ("norm", "post_attention_layernorm"), ("mlp", "mlp"),
                           ("norm", "post_feedforward_layernorm")),
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, qk_norm="full"),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")))
    return out


def read_olmoe(raw: dict, where: str) -> dict:
    """OLMoE: RMSNorm pre-norm; RMSNorm over the full q and k projections; optional clip_qkv;
    num_experts SwiGLU experts of intermediate_size, softmax top-k router without bias."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    out = dict(raw)
    _copy(raw, out, "moe_intermediate_size", checks.get_int(raw, "intermediate_size", where))
    out["_zoo"] = _facts(
        norm="rms", attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias, qk_norm="full",
                                         clip_qkv=_clip(raw, where)),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        moe="core")
    return out


# --- DBRX -------------------------------------------------------------------------------------
def read_dbrx(raw: dict, where: str) -> dict:
    """DBRX: d_model / n_layers / n_heads / max_seq_len, attn_config {kv_n_heads, rope_theta,
    clip_qkv}, ffn_config {ffn_hidden_size, moe_num_experts, moe_top_k}; LayerNorm without
    bias; fused Wqkv and out_proj without bias; every layer an MoE of SwiGLU experts (w1, v1,
    w2) with a bias-free router."""
    attn = checks.get_mapping(raw, "attn_config", where, default={})
    ffn = checks.get_mapping(raw, "ffn_config", where, default={})
    awhere, fwhere = where + " attn_config", where + " ffn_config"
    heads = checks.get_int(raw, "n_heads", where, maximum=1 << 16)
    ffn_hidden = checks.get_int(ffn, "ffn_hidden_size", fwhere, default=3584)
    out = dict(raw, hidden_size=checks.get_int(raw, "d_model", where),
               num_hidden_layers=checks.get_int(raw, "n_layers", where, maximum=checks.MAX_LAYERS),
               num_attention_heads=heads,
               num_key_value_heads=checks.get_int(attn, "kv_n_heads", awhere, default=1, maximum=1 << 16),
               rope_theta=_rope_theta(attn, awhere, "rope_theta", 10000.0),
               max_position_embeddings=checks.get_int(raw, "max_seq_len", where, default=2048,
                                                      maximum=checks.MAX_POSITIONS),
               num_local_experts=checks.get_int(ffn, "moe_num_experts", fwhere, default=4),
               num_experts_per_tok=checks.get_int(ffn, "moe_top_k", fwhere, default=1),
               moe_intermediate_size=ffn_hidden, intermediate_size=ffn_hidden,
               tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=False))
    out["_zoo"] = _facts(
        norm="ln_nobias", block=(("norm", "norm_attn_norm.norm_1"), ("attention", "norm_attn_norm.attn"),
                                 ("norm", "norm_attn_norm.norm_2"), ("mlp", "ffn")),
        names=dict(embedding="transformer.wte", layers="transformer.blocks", final_norm="transformer.norm_f"),
        attention=_attention(clip_qkv=_clip(attn, awhere)),
        mlp=dict(gated=True, bias=False, activation="silu"), moe="core")
    return out


# --- Granite, Granite-MoE ---------------------------------------------------------------------
def _granite_scales(raw: dict, where: str) -> dict:
    return dict(embedding=checks.get_float(raw, "embedding_multiplier", where, default=1.0),
                residual=checks.get_float(raw, "residual_multiplier", where, default=1.0),
                attention=checks.get_float(raw, "attention_multiplier", where, default=1.0))


def read_granite(raw: dict, where: str) -> dict:
    """Granite (3.x dense): Llama plus constant multipliers — embedding_multiplier on the
    embedding output, residual_multiplier on each attention and MLP output, attention_multiplier
    as the softmax scale (free), logits divided by logits_scaling (the published configs tie the
    head; transformers' default is untied)."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    out = dict(raw, tie_word_embeddings=checks.get_bool(raw, "tie_word_embeddings", where, default=False))
    logits = checks.get_float(raw, "logits_scaling", where, default=1.0, positive=True)
    out["_zoo"] = _facts(
        norm="rms", block=(("norm", "input_layernorm"), ("attention", "self_attn"), ("scale", "residual_multiplier"),
                           ("norm", "post_attention_layernorm"), ("mlp", "mlp"), ("scale", "residual_multiplier.mlp")),
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, o_bias=bias),
        mlp=dict(gated=True, bias=checks.get_bool(raw, "mlp_bias", where, default=False),
                 activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        lm_head=dict(scale=1.0 / logits), scales=_granite_scales(raw, where))
    return out


def read_granitemoe(raw: dict, where: str) -> dict:
    """Granite-3 MoE: Granite's multipliers around num_local_experts SwiGLU experts of
    intermediate_size (fused input_linear, output_linear), bias-free top-k router."""
    out = read_granite(raw, where)
    _copy(raw, out, "moe_intermediate_size", checks.get_int(raw, "intermediate_size", where))
    zoo = out["_zoo"]
    zoo["layout"]["block"] = tuple((k, "block_sparse_moe" if k == "mlp" else s) for k, s in zoo["layout"]["block"])
    zoo["moe"] = "core"
    return out


# --- GLM-4.5, MiniMax-M2, MiMo-V2-Flash (DeepSeek-style routing) -------------------------------
def read_glm4_moe(raw: dict, where: str) -> dict:
    """GLM-4.5 / GLM-4.5-Air: first_k_dense_replace dense layers then MoE layers of
    n_routed_experts SwiGLU experts (moe_intermediate_size) + n_shared_experts always-active
    experts, sigmoid router with e_score_correction_bias; q/k/v biases (attention_bias), no o
    bias; partial_rotary_factor (default 0.5); optional per-head q/k RMSNorm (use_qk_norm);
    num_nextn_predict_layers MTP layers are not part of the main model."""
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    out = dict(raw)
    _copy(raw, out, "partial_rotary_factor", 0.5)
    checks.get_float(out, "partial_rotary_factor", where, minimum=0.0, maximum=1.0)
    qk = checks.get_bool(raw, "use_qk_norm", where, default=False)
    out["_zoo"] = _facts(
        norm="rms", attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, qk_norm="head" if qk else None),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        moe="deepseek", mtp=checks.get_int(raw, "num_nextn_predict_layers", where, default=0, minimum=0))
    return out


def read_minimax_m2(raw: dict, where: str) -> dict:
    """MiniMax-M2 / M2.5 / M2.7: every layer an MoE (block_sparse_moe) of num_local_experts
    SwiGLU experts of intermediate_size, sigmoid router with e_score_correction_bias
    (use_routing_bias); RMSNorm over the full q and k projections (use_qk_norm, qk_norm_type
    per_layer); rotary_dim of head_dim rotated; shared_intermediate_size 0 (none); its MTP
    modules (num_mtp_modules) are not part of the main model."""
    head_dim = checks.get_int(raw, "head_dim", where)
    rotary = checks.get_int(raw, "rotary_dim", where, default=head_dim, maximum=head_dim)
    qk = checks.get_bool(raw, "use_qk_norm", where, default=True)
    norm_type = checks.get_str(raw, "qk_norm_type", where, default="per_layer", choices=("per_layer", "per_head"))
    shared = checks.get_int(raw, "shared_intermediate_size", where, default=0, minimum=0)
    if shared:
        raise ConfigError(f"{where}: shared_intermediate_size={shared} (a shared expert) is not supported for "
                          f"minimax_m2 (the published models have 0)")
    out = dict(raw, partial_rotary_factor=rotary / head_dim)
    _copy(raw, out, "moe_intermediate_size", checks.get_int(raw, "intermediate_size", where))
    mtp = checks.get_int(raw, "num_mtp_modules", where, default=0, minimum=0) \
        if checks.get_bool(raw, "use_mtp", where, default=False) else 0
    block = tuple((k, "block_sparse_moe" if k == "mlp" else s) for k, s in SEQUENTIAL)
    out["_zoo"] = _facts(
        norm="rms", block=block,
        attention=_attention(qk_norm=("full" if norm_type == "per_layer" else "head") if qk else None),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        moe="deepseek", mtp=mtp)
    return out


def read_mimo_v2_flash(raw: dict, where: str) -> dict:
    """MiMo-V2-Flash: hybrid_layer_pattern (1 = sliding; transformers' default: full at layer 0
    and every 6th) with sliding_window_size + 1 keys per window (the query and 128 before it);
    sliding layers have swa_num_key_value_heads KV heads (2× the full layers') and a learned
    sink per head (add_swa_attention_sink_bias); q/k head_dim 192, v_head_dim 128; v scaled by
    attention_value_scale; moe_layer_freq (0 = dense MLP of intermediate_size) else MoE of
    n_routed_experts experts of moe_intermediate_size, sigmoid router with correction bias, no
    shared experts."""
    layers = checks.get_int(raw, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    pattern = checks.get_int_list(raw, "hybrid_layer_pattern", where, default=None, length=layers, maximum=1)
    if pattern is None:
        pattern = tuple(0 if (i == 0 or (i + 1) % 6 == 0) else 1 for i in range(layers))
    freq = checks.get_int_list(raw, "moe_layer_freq", where, default=None, length=layers, maximum=1)
    if freq is None:
        freq = (0,) + (1,) * (layers - 1)
    window = checks.get_int(raw, "sliding_window_size", where, default=None, maximum=checks.MAX_POSITIONS)
    window = window + 1 if window is not None else checks.get_int(raw, "sliding_window", where, default=129,
                                                                  maximum=checks.MAX_POSITIONS)
    kv = checks.get_int(raw, "num_key_value_heads", where, maximum=1 << 16)
    swa_kv = checks.get_int(raw, "swa_num_key_value_heads", where, default=2 * kv, maximum=1 << 16)
    heads = checks.get_int(raw, "num_attention_heads", where, maximum=1 << 16)
    swa_heads = checks.get_int(raw, "swa_num_attention_heads", where, default=heads, maximum=1 << 16)
    head_dim = checks.get_int(raw, "head_dim", where)
    if swa_heads != heads or checks.get_int(raw, "swa_head_dim", where, default=head_dim) != head_dim:
        raise ConfigError(f"{where}: sliding layers with other query heads or head_dim than the full layers are "
                          f"not supported (transformers' MiMo-V2-Flash has none)")
    bias = checks.get_bool(raw, "attention_bias", where, default=False)
    v_scale = checks.get_float(raw, "attention_value_scale", where, default=0.707)
    out = dict(raw, sliding_window=window,
               layer_types=["sliding_attention" if p else "full_attention" for p in pattern],
               mlp_only_layers=[i for i, f in enumerate(freq) if not f])
    out.pop("first_k_dense_replace", None)
    out.pop("max_window_layers", None)
    _copy(raw, out, "partial_rotary_factor", 0.334)
    checks.get_float(out, "partial_rotary_factor", where, minimum=0.0, maximum=1.0)
    out["_zoo"] = _facts(
        norm="rms",
        attention=_attention(q_bias=bias, k_bias=bias, v_bias=bias, v_scale=v_scale != 1.0, swa_kv_heads=swa_kv,
                             swa_sinks=checks.get_bool(raw, "add_swa_attention_sink_bias", where, default=True),
                             full_sinks=checks.get_bool(raw, "add_full_attention_sink_bias", where, default=False),
                             v_head_dim=checks.get_int(raw, "v_head_dim", where, default=head_dim)),
        mlp=dict(gated=True, bias=False, activation=checks.get_str(raw, "hidden_act", where, default="silu")),
        moe="deepseek", fp32_router=True)
    return out


READERS: dict[str, Callable[[dict, str], dict]] = {
    "gpt2": read_gpt2,
    "gpt_neox": read_gpt_neox,
    "falcon": read_falcon,
    "RefinedWeb": read_falcon,
    "RefinedWebModel": read_falcon,
    "phi": read_phi,
    "starcoder2": read_starcoder2,
    "cohere": read_cohere,
    "olmo": read_olmo,
    "olmo2": read_olmo2,
    "olmoe": read_olmoe,
    "dbrx": read_dbrx,
    "granite": read_granite,
    "granitemoe": read_granitemoe,
    "glm4_moe": read_glm4_moe,
    "minimax_m2": read_minimax_m2,
    "mimo_v2_flash": read_mimo_v2_flash,
}
MODEL_TYPES = frozenset(READERS)


def read(raw: dict, where: str) -> dict:
    """Dispatch on model_type (the core calls this only for the types in MODEL_TYPES)."""
    return READERS[raw["model_type"]](raw, where)
