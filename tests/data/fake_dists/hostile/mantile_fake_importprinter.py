"""A hostile fake plugin: a module that prints to stdout at import."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

print("hello from an import")


@hookimpl
def mantile_layer_types():
    return []
