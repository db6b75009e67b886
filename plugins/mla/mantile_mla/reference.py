"""torch reference of Multi-head Latent Attention (needs the ``[torch]`` extra; only validation
code imports this module, never the estimating path).

:class:`MLAReference` holds the parameters of transformers' ``DeepseekV3Attention`` under the
same names (``q_a_proj``, ``q_a_layernorm``, ``q_b_proj`` or ``q_proj``, ``kv_a_proj_with_mqa``,
``kv_a_layernorm``, ``kv_b_proj``, ``o_proj``), so ``load_state_dict`` takes its state dict.
Forward, for hidden states (batch, seq, hidden) at positions start..start+seq-1:

1. q = q_b(norm(q_a(x))) (or q_proj(x)), split per head into q_nope (dn) and q_pe (dr);
   [c | k_pe] = kv_a_proj_with_mqa(x), c = kv_a_layernorm(c) (the latent, r values);
2. RoPE on q_pe and k_pe only (DeepSeek's interleaved pairs: de-interleaved, then the
   half-split rotation of mantile-rope-yarn's reference), inv_freq and attention_factor from
   :func:`mantile_core.rope_scaling`; softmax scale dqk^-1/2 · m(factor, mscale_all_dim)²;
3. the latent [c | k_pe] of the chunk is appended to the :class:`LatentCache` (r + dr values
   per position, one "head"), if any;
4. attention, one of two algebraically equal forms from the same weights:
   - ``expanded`` (prefill): kv_b_proj expands every cached latent into per-head K_nope and V;
     K = [K_nope | k_pe]; softmax(q·Kᵀ·scale + mask)·V;
   - ``absorbed`` (decode): W_UK, W_UV = kv_b_proj.weight viewed (heads, dn + dv, r);
     q_lat = q_nope·W_UK (heads × r), scores = q_lat·cᵀ + q_pe·k_peᵀ, o_lat = P·c,
     out = o_lat·W_UVᵀ; the cache is never expanded;
   ``mode="auto"`` takes absorbed for one new token per sequence, expanded otherwise (as the
   estimator counts). The exact boolean mask applied is kept in ``last_mask``;
5. o_proj.

:meth:`MLAReference.shard` cuts rank r of tp: heads/tp heads of q_b/q_proj, kv_b_proj and the
o_proj input; q_a, kv_a and both norms replicated, so every rank computes and caches the whole
latent (what engines do); the o_proj bias on rank 0.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

__all__ = ["MLAReference", "DSAReference", "Indexer", "LatentCache", "RMSNorm", "softmax_scale", "from_layer"]


class RMSNorm(nn.Module):
    """``weight · x / sqrt(mean(x²) + eps)``, computed in float32 as transformers does."""

    def __init__(self, width: int, eps: float = 1e-6, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width, dtype=dtype))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class LatentCache:
    """The MLA cache of one layer: (batch, positions, r + dr), the normalised latent c then
    the rotated k_pe of every written position, and for a DSA layer with an indexer its keys
    (batch, positions, di); ``nbytes`` is what it holds."""

    def __init__(self, batch: int, width: int, dtype: torch.dtype = torch.float32, index_width: int = 0) -> None:
        self.latent = torch.zeros(batch, 0, width, dtype=dtype)
        self.index_keys = torch.zeros(batch, 0, index_width, dtype=dtype) if index_width else None

    def update(self, latent: torch.Tensor) -> torch.Tensor:
        self.latent = torch.cat([self.latent, latent.to(self.latent.dtype)], dim=1)
        return self.latent

    def update_index(self, keys: torch.Tensor) -> torch.Tensor:
        self.index_keys = torch.cat([self.index_keys, keys.to(self.index_keys.dtype)], dim=1)
        return self.index_keys

    @property
    def length(self) -> int:
        return self.latent.shape[1]

    @property
    def nbytes(self) -> int:
        return self.latent.nbytes + (self.index_keys.nbytes if self.index_keys is not None else 0)


def softmax_scale(rope: Mapping, qk_head_dim: int) -> float:
    """dqk^-1/2, times m(factor, mscale_all_dim)² for a scaled rope with mscale_all_dim
    (m(s, k) = 0.1·k·ln(s) + 1 for s > 1), as DeepSeek and transformers apply it."""
    scale = qk_head_dim ** -0.5
    if rope.get("rope_type", "default") != "default" and rope.get("mscale_all_dim"):
        factor = float(rope["factor"])
        m = 0.1 * float(rope["mscale_all_dim"]) * math.log(factor) + 1.0 if factor > 1 else 1.0
        scale *= m * m
    return scale


def _deinterleave(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (x0, x2, ..., x1, x3, ...): DeepSeek's interleaved rope pairs
    laid out for the half-split rotation."""
    return torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)


