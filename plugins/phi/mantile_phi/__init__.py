"""mantile-phi: Microsoft's Phi-3 / Phi-3.5 decoders (``phi3``) and Phi-3.5-MoE (``phimoe``,
:mod:`mantile_phi.phimoe`: LayerNorm, attention and LM-head biases, sparsemixer top-2 routing)
for the Mantile estimator.

Phi-3 is the standard decoder with two fused projections that change no count: ``qkv_proj``
(hidden → (heads + 2·kv_heads)·head_dim, the same parameters and FLOPs as separate q/k/v) and
``gate_up_proj`` (hidden → 2·intermediate, the same as separate gate and up). Its
``sliding_window`` applies to every layer (transformers 5.24 builds a sliding mask for the
whole model when it is set: Phi-3-mini-4k's 2047), served by mantile-swa-cache; its
``longrope`` RoPE (the 128k variants) comes from mantile-rope-longrope.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
