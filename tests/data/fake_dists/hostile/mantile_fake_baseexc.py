"""A hostile fake plugin: a module that raises a BaseException subclass at import."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

class Hostile(BaseException):
    pass


raise Hostile("not an Exception")
