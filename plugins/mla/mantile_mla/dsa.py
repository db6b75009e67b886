"""DeepSeek Sparse Attention (DeepSeek-V3.2 ``deepseek_v32``, GLM-5 ``glm_moe_dsa``): MLA whose
queries attend only the ``index_topk`` keys a lightning indexer picks.

The parent is :class:`~mantile_mla.attention.MLAttention`; DSA changes three things.

**Lightning indexer** (per layer that runs one; GLM-5's ``indexer_types`` "shared" layers reuse
the previous full layer's top-k and have none): nh = index_n_heads heads of di =
index_head_dim, its own projections ``wq_b`` (nh·di × q_lora_rank, fed by the MLA's normalised
q latent), ``wk`` (di × H), ``k_norm`` (LayerNorm, 2·di), ``weights_proj`` (nh × H); RoPE on
the first dr dims of q and k. It scores **every** causal key:
``score[s, t] = Σ_h w[s, h] · relu(scale · q[s, h]·k[t])``, then keeps the top index_topk.
Replicated on every tp rank (its top-k feeds every rank's heads). Per device, with P = causal
(query, key) pairs of the step (over the batch):

- GEMMs 2·T·r_q·nh·di + 2·T·H·di + 2·T·H·nh;
- scores 2·di·nh·P (q·k) + 2·nh·P (the weighted head sum, a matmul), counted as attention;
- elementwise 2·nh·P (scale, relu) + P (top-k comparison) + 5·T·di (LayerNorm)
  + 3·T·(nh + 1)·dr (RoPE) + T·nh (weight scale);
- its own key cache: di values per token (in the KV dtype), next to the latent.

**Sparse attention over the latent**: query at position p attends min(p + 1, index_topk)
keys. A chunk of S queries after C cached attends, per sequence,
Σ_{v=C+1}^{C+S} min(v, K) pairs (K = index_topk; = S·K once C ≥ K). Engines (FlashMLA sparse,
vLLM, SGLang) run it in the absorbed form for prefill and decode alike (the gathered top-k
latents are attended as MQA over r + dr): the MLA's absorbed terms with these pairs, no
kv_b expansion.

**Memory and traffic**: the cache holds batch·positions·(r + dr + di) values per layer with an
indexer (r + dr without), replicated on every tp rank; a step reads every cached indexer key
and min(positions, K) latents per sequence.
"""

from __future__ import annotations

import attrs
from mantile_core.dtypes import DType, matrices_nbytes
from mantile_core.layers.attention import ROPE_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step, maximum, minimum

from .attention import ATTENTION_TERMS, MATMUL_TERMS, MLAttention

__all__ = ["DSAttention", "sparse_pairs", "LAYERNORM_FLOPS_PER_ELEMENT", "INDEX_FLOPS_PER_HEAD_PAIR",
           "TOPK_FLOPS_PER_KEY"]

LAYERNORM_FLOPS_PER_ELEMENT = 5  # mean, subtract, square-sum, scale, affine (weight and bias)
INDEX_FLOPS_PER_HEAD_PAIR = 2  # the softmax scale and the relu on each (head, key) score
TOPK_FLOPS_PER_KEY = 1  # one comparison per scored key in the top-k selection


def sparse_pairs(new, cached, topk):
    """(query, key) pairs per sequence of ``new`` queries after ``cached`` tokens when each
    query at position p attends min(p + 1, topk) keys: Σ_{v=cached+1}^{cached+new} min(v, topk).
    Element-wise on numpy integer arrays."""
    low, high = cached, cached + new  # v runs over low+1 .. high
    m = maximum(minimum(high, topk), low)  # v <= m attend v keys, the rest topk
    return (m * (m + 1) - low * (low + 1)) // 2 + (high - m) * topk


