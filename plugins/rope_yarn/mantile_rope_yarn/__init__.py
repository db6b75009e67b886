"""mantile-rope-yarn: YaRN RoPE scaling (rope_type "yarn") for Mantile.

``mantile_rope_yarn.plugin`` is the entry point; :func:`compute_yarn` (in ``yarn``) is the
numpy computation; ``reference`` holds the torch RoPE reference (imports torch lazily).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
