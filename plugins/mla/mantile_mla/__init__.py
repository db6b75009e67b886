"""mantile-mla: Multi-head Latent Attention and DeepSeek-style MoE for Mantile.

Provides, through the ``mantile`` entry point (:mod:`.plugin`), the config reader, layout,
layer types ("mla-attention", "deepseek-mlp", "deepseek-moe") and validation cases for the
model types ``deepseek_v2``, ``deepseek_v3`` and ``kimi_k2``. The torch reference lives in
:mod:`.reference` (needs the ``[torch]`` extra); nothing here imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
