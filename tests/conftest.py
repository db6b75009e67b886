from __future__ import annotations

import os

import pytest

from mantile_core.plugins import reset_plugin_manager

try:  # the fuzz suite's profiles (tests/test_fuzz.py); hypothesis is in the `test` extra
    from hypothesis import settings
except ImportError:  # pragma: no cover - a bare environment without the test extra
    settings = None
if settings is not None:
    # ci (the default): deterministic, so CI runs the same ~2,400 cases every time;
    # long (MANTILE_FUZZ_PROFILE=long): 25 times the cases, fresh random ones each run
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("long", derandomize=False, deadline=None, print_blob=True)
    settings.load_profile(os.environ.get("MANTILE_FUZZ_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _fresh_plugin_manager():
    """Every test starts and ends with the manager rebuilt from the environment."""
    reset_plugin_manager()
    yield
    reset_plugin_manager()
