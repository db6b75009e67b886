"""mantile-rope-longrope: rope_type "longrope" (LongRoPE, Phi-3 / Phi-3.5) for Mantile.

:mod:`.longrope` computes inv_freq and the attention factor (numpy, no torch);
:mod:`.reference` is the torch reference, checked against transformers by :mod:`.validation`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
