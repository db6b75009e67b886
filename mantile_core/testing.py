"""Pytest fixtures for plugin authors (loaded through the ``pytest11`` entry point).

``mantile_plugins`` gives a function that installs a fresh plugin manager holding the core's
built-ins plus the plugin objects you pass, and restores the previous one afterwards::

    def test_my_layer(mantile_plugins):
        mantile_plugins(my_plugin_module)
        model = mantile_core.load_model("path/to/config.json")
"""

from __future__ import annotations

import pytest

from .plugins import make_plugin_manager, set_plugin_manager

__all__ = ["mantile_plugins", "use_plugins"]


def use_plugins(*plugins: object, entry_points: bool = False, distribution: str = "test-plugin"):
    """Install a fresh manager with the built-ins and ``plugins``; returns the previous one."""
    pm = make_plugin_manager(entry_points=entry_points, plugins=[(p, distribution) for p in plugins])
    return set_plugin_manager(pm), pm


@pytest.fixture
def mantile_plugins():
    """Call with plugin objects (modules or classes with @hookimpl methods) to use them in this
    test only; keyword ``entry_points=True`` also loads the installed ones."""
    previous_holder: list = []

    def install(*plugins: object, entry_points: bool = False, distribution: str = "test-plugin"):
        previous, pm = use_plugins(*plugins, entry_points=entry_points, distribution=distribution)
        if not previous_holder:
            previous_holder.append(previous)
        return pm

    yield install
    if previous_holder:
        set_plugin_manager(previous_holder[0])
