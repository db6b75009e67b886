"""A fake plugin whose import fails, as one with a missing dependency does."""

from __future__ import annotations

import mantile_fake_missing_dependency  # noqa: F401  (no such module, on purpose)

from mantile_core import hookimpl


@hookimpl
def mantile_layer_types():  # never reached
    return []
