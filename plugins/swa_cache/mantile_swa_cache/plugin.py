"""The ``swa_cache`` entry point of distribution mantile-swa-cache: sliding-window KV-cache
policies (``ring`` default, ``paged``, ``full``) and their torch validation cases."""

from __future__ import annotations

from mantile_core import hookimpl


@hookimpl
def mantile_cache_policies():
    from .policies import POLICIES

    return POLICIES


@hookimpl
def mantile_validation_cases():
    from .validation import CASES

    return CASES
