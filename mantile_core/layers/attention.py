"""Built-in grouped-query attention with RoPE and a KV cache.

Counting (per device, T = batch·new_tokens query tokens, hl = heads/tp local query heads,
kvl = local KV heads (replicated when tp > kv_heads), dh = head_dim of q and k, dv = the value
head dim (``v_head_dim``, default dh; MiMo-V2-Flash 128 vs 192), H = hidden):

- projections: 2·T·H·(hl·dh + kvl·dh + kvl·dv) for q/k/v and 2·T·hl·dv·H for o_proj;
- attention: 2·dh + 2·dv FLOPs per (query, key) pair per query head (QKᵀ and PV; 4·dh when
  dv = dh), pairs from the layer's cache policy (causal prefill of S tokens: S(S+1)/2 per
  sequence);
- elementwise: bias adds (one FLOP per element they touch; o_proj bias once), RoPE
  3 FLOPs per rotated element of q and k (x·cos + rotate(x)·sin; rotary_dim 0: no RoPE),
  softmax 5 FLOPs per pair per head (scale, max, subtract, exp, sum) plus 1 per output
  element (normalise), optional per-head q/k RMSNorm 4 per element;
- KV cache: batch·kvl·resident_positions·(dh + dv)·bytes, resident positions from the policy;
- all-reduce after o_proj when tp > 1: T·H·activation bytes.
"""

from __future__ import annotations

import attrs

from ..dtypes import DType, matrices_nbytes
from ..workload import LayerCost, Step
from .base import Layer, local_kv_heads, require_divides

__all__ = ["Attention", "ROPE_FLOPS_PER_ELEMENT", "SOFTMAX_FLOPS_PER_PAIR"]

ROPE_FLOPS_PER_ELEMENT = 3
SOFTMAX_FLOPS_PER_PAIR = 5
QK_NORM_FLOPS_PER_ELEMENT = 4
ROPE_TABLE_DTYPE_BYTES = 4  # cos and sin tables are float32


