"""Multi-head Latent Attention (DeepSeek-V2/V3, Kimi-K2), counted as engines run it.

Shapes: H hidden, h heads (hl = h/tp per device), r_q = q_lora_rank (None: a plain q_proj),
r = kv_lora_rank, dn = qk_nope_head_dim, dr = qk_rope_head_dim, dv = v_head_dim,
dqk = dn + dr. Weights (transformers' names):

- q: ``q_a_proj`` (r_q × H), ``q_a_layernorm`` (r_q), ``q_b_proj`` (h·dqk × r_q); or
  ``q_proj`` (h·dqk × H) when r_q is None;
- ``kv_a_proj_with_mqa`` ((r + dr) × H): the latent c (r, then ``kv_a_layernorm``) and the one
  shared rope key k_pe (dr); ``kv_b_proj`` (h·(dn + dv) × r): W_UK (dn per head) and W_UV (dv);
- ``o_proj`` (H × h·dv). ``attention_bias`` adds biases to q_a_proj, kv_a_proj and o_proj.

Each linear is stored in its own format (``per_linear``; modelopt may quantize some and keep
others in bf16) and costed at it; a checkpoint with FP8 KV-cache scales adds a float32
``k_scale`` and ``v_scale`` per layer (modelopt stores them on ``kv_a_proj_with_mqa``).

Tensor parallelism (vLLM, SGLang): q_b_proj / q_proj, kv_b_proj and o_proj shard by heads;
q_a_proj, kv_a_proj, both norms and **the latent KV cache are replicated on every rank** (the
latent has no head axis). The o_proj bias is added once. All-reduce after o_proj: T·H·bytes.

KV cache: (r + dr) values per token per layer, shared by all heads:
``batch · resident · (r + dr) · bytes`` per device at every tp (DeepSeek-V3: 576 values).

FLOPs per device, T = batch·new tokens of the step, pairs = (query, key) pairs of the causal
policy per sequence times batch (counted per query head):

- common: q = 2·T·H·r_q + 2·T·r_q·hl·dqk (or 2·T·H·hl·dqk), kv_a = 2·T·H·(r + dr),
  o_proj = 2·T·hl·dv·H; norms 4·T·(r_q + r); RoPE 3·T·(hl + 1)·dr (q's rope part per head and
  the one shared k_pe); softmax 5·hl·pairs; biases T·(r_q + r + dr + H) when attention_bias.
- **prefill (new tokens > 1): expanded.** The latent of every key the step attends
  (K = batch·(cached + new) positions) is expanded through kv_b_proj into per-head K_nope and
  V: 2·K·r·hl·(dn + dv); attention QKᵀ over dqk and PV over dv: 2·(dqk + dv)·hl·pairs;
  normalise T·hl·dv.
- **decode (new tokens = 1): absorbed.** W_UK is folded into the query
  (q_nope·W_UK: 2·T·hl·dn·r), attention runs over the latent itself (scores over r + dr,
  PV over r: 2·(2r + dr)·hl·pairs), W_UV is applied to the latent output
  (2·T·hl·r·dv); normalise T·hl·r. kv_b_proj's weights are read, never applied to the cache.

``matmul_flops`` = the GEMMs above + the attention term (``attention_flops``).
"""

from __future__ import annotations

import attrs
import numpy
from mantile_core.dtypes import DType, LinearFormats
from mantile_core.layers import Layer, require_divides
from mantile_core.layers.attention import ROPE_FLOPS_PER_ELEMENT, ROPE_TABLE_DTYPE_BYTES, SOFTMAX_FLOPS_PER_PAIR
from mantile_core.layers.simple import NORM_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step

__all__ = ["MLAttention", "is_decode", "pick", "MATMUL_TERMS", "ATTENTION_TERMS"]

MATMUL_TERMS = ("q_proj", "kv_a_proj", "o_proj", "kv_b_expand", "absorb_uk", "absorb_uv", "attention")
ATTENTION_TERMS = ("attention",)


def is_decode(step: Step):
    """True (element-wise for arrays) where a step is one new token per sequence: absorbed."""
    return step.new_tokens == 1


def pick(decode, absorbed, expanded):
    """``absorbed`` where ``decode`` else ``expanded`` (numpy.where for arrays)."""
    if isinstance(decode, numpy.ndarray):
        return numpy.where(decode, absorbed, expanded)
    return absorbed if decode else expanded


