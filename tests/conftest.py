from __future__ import annotations

import pytest

from mantile_core.plugins import reset_plugin_manager


@pytest.fixture(autouse=True)
def _fresh_plugin_manager():
    """Every test starts and ends with the manager rebuilt from the environment."""
    reset_plugin_manager()
    yield
    reset_plugin_manager()
