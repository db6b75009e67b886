"""A well-behaved fake plugin: a ``mixer`` layer type and a layout for model_type fake_mixer."""

from __future__ import annotations

import attrs

from mantile_core import hookimpl
from mantile_core.layers import Layer
from mantile_core.records import LayerSlot, LayerType, ModelLayout
from mantile_core.workload import LayerCost


@attrs.frozen(kw_only=True)
class FakeMixer(Layer):
    """One hidden x hidden bf16 matrix: 2·T·H² FLOPs."""

    kind: str = "mixer"
    hidden: int

    def params(self) -> int:
        return self.hidden * self.hidden

    def weight_bytes(self) -> int:
        return 2 * self.params()

    def cost(self, step) -> LayerCost:
        flops = 2 * step.tokens * self.hidden * self.hidden
        return LayerCost(flops=flops, matmul_flops=flops, weight_bytes=self.weight_bytes(),
                         resident_weight_bytes=self.weight_bytes(), kernels=1)


def _slots(config):
    return ([LayerSlot("embedding", None, "embed")]
            + [LayerSlot("mixer", i, f"mixers.{i}") for i in range(config.num_layers)]
            + [LayerSlot("lm_head", None, "head")])


@hookimpl
def mantile_layer_types():
    return [LayerType("fake-mixer", "mixer", lambda config, slot: FakeMixer(
        name=slot.name, index=slot.index, hidden=config.hidden_size), model_types={"fake_mixer"})]


@hookimpl
def mantile_model_layouts():
    return [ModelLayout("fake-mixer", {"fake_mixer"}, _slots)]
