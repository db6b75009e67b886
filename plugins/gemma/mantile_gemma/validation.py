"""Torch checks of mantile-gemma for ``mantile validate`` (torch and transformers imported
inside the checks; without transformers the comparisons are skipped).

- ``gemma-attention-transformers``: the reference attention equals transformers'
  ``Gemma2Attention`` (soft-cap 50, sliding window, query_pre_attn_scalar) and
  ``Gemma3Attention`` (q/k norm, local RoPE base) in float32, and the layer's projection FLOPs
  equal what FlopCounterMode counts for the projections, the mask's allowed entries the pairs;
- ``gemma-softcap-logits``: final logits of transformers' ``Gemma2ForCausalLM`` with a cap
  equal the reference ``softcap`` of its uncapped logits; the LM head's analytic FLOPs are
  ``2·B·H·V + 3·B·V``;
- ``gemma-geglu-mlp``: the reference GeGLU equals transformers' ``Gemma2MLP``, matmul FLOPs
  equal FlopCounterMode's;
- ``gemma-param-count``: Mantile's parameter totals of small Gemma 2 / 3 configs equal
  transformers' models on the meta device.
"""

from __future__ import annotations

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["VALIDATION_CASES"]

TOLERANCE = 1e-5
SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, vocab_size=128, max_position_embeddings=256,
             sliding_window=8, query_pre_attn_scalar=24)


def _transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _skip() -> ValidationOutcome:
    return ValidationOutcome(True, "transformers is not installed", skipped=True)


def _mantile(raw: dict):
    from mantile_core.model import build_layers, read_model_config

    config = read_model_config(dict(raw), name=raw["model_type"] + "-small")
    return config, build_layers(config)


def check_attention() -> ValidationOutcome:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import Gemma2Config, Gemma3TextConfig
    from transformers.models.gemma2.modeling_gemma2 import Gemma2Attention
    from transformers.models.gemma3.modeling_gemma3 import Gemma3Attention

    from mantile_core.workload import Step
    from mantile_swa_cache.policies import RING
    from mantile_swa_cache.reference import sliding_mask

    from .reference import gemma_attention, rope_cos_sin

    torch.manual_seed(0)
    batch, seq = 2, 20
    worst, lines, ok = 0.0, [], True
    for family, cls, config_cls, layer_index in (("gemma2", Gemma2Attention, Gemma2Config, 0),
                                                 ("gemma3_text", Gemma3Attention, Gemma3TextConfig, 0)):
        extra = {"attn_logit_softcapping": 50.0} if family == "gemma2" else {"rope_local_base_freq": 500.0}
        hf_config = config_cls(**SMALL, **extra, attn_implementation="eager")
        module = cls(hf_config, layer_index).eval()
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0, 0.5)
        x = torch.randn(batch, seq, SMALL["hidden_size"])
        theta = 10000.0 if family == "gemma2" else 500.0  # layer 0 slides: the local base
        cos, sin = rope_cos_sin(range(seq), SMALL["head_dim"], theta)
        mask = sliding_mask(torch.arange(seq), torch.arange(seq), SMALL["sliding_window"])
        additive = torch.zeros(seq, seq).masked_fill(~mask, float("-inf"))[None, None]
        with torch.no_grad():
            theirs, _ = module(x, position_embeddings=(cos[None], sin[None]), attention_mask=additive)
            norms = (module.q_norm.weight, module.k_norm.weight) if family == "gemma3_text" else (None, None)
            with FlopCounterMode(display=False) as counter:
                ours = gemma_attention(x, module.q_proj.weight, module.k_proj.weight, module.v_proj.weight,
                                       module.o_proj.weight, heads=4, kv_heads=2, head_dim=16, cos=cos, sin=sin,
                                       mask=mask, query_scalar=SMALL["query_pre_attn_scalar"],
                                       logit_softcap=extra.get("attn_logit_softcapping"), q_norm=norms[0],
                                       k_norm=norms[1])
        err = float((ours - theirs).abs().max())
        worst = max(worst, err)
        raw = {"model_type": family, **SMALL, **extra}
        config, layers = _mantile(raw)
        layer = next(lay for lay in layers if lay.kind == "attention" and lay.index == layer_index)
        cost = layer.cost(Step(batch=batch, new_tokens=seq, cached=0, policies={"sliding": RING}))
        projection = int(cost.matmul_flops - cost.attention_flops)
        counted = int(counter.get_total_flops())
        full_attention = 4 * 16 * 4 * batch * seq * seq  # the reference multiplies the whole S×S
        pairs = int(mask.sum())
        ok &= err <= TOLERANCE and counted == projection + full_attention
        ok &= int(cost.attention_flops) == 4 * 16 * 4 * batch * pairs
        lines.append(f"{family}: max err {err:.2g}, projections {projection} FLOPs, pairs {pairs}")
    return ValidationOutcome(ok, "; ".join(lines))


