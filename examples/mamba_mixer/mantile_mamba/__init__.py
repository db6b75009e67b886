"""mantile-mamba: a worked example of a third-party Mantile plugin that adds a new layer kind,
the Mamba selective state-space mixer (``mixer``), and the layout of Mamba models.

See docs/writing-plugins.md in the Mantile repository for the walk-through.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
