"""Helpers the plugins' ``mantile validate`` cases share when they compare Mantile's analytic
figures with a transformers execution. Nothing here imports torch: the functions read what a
torch run produced (FlopCounterMode's per-module counts, a transformers cache object).
"""

from __future__ import annotations

from typing import Iterable, Mapping

__all__ = ["module_own_flops", "cache_nbytes", "analytic_figures"]

ATTENTION_MODULES = ("attn", "attention", "self_attn", "self_attention")


def module_own_flops(counts: Mapping[str, Mapping], module_names: Iterable[str] = ATTENTION_MODULES) -> int:
    """FLOPs counted inside the modules whose last name part is in ``module_names`` but not
    inside any of their direct children: for an attention module, the QKᵀ and PV products
    (its Linear children are the projections). ``counts`` is FlopCounterMode's
    ``get_flop_counts()`` (module path -> {op: FLOPs})."""
    wanted = frozenset(module_names)
    names = list(counts)
    own = 0
    for name in names:
        if name.rsplit(".", 1)[-1] not in wanted:
            continue
        children = [n for n in names if n.startswith(name + ".") and "." not in n[len(name) + 1:]]
        own += sum(counts[name].values()) - sum(sum(counts[c].values()) for c in children)
    return own


def cache_nbytes(cache) -> int:
    """Bytes of the keys and values a transformers ``DynamicCache`` holds, over its layers."""
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


def analytic_figures(model, prefill_step, decode_step) -> dict[str, int]:
    """Mantile's side of a family check: params and weight bytes, the prompt's projection
    FLOPs (matmul less QKᵀ/PV) and the decode step's matmul FLOPs, and the KV bytes held
    after each, summed over ``model``'s layers."""
    pre = [layer.cost(prefill_step) for layer in model.layers]
    dec = [layer.cost(decode_step) for layer in model.layers]
    return {"params": model.params(), "weight_bytes": model.weight_bytes(),
            "prefill_projection_flops": int(sum(c.matmul_flops - c.attention_flops for c in pre)),
            "decode_matmul_flops": int(sum(c.matmul_flops for c in dec)),
            "kv_prefill_bytes": int(sum(c.kv_cache_bytes for c in pre)),
            "kv_decode_bytes": int(sum(c.kv_cache_bytes for c in dec))}
