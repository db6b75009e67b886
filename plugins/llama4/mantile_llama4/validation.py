"""Torch / transformers checks of mantile-llama4 for ``mantile validate`` (skipped without
transformers):

- ``llama4-param-count``: a small Llama 4 with interleaved MoE (step 2), NoPE every 4th layer
  and q/k norm has Mantile's parameter total = transformers' ``Llama4ForCausalLM`` on the meta
  device, module by module (attention, MoE, dense MLP);
- ``llama4-layer-kinds``: which layers are chunked, NoPE and MoE equals transformers'
  ``Llama4TextConfig`` (``layer_types``, ``no_rope_layers``, ``moe_layers``) for the Scout and
  Maverick shapes;
- ``llama4-router``: transformers' ``Llama4Router`` scores are sigmoid of the top-k logits and
  zero elsewhere, so each token's expert input is scaled by one sigmoid: the k·H multiplies the
  layer counts per token.
"""

from __future__ import annotations

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["VALIDATION_CASES"]

SMALL = dict(hidden_size=64, intermediate_size=48, intermediate_size_mlp=96, num_hidden_layers=8,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=128, num_local_experts=4,
             num_experts_per_tok=1, interleave_moe_layer_step=2, attention_chunk_size=16,
             max_position_embeddings=256)


def _have_transformers() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _mantile(raw: dict):
    from mantile_core.model import build_layers, read_model_config

    config = read_model_config(dict(raw), name="llama4-small")
    return config, build_layers(config)


def check_param_count() -> ValidationOutcome:
    import torch
    from transformers import Llama4ForCausalLM, Llama4TextConfig

    with torch.device("meta"):
        model = Llama4ForCausalLM(Llama4TextConfig(**SMALL))
    theirs = sum(p.numel() for p in model.parameters())
    _, layers = _mantile({"model_type": "llama4_text", **SMALL})
    ours = sum(layer.params() for layer in layers)
    by_kind = {}
    for i, block in enumerate(model.model.layers):
        for name, module in (("attention", block.self_attn), ("ffn", block.feed_forward)):
            mine = next(lay for lay in layers if lay.index == i and
                        (lay.kind == "attention" if name == "attention" else lay.kind in ("moe", "mlp")))
            by_kind[(i, name)] = mine.params() == sum(p.numel() for p in module.parameters())
    ok = ours == theirs and all(by_kind.values())
    return ValidationOutcome(ok, f"total {ours} = transformers {theirs}; per module equal: {all(by_kind.values())}")


def check_layer_kinds() -> ValidationOutcome:
    from transformers import Llama4TextConfig

    lines, ok = [], True
    for label, extra in (("scout", {"interleave_moe_layer_step": 1}), ("maverick", {"interleave_moe_layer_step": 2})):
        raw = {**SMALL, "num_hidden_layers": 48, "attention_chunk_size": 8192, **extra}
        hf = Llama4TextConfig(**raw)
        config, layers = _mantile({"model_type": "llama4_text", **raw})
        attention = [lay for lay in layers if lay.kind == "attention"]
        chunked = ["chunked_attention" if lay.chunk else "full_attention" for lay in attention]
        rope = [int(lay.rotary_dim > 0) for lay in attention]
        moe = [i for i, flag in enumerate(config.moe_layers) if flag]
        same = chunked == list(hf.layer_types) and rope == list(hf.no_rope_layers) and moe == list(hf.moe_layers)
        ok &= same
        lines.append(f"{label}: {chunked.count('chunked_attention')} chunked, {rope.count(0)} NoPE, {len(moe)} MoE "
                     f"= transformers {same}")
    return ValidationOutcome(ok, "; ".join(lines))


def check_router() -> ValidationOutcome:
    import torch
    from transformers import Llama4TextConfig
    from transformers.models.llama4.modeling_llama4 import Llama4Router

    torch.manual_seed(0)
    config = Llama4TextConfig(**{**SMALL, "num_experts_per_tok": 2})
    router = Llama4Router(config)
    x = torch.randn(7, SMALL["hidden_size"])
    with torch.no_grad():
        scores, logits = router(x)
        top = torch.topk(logits, 2, dim=1)
        expect = torch.zeros_like(logits).scatter_(1, top.indices, torch.sigmoid(top.values))
    err = float((scores - expect).abs().max())
    nonzero = int((scores > 0).sum())
    return ValidationOutcome(err <= 1e-6 and nonzero == 7 * 2,
                             f"scores = sigmoid(top-k logits) (max err {err:.2g}), {nonzero} nonzero of {scores.numel()}")


def _guarded(check):
    def run() -> ValidationOutcome:
        if not _have_transformers():
            return ValidationOutcome(True, "transformers is not installed", skipped=True)
        return check()

    return run


VALIDATION_CASES = [
    ValidationCase("llama4-layer-kinds", _guarded(check_layer_kinds),
                   "chunked / NoPE / MoE layers = transformers' Llama4TextConfig (Scout, Maverick shapes)"),
    ValidationCase("llama4-param-count", _guarded(check_param_count),
                   "small interleaved Llama 4: parameters = transformers on the meta device, per module"),
    ValidationCase("llama4-router", _guarded(check_router),
                   "router scores = sigmoid of the top-k logits (one scale per routed token)"),
]
