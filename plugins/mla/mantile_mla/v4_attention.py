"""DeepSeek-V4 attention (transformers' ``DeepseekV4Attention``): shared-KV MQA over a sliding
window plus, on compressed layers, entries that pool every m source tokens.

Shapes: H hidden, h heads (hl = h/tp per device), D = head_dim (K = V: one 512-wide vector per
cached entry, shared by all heads), dr = the rotated tail of each head (qk_rope_head_dim),
r_q = q_lora_rank, g = o_groups (gl = g/tp), ro = o_lora_rank, W = sliding_window,
m = the layer's compression rate (0: sliding only; CSA 4; HCA 128), c = 2 on CSA (two
overlapping series) else 1, nh / di / K = index_n_heads / index_head_dim / index_topk.

**Parameters** (transformers' names; storage as the checkpoint, see ``v4_layers``):

- ``q_a_proj`` r_q × H, ``q_a_norm`` r_q, ``q_b_proj`` h·D × r_q (``q_b_norm`` has no weight),
  ``kv_proj`` D × H, ``kv_norm`` D, ``o_a_proj`` g·ro × h·D/g (g diagonal blocks stored as one
  matrix), ``o_b_proj`` H × g·ro, ``sinks`` h;
- compressor (m > 0): ``kv_proj`` and ``gate_proj`` c·D × H, ``position_bias`` m × c·D,
  ``kv_norm`` D;
- indexer (CSA): ``kv_proj`` and ``gate_proj`` 2·di × H, ``position_bias`` m × 2·di,
  ``kv_norm`` di, ``q_b_proj`` nh·di × r_q, ``scorer.weights_proj`` nh × H.

So per layer: H·r_q + r_q + r_q·h·D + H·D + D + ro·h·D + g·ro·H + h, + 2·c·D·H + m·c·D + D with
a compressor, + 4·di·H + 2·m·di + di + r_q·nh·di + nh·H with an indexer.

**Pairs** (per query head, per sequence; a chunk of S queries after C cached, positions p =
C .. C+S−1): the window's Σ min(p+1, W) from the sliding cache policy (mantile-swa-cache),
plus compressed entries: entry w is visible to query p when w < ⌊(p+1)/m⌋, so HCA attends
Σ ⌊(p+1)/m⌋ = F(C+S) − F(C) with F(n) = Σ_{v=1}^{n} ⌊v/m⌋ = m·q(q−1)/2 + q·(n − q·m + 1),
q = ⌊n/m⌋; CSA attends the indexer's top K of them, Σ min(⌊(p+1)/m⌋, K) = G(C+S) − G(C) with
G(n) = F(min(n, K·m)) + K·relu(n − K·m); the indexer scores all visible ones (F).

**FLOPs** per device, T = batch·S tokens, P attended pairs, Pi indexer-scored pairs, N entries
the step completes, batch·(⌊(C+S)/m⌋ − ⌊C/m⌋):

- GEMMs: 2·T·H·r_q + 2·T·r_q·hl·D (q), 2·T·H·D (kv), 2·T·hl·D·ro (o_a: gl blocks of hl·D/gl →
  ro), 2·T·gl·ro·H (o_b); compressor 4·c·T·H·D (kv and gate); indexer 8·T·H·di + 2·T·r_q·nh·di
  + 2·T·H·nh;
- attention: 4·D·hl·P (QKᵀ and PV over the same D-wide entries); indexer scores
  2·di·nh·Pi + 2·nh·Pi (q·k, then the weighted head sum);
- elementwise: norms 4·T·(r_q + hl·D + D), RoPE 3·T·(2·hl + 1)·dr (q and kv, and the inverse
  rotation of the output's rope slice), softmax 5·hl·P + T·hl·D, sinks 4·T·hl; per completed
  entry 8·c·m·D (bias add, softmax, weighting, sum over the c·m slots) + 4·D (norm) + 3·dr
  (RoPE), and for the indexer 16·m·di + 4·di + 3·dr; indexer queries 3·T·nh·dr (RoPE),
  2·nh·Pi + Pi (relu and scale, top-k) + T·nh (weight scale).

**Cache** (the KV dtype, replicated on every tp rank: one KV head), per sequence after t
tokens: the window ring (the sliding policy's resident positions, W with a ring) · D +
⌊t/m⌋ compressed entries · D, + ⌊t/m⌋ · di indexer keys on CSA layers. A step reads the
window's keys, every compressed entry (HCA) or min(⌊t/m⌋, K) of them (CSA) and every indexer
key. The compressor also keeps a fixed-size state per sequence in the cache (transformers'
``buffer_kv`` / ``buffer_gate`` / ``overlap_*``, the DeepSeek reference's ``kv_state`` /
``score_state``): the (kv, gate) rows of the windows being pooled, 2·(c·m)·(c·D) values
(+ 2·(2m)·(2·di) for the indexer), counted in ``kv_cache_bytes`` at the KV dtype.

Tensor parallelism: q_b_proj, o_a_proj (by groups) and o_b_proj (by its input) shard; q_a,
kv_proj, the compressor, the indexer and the cache are replicated; an all-reduce of T·H after
o_b_proj.
"""

