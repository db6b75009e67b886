"""One exception hierarchy: every user-facing failure is a MantileError.

The CLI turns any of these into one line on stderr and exit status 2. Messages name the
thing, the value, and the fix.
"""

from __future__ import annotations

__all__ = [
    "MantileError",
    "ConfigError",
    "UnknownModelError",
    "UnknownHardwareError",
    "ParallelismError",
    "InputError",
    "MissingPluginError",
    "UnsupportedModelError",
    "PluginConflictError",
    "PluginError",
]


class MantileError(Exception):
    """Base of every error Mantile raises on bad input or a missing plugin."""


class ConfigError(MantileError):
    """A model config.json is missing, malformed, or lacks a required key."""


class UnknownModelError(MantileError):
    """A model name is neither bundled nor a path to a config.json."""


class UnknownHardwareError(MantileError):
    """A hardware name no bundled file or plugin provides."""


class ParallelismError(MantileError):
    """A parallelism degree the model's shapes cannot be split by."""


class InputError(MantileError):
    """A non-positive size or otherwise impossible request."""


class MissingPluginError(MantileError):
    """The model needs something only a plugin that is not installed provides."""


class UnsupportedModelError(MissingPluginError):
    """A model_type that no installed plugin (and no plugin of this checkout) supports."""


class PluginConflictError(MantileError):
    """Two plugins claim the same name in one registry."""


class PluginError(MantileError):
    """A plugin's code failed, or returned something that is not what its hook promises."""
