"""torch reference of what Gemma adds (torch imported inside the functions only).

- ``softcap(x, cap)``: ``cap · tanh(x / cap)``, the one soft-capping both attention logits and
  final logits use;
- ``gemma_rmsnorm(x, weight, eps)``: ``x / sqrt(mean(x²) + eps) · (1 + w)`` computed in float32;
- ``rope(x, cos, sin)``: the half-split rotation (``x·cos + rotate_half(x)·sin``);
- ``gemma_attention(...)``: q/k/v projections, optional q/k Gemma RMSNorm (Gemma 3), RoPE,
  GQA attention scaled by ``query_pre_attn_scalar^-1/2`` with optional logit soft-cap over an
  explicit bool mask (mantile-swa-cache's :func:`~mantile_swa_cache.reference.attention`),
  o_proj;
- ``geglu_mlp(x, gate, up, down)``: ``down(gelu_tanh(gate x) · up x)``.
"""

from __future__ import annotations

__all__ = ["softcap", "gemma_rmsnorm", "rope", "rope_cos_sin", "gemma_attention", "geglu_mlp"]


def softcap(x, cap: float | None):
    """cap·tanh(x/cap) (x unchanged when cap is None)."""
    import torch

    return x if cap is None else torch.tanh(x / cap) * cap


def gemma_rmsnorm(x, weight, eps: float = 1e-6):
    """Gemma RMSNorm in float32, ``(1 + w)`` scale, cast back to x's dtype."""
    import torch

    wide = x.float()
    out = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return (out * (1.0 + weight.float())).type_as(x)


def rope_cos_sin(positions, dim: int, theta: float, factor: float = 1.0):
    """cos, sin (len(positions), dim) of default (factor 1) or linear-scaled RoPE, float32."""
    import torch

    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)) / factor
    angles = torch.as_tensor(positions).float()[:, None] * inv[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def rope(x, cos, sin):
    """Half-split RoPE on (B, H, S, D) with cos/sin (S, D)."""
    import torch

    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def gemma_attention(x, wq, wk, wv, wo, *, heads: int, kv_heads: int, head_dim: int, cos, sin, mask,
                    query_scalar: float, logit_softcap: float | None = None, q_norm=None, k_norm=None,
                    eps: float = 1e-6):
    """Gemma self-attention of x (B, S, H) with weights in nn.Linear layout (out, in); ``mask``
    bool (S, S), True where visible. Returns (B, S, H)."""
    from mantile_swa_cache.reference import attention

    batch, seq, _ = x.shape

    def heads_of(w, n):
        return (x @ w.T).view(batch, seq, n, head_dim).transpose(1, 2)

    q, k, v = heads_of(wq, heads), heads_of(wk, kv_heads), heads_of(wv, kv_heads)
    if q_norm is not None:
        q, k = gemma_rmsnorm(q, q_norm, eps), gemma_rmsnorm(k, k_norm, eps)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    out = attention(q, k, v, mask, scale=query_scalar ** -0.5, softcap=logit_softcap)
    return out.transpose(1, 2).reshape(batch, seq, heads * head_dim) @ wo.T


def geglu_mlp(x, gate, up, down):
    """down(gelu_tanh(x·gateᵀ) · x·upᵀ), weights in nn.Linear layout."""
    import torch

    return (torch.nn.functional.gelu(x @ gate.T, approximate="tanh") * (x @ up.T)) @ down.T
