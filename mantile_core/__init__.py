"""Mantile: analytical cost of serving large language models on real accelerators.

Public API: :func:`load_model`, :func:`get_hardware`, :func:`estimate`, :func:`sweep`,
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
    UnsupportedModelError,
)
from .hookspecs import hookimpl
from .plugins import get_plugin_manager

# Functions named like their modules are bound eagerly, so that importing the module later
# (``from mantile_core.estimate import cost_phase``) cannot shadow the function.
from .estimate import estimate  # noqa: E402
from .hardware import get_hardware  # noqa: E402
from .model import load_model  # noqa: E402
from .rope import rope_scaling  # noqa: E402
from .sweep import sweep  # noqa: E402

__all__ = [
    "hookimpl",
    "get_plugin_manager",
    "load_model",
    "get_hardware",
    "estimate",
    "rope_scaling",
    "sweep",
    "MantileError",
    "ConfigError",
    "InputError",
    "MissingPluginError",
    "ParallelismError",
    "PluginConflictError",
    "UnknownHardwareError",
    "UnknownModelError",
    "UnsupportedModelError",
]
