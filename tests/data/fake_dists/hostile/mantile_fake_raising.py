"""A hostile fake plugin: a hook that raises."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

@hookimpl
def mantile_layer_types():
    raise RuntimeError("hostile hook")
