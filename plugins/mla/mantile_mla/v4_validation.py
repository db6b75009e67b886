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

:func:`v4_flop_figures` (case ``mla-v4-decode-flops``) counts the decode steps after that
prefill with FlopCounterMode, module by module: each attention module's count equals
``matmul_flops`` for the sliding and HCA layers (a decode step's keys are exactly the window's
and every compressed entry); on the CSA layer transformers' eager attention multiplies every
compressed entry and masks the unselected ones, and sums the indexer's weighted heads
elementwise, so its count is ``matmul_flops`` + 4·D·h·batch·(entries − min(entries, K)) −
2·nh·(scored pairs); each HC module's count equals its ``fn`` GEMM 2·T·n·H·(2+n)·n, the decoder
layer's own matmuls (outside its children) the two combines 2·2·T·n²·H, ``hc_head`` and the LM
head theirs. (The routed experts run through a grouped kernel FlopCounterMode does not see; the
MoE is checked elsewhere.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["TINY_V4", "v4_figures", "v4_flop_figures"]

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


def v4_flop_figures(batch: int = 2, prefill: int = 37, decode: int = 3, seed: int = 0) -> dict:
    """{"analytic": {...}, "measured": {...}}: FlopCounterMode per module over the decode steps
    (module docstring), against the layers' ``matmul_flops``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM, DeepseekV4Config
    from transformers.cache_utils import DynamicCache

    hf_config = DeepseekV4Config(**{k: v for k, v in TINY_V4.items() if k not in ("model_type", "torch_dtype")})
    hf_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config).eval()
    mantile = _mantile_model()
    ids = torch.randint(0, TINY_V4["vocab_size"], (batch, prefill + decode), generator=torch.Generator().manual_seed(seed))
    cache = DynamicCache(config=hf_config)
    analytic: dict[str, int] = {}
    measured: dict[str, int] = {}
    root = "DeepseekV4ForCausalLM"
    with torch.no_grad():
        model(input_ids=ids[:, :prefill], cache=cache, use_cache=True)
        for t in range(decode):
            cached = prefill + t
            counter = FlopCounterMode(display=False)
            with counter:
                model(input_ids=ids[:, cached:cached + 1], cache=cache, use_cache=True)
            counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
            step = _step(batch, 1, cached)
            for layer in mantile.layers:
                cost = layer.cost(step)
                if layer.kind == "attention":
                    extra = 0
                    if layer.indexer:
                        entries = layer.entries(cached + 1)
                        extra = (4 * layer.head_dim * layer.heads * batch * (entries - min(entries, layer.index_topk))
                                 - 2 * layer.index_n_heads * layer.scored_pairs(step))
                    analytic[f"{layer.name} cached{cached}"] = int(cost.matmul_flops) + extra
                    measured[f"{layer.name} cached{cached}"] = counts.get(f"{root}.{layer.name}", 0)
                elif layer.kind == "hyper_connection":
                    terms = layer.flop_terms(step)
                    analytic[f"{layer.name} cached{cached}"] = int(terms["mix"])
                    measured[f"{layer.name} cached{cached}"] = counts.get(f"{root}.{layer.name}", 0)
                    if layer.index is not None and layer.name.endswith("ffn_hc"):
                        prefix = f"{root}.model.layers.{layer.index}"
                        children = sum(counts.get(f"{prefix}.{child}", 0)
                                       for child in ("self_attn", "mlp", "attn_hc", "ffn_hc"))
                        analytic[f"model.layers.{layer.index} combines cached{cached}"] = 2 * int(terms["combine"])
                        measured[f"model.layers.{layer.index} combines cached{cached}"] = counts.get(prefix, 0) - children
                elif layer.kind == "lm_head":
                    analytic[f"lm_head cached{cached}"] = int(cost.matmul_flops)
                    measured[f"lm_head cached{cached}"] = counts.get(f"{root}.lm_head", 0)
    return {"analytic": analytic, "measured": measured}
