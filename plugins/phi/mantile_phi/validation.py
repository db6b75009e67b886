"""``mantile validate`` cases of mantile-phi (skipped without transformers): each family,
a tiny config in its published spelling, built by transformers 5.24 (``from_config``, eager
attention and experts, bfloat16, CPU) and by Mantile, compared exactly:

- parameters (Σ numel) = ``params()``, their nbytes = ``weight_bytes()``;
- a prefill of S tokens for a batch of B: FlopCounterMode's FLOPs outside the attention core
  (q/k/v/o or the fused qkv, MLP or router and the experts a token is routed to — exactly two
  per token under sparsemixer —, the LM head on the last position) = Σ Mantile's
  ``matmul_flops − attention_flops``;
- the decode step after it: FlopCounterMode's total = Σ Mantile's ``matmul_flops``;
- KV cache tensors' nbytes after each = Σ Mantile's ``kv_cache_bytes``.

``phi3``: fused qkv_proj / gate_up_proj. ``phimoe``: LayerNorms with bias, q/k/v/o and LM-head
biases, 4 experts top-2 by sparsemixer, longrope with short/long mscale. Elementwise FLOPs
(sparsemixer's 22 per router logit, LayerNorm, biases) are documented constants that
FlopCounterMode does not count.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mantile_core.records import ValidationCase, ValidationOutcome
from mantile_core.validation_helpers import analytic_figures, cache_nbytes, module_own_flops

__all__ = ["TINY", "VALIDATION_CASES", "family_figures"]

_ROPE = {"type": "longrope", "original_max_position_embeddings": 64, "short_mscale": 1.2, "long_mscale": 1.3,
         "short_factor": [1.0 + 0.1 * j for j in range(8)], "long_factor": [1.5 + 0.5 * j for j in range(8)]}
TINY = {
    "phi3": {"model_type": "phi3", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 256, "max_position_embeddings": 256,
             "sliding_window": 7, "tie_word_embeddings": False, "pad_token_id": 0},
    "phimoe": {"model_type": "phimoe", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "intermediate_size": 48, "vocab_size": 256, "max_position_embeddings": 256,
               "num_local_experts": 4, "num_experts_per_tok": 2, "attention_bias": True, "lm_head_bias": True,
               "sliding_window": 9, "rope_theta": 10000.0, "rope_scaling": _ROPE, "original_max_position_embeddings": 64},
}


def _mantile_model(raw: dict):
    from mantile_core import load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps({**raw, "torch_dtype": "bfloat16"}))
        return load_model(path)


def _hf_model(raw: dict):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # the tiny vocabulary does not hold the family's bos/eos ids
    try:
        config = AutoConfig.for_model(**raw)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", experts_implementation="eager")
    finally:
        logging.set_verbosity(level)
    return model.to(torch.bfloat16).eval().requires_grad_(False)


def _step(batch: int, new: int, cached: int):
    from mantile_core import get_plugin_manager
    from mantile_core.workload import Step

    policies = get_plugin_manager().registries.cache_policies
    return Step(batch=batch, new_tokens=new, cached=cached, act_dtype="bf16", kv_dtype="bf16",
                policies={"causal": policies["causal"], "sliding": policies["ring"]})


def family_figures(key: str, *, batch: int = 2, prefill: int = 5) -> dict:
    """Measured (transformers) and analytic (Mantile) figures of ``TINY[key]``; ``prefill``
    stays within the tiny sliding windows, so transformers' cache holds every position."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    raw = TINY[key]
    model, hf = _mantile_model(raw), _hf_model(raw)
    ids = torch.randint(0, raw["vocab_size"], (batch, prefill + 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            out = hf(ids[:, :prefill], use_cache=True, logits_to_keep=1)
        projection = counter.get_total_flops() - module_own_flops(counter.get_flop_counts(), ("self_attn",))
        kv_prefill = cache_nbytes(out.cache)
        with FlopCounterMode(display=False) as counter:
            out = hf(ids[:, prefill:], cache=out.cache, use_cache=True, logits_to_keep=1)
        decode = counter.get_total_flops()
        kv_decode = cache_nbytes(out.cache)
    return {
        "measured": {"params": sum(p.numel() for p in hf.parameters()),
                     "weight_bytes": sum(p.nbytes for p in hf.parameters()),
                     "prefill_projection_flops": int(projection), "decode_matmul_flops": int(decode),
                     "kv_prefill_bytes": int(kv_prefill), "kv_decode_bytes": int(kv_decode)},
        "analytic": analytic_figures(model, _step(batch, prefill, 0), _step(batch, 1, prefill)),
    }


def _case(key: str):
    def run() -> ValidationOutcome:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            return ValidationOutcome(True, "transformers is not installed", skipped=True)
        fig = family_figures(key)
        m, a = fig["measured"], fig["analytic"]
        bad = [f"{k} measured {m[k]} != analytic {a[k]}" for k in a if m[k] != a[k]]
        if bad:
            return ValidationOutcome(False, f"{key}: " + "; ".join(bad))
        return ValidationOutcome(True, f"{key}: params {a['params']:,}, weight bytes, prefill projection and decode "
                                       f"FLOPs, KV bytes equal transformers'")
    return run


VALIDATION_CASES = [
    ValidationCase("phi3-tiny", _case("phi3"),
                   "transformers' tiny Phi-3 (fused qkv / gate_up): params, bytes, FLOPs, KV = Mantile"),
    ValidationCase("phimoe-tiny", _case("phimoe"),
                   "transformers' tiny Phi-3.5-MoE (LayerNorm, biases, sparsemixer top-2): params, bytes, FLOPs, KV "
                   "= Mantile"),
]
