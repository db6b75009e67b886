"""A hostile fake plugin: a module that raises SystemExit at import."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

raise SystemExit(3)
