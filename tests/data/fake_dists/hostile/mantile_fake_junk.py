"""A hostile fake plugin: a hook that returns objects that are not records."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

@hookimpl
def mantile_layer_types():
    return [42, "not a record"]
