"""A hostile fake plugin: a module whose hook implementation takes an argument no hook gives."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

@hookimpl
def mantile_layer_types(nonsense):
    return []
