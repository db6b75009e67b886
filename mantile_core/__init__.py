"""Mantile: analytical cost of serving large language models on real accelerators.

Public API: :func:`load_model`, :func:`get_hardware`, :func:`estimate`,
:func:`rope_scaling`, :func:`get_plugin_manager` and :data:`hookimpl` for plugins.
"""

from __future__ import annotations

from .errors import (
    ConfigError,
    InputError,
    MantileError,
    MissingPluginError,
    ParallelismError,
    PluginConflictError,
    UnknownHardwareError,
    UnknownModelError,
)
from .hookspecs import hookimpl
from .plugins import get_plugin_manager

__all__ = [
    "hookimpl",
    "get_plugin_manager",
    "load_model",
    "get_hardware",
    "estimate",
    "rope_scaling",
    "MantileError",
    "ConfigError",
    "InputError",
    "MissingPluginError",
    "ParallelismError",
    "PluginConflictError",
    "UnknownHardwareError",
    "UnknownModelError",
]

_LAZY = {
    "load_model": ("model", "load_model"),
    "get_hardware": ("hardware", "get_hardware"),
    "estimate": ("estimate", "estimate"),
    "rope_scaling": ("rope", "rope_scaling"),
    "sweep": ("sweep", "sweep"),
}


def __getattr__(name: str):
    """Import the heavier modules (numpy-backed) on first use, keeping ``import mantile_core``
    cheap for plugins that only need ``hookimpl``."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mantile_core' has no attribute {name!r}")
