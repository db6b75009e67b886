"""Gemma 4 (``gemma4_text``; the ``gemma4`` image-text wrapper through its ``text_config``):
what it changes over Gemma 3, in transformers 5.24's semantics.

Config (absent keys at ``Gemma4TextConfig``'s defaults): ``layer_types`` (default 5 local : 1
global, the last layer forced global); global layers use ``global_head_dim`` (512) and, when
``attention_k_eq_v``, ``num_global_key_value_heads`` KV heads and no ``v_proj`` (the values are
the raw keys, normalised without a scale); RoPE per layer type (``rope_parameters`` keyed by
``full_attention`` / ``sliding_attention``; global: ``proportional`` with
``partial_rotary_factor`` 0.25); ``enable_moe_block`` adds, in every layer and next to the
dense GeGLU MLP, a router and ``num_experts`` GeGLU experts (``top_k_experts``,
``moe_intermediate_size``). Per-layer input embeddings (``hidden_size_per_layer_input`` > 0)
and KV sharing (``num_kv_shared_layers`` > 0) are refused with one line (never a silently
wrong count).

Counting, per device (T tokens, hl local heads, kvl local KV heads, dh the layer's head_dim):

- attention (:class:`Gemma4Attention`): q/k/v/o as the core's (no ``v_proj`` when k = v:
  ``H·(hl + kvl)·dh + hl·dh·H`` params, the v GEMM's ``2·T·H·kvl·dh`` FLOPs removed), q and k
  RMSNorm with scale (2·dh params, 4 FLOPs per element), v RMSNorm without scale (3 FLOPs per
  element), scores scaled by 1 (the norms fix the scale); KV cache K and V as transformers
  keeps them (V = the normalised raw keys, a separate tensor);
- MoE block (:class:`Gemma4MoE`): router ``H·E`` + its scale ``H`` + ``per_expert_scale`` E,
  three RMSNorms (post-feedforward 1 and 2, pre-feedforward 2: 3·H params), E experts of
  ``3·H·I``; FLOPs the core's MoE with GeGLU experts (10 per intermediate element), plus the
  router's unscaled RMSNorm and scalings (5·T·H), the three norms (4·T·H + H each) and the
  sum of the dense and expert branches (T·H);
- the dense MLP, norms, embedding and soft-capped tied head as Gemma 2 / 3's.

``layer_scalar`` (one value per decoder layer, which scales its output) is a buffer in
transformers and stored in the checkpoint (60 values for Gemma-4-31B, 30 for 26B-A4B): Mantile
counts it as a parameter of the layer's attention (``buffer_params``), as it counts every
tensor the checkpoint stores; transformers' count leaves it out.
"""

from __future__ import annotations

import attrs

from mantile_core import checks
from mantile_core.errors import ConfigError
from mantile_core.layers import MoE, local_kv_heads
from mantile_core.layers.mlp import ACT_FLOPS_PER_ELEMENT
from mantile_core.layers.simple import NORM_FLOPS_PER_ELEMENT
from mantile_core.workload import LayerCost, Step

from .layers import GELU_TANH_FLOPS_PER_ELEMENT, GemmaAttention

__all__ = ["Gemma4Attention", "Gemma4MoE", "read_gemma4", "GEMMA4_DEFAULTS", "V_NORM_FLOPS_PER_ELEMENT"]

V_NORM_FLOPS_PER_ELEMENT = 3  # square, sum, scale by rsqrt (no weight)
ROUTER_EXTRA_FLOPS_PER_ELEMENT = 5  # unscaled RMSNorm (3), · scale (1), · H^-1/2 (1)

GEMMA4_DEFAULTS = {
    "vocab_size": 262_144, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 30,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131_072, "tie_word_embeddings": True, "sliding_window": 512,
    "hidden_size_per_layer_input": 256, "num_kv_shared_layers": 0, "global_head_dim": 512,
}


@attrs.frozen(kw_only=True)
class Gemma4Attention(GemmaAttention):
    """Gemma 4 attention: q/k norms with scale, v norm without, optional k = v (no v_proj);
    it holds its decoder layer's ``layer_scalar`` (one stored value, in the checkpoint dtype)."""

    k_eq_v: bool = False
    layer_scalar: bool = True

    def extra_params(self, heads_local) -> int:
        return super().extra_params(heads_local) + self.layer_scalar

    def buffer_params(self) -> int:
        """The decoder layer's layer_scalar: a buffer in transformers, stored in the checkpoint."""
        return int(self.layer_scalar)

    def _weight_elements(self, hl, kvl):
        return self.hidden * (hl + (1 + (not self.k_eq_v)) * kvl) * self.head_dim + hl * self.head_dim * self.hidden

    def _weight_matrices(self, hl, kvl):
        dh = self.head_dim
        return [(1, hl * dh, self.hidden), (1 + (not self.k_eq_v), kvl * dh, self.hidden), (1, self.hidden, hl * dh)]

    def extra_flops(self, step: Step, heads_local, pairs):
        kvl = local_kv_heads(self.kv_heads, step.tp)
        return super().extra_flops(step, heads_local, pairs) + V_NORM_FLOPS_PER_ELEMENT * step.tokens * kvl * self.head_dim

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        if not self.k_eq_v:
            return base
        kvl = local_kv_heads(self.kv_heads, step.tp)
        v_gemm = 2 * step.tokens * self.hidden * kvl * self.head_dim
        return attrs.evolve(base, flops=base.flops - v_gemm, matmul_flops=base.matmul_flops - v_gemm)

    def describe(self) -> dict:
        return super().describe() | {"k_eq_v": self.k_eq_v}