class MLAReference(nn.Module):
    """MLA of ``heads`` heads; ``q_lora_rank`` None for a plain q_proj (DeepSeek-V2-Lite)."""

    def __init__(self, hidden: int, heads: int, q_lora_rank: int | None, kv_lora_rank: int, qk_nope_head_dim: int,
                 qk_rope_head_dim: int, v_head_dim: int, *, rope: Mapping | None = None, max_position: int = 4096,
                 attention_bias: bool = False, o_bias: bool = True, rope_interleave: bool = True,
                 eps: float = 1e-6, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.q_lora_rank, self.kv_lora_rank = q_lora_rank, kv_lora_rank
        self.dn, self.dr, self.dv = qk_nope_head_dim, qk_rope_head_dim, v_head_dim
        self.rope = dict(rope or {"rope_type": "default", "rope_theta": 10000.0})
        self.max_position = max_position
        self.rope_interleave = rope_interleave
        self.attention_bias = attention_bias
        dqk = qk_nope_head_dim + qk_rope_head_dim
        if q_lora_rank:
            self.q_a_proj = nn.Linear(hidden, q_lora_rank, bias=attention_bias, dtype=dtype)
            self.q_a_layernorm = RMSNorm(q_lora_rank, eps, dtype)
            self.q_b_proj = nn.Linear(q_lora_rank, heads * dqk, bias=False, dtype=dtype)
        else:
            self.q_proj = nn.Linear(hidden, heads * dqk, bias=False, dtype=dtype)
        self.kv_a_proj_with_mqa = nn.Linear(hidden, kv_lora_rank + qk_rope_head_dim, bias=attention_bias, dtype=dtype)
        self.kv_a_layernorm = RMSNorm(kv_lora_rank, eps, dtype)
        self.kv_b_proj = nn.Linear(kv_lora_rank, heads * (qk_nope_head_dim + v_head_dim), bias=False, dtype=dtype)
        self.o_proj = nn.Linear(heads * v_head_dim, hidden, bias=attention_bias and o_bias, dtype=dtype)
        self.scaling = softmax_scale(self.rope, dqk)
        self.last_mask: torch.Tensor | None = None
        self.last_mode: str | None = None
        self._rope_cache = None

    # --- pieces -------------------------------------------------------------------------
    def rope_tables(self, positions: torch.Tensor):
        """cos, sin (len(positions), dr/2) through the registered rope_type, float32."""
        from mantile_core import rope_scaling
        from mantile_rope_yarn.reference import rope_cos_sin

        if self._rope_cache is None:
            self._rope_cache = rope_scaling(self.rope, self.dr, self.max_position)
        return rope_cos_sin(self._rope_cache.inv_freq, self._rope_cache.attention_factor, positions, torch.float32)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        from mantile_rope_yarn.reference import apply_rotary

        return apply_rotary(_deinterleave(x) if self.rope_interleave else x, cos, sin)

    def new_cache(self, batch: int, dtype: torch.dtype | None = None) -> LatentCache:
        return LatentCache(batch, self.kv_lora_rank + self.dr, dtype or self.kv_b_proj.weight.dtype)

    def _query(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(q, the normalised q latent that also feeds a DSA indexer; x without q LoRA)."""
        if self.q_lora_rank:
            resid = self.q_a_layernorm(self.q_a_proj(x))
            return self.q_b_proj(resid), resid
        return self.q_proj(x), x

    def select(self, x, q_resid, positions, cos, sin, cache, mask):
        """Keys each query may attend: ``mask`` (causal) for MLA; DSA narrows it to the top-k."""
        return mask, None

    # --- forward ------------------------------------------------------------------------
    def forward(self, hidden_states: torch.Tensor, start: int = 0, cache: LatentCache | None = None,
                mode: str = "auto") -> torch.Tensor:
        """(batch, seq, hidden) at positions start..start+seq-1 -> (batch, seq, hidden)."""
        batch, seq, _ = hidden_states.shape
        positions = torch.arange(start, start + seq)
        q, q_resid = self._query(hidden_states)
        q = q.view(batch, seq, self.heads, self.dn + self.dr).transpose(1, 2)
        q_nope, q_pe = q[..., :self.dn], q[..., self.dn:]
        compressed = self.kv_a_proj_with_mqa(hidden_states)
        c = self.kv_a_layernorm(compressed[..., :self.kv_lora_rank])
        k_pe = compressed[..., self.kv_lora_rank:]
        cos, sin = self.rope_tables(positions)
        q_pe = self._rotate(q_pe, cos, sin)
        k_pe = self._rotate(k_pe[:, None], cos, sin)[:, 0]
        latent = torch.cat([c, k_pe], dim=-1)
        if cache is not None:
            if cache.length != start:
                raise ValueError(f"the cache holds {cache.length} positions; the chunk starts at {start}")
            latent = cache.update(latent).to(q.dtype)
        key_pos = torch.arange(latent.shape[1])
        mask = key_pos[None, :] <= positions[:, None]
        mask, indices = self.select(hidden_states, q_resid, positions, cos, sin, cache, mask)
        self.last_mask = mask
        if mode == "auto":
            mode = "absorbed" if seq == 1 or indices is not None else "expanded"
        self.last_mode = mode
        c_all, k_pe_all = latent[..., :self.kv_lora_rank], latent[..., self.kv_lora_rank:]
        if indices is not None and seq == 1:
            out = self._gathered(q_nope, q_pe, c_all, k_pe_all, indices)
        elif mode == "expanded":
            out = self._expanded(q_nope, q_pe, c_all, k_pe_all, mask)
        elif mode == "absorbed":
            out = self._absorbed(q_nope, q_pe, c_all, k_pe_all, mask)
        else:
            raise ValueError(f"mode must be 'auto', 'expanded' or 'absorbed' (got {mode!r})")
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, self.heads * self.dv))

    def _softmax(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores.float(), dim=-1).to(scores.dtype)

    def _expanded(self, q_nope, q_pe, c, k_pe, mask):
        batch, keys = c.shape[0], c.shape[1]
        kv = self.kv_b_proj(c).view(batch, keys, self.heads, self.dn + self.dv).transpose(1, 2)
        k_nope, v = kv[..., :self.dn], kv[..., self.dn:]
        k = torch.cat([k_nope, k_pe[:, None].expand(-1, self.heads, -1, -1)], dim=-1)
        q = torch.cat([q_nope, q_pe], dim=-1)
        probs = self._softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scaling, mask)
        return torch.matmul(probs, v)

    def _absorbed(self, q_nope, q_pe, c, k_pe, mask):
        w = self.kv_b_proj.weight.view(self.heads, self.dn + self.dv, self.kv_lora_rank)
        w_uk, w_uv = w[:, :self.dn], w[:, self.dn:]
        q_lat = torch.einsum("bhsd,hdr->bhsr", q_nope, w_uk)
        scores = torch.matmul(q_lat, c[:, None].transpose(-1, -2)) + torch.matmul(q_pe, k_pe[:, None].transpose(-1, -2))
        probs = self._softmax(scores * self.scaling, mask)
        o_lat = torch.matmul(probs, c[:, None])
        return torch.einsum("bhsr,hvr->bhsv", o_lat, w_uv)

    def _gathered(self, q_nope, q_pe, c, k_pe, indices):
        """Absorbed attention over the gathered latents of ``indices`` (batch, seq, k): what a
        sparse decode kernel reads and computes (every gathered key is causal in decode)."""
        w = self.kv_b_proj.weight.view(self.heads, self.dn + self.dv, self.kv_lora_rank)
        w_uk, w_uv = w[:, :self.dn], w[:, self.dn:]
        batch = c.shape[0]
        rows = torch.arange(batch)[:, None, None]
        c_sel, pe_sel = c[rows, indices], k_pe[rows, indices]  # (batch, seq, k, width)
        q_lat = torch.einsum("bhsd,hdr->bhsr", q_nope, w_uk)
        scores = torch.einsum("bhsr,bskr->bhsk", q_lat, c_sel) + torch.einsum("bhsd,bskd->bhsk", q_pe, pe_sel)
        probs = torch.softmax((scores * self.scaling).float(), dim=-1).to(scores.dtype)
        o_lat = torch.einsum("bhsk,bskr->bhsr", probs, c_sel)
        return torch.einsum("bhsr,hvr->bhsv", o_lat, w_uv)

    # --- tensor parallelism ---------------------------------------------------------------
    def shard(self, rank: int, tp: int) -> "MLAReference":
        """Rank ``rank``'s module under tp: heads/tp heads (q_b/q_proj rows, kv_b rows, o_proj
        input columns); q_a, kv_a, norms replicated; the o_proj bias on rank 0."""
        if self.heads % tp:
            raise ValueError(f"tp={tp} must divide heads={self.heads}")
        hl = self.heads // tp
        dtype = self.kv_b_proj.weight.dtype
        out = MLAReference(self.hidden, hl, self.q_lora_rank, self.kv_lora_rank, self.dn, self.dr, self.dv,
                           rope=self.rope, max_position=self.max_position, attention_bias=self.attention_bias,
                           o_bias=rank == 0, rope_interleave=self.rope_interleave, dtype=dtype)
        q_rows = slice(rank * hl * (self.dn + self.dr), (rank + 1) * hl * (self.dn + self.dr))
        kv_rows = slice(rank * hl * (self.dn + self.dv), (rank + 1) * hl * (self.dn + self.dv))
        o_cols = slice(rank * hl * self.dv, (rank + 1) * hl * self.dv)
        own = dict(self.named_parameters())
        with torch.no_grad():
            for name, param in out.named_parameters():
                source = own[name]
                if name in ("q_b_proj.weight", "q_proj.weight"):
                    source = source[q_rows]
                elif name == "kv_b_proj.weight":
                    source = source[kv_rows]
                elif name == "o_proj.weight":
                    source = source[:, o_cols]
                param.copy_(source)
        return out


class Indexer(nn.Module):
    """DSA's lightning indexer, transformers' names: ``wq_b`` (nh·di × r_q), ``wk`` (di × H),
    ``k_norm`` (LayerNorm di), ``weights_proj`` (nh × H). RoPE on the first dr dims of q and
    k (half-split for DeepSeek-V3.2, interleaved for GLM-5)."""

    def __init__(self, hidden: int, q_lora_rank: int, heads: int, head_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.wq_b = nn.Linear(q_lora_rank, heads * head_dim, bias=False, dtype=dtype)
        self.wk = nn.Linear(hidden, head_dim, bias=False, dtype=dtype)
        self.k_norm = nn.LayerNorm(head_dim, eps=1e-6, dtype=dtype)
        self.weights_proj = nn.Linear(hidden, heads, bias=False, dtype=dtype)


class DSAReference(MLAReference):
    """MLA with DeepSeek Sparse Attention: the indexer scores every causal key
    (Σ_h w_h · relu(scale · q_h·k)), each query keeps the top ``index_topk`` and attends them,
    absorbed. ``indexer`` False: a GLM "shared" layer, given ``shared_indices`` instead."""

    def __init__(self, *args, index_n_heads: int, index_head_dim: int, index_topk: int, indexer: bool = True,
                 indexer_interleave: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        dtype = self.kv_b_proj.weight.dtype
        self.index_topk = index_topk
        self.index_head_dim = index_head_dim
        self.indexer_interleave = indexer_interleave
        self.indexer = Indexer(self.hidden, self.q_lora_rank or self.hidden, index_n_heads, index_head_dim, dtype) \
            if indexer else None
        self.shared_indices: torch.Tensor | None = None
        self.last_indices: torch.Tensor | None = None

    def new_cache(self, batch: int, dtype: torch.dtype | None = None) -> LatentCache:
        width = self.index_head_dim if self.indexer is not None else 0
        return LatentCache(batch, self.kv_lora_rank + self.dr, dtype or self.kv_b_proj.weight.dtype, width)

    def _index_rotate(self, x, cos, sin):
        """Rotate the first dr dims of (batch, seq, heads, di)."""
        from mantile_rope_yarn.reference import apply_rotary

        rot = x[..., :self.dr].transpose(1, 2)
        rot = apply_rotary(_deinterleave(rot) if self.indexer_interleave else rot, cos, sin).transpose(1, 2)
        return torch.cat([rot, x[..., self.dr:]], dim=-1)

    def index_scores(self, x, q_resid, cos, sin, cache):
        """(batch, seq, keys) indexer scores of the chunk's queries over every written key."""
        ix = self.indexer
        batch, seq, _ = x.shape
        q = self._index_rotate(ix.wq_b(q_resid).view(batch, seq, ix.heads, ix.head_dim), cos, sin)
        k = self._index_rotate(ix.k_norm(ix.wk(x))[:, :, None], cos, sin)[:, :, 0]
        if cache is not None:
            k = cache.update_index(k).to(q.dtype)
        scores = torch.relu(torch.matmul(q.float(), k.float().transpose(-1, -2)[:, None]) * ix.head_dim ** -0.5)
        weights = ix.weights_proj(x).float() * ix.heads ** -0.5  # (batch, seq, heads)
        return torch.matmul(weights[..., None, :], scores).squeeze(-2)

    def select(self, x, q_resid, positions, cos, sin, cache, mask):
        if self.indexer is None:
            indices = self.shared_indices
        else:
            scores = self.index_scores(x, q_resid, cos, sin, cache).masked_fill(~mask, float("-inf"))
            indices = scores.topk(min(self.index_topk, scores.shape[-1]), dim=-1).indices
        self.last_indices = indices
        chosen = torch.zeros(*indices.shape[:2], mask.shape[-1], dtype=torch.bool).scatter(-1, indices, True)
        return chosen & mask, indices  # (batch, seq, keys): causal and selected

    def _softmax(self, scores, mask):
        return super()._softmax(scores, mask[:, None] if mask.dim() == 3 else mask)


def from_layer(layer, *, heads: int | None = None, rope: Mapping | None = None, dtype: torch.dtype = torch.float32,
               rope_interleave: bool = True, indexer_interleave: bool = False) -> MLAReference:
    """A reference module with the shapes of an estimator :class:`~mantile_mla.attention.MLAttention`
    or :class:`~mantile_mla.dsa.DSAttention` (``heads`` overrides the head count: rank 0 of
    tp = layer.heads/heads, built directly; a DSA indexer is replicated, whole)."""
    args = (layer.hidden, heads or layer.heads, layer.q_lora_rank, layer.kv_lora_rank, layer.qk_nope_head_dim,
            layer.qk_rope_head_dim, layer.v_head_dim)
    kwargs = dict(rope=rope, max_position=layer.max_position, attention_bias=layer.attention_bias,
                  rope_interleave=rope_interleave, dtype=dtype)
    if hasattr(layer, "index_topk"):
        return DSAReference(*args, **kwargs, index_n_heads=layer.index_n_heads, index_head_dim=layer.index_head_dim,
                            index_topk=layer.index_topk, indexer=layer.indexer,
                            indexer_interleave=indexer_interleave)
    return MLAReference(*args, **kwargs)