@attrs.frozen(kw_only=True)
class DSAttention(MLAttention):
    """MLA with a lightning indexer (``indexer`` False: a layer reusing the previous top-k)
    and top-``index_topk`` sparse attention; ``index_dtype`` stores wq_b and wk (quantized
    like the MLA's linears), weights_proj and k_norm stay in ``norm_dtype``."""

    index_n_heads: int
    index_head_dim: int
    index_topk: int
    index_dtype: DType
    indexer: bool = True

    matmul_terms = MATMUL_TERMS + ("index_proj", "index_scores")
    attention_terms = ATTENTION_TERMS + ("index_scores",)

    @property
    def index_width(self) -> int:
        """Indexer key values cached per token (0 on a layer without its own indexer)."""
        return self.index_head_dim * self.indexer

    def _index_matrices(self):
        """wq_b and wk (index_dtype); weights_proj (nh × H) is in the dense part."""
        if not self.indexer:
            return []
        r_q = self.q_lora_rank or self.hidden
        return [(1, self.index_n_heads * self.index_head_dim, r_q), (1, self.index_head_dim, self.hidden)]

    def _index_small(self) -> int:
        """weights_proj and the k_norm LayerNorm (weight and bias)."""
        return self.indexer * (self.index_n_heads * self.hidden + 2 * self.index_head_dim)

    def params(self) -> int:
        return super().params() + sum(c * a * b for c, a, b in self._index_matrices()) + self._index_small()

    def indexer_bytes(self) -> int:
        """The indexer's weight bytes (replicated: the same on every device)."""
        return matrices_nbytes(self.index_dtype, self._index_matrices()) + self.norm_dtype.nbytes(self._index_small())

    def weight_bytes(self) -> int:
        return super().weight_bytes() + self.indexer_bytes()

    def describe(self) -> dict:
        return super().describe() | {"prefill_form": "absorbed", "sparse": "dsa", "index_topk": self.index_topk,
                                     "indexer": self.indexer, "index_n_heads": self.index_n_heads,
                                     "index_head_dim": self.index_head_dim,
                                     "kv_values_per_token": self.latent_width + self.index_width}

    def absorbed(self, step: Step):
        """Sparse MLA runs absorbed for prefill and decode alike."""
        return True

    def attended_pairs(self, step: Step):
        """Σ min(p + 1, index_topk) over the step's query positions, times batch."""
        return step.batch * sparse_pairs(step.new_tokens, step.cached, self.index_topk)

    def flop_terms(self, step: Step) -> dict:
        terms = super().flop_terms(step)
        tokens, nh, di, dr = step.tokens, self.index_n_heads, self.index_head_dim, self.qk_rope_head_dim
        r_q = self.q_lora_rank or self.hidden
        scored = step.batch * step.policy(self.mask).attended_pairs(step.new_tokens, step.cached, 0)
        on = self.indexer
        terms["index_proj"] = on * (2 * tokens * r_q * nh * di + 2 * tokens * self.hidden * di
                                    + 2 * tokens * self.hidden * nh)
        terms["index_scores"] = on * (2 * di * nh * scored + 2 * nh * scored)
        terms["index_elementwise"] = on * (INDEX_FLOPS_PER_HEAD_PAIR * nh * scored + TOPK_FLOPS_PER_KEY * scored
                                           + LAYERNORM_FLOPS_PER_ELEMENT * tokens * di
                                           + ROPE_FLOPS_PER_ELEMENT * tokens * (nh + 1) * dr + tokens * nh)
        return terms

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        policy = step.policy(self.mask)
        resident = policy.resident_positions(step.written, 0, step.kv_block)
        read = policy.read_positions(step.written, 0, step.kv_block)
        kv, tokens, di = step.kv_dtype, step.tokens, self.index_width
        latent = self.latent_width
        index_weights = self.indexer_bytes()
        return attrs.evolve(
            base,
            weight_bytes=base.weight_bytes + index_weights,
            resident_weight_bytes=base.resident_weight_bytes + index_weights,
            kv_cache_bytes=kv.nbytes(step.batch * (latent + di) * resident),
            kv_read_bytes=kv.nbytes(step.batch * (latent * minimum(read, self.index_topk) + di * read)),
            kv_write_bytes=kv.nbytes(tokens * (latent + di)),
            activation_bytes=base.activation_bytes + step.act_dtype.nbytes(
                self.indexer * tokens * (self.index_n_heads * self.index_head_dim + self.index_head_dim
                                         + self.index_n_heads)),
            kernels=base.kernels + 4 * self.indexer,  # wq_b, wk + norm + rope, weights_proj, score + top-k
        )
