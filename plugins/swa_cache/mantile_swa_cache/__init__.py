"""mantile-swa-cache: KV-cache policies for sliding-window attention layers.

A sliding layer with window W needs only its last W keys: ``ring`` keeps W slots,
``paged`` whole blocks as vLLM frees them, ``full`` the whole context (for comparison).
The counts are in :mod:`mantile_swa_cache.counts`; the torch reference in
:mod:`mantile_swa_cache.reference` (needs the ``torch`` extra).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
