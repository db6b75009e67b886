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


def test_analytic_figures_sum_the_layers_of_each_step():
    from mantile_core.validation_helpers import analytic_figures
    from mantile_core.workload import LayerCost

    class Layer:
        def __init__(self, scale):
            self.scale = scale

        def cost(self, step):
            n = self.scale * step
            return LayerCost(matmul_flops=10 * n, attention_flops=3 * n, kv_cache_bytes=7 * n)

    model = SimpleNamespace(layers=[Layer(1), Layer(2)], params=lambda: 11, weight_bytes=lambda: 22)
    # prefill "step" 5 and decode "step" 1: each layer's cost scales with scale · step
    assert analytic_figures(model, 5, 1) == {
        "params": 11, "weight_bytes": 22,
        "prefill_projection_flops": (10 - 3) * (5 + 10), "decode_matmul_flops": 10 * (1 + 2),
        "kv_prefill_bytes": 7 * (5 + 10), "kv_decode_bytes": 7 * (1 + 2)}