def check_softcap_logits() -> ValidationOutcome:
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from mantile_core.workload import Step

    from .reference import softcap

    torch.manual_seed(1)
    config = Gemma2Config(**SMALL, final_logit_softcapping=3.0, attn_implementation="eager")
    model = Gemma2ForCausalLM(config).eval()
    ids = torch.randint(0, SMALL["vocab_size"], (2, 6))
    with torch.no_grad():
        capped = model(ids).logits
        model.config.final_logit_softcapping = None
        plain = model(ids).logits
    err = float((softcap(plain, 3.0) - capped).abs().max())
    _, layers = _mantile({"model_type": "gemma2", **SMALL, "final_logit_softcapping": 3.0})
    head = next(lay for lay in layers if lay.kind == "lm_head")
    cost = head.cost(Step(batch=2, new_tokens=1, cached=5))
    expect = 2 * 2 * SMALL["hidden_size"] * SMALL["vocab_size"] + 3 * 2 * SMALL["vocab_size"]
    ok = err <= TOLERANCE and int(cost.flops) == expect and float(capped.abs().max()) < 3.0
    return ValidationOutcome(ok, f"max |softcap(logits) - transformers| = {err:.2g}; head FLOPs {int(cost.flops)} = {expect}")


def check_geglu() -> ValidationOutcome:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import Gemma2Config
    from transformers.models.gemma2.modeling_gemma2 import Gemma2MLP

    from mantile_core.workload import Step

    from .reference import geglu_mlp

    torch.manual_seed(2)
    module = Gemma2MLP(Gemma2Config(**SMALL)).eval()
    x = torch.randn(3, 5, SMALL["hidden_size"])
    with torch.no_grad():
        theirs = module(x)
        with FlopCounterMode(display=False) as counter:
            ours = geglu_mlp(x, module.gate_proj.weight, module.up_proj.weight, module.down_proj.weight)
    err = float((ours - theirs).abs().max())
    _, layers = _mantile({"model_type": "gemma2", **SMALL})
    mlp = next(lay for lay in layers if lay.kind == "mlp")
    cost = mlp.cost(Step(batch=3, new_tokens=5, cached=0))
    ok = err <= TOLERANCE and int(cost.matmul_flops) == int(counter.get_total_flops())
    return ValidationOutcome(ok, f"max err {err:.2g}; matmul FLOPs {int(cost.matmul_flops)} = FlopCounterMode "
                                 f"{int(counter.get_total_flops())}")


def check_param_count() -> ValidationOutcome:
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

    lines, ok = [], True
    for family, config_cls, model_cls in (("gemma2", Gemma2Config, Gemma2ForCausalLM),
                                          ("gemma3_text", Gemma3TextConfig, Gemma3ForCausalLM)):
        with torch.device("meta"):
            model = model_cls(config_cls(**SMALL))
        theirs = sum(p.numel() for p in model.parameters())
        config, layers = _mantile({"model_type": family, **SMALL})
        ours = sum(layer.params() for layer in layers)
        ok &= ours == theirs
        lines.append(f"{family}: {ours} = {theirs}")
    return ValidationOutcome(ok, "; ".join(lines))