@attrs.frozen(kw_only=True)
class Gemma4MoE(MoE):
    """The MoE block of a Gemma 4 layer (next to its dense MLP): scaled router, GeGLU experts,
    three RMSNorms (module docstring)."""

    def _router(self) -> int:
        return self.hidden * self.experts + self.hidden + self.experts + 3 * self.hidden

    def cost(self, step: Step) -> LayerCost:
        base = super().cost(step)
        tokens, hidden = step.tokens, self.hidden
        routed = tokens * self.top_k
        geglu = (GELU_TANH_FLOPS_PER_ELEMENT + 1 - ACT_FLOPS_PER_ELEMENT) * routed * self.intermediate // step.tp
        extra = (ROUTER_EXTRA_FLOPS_PER_ELEMENT * tokens * hidden
                 + 3 * (NORM_FLOPS_PER_ELEMENT * tokens * hidden + hidden)
                 + tokens * hidden + routed)  # branch sum, per_expert_scale
        return attrs.evolve(base, flops=base.flops + geglu + extra)

    def describe(self) -> dict:
        return super().describe() | {"activation": "gelu_pytorch_tanh (GeGLU)", "beside_dense_mlp": True}


def read_gemma4(raw: dict, where: str) -> dict:
    """A gemma4_text config in the core's spelling, with the per-layer facts the layers need:
    ``gemma4_head_dims``, ``gemma4_kv_heads``, ``gemma4_k_eq_v`` (lists per layer)."""
    out = dict(raw)
    for key, value in GEMMA4_DEFAULTS.items():
        if raw.get(key) is None:
            out[key] = value
    if checks.get_int(out, "hidden_size_per_layer_input", where, minimum=0):
        raise ConfigError(f"{where}: per-layer input embeddings (hidden_size_per_layer_input > 0, Gemma 4 E2B/E4B) "
                          "are not supported by mantile-gemma yet")
    if checks.get_int(out, "num_kv_shared_layers", where, minimum=0, maximum=checks.MAX_LAYERS):
        raise ConfigError(f"{where}: KV sharing across layers (num_kv_shared_layers > 0) is not supported by "
                          "mantile-gemma yet")
    if raw.get("use_bidirectional_attention") == "all":
        raise ConfigError(f"{where}: use_bidirectional_attention 'all' is not a causal decoder")
    layers = checks.get_int(out, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    types = checks.get_str_list(raw, "layer_types", where, default=None, length=layers,
                                choices=("sliding_attention", "full_attention"))
    types = list(types) if types is not None else [
        "sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(layers)]
    types[-1] = "full_attention"  # transformers forces the last layer global
    k_eq_v = checks.get_bool(raw, "attention_k_eq_v", where, default=False)
    kv = checks.get_int(out, "num_key_value_heads", where, maximum=1 << 16)
    global_kv = checks.get_int(raw, "num_global_key_value_heads", where, default=None, maximum=1 << 16)
    global_kv = global_kv if (k_eq_v and global_kv is not None) else kv
    head_dim = checks.get_int(out, "head_dim", where)
    global_dim = checks.get_int(out, "global_head_dim", where)
    full = [t == "full_attention" for t in types]
    params = raw.get("rope_parameters")
    if isinstance(params, dict) and ("full_attention" in params or "sliding_attention" in params):
        global_rope = dict(checks.get_mapping(params, "full_attention", where + " rope_parameters", default={}))
        local_rope = dict(checks.get_mapping(params, "sliding_attention", where + " rope_parameters", default={}))
    else:
        global_rope = {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0}
        local_rope = {"rope_type": "default", "rope_theta": 10_000.0}
    global_rope.setdefault("rope_type", "default")
    global_rope.setdefault("rope_theta", 1_000_000.0)
    local_rope.setdefault("rope_type", "default")
    local_rope.setdefault("rope_theta", 10_000.0)
    if checks.get_bool(raw, "enable_moe_block", where, default=False):
        out["num_experts"] = checks.get_int(raw, "num_experts", where, maximum=1 << 16)
        out["num_experts_per_tok"] = checks.get_int(raw, "top_k_experts", where, maximum=1 << 16)
        out["moe_intermediate_size"] = checks.get_int(raw, "moe_intermediate_size", where)
    else:
        for key in ("num_experts", "num_experts_per_tok", "moe_intermediate_size"):
            out.pop(key, None)
    out.update({
        "layer_types": types,
        "rope_parameters": global_rope,
        "rope_local_parameters": local_rope,
        "gemma4_head_dims": [global_dim if f else head_dim for f in full],
        "gemma4_kv_heads": [global_kv if f else kv for f in full],
        "gemma4_k_eq_v": [k_eq_v and f for f in full],
        "final_logit_softcapping": (None if raw.get("final_logit_softcapping") is None
                                    else checks.get_float(raw, "final_logit_softcapping", where, positive=True)),
        "attn_logit_softcapping": None,
        "tie_word_embeddings": checks.get_bool(out, "tie_word_embeddings", where),
    })
    out.pop("rope_scaling", None)
    return out
