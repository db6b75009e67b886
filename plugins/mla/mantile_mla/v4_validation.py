"""Torch check of DeepSeek-V4's counts against transformers' ``DeepseekV4ForCausalLM`` (eager),
run by ``mantile validate`` (case ``mla-v4-pairs-cache-params``) and the tests.

A tiny V4 (3 layers: sliding only, CSA with m = 4 and index_topk 3, HCA with m = 8; window 8)
runs a 37-token prefill of 2 sequences through transformers' own cache, then 3 decode steps.
For every step and layer, the (query, key) pairs the attention mask allows (the sliding mask
joined with the compressor's block bias: causality of the compressed entries, and on CSA the
indexer's top-k) equal :meth:`~.v4_attention.V4Attention.attended_pairs`; after each step the
compressed entries transformers holds (``compressed_kv`` of the compressor and, on CSA, the
indexer) equal ⌊t/m⌋ entries of D (di) float32 values, and its window rows (W − 1: it drops the
oldest once the step is done) plus the next token equal the ring's W; the parameter numel of
each attention module, and of the whole model plus its stored buffers (tid2eid,
e_score_correction_bias), equal ``params()``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TINY_V4", "v4_figures"]

TINY_V4: dict[str, Any] = {
    "model_type": "deepseek_v4", "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
    "num_key_value_heads": 1, "head_dim": 32, "qk_rope_head_dim": 8, "q_lora_rank": 16, "o_groups": 2,
    "o_lora_rank": 8, "sliding_window": 8,
    "layer_types": ["sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention"],
    "compress_rates": {"compressed_sparse_attention": 4, "heavily_compressed_attention": 8},
    "index_n_heads": 2, "index_head_dim": 16, "index_topk": 3, "vocab_size": 64, "n_routed_experts": 4,
    "num_experts_per_tok": 2, "moe_intermediate_size": 16, "n_shared_experts": 1,
    "mlp_layer_types": ["hash_moe", "moe", "moe"], "hc_mult": 2, "hc_sinkhorn_iters": 3,
    "max_position_embeddings": 256, "rope_theta": 10000.0, "compress_rope_theta": 160000.0,
    "torch_dtype": "float32",
}


def _mantile_model():
    from mantile_core.model import Model, build_layers, read_model_config

    config = read_model_config(dict(TINY_V4), "tiny-deepseek-v4")
    return Model(config=config, layers=build_layers(config))


def _step(batch: int, new: int, cached: int):
    from mantile_core import get_plugin_manager
    from mantile_core.workload import Step

    policies = get_plugin_manager().registries.cache_policies
    return Step(batch=batch, new_tokens=new, cached=cached, act_dtype="fp32", kv_dtype="fp32",
                policies={"sliding": policies["ring"], "causal": policies["causal"]})


def v4_figures(batch: int = 2, prefill: int = 37, decode: int = 3, seed: int = 0) -> dict:
    """{"analytic": {...}, "measured": {...}} with one key per compared figure (module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, DeepseekV4Config
    from transformers.cache_utils import DynamicCache
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as v4

    hf_config = DeepseekV4Config(**{k: v for k, v in TINY_V4.items() if k not in ("model_type", "torch_dtype")})
    hf_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config).eval()
    mantile = _mantile_model()
    attention = [layer for layer in mantile.layers if layer.kind == "attention"]
    analytic: dict[str, int] = {}
    measured: dict[str, int] = {}

    seen: dict[int, int] = {}
    original = v4.eager_attention_forward

    def spy(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        if attention_mask is None:
            seen[module.layer_idx] = query.shape[0] * query.shape[2] * key.shape[2]
        else:  # one mask row per (sequence, query), broadcast over heads: allowed entries are 0
            seen[module.layer_idx] = int((attention_mask[:, 0, :, : key.shape[2]] == 0).sum())
        return original(module, query, key, value, attention_mask, scaling, dropout, **kwargs)

    ids = torch.randint(0, TINY_V4["vocab_size"], (batch, prefill + decode), generator=torch.Generator().manual_seed(seed))
    cache = DynamicCache(config=hf_config)
    chunks = [(0, prefill)] + [(prefill + t, 1) for t in range(decode)]
    v4.eager_attention_forward = spy
    try:
        with torch.no_grad():
            for cached, new in chunks:
                seen.clear()
                model(input_ids=ids[:, cached:cached + new], cache=cache, use_cache=True)
                step = _step(batch, new, cached)
                written = cached + new
                for layer in attention:
                    tag = f"{layer.layer_type} cached{cached} new{new}"
                    analytic[f"pairs {tag}"] = int(layer.attended_pairs(step))
                    measured[f"pairs {tag}"] = seen[layer.index]
                    held = cache.layers[layer.index]
                    ring = step.policy("sliding").resident_positions(written, layer.window, 16)
                    analytic[f"window rows {tag}"] = int(ring)
                    measured[f"window rows {tag}"] = min(held.keys.shape[2] + 1, written)
                    if layer.ratio:
                        entries = held.compressed_kv
                        analytic[f"compressed bytes {tag}"] = int(
                            4 * batch * layer.entries(written) * (layer.head_dim + layer.indexer * layer.index_head_dim))
                        measured[f"compressed bytes {tag}"] = sum(t.nbytes for t in entries.values() if t is not None)
    finally:
        v4.eager_attention_forward = original
    for layer in attention:
        analytic[f"params {layer.layer_type}"] = layer.params()
        measured[f"params {layer.layer_type}"] = sum(p.numel() for p in model.model.layers[layer.index].self_attn.parameters())
    stored = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("tid2eid", "e_score_correction_bias")))
    analytic["params model + stored buffers"] = mantile.params()
    measured["params model + stored buffers"] = sum(p.numel() for p in model.parameters()) + stored
    return {"analytic": analytic, "measured": measured}
