"""A plugin layer that raises or returns junk while it is costed is one line naming the layer,
its type and its distribution (exit 2), never a traceback or a silently wrong figure
(issue #15: hostile plugins contained; mantile_core.guard)."""

from __future__ import annotations

import contextlib
import io
import math

import attrs
import numpy
import pytest

import mantile_core
from mantile_core import hookimpl
from mantile_core.cli import main
from mantile_core.errors import ParallelismError, PluginError
from mantile_core.layers import Layer
from mantile_core.records import LayerSlot, LayerType, ModelLayout
from mantile_core.workload import LayerCost

TOY = "tests/data/toy-mixer.json"
GOOD = dict(flops=10, matmul_flops=10, weight_bytes=4, resident_weight_bytes=4, kernels=1)


@attrs.frozen(kw_only=True)
class Hostile(Layer):
    """A mixer whose method ``where`` misbehaves as ``how`` says; the others behave."""

    kind: str = "mixer"
    where: str = ""
    how: str = ""

    def _maybe(self, method, good):
        if self.where != method:
            return good
        if self.how == "raise":
            raise ZeroDivisionError("division by zero")
        return {"none": None, "negative": -1, "string": "12", "float": 2.5, "bool": True}[self.how]

    def params(self):
        return self._maybe("params", 2)

    def weight_bytes(self):
        return self._maybe("weight_bytes", 4)

    def describe(self):
        if self.where == "describe":
            return ["not", "a", "dict"] if self.how != "raise" else 1 / 0
        return {}

    def check_deployment(self, tp, ep, dp):
        if self.where == "check_deployment":
            if self.how == "refuse":
                raise ParallelismError("toy mixer cannot split 2 ways")
            raise KeyError("tp")

    def cost(self, step):
        if self.where != "cost":
            return LayerCost(**GOOD)
        if self.how == "raise":
            raise IndexError("list index out of range")
        if self.how == "none":
            return None
        if self.how == "print":
            print("debug: costing")
            return LayerCost(**GOOD)
        if self.how == "dict":
            return dict(GOOD)
        field_value = {"negative": -5, "nan": math.nan, "inf": math.inf, "string": "5",
                       "array-nan": numpy.array([1.0, math.nan])}[self.how]
        return LayerCost(**{**GOOD, "kv_cache_bytes": field_value})


def plugin(where, how):
    class HostilePlugin:
        @hookimpl
        def mantile_layer_types(self):
            return [LayerType("hostile-mixer", "mixer",
                              lambda cfg, slot: Hostile(name=slot.name, index=slot.index, where=where, how=how),
                              model_types={"toy_mixer"})]

        @hookimpl
        def mantile_model_layouts(self):
            def slots(cfg):
                return ([LayerSlot("embedding", None, "embed")]
                        + [LayerSlot("mixer", i, f"mixers.{i}") for i in range(cfg.num_layers)]
                        + [LayerSlot("lm_head", None, "head")])
            return [ModelLayout("toy-mixer", {"toy_mixer"}, slots)]
    return HostilePlugin()


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


CASES = [("cost", how) for how in ("raise", "none", "dict", "negative", "nan", "inf", "string", "print")] + [
    ("params", how) for how in ("raise", "none", "negative", "string", "float", "bool")] + [
    ("weight_bytes", how) for how in ("raise", "negative", "float")] + [
    ("describe", "raise"), ("describe", "list"), ("check_deployment", "raise")]


@pytest.mark.parametrize("where,how", CASES)
def test_misbehaving_layer_is_one_line_naming_its_distribution(mantile_plugins, where, how):
    mantile_plugins(plugin(where, how), distribution="mantile-hostile")
    command = ["layers", TOY, "--json"] if where == "describe" else ["estimate", TOY, "--hardware", "h100", "--json"]
    code, out, err = run(command)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("mantile: error: layer 'mixers.0' (type 'hostile-mixer', from mantile-hostile)"), err
    assert where + "()" in lines[0], err


def test_a_deliberate_refusal_passes_through_unchanged(mantile_plugins):
    mantile_plugins(plugin("check_deployment", "refuse"), distribution="mantile-hostile")
    code, out, err = run(["estimate", TOY, "--hardware", "h100"])
    assert code == 2 and err.strip() == "mantile: error: toy mixer cannot split 2 ways"


def test_array_costs_are_checked_element_wise(mantile_plugins):
    mantile_plugins(plugin("cost", "array-nan"), distribution="mantile-hostile")
    model = mantile_core.load_model(TOY)
    with pytest.raises(PluginError, match=r"kv_cache_bytes = array\(\[ 1., nan\]\), not a finite, non-negative"):
        mantile_core.estimate(model, "h100", batch=2, input_len=10, output_len=4)


def test_well_behaved_layer_and_huge_exact_counts_pass(mantile_plugins):
    from mantile_core.guard import layer_cost

    mantile_plugins(plugin("", ""), distribution="mantile-hostile")
    model = mantile_core.load_model(TOY)
    assert model.params() == 1000 * 256 + 3 * 2 + 1000 * 256  # embed + three 2-parameter mixers + head
    huge = attrs.evolve(model.layers[1], where="cost", how="")

    class Huge(type(huge)):
        def cost(self, step):
            return LayerCost(flops=2**80, matmul_flops=2**80)  # beyond int64: an exact Python int
    assert layer_cost(Huge(name="h", type="hostile-mixer"), None).flops == 2**80
