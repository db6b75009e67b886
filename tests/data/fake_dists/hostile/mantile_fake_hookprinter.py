"""A hostile fake plugin: a hook that prints to stdout."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

@hookimpl
def mantile_rope_scalings():
    print("hello from a hook")
    return []
