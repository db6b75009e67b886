"""A hostile fake plugin: a hook that builds a record with a junk field."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

from mantile_core.records import LayerType


@hookimpl
def mantile_layer_types():
    return [LayerType(name=5, kind="mixer", build=None)]