GEMMA4_SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=6, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, global_head_dim=32, num_global_key_value_heads=1,
                    attention_k_eq_v=True, vocab_size=128, max_position_embeddings=256, sliding_window=8,
                    hidden_size_per_layer_input=0, enable_moe_block=True, num_experts=4, top_k_experts=2,
                    moe_intermediate_size=24, final_logit_softcapping=30.0)


def _stored(module) -> int:
    """Elements of the tensors a checkpoint of ``module`` stores: its parameters (tied ones
    once) and its persistent buffers (in ``state_dict`` but not parameters)."""
    names = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    buffers = sum(t.numel() for name, t in module.state_dict().items() if name not in names)
    return sum(p.numel() for p in module.parameters()) + buffers


def check_gemma4() -> ValidationOutcome:
    """A small Gemma 4 with k = v global layers and the MoE block: Mantile's parameters =
    the tensors transformers' Gemma4ForCausalLM stores on the meta device (its parameters and
    the persistent ``layer_scalar`` buffer of each layer: ``state_dict``), layer by layer
    (attention, MLP + MoE block), and ``params() - buffer_params()`` = its parameters; the
    proportional RoPE inv_freq = transformers' for the global layers."""
    import torch
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from mantile_core import rope_scaling

    hf_config = Gemma4TextConfig(**GEMMA4_SMALL)
    with torch.device("meta"):
        model = Gemma4ForCausalLM(hf_config)
    theirs = _stored(model)
    _, layers = _mantile({"model_type": "gemma4_text", **GEMMA4_SMALL})
    ours = sum(layer.params() for layer in layers)
    per_layer = ours - sum(layer.buffer_params() for layer in layers) == sum(p.numel() for p in model.parameters())
    for i, block in enumerate(model.model.layers):
        attention = next(lay for lay in layers if lay.kind == "attention" and lay.index == i)
        per_layer &= attention.params() - attention.buffer_params() == sum(
            p.numel() for p in block.self_attn.parameters())
        mine = sum(lay.params() for lay in layers if lay.index == i)
        per_layer &= mine == _stored(block)
    inv, factor = ROPE_INIT_FUNCTIONS["proportional"](hf_config, "cpu", layer_type="full_attention")
    ours_rope = rope_scaling(hf_config.rope_parameters["full_attention"], 32, 256)
    pairs = len(ours_rope.inv_freq)
    same = bool(torch.allclose(torch.as_tensor(ours_rope.inv_freq, dtype=torch.float32), inv[:pairs], rtol=1e-6))
    ok = ours == theirs and per_layer and same and bool((inv[pairs:] == 0).all()) and factor == 1.0
    return ValidationOutcome(ok, f"params {ours} = transformers' stored tensors {theirs}, per layer {per_layer}; "
                                 f"proportional "
                                 f"inv_freq ({pairs} rotated pairs of {inv.shape[0]}) = transformers {same}")


def _guarded(check):
    def run() -> ValidationOutcome:
        return check() if _transformers() else _skip()

    run.__doc__ = check.__doc__
    return run


VALIDATION_CASES = [
    ValidationCase("gemma-attention-transformers", _guarded(check_attention),
                   "reference Gemma 2 / 3 attention (soft-cap, sliding, q/k norm) = transformers; projection FLOPs"),
    ValidationCase("gemma-geglu-mlp", _guarded(check_geglu), "GeGLU MLP = transformers' Gemma2MLP; matmul FLOPs"),
    ValidationCase("gemma4-params-and-rope", _guarded(check_gemma4),
                   "small Gemma 4 (k = v, MoE block): params = transformers per layer; proportional RoPE"),
    ValidationCase("gemma-param-count", _guarded(check_param_count),
                   "parameter totals of small Gemma 2 / 3 configs = transformers on the meta device"),
    ValidationCase("gemma-softcap-logits", _guarded(check_softcap_logits),
                   "final-logit soft-cap = transformers' Gemma2ForCausalLM; LM head FLOPs 2BHV + 3BV"),
]
