"""mantile-gpt-oss-attention: GPT-OSS layer types for Mantile.

Provides, through the ``mantile`` entry point (:mod:`.plugin`), the layer types
"gpt-oss-attention" (kind "attention") and "gpt-oss-moe" (kind "moe") for model_type
``gpt_oss``, and torch validation cases. The torch reference lives in :mod:`.reference`
(needs the ``[torch]`` extra); nothing here imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
