"""mantile-gemma: Google's Gemma 2, 3 and 4 decoders for the Mantile estimator.

What the family adds over the core's standard stack, each in one module:
:mod:`.softcap` (tanh logit soft-capping, shared by attention logits and the final logits),
:mod:`.layers` (scaled embedding, Gemma RMSNorm ``(1 + w)``, attention with
``query_pre_attn_scalar``, soft-capping and per-layer local/global RoPE, GeGLU MLP, soft-capped
LM head), :mod:`.layout` (four norms per block), :mod:`.config` (reading gemma2 / gemma3 /
gemma3_text / gemma4 configs, transformers' defaults for absent keys). Sliding layers need a
``sliding`` cache policy (mantile-swa-cache). The torch reference is in :mod:`.reference`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
