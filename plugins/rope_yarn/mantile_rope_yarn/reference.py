"""torch reference of RoPE application (any rope_type: it starts from inv_freq and
attention_factor). Imports torch inside the functions only, so importing the plugin never does.

- ``rope_cos_sin``: angles ``positions[:, None] · inv_freq[None, :]`` computed in float64, then
  ``cos · attention_factor`` and ``sin · attention_factor`` rounded to ``dtype``. (transformers
  computes the angles in float32, so its tables differ from these by about ``position · 2^-24``
  radians; this reference is the more exact of the two.)
- ``apply_rotary``: the half-split ("NeoX") rotation transformers' GPT-OSS attention applies:
  with ``a, b`` the first and second half of the rotated dims,
  ``out = cat(a·cos - b·sin, b·cos + a·sin)``; dims beyond ``2·cos.shape[-1]`` (partial rotary)
  pass through unchanged.

Cost of the application, as the core's attention layer counts it: 3 FLOPs per rotated element
(two multiplies and an add) for every q and k head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["rope_cos_sin", "apply_rotary"]


def rope_cos_sin(inv_freq: Any, attention_factor: float, positions: Sequence[int] | Any,
                 dtype: "torch.dtype | None" = None) -> "tuple[torch.Tensor, torch.Tensor]":
    """cos and sin tables, each (len(positions), rotary_dim/2) in ``dtype`` (default
    torch.float32), with ``attention_factor`` multiplied in.

    ``inv_freq``: numpy array or tensor (radians per position); ``positions``: a 1-D sequence,
    range, numpy array or tensor of integer positions.
    """
    import numpy
    import torch

    if dtype is None:
        dtype = torch.float32
    if isinstance(inv_freq, torch.Tensor):
        freq = inv_freq.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
    else:
        freq = torch.as_tensor(numpy.asarray(inv_freq, dtype=numpy.float64).reshape(-1))
    if isinstance(positions, torch.Tensor):
        pos = positions.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
    else:
        pos = torch.as_tensor(numpy.asarray(list(positions) if isinstance(positions, range) else positions,
                                            dtype=numpy.float64).reshape(-1))
    angles = pos[:, None] * freq[None, :]
    scale = float(attention_factor)
    return (torch.cos(angles) * scale).to(dtype), (torch.sin(angles) * scale).to(dtype)


def apply_rotary(x: "torch.Tensor", cos: "torch.Tensor", sin: "torch.Tensor") -> "torch.Tensor":
    """Rotate ``x`` of shape (batch, heads, seq, head_dim) by per-position ``cos`` / ``sin`` of
    shape (seq, rotary_dim/2) (or (batch, seq, rotary_dim/2)), half-split as transformers'
    GPT-OSS does: ``first·cos - second·sin``, ``second·cos + first·sin``. Computed in x's dtype
    (cos and sin are cast to it, as transformers does); returns a new tensor of x's shape."""
    import torch

    half = cos.shape[-1]
    rotated = 2 * half
    if x.shape[-1] < rotated:
        raise ValueError(f"x has head_dim {x.shape[-1]} < rotary_dim {rotated} of the cos/sin tables")
    if cos.shape != sin.shape:
        raise ValueError(f"cos {tuple(cos.shape)} and sin {tuple(sin.shape)} differ in shape")
    if cos.dim() == 2:  # (seq, half) -> broadcast over batch and heads
        cos, sin = cos[None, None], sin[None, None]
    elif cos.dim() == 3:  # (batch, seq, half) -> broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    cos = cos.to(device=x.device, dtype=x.dtype)
    sin = sin.to(device=x.device, dtype=x.dtype)
    first, second, rest = x[..., :half], x[..., half:rotated], x[..., rotated:]
    out = [first * cos - second * sin, second * cos + first * sin]
    if rest.shape[-1]:
        out.append(rest)
    return torch.cat(out, dim=-1)
