"""A hostile fake plugin: a module that writes to file descriptor 1 directly at import."""

from __future__ import annotations

import os

from mantile_core import hookimpl

os.write(1, b"raw bytes from an import\n")


@hookimpl
def mantile_layer_types():
    return []