@attrs.frozen(kw_only=True)
class MLAttention(Layer):
    """MLA self-attention with full causal masking; ``weight_dtype`` for the five linears
    (fp8 block-scaled in DeepSeek-V3's checkpoint) except those ``per_linear`` names with a
    format of their own ((projection, DType): nvidia's DeepSeek-V3.1/V3.2-NVFP4 store o_proj
    in NVFP4 and the q / kv projections in bf16), ``norm_dtype`` for norms and biases. The
    GEMMs are timed at ``weight_dtype``'s compute format."""

    kind: str = "attention"
    hidden: int
    heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    weight_dtype: DType
    norm_dtype: DType
    attention_bias: bool = False
    per_linear: tuple[tuple[str, DType], ...] = ()
    kv_scale_bytes: int = 0  # KV-cache quantization scales the checkpoint stores (k_scale, v_scale)
    rope_type: str = "default"
    max_position: int = 4096

    @property
    def mask(self) -> str:
        return "causal"

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_width(self) -> int:
        """Values cached per token: kv_lora_rank + qk_rope_head_dim."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    # --- parameters ------------------------------------------------------------------
    @property
    def formats(self) -> LinearFormats:
        """The storage format of each projection."""
        return LinearFormats(self.weight_dtype, self.per_linear)

    def _named_matrices(self, hl):
        """(projection, count, rows, cols) of the linears held by a device with ``hl`` heads."""
        h, r_q, r = self.hidden, self.q_lora_rank, self.kv_lora_rank
        q = ([("q_a_proj", 1, r_q, h), ("q_b_proj", 1, hl * self.qk_head_dim, r_q)] if r_q
             else [("q_proj", 1, hl * self.qk_head_dim, h)])
        return q + [("kv_a_proj_with_mqa", 1, self.latent_width, h),
                    ("kv_b_proj", 1, hl * (self.qk_nope_head_dim + self.v_head_dim), r),
                    ("o_proj", 1, h, hl * self.v_head_dim)]

    def _matrices(self, hl):
        """(count, rows, cols) of the linears held by a device with ``hl`` heads."""
        return [shape[1:] for shape in self._named_matrices(hl)]

    def linear_bytes(self, hl) -> int:
        """Bytes of the linears held by a device with ``hl`` heads, each at its own format."""
        return self.formats.nbytes(self._named_matrices(hl))

    def _small(self, o_bias: bool = True) -> int:
        """Norm weights and biases (replicated; the o_proj bias on one rank)."""
        r_q = self.q_lora_rank or 0
        bias = self.attention_bias * (r_q + self.latent_width + o_bias * self.hidden)
        return r_q + self.kv_lora_rank + bias

    def params(self) -> int:
        return sum(c * a * b for c, a, b in self._matrices(self.heads)) + self._small()

    def weight_bytes(self) -> int:
        return self.linear_bytes(self.heads) + self.norm_dtype.nbytes(self._small()) + self.kv_scale_bytes

    def check_parallelism(self, tp: int, ep: int) -> None:
        require_divides("tp", tp, "num_attention_heads", self.heads)

    def rope_table_bytes(self) -> int:
        """cos and sin for max_position positions × qk_rope_head_dim/2, float32."""
        return 2 * self.max_position * (self.qk_rope_head_dim // 2) * ROPE_TABLE_DTYPE_BYTES

    def describe(self) -> dict:
        return {"mask": self.mask, "heads": self.heads, "q_lora_rank": self.q_lora_rank,
                "kv_lora_rank": self.kv_lora_rank, "qk_nope_head_dim": self.qk_nope_head_dim,
                "qk_rope_head_dim": self.qk_rope_head_dim, "v_head_dim": self.v_head_dim,
                "kv_cache": "latent", "kv_values_per_token": self.latent_width,
                "kv_replicated_across_tp": True, "prefill_form": "expanded", "decode_form": "absorbed",
                "rope_type": self.rope_type}

    # --- cost ------------------------------------------------------------------------
    matmul_terms = MATMUL_TERMS
    attention_terms = ATTENTION_TERMS

    def absorbed(self, step: Step):
        """Where the step runs the absorbed form: one new token per sequence (decode)."""
        return is_decode(step)

    def attended_pairs(self, step: Step):
        """(query, key) pairs of the step per query head over the batch: causal."""
        return step.batch * step.policy(self.mask).attended_pairs(step.new_tokens, step.cached, 0)

    def flop_terms(self, step: Step) -> dict:
        """Each FLOP term of the module docstring for ``step`` (per device), by name."""
        tp = step.tp
        hl = self.heads // tp
        tokens = step.tokens
        h, r, dn, dr, dv = self.hidden, self.kv_lora_rank, self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim
        r_q = self.q_lora_rank or 0
        pairs = self.attended_pairs(step)
        keys = step.batch * step.written
        decode = self.absorbed(step)
        if r_q:
            q = 2 * tokens * h * r_q + 2 * tokens * r_q * hl * self.qk_head_dim
        else:
            q = 2 * tokens * h * hl * self.qk_head_dim
        terms = {
            "q_proj": q,
            "kv_a_proj": 2 * tokens * h * self.latent_width,
            "o_proj": 2 * tokens * hl * dv * h,
            "kv_b_expand": pick(decode, 0, 2 * keys * r * hl * (dn + dv)),
            "absorb_uk": pick(decode, 2 * tokens * hl * dn * r, 0),
            "absorb_uv": pick(decode, 2 * tokens * hl * r * dv, 0),
            "attention": pick(decode, 2 * (2 * r + dr) * hl * pairs, 2 * (self.qk_head_dim + dv) * hl * pairs),
            "norms": NORM_FLOPS_PER_ELEMENT * tokens * (r_q + r),
            "rope": ROPE_FLOPS_PER_ELEMENT * tokens * (hl + 1) * dr,
            "softmax": SOFTMAX_FLOPS_PER_PAIR * hl * pairs + tokens * hl * pick(decode, r, dv),
            "bias": self.attention_bias * tokens * (r_q + self.latent_width + h),
        }
        return terms

    def cost(self, step: Step) -> LayerCost:
        tp = step.tp
        hl = self.heads // tp
        tokens = step.tokens
        policy = step.policy(self.mask)
        terms = self.flop_terms(step)
        matmul = sum(terms[k] for k in self.matmul_terms)
        elementwise = sum(v for k, v in terms.items() if k not in self.matmul_terms)
        width = self.latent_width
        resident = policy.resident_positions(step.written, 0, step.kv_block)
        read = policy.read_positions(step.written, 0, step.kv_block)
        weights = self.linear_bytes(hl) + self.norm_dtype.nbytes(self._small()) + self.kv_scale_bytes
        decode = self.absorbed(step)
        r_q, r, dn, dv = self.q_lora_rank or 0, self.kv_lora_rank, self.qk_nope_head_dim, self.v_head_dim
        keys = step.batch * step.written
        # written activations: q latent, q, latent, attention output, o_proj output; plus the
        # expanded K_nope/V (prefill) or the latent query and output (decode)
        act = tokens * (r_q + hl * self.qk_head_dim + width + hl * dv + self.hidden)
        act = act + pick(decode, 2 * tokens * hl * r, keys * hl * (dn + dv))
        parallel = tp > 1
        # q (q_a, norm, q_b or q_proj), kv_a, kv norm, rope, kv_b expand (or W_UK and W_UV:
        # one more), attention, o_proj, the all-reduce
        kernels = 7 + 2 * bool(self.q_lora_rank) + 1 * parallel
        return LayerCost(
            flops=matmul + elementwise,
            matmul_flops=matmul,
            attention_flops=sum(terms[k] for k in self.attention_terms),
            weight_bytes=weights,
            resident_weight_bytes=weights,
            kv_cache_bytes=step.kv_dtype.nbytes(step.batch * width * resident),
            kv_read_bytes=step.kv_dtype.nbytes(step.batch * width * read),
            kv_write_bytes=step.kv_dtype.nbytes(tokens * width),
            activation_bytes=step.act_dtype.nbytes(act),
            comm_bytes=step.act_dtype.nbytes(tokens * self.hidden) * parallel,
            collectives=1 * parallel,
            kernels=kernels + pick(decode, 1, 0),
            gemm_dtype=self.weight_dtype.compute_name,
            attention_rows=tokens * hl * (step.new_tokens > 1),  # a prompt kernel's per-row cost
        )