from __future__ import annotations

import attrs
from mantile_core.dtypes import DType, matrices_nbytes
from mantile_core.layers import Layer, require_divides
from mantile_core.layers.attention import ROPE_FLOPS_PER_ELEMENT, ROPE_TABLE_DTYPE_BYTES, SOFTMAX_FLOPS_PER_PAIR
from mantile_core.layers.simple import NORM_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step, minimum
from mantile_swa_cache.counts import relu

from .dsa import INDEX_FLOPS_PER_HEAD_PAIR, TOPK_FLOPS_PER_KEY

__all__ = ["V4Attention", "compressed_prefix", "compressed_pairs", "topk_compressed_pairs",
           "SINK_FLOPS_PER_QUERY_HEAD", "POOL_FLOPS_PER_SLOT"]

SINK_FLOPS_PER_QUERY_HEAD = 4
"""The sink logit of each (query, head) row: compare with the max, subtract, exp, add to the
denominator (as GPT-OSS's sinks are counted)."""

POOL_FLOPS_PER_SLOT = 8
"""Per pooled slot element: gate + position bias (1), softmax over the slots (5), weight the
kv (1), sum (1)."""


def compressed_prefix(n, m):
    """F(n) = Σ_{v=1}^{n} ⌊v/m⌋ = m·q(q−1)/2 + q·(n − q·m + 1), q = ⌊n/m⌋: the compressed
    entries the first n queries see (query at position v−1 sees ⌊v/m⌋)."""
    q = n // m
    return m * q * (q - 1) // 2 + q * (n - q * m + 1)


def compressed_pairs(new, cached, m):
    """Σ_{p=cached}^{cached+new−1} ⌊(p+1)/m⌋: (query, entry) pairs over every visible entry."""
    return compressed_prefix(cached + new, m) - compressed_prefix(cached, m)


def _topk_prefix(n, m, k):
    cap = k * m
    return compressed_prefix(minimum(n, cap), m) + k * relu(n - cap)


def topk_compressed_pairs(new, cached, m, k):
    """Σ_{p=cached}^{cached+new−1} min(⌊(p+1)/m⌋, k): the top-k selection's pairs."""
    return _topk_prefix(cached + new, m, k) - _topk_prefix(cached, m, k)