@attrs.frozen(kw_only=True)
class Attention(Layer):
    """GQA self-attention; ``window`` None is full causal, an int a sliding window that
    includes the query itself; ``chunk`` an int makes it chunked attention (a query sees the keys
    of its own chunk of ``chunk`` positions only, Llama 4's ``attention_chunk_size``; mask
    "chunked"). Subclasses add terms by overriding ``extra_params``, ``extra_flops`` or
    ``extra_kernels``."""

    kind: str = "attention"
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    rotary_dim: int
    weight_dtype: DType
    bias_dtype: DType
    window: int | None = None
    v_head_dim: int | None = None
    q_bias: bool = False
    k_bias: bool = False
    v_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    rope_type: str = "default"
    max_position: int = 4096
    chunk: int | None = None
    kv_scale_bytes: int = 0  # KV-cache quantization scales the checkpoint stores (k_scale, v_scale)

    @property
    def mask(self) -> str:
        if self.chunk is not None:
            return "chunked"
        return "causal" if self.window is None else "sliding"

    @property
    def span(self) -> int:
        """The cache policy's span argument: the chunk, else the window (0 for full causal)."""
        return self.chunk or self.window or 0

    @property
    def width(self) -> int:
        """Attention width heads·head_dim (may differ from hidden)."""
        return self.heads * self.head_dim

    @property
    def value_dim(self) -> int:
        """Value head dim: v_head_dim, or head_dim when not given."""
        return self.v_head_dim or self.head_dim

    def _bias_elements(self, hl, kvl):
        dh, dv = self.head_dim, self.value_dim
        return (self.q_bias * hl * dh + self.k_bias * kvl * dh + self.v_bias * kvl * dv
                + self.o_bias * self.hidden)

    def extra_params(self, heads_local) -> int:
        """Parameters beyond projections, biases and q/k norms (e.g. sinks), for ``heads_local``
        query heads."""
        return 0

    def extra_flops(self, step: Step, heads_local, pairs):
        """Elementwise FLOPs beyond the standard ones (e.g. sink work), per device."""
        return 0

    def extra_kernels(self) -> int:
        return 0

    def _weight_elements(self, hl, kvl):
        dh, dv = self.head_dim, self.value_dim
        return self.hidden * ((hl + kvl) * dh + kvl * dv) + hl * dv * self.hidden

    def _weight_matrices(self, hl, kvl):
        """(count, rows, cols) of q, k, v (out × hidden) and o_proj (hidden × hl·dv)."""
        dh, dv = self.head_dim, self.value_dim
        return [(1, hl * dh, self.hidden), (1, kvl * dh, self.hidden), (1, kvl * dv, self.hidden),
                (1, self.hidden, hl * dv)]

    def _small_elements(self, hl, kvl):
        """Bias, norm and extra parameters (stored in bias_dtype)."""
        return self._bias_elements(hl, kvl) + 2 * self.head_dim * self.qk_norm + self.extra_params(hl)

    def params(self) -> int:
        return self._weight_elements(self.heads, self.kv_heads) + self._small_elements(self.heads, self.kv_heads)

    def weight_bytes(self) -> int:
        return (matrices_nbytes(self.weight_dtype, self._weight_matrices(self.heads, self.kv_heads))
                + self.bias_dtype.nbytes(self._small_elements(self.heads, self.kv_heads)) + self.kv_scale_bytes)

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "num_attention_heads", self.heads)
        if self.kv_heads % tp and tp % self.kv_heads:
            from ..errors import ParallelismError

            raise ParallelismError(
                f"'tp' must divide num_key_value_heads={self.kv_heads} or be a multiple of it (got {tp})"
            )

    def rope_table_bytes(self) -> int:
        """cos and sin tables for max_position positions × rotary_dim/2, float32, with the
        RoPE scaling's attention_factor folded in (shared by all layers in engines)."""
        return 2 * self.max_position * (self.rotary_dim // 2) * ROPE_TABLE_DTYPE_BYTES

    def describe(self) -> dict:
        out = {"mask": self.mask, "window": self.window, "heads": self.heads, "kv_heads": self.kv_heads,
               "head_dim": self.head_dim, "rope_type": self.rope_type}
        if self.chunk is not None:
            out["chunk"] = self.chunk
        if self.v_head_dim is not None and self.v_head_dim != self.head_dim:
            out["v_head_dim"] = self.v_head_dim
        return out

    def cost(self, step: Step) -> LayerCost:
        policy = step.policy(self.mask)
        tp, dh, dv, hidden = step.tp, self.head_dim, self.value_dim, self.hidden
        hl = self.heads // tp
        kvl = local_kv_heads(self.kv_heads, tp)
        tokens = step.tokens
        window = self.span
        pairs = step.batch * policy.attended_pairs(step.new_tokens, step.cached, window)
        resident = policy.resident_positions(step.written, window, step.kv_block)
        read = policy.read_positions(step.written, window, step.kv_block)

        projection = 2 * tokens * hidden * ((hl + kvl) * dh + kvl * dv) + 2 * tokens * hl * dv * hidden
        attention = 2 * (dh + dv) * hl * pairs
        matmul = projection + attention
        elementwise = (
            tokens * self._bias_elements(hl, kvl)
            + ROPE_FLOPS_PER_ELEMENT * tokens * (hl + kvl) * self.rotary_dim
            + SOFTMAX_FLOPS_PER_PAIR * hl * pairs
            + tokens * hl * dv
            + QK_NORM_FLOPS_PER_ELEMENT * tokens * (hl + kvl) * dh * self.qk_norm
            + self.extra_flops(step, hl, pairs)
        )
        kv_row = kvl * (dh + dv)  # K and V elements per position per sequence
        resident_weights = (matrices_nbytes(self.weight_dtype, self._weight_matrices(hl, kvl))
                            + self.bias_dtype.nbytes(self._small_elements(hl, kvl)) + self.kv_scale_bytes)
        act = step.act_dtype
        parallel = tp > 1
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            attention_flops=attention,
            weight_bytes=resident_weights,
            resident_weight_bytes=resident_weights,
            kv_cache_bytes=step.kv_dtype.nbytes(step.batch * kv_row * resident),
            kv_read_bytes=step.kv_dtype.nbytes(step.batch * kv_row * read),
            kv_write_bytes=step.kv_dtype.nbytes(tokens * kv_row),
            activation_bytes=act.nbytes(tokens * (hl * (dh + dv) + kvl * (dh + dv) + hidden)),
            comm_bytes=act.nbytes(tokens * hidden) * parallel,
            collectives=1 * parallel,
            kernels=4 + self.qk_norm + self.extra_kernels() + 1 * parallel,
            gemm_dtype=self.weight_dtype.compute_name,
            attention_sequences=step.batch * kvl,
            # prompt (multi-token) steps only: decode kernels pay per sequence instead
            attention_rows=tokens * hl * (step.new_tokens > 1),
        )
