"""mantile_core.validation_helpers: the torch-free pieces the plugins' validate cases share."""

from __future__ import annotations

from types import SimpleNamespace

from mantile_core.validation_helpers import cache_nbytes, module_own_flops


def test_module_own_flops_subtracts_direct_children_only():
    # FlopCounterMode counts a module's FLOPs including its children's; the attention's own
    # part (QK^T and PV) is its total less its direct children (the projections)
    counts = {
        "model.layers.0.self_attn": {"mm": 100, "bmm": 40},
        "model.layers.0.self_attn.q_proj": {"mm": 60},
        "model.layers.0.self_attn.o_proj": {"mm": 30},
        "model.layers.0.self_attn.q_proj.inner": {"mm": 60},  # a grandchild: already in q_proj
        "model.layers.0.mlp": {"mm": 500},
        "model.layers.1.attention": {"bmm": 7},
    }
    assert module_own_flops(counts) == (140 - 60 - 30) + 7
    assert module_own_flops(counts, ("self_attn",)) == 50
    assert module_own_flops(counts, ("mlp",)) == 500


def test_cache_nbytes_sums_keys_and_values():
    layer = SimpleNamespace(keys=SimpleNamespace(nbytes=64), values=SimpleNamespace(nbytes=32))
    assert cache_nbytes(SimpleNamespace(layers=[layer, layer])) == 192
