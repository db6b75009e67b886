"""A hostile fake plugin: a hook that returns a number instead of a list."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

@hookimpl
def mantile_cache_policies():
    return 7