@attrs.frozen(kw_only=True)
class V4Attention(Layer):
    """One DeepSeek-V4 attention layer; ``ratio`` 0 (sliding only), else its compressor's m,
    with an indexer when ``indexer`` (CSA). ``weight_dtype`` stores the q, kv and o linears and
    the indexer's q_b_proj; ``plain_dtype`` the compressor / indexer kv and gate projections
    and weights_proj; ``small_dtype`` norms, sinks and position biases."""

    kind: str = "attention"
    hidden: int
    heads: int
    head_dim: int
    rope_dim: int
    q_lora_rank: int
    o_groups: int
    o_lora_rank: int
    window: int
    ratio: int = 0
    indexer: bool = False
    index_n_heads: int = 0
    index_head_dim: int = 0
    index_topk: int = 0
    weight_dtype: DType
    plain_dtype: DType
    small_dtype: DType
    layer_type: str = "sliding_attention"
    rope_type: str = "default"
    max_position: int = 4096

    @property
    def mask(self) -> str:
        return "sliding"

    @property
    def span(self) -> int:
        return self.window

    @property
    def series(self) -> int:
        """c: 2 overlapping series on CSA (an indexer layer), else 1."""
        return 2 if self.indexer else 1

    # --- parameters ------------------------------------------------------------------
    def _matrices(self, hl, gl):
        """(count, rows, cols) of the quantized linears held with hl heads and gl groups."""
        d, h = self.head_dim, self.hidden
        out = [(1, self.q_lora_rank, h), (1, hl * d, self.q_lora_rank), (1, d, h),
               (1, gl * self.o_lora_rank, self.heads * d // self.o_groups), (1, h, gl * self.o_lora_rank)]
        if self.indexer:
            out.append((1, self.index_n_heads * self.index_head_dim, self.q_lora_rank))
        return out

    def _plain(self) -> int:
        """Compressor and indexer kv / gate projections, weights_proj (replicated)."""
        if not self.ratio:
            return 0
        out = 2 * self.series * self.head_dim * self.hidden
        if self.indexer:
            out += 4 * self.index_head_dim * self.hidden + self.index_n_heads * self.hidden
        return out

    def _small(self, hl) -> int:
        """Norm weights, sinks (hl) and position biases."""
        d = self.head_dim
        out = self.q_lora_rank + d + hl
        if self.ratio:
            out += self.ratio * self.series * d + d
        if self.indexer:
            out += 2 * self.ratio * self.index_head_dim + self.index_head_dim
        return out

    def params(self) -> int:
        return (sum(c * a * b for c, a, b in self._matrices(self.heads, self.o_groups)) + self._plain()
                + self._small(self.heads))

    def _weight_bytes(self, hl, gl):
        return (matrices_nbytes(self.weight_dtype, self._matrices(hl, gl)) + self.plain_dtype.nbytes(self._plain())
                + self.small_dtype.nbytes(self._small(hl)))

    def weight_bytes(self) -> int:
        return self._weight_bytes(self.heads, self.o_groups)

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "num_attention_heads", self.heads)
        require_divides("tp", tp, "o_groups", self.o_groups)

    def rope_table_bytes(self) -> int:
        """cos and sin for max_position positions × rope_dim/2, float32."""
        return 2 * self.max_position * (self.rope_dim // 2) * ROPE_TABLE_DTYPE_BYTES

    def describe(self) -> dict:
        out = {"mask": self.mask, "window": self.window, "heads": self.heads, "kv_heads": 1,
               "head_dim": self.head_dim, "rope_dim": self.rope_dim, "layer_type": self.layer_type,
               "kv_cache": "shared-kv window" + (" + compressed" if self.ratio else ""),
               "compress_ratio": self.ratio, "kv_values_per_entry": self.head_dim,
               "index_values_per_entry": self.index_head_dim if self.indexer else 0,
               "kv_replicated_across_tp": True, "sinks": self.heads, "o_groups": self.o_groups,
               "o_lora_rank": self.o_lora_rank, "rope_type": self.rope_type}
        if self.indexer:
            out |= {"sparse": "top-k compressed", "index_topk": self.index_topk,
                    "index_n_heads": self.index_n_heads, "index_head_dim": self.index_head_dim}
        return out

    def cache_words(self) -> str:
        """What the layer keeps beyond its window, for estimate's KV line ("" when nothing)."""
        if not self.ratio:
            return ""
        index = f" + {self.index_head_dim} indexer values" if self.indexer else ""
        name = "CSA" if self.indexer else "HCA"
        return (f"{name} layers also keep one compressed {self.head_dim}-value entry{index} per {self.ratio} tokens "
                f"and the compressor's pending rows")

    # --- counts ----------------------------------------------------------------------
    def window_pairs(self, step: Step):
        """Window (query, key) pairs of the step over the batch (the sliding policy's)."""
        return step.batch * step.policy(self.mask).attended_pairs(step.new_tokens, step.cached, self.window)

    def compressed_pairs(self, step: Step):
        """Compressed (query, entry) pairs attended over the batch: all visible (HCA) or the
        top index_topk (CSA); 0 on a sliding-only layer."""
        if not self.ratio:
            return 0
        if self.indexer:
            return step.batch * topk_compressed_pairs(step.new_tokens, step.cached, self.ratio, self.index_topk)
        return step.batch * compressed_pairs(step.new_tokens, step.cached, self.ratio)

    def scored_pairs(self, step: Step):
        """(query, entry) pairs the indexer scores over the batch: every visible entry."""
        if not self.indexer:
            return 0
        return step.batch * compressed_pairs(step.new_tokens, step.cached, self.ratio)

    def attended_pairs(self, step: Step):
        """Window pairs + compressed pairs, per query head over the batch."""
        return self.window_pairs(step) + self.compressed_pairs(step)

    def entries(self, tokens):
        """Compressed entries per sequence once ``tokens`` are written: ⌊tokens/m⌋."""
        return tokens // self.ratio if self.ratio else 0 * tokens

    def completed(self, step: Step):
        """Entries the step completes over the batch."""
        return step.batch * (self.entries(step.written) - self.entries(step.cached))

    def flop_terms(self, step: Step) -> dict:
        """Each FLOP term of the module docstring for ``step`` (per device), by name."""
        tp, tokens = step.tp, step.tokens
        hl, gl = self.heads // tp, self.o_groups // tp
        h, d, dr, rq, ro = self.hidden, self.head_dim, self.rope_dim, self.q_lora_rank, self.o_lora_rank
        c, m, nh, di = self.series, self.ratio, self.index_n_heads, self.index_head_dim
        pairs = self.attended_pairs(step)
        scored = self.scored_pairs(step)
        done = self.completed(step)
        on, idx = bool(m), self.indexer
        return {
            "q_proj": 2 * tokens * h * rq + 2 * tokens * rq * hl * d,
            "kv_proj": 2 * tokens * h * d,
            "o_proj": 2 * tokens * hl * d * ro + 2 * tokens * gl * ro * h,
            "compressor_proj": on * 4 * c * tokens * h * d,
            "index_proj": idx * (8 * tokens * h * di + 2 * tokens * rq * nh * di + 2 * tokens * h * nh),
            "attention": 4 * d * hl * pairs,
            "index_scores": idx * (2 * di * nh * scored + 2 * nh * scored),
            "norms": NORM_FLOPS_PER_ELEMENT * tokens * (rq + hl * d + d),
            "rope": ROPE_FLOPS_PER_ELEMENT * tokens * (2 * hl + 1) * dr,
            "softmax": SOFTMAX_FLOPS_PER_PAIR * hl * pairs + tokens * hl * d
                       + SINK_FLOPS_PER_QUERY_HEAD * tokens * hl,
            "compressor_pool": on * done * (POOL_FLOPS_PER_SLOT * c * m * d + NORM_FLOPS_PER_ELEMENT * d
                                            + ROPE_FLOPS_PER_ELEMENT * dr),
            "index_elementwise": idx * (done * (POOL_FLOPS_PER_SLOT * 2 * m * di + NORM_FLOPS_PER_ELEMENT * di
                                                + ROPE_FLOPS_PER_ELEMENT * dr)
                                        + ROPE_FLOPS_PER_ELEMENT * tokens * nh * dr
                                        + INDEX_FLOPS_PER_HEAD_PAIR * nh * scored + TOPK_FLOPS_PER_KEY * scored
                                        + tokens * nh),
        }

    matmul_terms = ("q_proj", "kv_proj", "o_proj", "compressor_proj", "index_proj", "attention", "index_scores")
    attention_terms = ("attention", "index_scores")

    def cache_values(self, tokens, resident):
        """Values cached per sequence after ``tokens`` writes with ``resident`` window
        positions: resident·D + ⌊tokens/m⌋·(D + di on CSA)."""
        per_entry = self.head_dim + self.indexer * self.index_head_dim
        return resident * self.head_dim + self.entries(tokens) * per_entry

    def state_values(self) -> int:
        """The compressor's fixed state per sequence: 2·(c·m)·(c·D) (+ 2·(2m)·(2·di))."""
        if not self.ratio:
            return 0
        c, m = self.series, self.ratio
        return 2 * c * m * c * self.head_dim + self.indexer * 2 * 2 * m * 2 * self.index_head_dim

    def cost(self, step: Step) -> LayerCost:
        tp, tokens, batch = step.tp, step.tokens, step.batch
        hl, gl = self.heads // tp, self.o_groups // tp
        policy = step.policy(self.mask)
        terms = self.flop_terms(step)
        matmul = sum(terms[k] for k in self.matmul_terms)
        elementwise = sum(v for k, v in terms.items() if k not in self.matmul_terms)
        d, di = self.head_dim, self.index_head_dim * self.indexer
        resident = policy.resident_positions(step.written, self.window, step.kv_block)
        read_window = policy.read_positions(step.written, self.window, step.kv_block)
        entries = self.entries(step.written)
        read_entries = minimum(entries, self.index_topk) if self.indexer else entries
        read = batch * (read_window * d + read_entries * d + entries * di)
        weights = self._weight_bytes(hl, gl)
        c, m = self.series, self.ratio
        act = tokens * (self.q_lora_rank + 2 * hl * d + d + gl * self.o_lora_rank + self.hidden)
        act = act + bool(m) * tokens * 2 * c * d + self.indexer * tokens * (
            4 * self.index_head_dim + self.index_n_heads * self.index_head_dim + self.index_n_heads)
        parallel = tp > 1
        # q_a + norm, q_b + norm + rope, kv + norm + rope, attention, inverse rope, o_a, o_b;
        # compressor (projections, pool); indexer (projections, pool, q, score + top-k)
        kernels = 9 + 2 * bool(m) + 4 * self.indexer + 1 * parallel
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            attention_flops=sum(terms[k] for k in self.attention_terms),
            weight_bytes=weights,
            resident_weight_bytes=weights,
            kv_cache_bytes=step.kv_dtype.nbytes(batch * (self.cache_values(step.written, resident)
                                                         + self.state_values())),
            kv_read_bytes=step.kv_dtype.nbytes(read),
            kv_write_bytes=step.kv_dtype.nbytes(tokens * d + self.completed(step) * (d + di)),
            activation_bytes=step.act_dtype.nbytes(act),
            comm_bytes=step.act_dtype.nbytes(tokens * self.hidden) * parallel,
            collectives=1 * parallel,
            kernels=kernels,
            gemm_dtype=self.weight_dtype.compute_name,
            attention_sequences=batch,
            attention_rows=tokens * hl * (step.new_tokens > 1),
        )
