"""A hostile fake plugin: a hook that writes to file descriptor 1 directly, past sys.stdout."""

from __future__ import annotations

import os

from mantile_core import hookimpl


@hookimpl
def mantile_rope_scalings():
    os.write(1, b"raw bytes from a hook\n")
    return []
