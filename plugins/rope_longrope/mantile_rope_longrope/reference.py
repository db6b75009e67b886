"""torch reference of LongRoPE application (torch imported inside the functions only).

``longrope_cos_sin(rope, head_dim, max_position_embeddings, positions)``: the table transformers'
Phi-3 rotary embedding uses for a forward over ``positions`` (long factors when
``max(positions) + 1`` exceeds original_max_position_embeddings, short otherwise), angles in
float64, ``cos · attention_factor`` and ``sin · attention_factor`` in float32, duplicated over
the two halves (transformers' ``cat(freqs, freqs)`` layout). ``apply_rotary`` is the half-split
rotation ``x·cos + rotate_half(x)·sin``.
"""

from __future__ import annotations

__all__ = ["longrope_cos_sin", "apply_rotary"]


def longrope_cos_sin(rope, head_dim: int, max_position_embeddings: int, positions):
    import torch

    from .longrope import longrope_inv_freq

    pos = torch.as_tensor(list(positions), dtype=torch.float64)
    result = longrope_inv_freq(rope, head_dim, max_position_embeddings, seq_len=int(pos.max()) + 1)
    angles = pos[:, None] * torch.as_tensor(result.inv_freq, dtype=torch.float64)[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return (emb.cos() * result.attention_factor).float(), (emb.sin() * result.attention_factor).float()


def apply_rotary(x, cos, sin):
    import torch

    half = cos.shape[-1] // 2
    rotated = torch.cat([-x[..., half:2 * half], x[..., :half]], dim=-1)
    out = x[..., :2 * half] * cos + rotated * sin
    return torch.cat([out, x[..., 2 * half:]], dim=-1)
