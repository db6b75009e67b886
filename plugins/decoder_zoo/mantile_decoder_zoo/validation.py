"""Validation cases of mantile-decoder-zoo, run by ``mantile validate`` (and the tests): every
block shape the zoo adds, executed by transformers' own model of the family.

For each family a tiny config in the family's published spelling (:data:`TINY`) is read by
Mantile (through the zoo's config reader) and built by transformers (``from_config``, eager
attention, eager experts, bfloat16, CPU). Compared, exactly:

- parameters: Σ numel of transformers' parameters (+ its ``e_score_correction_bias``
  buffers, which the checkpoints store) = Mantile's ``params()``; their nbytes (MiMo's router
  kept in float32 as transformers declares) = ``weight_bytes()``;
- a prefill of S tokens for a batch of B: FlopCounterMode's FLOPs outside the attention core
  (q/k/v/o, fused or not, MLPs, experts, routers, the LM head on the last position) = the sum
  of Mantile's ``matmul_flops − attention_flops``;
- the decode step that follows (one token per sequence after S cached): FlopCounterMode's
  total, attention included (eager attention over the S+1 cached keys: the attended pairs) =
  the sum of Mantile's ``matmul_flops``;
- the KV cache: Σ nbytes of transformers' cache tensors after the prefill and after the
  decode step = the sum of Mantile's ``kv_cache_bytes`` (MQA's single KV head, ALiBi's plain
  cache, MiMo's 192 + 128 K/V head dims and 2× KV heads on sliding layers).

Elementwise FLOPs (norms, activations, biases, ALiBi, clamps, scales) are documented constants
per element in the layer modules; FlopCounterMode does not count them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mantile_core.records import ValidationCase, ValidationOutcome
from mantile_core.validation_helpers import analytic_figures, cache_nbytes, module_own_flops

__all__ = ["TINY", "VALIDATION_CASES", "family_figures"]

_V = 256
TINY: dict[str, dict[str, Any]] = {
    "gpt2": {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "vocab_size": _V},
    "gpt_neox": {"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "intermediate_size": 256, "rotary_pct": 0.25, "vocab_size": _V, "hidden_act": "gelu"},
    "falcon-7b": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "multi_query": True, "parallel_attn": True, "bias": False, "new_decoder_architecture": False,
                  "vocab_size": _V},
    "falcon-40b": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8,
                   "num_kv_heads": 2, "new_decoder_architecture": True, "parallel_attn": True, "bias": False,
                   "vocab_size": _V},
    "falcon-alibi": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "multi_query": False, "parallel_attn": False, "bias": True, "alibi": True,
                     "new_decoder_architecture": False, "vocab_size": _V},
    "phi": {"model_type": "phi", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 256, "partial_rotary_factor": 0.5, "vocab_size": _V, "qk_layernorm": True},
    "starcoder2": {"model_type": "starcoder2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "intermediate_size": 256, "sliding_window": 64, "vocab_size": _V},
    "cohere": {"model_type": "cohere", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "intermediate_size": 128, "use_qk_norm": True, "vocab_size": _V},
    "olmo": {"model_type": "olmo", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 128, "clip_qkv": 8.0, "vocab_size": _V},
    "olmo2": {"model_type": "olmo2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": _V},
    "olmoe": {"model_type": "olmoe", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 32, "num_experts": 8, "num_experts_per_tok": 2,
              "clip_qkv": 8.0, "vocab_size": _V},
    "dbrx": {"model_type": "dbrx", "d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 64, "vocab_size": _V,
             "attn_config": {"kv_n_heads": 2, "clip_qkv": 8, "rope_theta": 500000},
             "ffn_config": {"ffn_hidden_size": 32, "moe_num_experts": 4, "moe_top_k": 2}},
    "granite": {"model_type": "granite", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "intermediate_size": 128, "embedding_multiplier": 12.0,
                "residual_multiplier": 0.22, "attention_multiplier": 0.0625, "logits_scaling": 8.0,
                "vocab_size": _V},
    "granitemoe": {"model_type": "granitemoe", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "intermediate_size": 32, "num_local_experts": 8,
                   "num_experts_per_tok": 2, "embedding_multiplier": 12.0, "residual_multiplier": 0.22,
                   "logits_scaling": 6.0, "vocab_size": _V},
    "glm4_moe": {"model_type": "glm4_moe", "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128, "moe_intermediate_size": 32,
                 "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
                 "partial_rotary_factor": 0.5, "attention_bias": True, "n_group": 1, "topk_group": 1,
                 "vocab_size": _V},
    "minimax_m2": {"model_type": "minimax_m2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "head_dim": 16, "rotary_dim": 8, "intermediate_size": 32,
                   "num_local_experts": 8, "num_experts_per_tok": 2, "use_qk_norm": True,
                   "qk_norm_type": "per_layer", "scoring_func": "sigmoid", "use_routing_bias": True,
                   "vocab_size": _V},
    "mimo_v2_flash": {"model_type": "mimo_v2_flash", "hidden_size": 64, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "num_key_value_heads": 1, "swa_num_key_value_heads": 2,
                      "head_dim": 24, "v_head_dim": 16, "partial_rotary_factor": 0.334,
                      "hybrid_layer_pattern": [0, 1], "moe_layer_freq": [0, 1], "sliding_window_size": 63,
                      "intermediate_size": 128, "moe_intermediate_size": 32, "n_routed_experts": 8,
                      "num_experts_per_tok": 2, "vocab_size": _V},
}
"""Tiny configs in each family's own spelling (the keys its published config.json uses)."""


