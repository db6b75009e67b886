"""mantile-llama4: Meta's Llama 4 text model (Scout, Maverick) for the Mantile estimator.

:mod:`.config` reads ``llama4_text`` configs (the ``llama4`` image-text wrapper through its
``text_config``), :mod:`.layers` holds the attention (chunked or NoPE global, L2 q/k norm,
temperature tuning) and the MoE (sigmoid top-1 router, shared expert), :mod:`.layout` the
``feed_forward`` module names. Chunked layers need a ``chunked`` cache policy
(mantile-swa-cache).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
