"""A fake plugin that claims the layer type name ``fake-mixer``, which mantile-fake-good owns."""

from __future__ import annotations

from mantile_core import hookimpl
from mantile_core.records import LayerType


@hookimpl
def mantile_layer_types():
    return [LayerType("fake-mixer", "mixer", lambda config, slot: None, model_types={"other_mixer"})]