def _mantile_model(raw: dict):
    from mantile_core import load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(raw))
        return load_model(path)


FP32_ROUTER = {"mimo_v2_flash"}
"""Families whose checkpoints store the router weight in float32 (transformers keeps more
routers in float32 at run time — GLM-4.5, DeepSeek-V3 — but their checkpoints store bfloat16)."""

KV_EXPANDED = {"falcon-40b"}
"""transformers' Falcon with new_decoder_architecture broadcasts K/V to every query head before
caching them (``num_kv_heads = self.num_heads``); engines cache the num_kv_heads heads, which is
what Mantile counts: the measured cache is divided by heads / kv_heads."""


def _hf_model(raw: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # the tiny vocabularies do not hold the families' bos/eos ids
    try:
        config = AutoConfig.for_model(**raw)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                                 experts_implementation="eager")
    finally:
        logging.set_verbosity(level)
    model = model.to(torch.bfloat16).eval().requires_grad_(False)
    if raw["model_type"] in FP32_ROUTER:
        for module_name, module in model.named_modules():
            if module_name.endswith("mlp.gate"):
                module.weight.data = module.weight.data.float()
    for module_name, buffer in model.named_buffers():
        if module_name.endswith("e_score_correction_bias"):
            buffer.data = buffer.data.float()
    return model


def _step(batch: int, new: int, cached: int):
    from mantile_core import get_plugin_manager
    from mantile_core.workload import Step

    policies = get_plugin_manager().registries.cache_policies
    chosen = {"causal": policies["causal"]}
    if "ring" in policies:
        chosen["sliding"] = policies["ring"]
    return Step(batch=batch, new_tokens=new, cached=cached, act_dtype="bf16", kv_dtype="bf16", policies=chosen)


def family_figures(key: str, *, batch: int = 2, prefill: int = 12) -> dict:
    """Measured (transformers, torch) and analytic (Mantile) figures of family ``key``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    raw = TINY[key]
    model = _mantile_model(raw)
    hf = _hf_model(raw)
    buffers = [b for n, b in hf.named_buffers() if n.endswith("e_score_correction_bias")]
    ids = torch.randint(0, raw["vocab_size"], (batch, prefill + 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            out = hf(ids[:, :prefill], use_cache=True, logits_to_keep=1)
        counts = counter.get_flop_counts()
        prefill_projection = counter.get_total_flops() - module_own_flops(counts)
        cache = out.past_key_values
        kv_prefill = cache_nbytes(cache)
        with FlopCounterMode(display=False) as counter:
            out = hf(ids[:, prefill:], cache=cache, use_cache=True, logits_to_keep=1)
        decode_flops = counter.get_total_flops()
        kv_decode = cache_nbytes(out.past_key_values)
    if key in KV_EXPANDED:
        kv_prefill //= raw["num_attention_heads"] // raw["num_kv_heads"]
        kv_decode //= raw["num_attention_heads"] // raw["num_kv_heads"]
    return {
        "measured": {"params": sum(p.numel() for p in hf.parameters()) + sum(b.numel() for b in buffers),
                     "weight_bytes": sum(p.nbytes for p in hf.parameters()) + sum(b.nbytes for b in buffers),
                     "prefill_projection_flops": int(prefill_projection), "decode_matmul_flops": int(decode_flops),
                     "kv_prefill_bytes": int(kv_prefill), "kv_decode_bytes": int(kv_decode)},
        "analytic": analytic_figures(model, _step(batch, prefill, 0), _step(batch, 1, prefill)),
    }


def _case(keys: tuple[str, ...]):
    def run() -> ValidationOutcome:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
        bad = []
        for key in keys:
            fig = family_figures(key)
            m, a = fig["measured"], fig["analytic"]
            bad += [f"{key}: {k} measured {m[k]} != analytic {a[k]}" for k in a if m[k] != a[k]]
        if bad:
            return ValidationOutcome(False, "; ".join(bad))
        return ValidationOutcome(True, f"{', '.join(keys)}: params, weight bytes, prefill projection FLOPs, "
                                       f"decode FLOPs, KV bytes equal transformers'")
    return run


GROUPS = {
    "zoo-classic": ("gpt2", "gpt_neox", "falcon-7b", "falcon-40b", "falcon-alibi", "phi", "starcoder2"),
    "zoo-cohere-olmo": ("cohere", "olmo", "olmo2", "olmoe"),
    "zoo-moe": ("dbrx", "granite", "granitemoe", "glm4_moe"),
    "zoo-2025": ("minimax_m2", "mimo_v2_flash"),
}

VALIDATION_CASES = [
    ValidationCase(name, _case(keys), f"transformers' tiny {', '.join(keys)}: params, bytes, FLOPs, KV = Mantile")
    for name, keys in GROUPS.items()
]
