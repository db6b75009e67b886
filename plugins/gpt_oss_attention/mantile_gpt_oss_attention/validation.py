"""Torch checks of the GPT-OSS attention, run by ``mantile validate`` (and by the tests).

Each ``*_figures`` function imports torch when called and returns the compared figures as a
dict; the :data:`VALIDATION_CASES` wrap them into outcomes for the GPT-OSS seed layout
(gpt-oss-20b's attention: hidden 2880, 64 heads × 64, 8 KV heads, window 128):

- numerics: :class:`~.reference.GptOssAttentionReference` equals transformers'
  ``GptOssAttention`` (eager) on random weights and inputs, sliding and full layers, prefill
  (no cache) and a chunked prefill followed by step-by-step decode through the KV cache;
- tensor parallelism: the rank outputs of :meth:`~.reference.GptOssAttentionReference.shard`
  sum to the full output (the all-reduce);
- FLOPs: rank 0's projection FLOPs under FlopCounterMode equal the estimator's
  matmul − attention FLOPs; the allowed entries of the exact mask applied, times batch, equal
  the estimator's pairs; the elements the bias adds touch equal its bias count;
- bytes: parameter count and nbytes of the module (in the layer's weight dtype) equal
  ``params()`` / ``weight_bytes()``; rank 0's equal the per-device resident weight bytes;
  the KV-cache tensors' nbytes after a prefill and after a decode step equal ``kv_cache_bytes``
  (sliding layers on the "ring" policy, whose W slots are allocated up front: contexts >= W).
"""

from __future__ import annotations

from typing import Any, Callable

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = [
    "VALIDATION_CASES",
    "SEED_MODEL",
    "attention_layers",
    "make_step",
    "transformers_figures",
    "tp_sum_figures",
    "flop_figures",
    "byte_figures",
]

SEED_MODEL = "gpt-oss-20b"


def attention_layers(model_name: str = SEED_MODEL) -> dict[str, Any]:
    """{"sliding": layer, "full": layer, "config": ModelConfig} of a gpt_oss model (bundled
    name or config.json path): its first sliding and first full attention layer."""
    from mantile_core import load_model

    model = load_model(model_name)
    attn = [layer for layer in model.layers if layer.kind == "attention"]
    return {"sliding": next(a for a in attn if a.window is not None),
            "full": next(a for a in attn if a.window is None),
            "config": model.config}


def make_step(batch: int, new_tokens: int, cached: int, tp: int = 1, sliding_policy: str = "ring", dtype: str = "bf16"):
    """A core Step with the "causal" policy and the named sliding policy from the registries."""
    from mantile_core import get_plugin_manager
    from mantile_core.workload import Step

    policies = get_plugin_manager().registries.cache_policies
    chosen = {"causal": policies["causal"]}
    if sliding_policy in policies:
        chosen["sliding"] = policies[sliding_policy]
    return Step(batch=batch, new_tokens=new_tokens, cached=cached, tp=tp, act_dtype=dtype, kv_dtype=dtype,
                policies=chosen)


def _reference(layer, config, dtype, seed: int = 0):
    """A reference module shaped like ``layer``, random weights and sinks (std 0.02 / 1)."""
    import torch

    from .reference import from_layer

    torch.manual_seed(seed)
    module = from_layer(layer, dtype=dtype, rope=config.rope_parameters, max_position=config.max_position_embeddings)
    _randomize(module)
    return module


def _randomize(module) -> None:
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.randn_like(param) * (1.0 if name == "sinks" else 0.02))


def _hf_module(layer, config, sliding: bool):
    """transformers' GptOssAttention (eager) with the layer's shapes, and its rotary embedding."""
    from transformers import GptOssConfig
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssAttention, GptOssRotaryEmbedding

    hf_config = GptOssConfig(
        hidden_size=layer.hidden, num_attention_heads=layer.heads, num_key_value_heads=layer.kv_heads,
        head_dim=layer.head_dim, num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"],
        sliding_window=layer.window or 128, max_position_embeddings=config.max_position_embeddings,
        rope_parameters=config.rope_parameters, attention_bias=True, attn_implementation="eager",
    )
    module = GptOssAttention(hf_config, layer_idx=0 if sliding else 1)
    return module.float().eval(), GptOssRotaryEmbedding(hf_config)


def transformers_figures(layer, config, *, batch: int = 2, seq: int = 150, prefill: int = 120, seed: int = 0) -> dict:
    """Max |reference − transformers| over a ``seq``-token prefill without cache (``prefill``),
    and over a ``prefill``-token chunk then one decode step per remaining token through the
    layer's cache (``decode``), float32; ``scale`` is max |transformers output|. transformers
    gets its own YaRN rotary embedding and an additive mask built here from i − W < j <= i."""
    import torch

    sliding = layer.window is not None
    hf, rotary = _hf_module(layer, config, sliding)
    torch.manual_seed(seed)
    _randomize(hf)
    from .reference import from_layer

    ref = from_layer(layer, dtype=torch.float32, rope=config.rope_parameters,
                     max_position=config.max_position_embeddings).eval()
    ref.load_state_dict(hf.state_dict())
    x = torch.randn(batch, seq, layer.hidden)
    pos = torch.arange(seq)
    allowed = pos[None, :] <= pos[:, None]
    if sliding:
        allowed &= pos[None, :] > pos[:, None] - layer.window
    additive = torch.zeros(seq, seq).masked_fill(~allowed, float("-inf"))[None, None].expand(batch, 1, seq, seq)
    with torch.no_grad():
        cos, sin = rotary(x, pos[None].expand(batch, seq))
        expected, _ = hf(x, position_embeddings=(cos, sin), attention_mask=additive)
        full = ref(x)
        cache = ref.new_cache(batch, torch.float32)
        steps = [ref(x[:, :prefill], 0, cache)]
        for t in range(prefill, seq):
            steps.append(ref(x[:, t:t + 1], t, cache))
        decoded = torch.cat(steps, dim=1)
    return {"prefill": float((full - expected).abs().max()), "decode": float((decoded - expected).abs().max()),
            "scale": float(expected.abs().max()), "cache": type(cache).__name__}


def tp_sum_figures(layer, config, tp: int, *, batch: int = 2, seq: int = 40, seed: int = 0) -> dict:
    """Max |Σ_r rank_r(x) − full(x)| over ``tp`` shards (float32) and the output scale."""
    import torch

    ref = _reference(layer, config, torch.float32, seed)
    x = torch.randn(batch, seq, layer.hidden)
    with torch.no_grad():
        full = ref(x)
        summed = sum(ref.shard(r, tp)(x) for r in range(tp))
    return {"error": float((summed - full).abs().max()), "scale": float(full.abs().max())}


def _count_hooks(module, store: dict) -> list:
    """Forward hooks recording the elements each bias add touches (a biased Linear's output),
    the rotated q/k elements (q_proj and k_proj outputs) and o_proj's input elements."""
    handles = []
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        linear = getattr(module, name)

        def hook(mod, args, output, name=name):
            if mod.bias is not None:
                store["bias_elements"] += output.numel()
            if name in ("q_proj", "k_proj"):
                store["rotated_elements"] += output.numel()
            if name == "o_proj":
                store["attention_outputs"] += args[0].numel()

        handles.append(linear.register_forward_hook(hook))
    return handles


def flop_figures(layer, config, *, tp: int, batch: int, new_tokens: int, cached: int, seed: int = 0) -> dict:
    """Measured (rank 0 shard, torch) and analytic (``layer.cost``) figures of one step of
    ``new_tokens`` queries per sequence after ``cached`` tokens, ``tp``-way:
    projection FLOPs, (query, key) pairs, bias elements, and ``flops`` rebuilt from the
    measured counts with the documented per-element constants."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mantile_core.layers.attention import ROPE_FLOPS_PER_ELEMENT, SOFTMAX_FLOPS_PER_PAIR

    from .layers import SINK_FLOPS_PER_QUERY_HEAD

    shard = _reference(layer, config, torch.float32, seed).shard(0, tp).eval()
    x = torch.randn(batch, cached + new_tokens, layer.hidden)
    store = dict.fromkeys(("bias_elements", "rotated_elements", "attention_outputs"), 0)
    with torch.no_grad():
        cache = shard.new_cache(batch)
        if cached:
            shard(x[:, :cached], 0, cache)
        handles = _count_hooks(shard, store)
        with FlopCounterMode(display=False) as counter:
            shard(x[:, cached:], cached, cache)
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    projection = sum(sum(ops.values()) for key, ops in counts.items()
                     if key.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "o_proj") and "." in key)
    pairs = int(shard.last_mask.sum()) * batch
    hl, dh = shard.heads, shard.head_dim
    queries = store["attention_outputs"] // dh  # query tokens × local heads
    measured_flops = (projection + 4 * dh * hl * pairs + store["bias_elements"]
                      + ROPE_FLOPS_PER_ELEMENT * store["rotated_elements"] + SOFTMAX_FLOPS_PER_PAIR * hl * pairs
                      + store["attention_outputs"] + SINK_FLOPS_PER_QUERY_HEAD * queries)
    cost = layer.cost(make_step(batch, new_tokens, cached, tp))
    tokens = batch * new_tokens
    return {
        "measured": {"projection_flops": projection, "pairs": pairs, "bias_elements": store["bias_elements"],
                     "flops": measured_flops, "counted_total_flops": counter.get_total_flops()},
        "analytic": {"projection_flops": int(cost.matmul_flops - cost.attention_flops),
                     "pairs": int(cost.attention_flops) // (4 * dh * hl),
                     "bias_elements": int(tokens * layer._bias_elements(hl, shard.kv_heads)),
                     "flops": int(cost.flops)},
    }


def byte_figures(layer, config, *, tp: int, batch: int, context: int, seed: int = 0) -> dict:
    """Measured (torch tensors in the layer's weight / KV dtype) and analytic figures: whole
    module params and nbytes, rank 0 shard nbytes, KV-cache nbytes after a ``context``-token
    prefill and after the following decode step."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[layer.weight_dtype.name]
    module = _reference(layer, config, dtype, seed)
    shard = module.shard(0, tp).eval()
    x = torch.randn(batch, context + 1, layer.hidden, dtype=dtype)
    with torch.no_grad():
        cache = shard.new_cache(batch, dtype)
        shard(x[:, :context], 0, cache)
        after_prefill = cache.nbytes
        shard(x[:, context:], context, cache)
        after_decode = cache.nbytes
    prefill = layer.cost(make_step(batch, context, 0, tp))
    decode = layer.cost(make_step(batch, 1, context, tp))
    return {
        "measured": {"params": sum(p.numel() for p in module.parameters()),
                     "weight_bytes": sum(p.nbytes for p in module.parameters()),
                     "weight_bytes_per_device": sum(p.nbytes for p in shard.parameters()),
                     "kv_prefill_bytes": int(after_prefill), "kv_decode_bytes": int(after_decode)},
        "analytic": {"params": layer.params(), "weight_bytes": layer.weight_bytes(),
                     "weight_bytes_per_device": int(decode.resident_weight_bytes),
                     "kv_prefill_bytes": int(prefill.kv_cache_bytes), "kv_decode_bytes": int(decode.kv_cache_bytes)},
    }


# --- the cases ----------------------------------------------------------------------------

def _compare(label: str, rows: list[tuple[str, dict]]) -> ValidationOutcome:
    bad = [f"{where}: {k} measured {m[k]} != analytic {a[k]}"
           for where, (m, a) in ((w, (f["measured"], f["analytic"])) for w, f in rows)
           for k in a if m[k] != a[k]]
    if bad:
        return ValidationOutcome(False, "; ".join(bad))
    return ValidationOutcome(True, f"{label}: {len(rows)} settings equal")


def _numerics_case(kind: str) -> Callable[[], ValidationOutcome]:
    def run() -> ValidationOutcome:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:
            return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
        found = attention_layers()
        fig = transformers_figures(found[kind], found["config"])
        tolerance = 1e-5 * max(fig["scale"], 1.0)
        ok = fig["prefill"] <= tolerance and fig["decode"] <= tolerance
        return ValidationOutcome(ok, f"{kind}: max |ref - transformers| prefill {fig['prefill']:.2e}, decode via "
                                     f"{fig['cache']} {fig['decode']:.2e} (output scale {fig['scale']:.3f})")
    return run


def _tp_case() -> ValidationOutcome:
    found = attention_layers()
    details, ok = [], True
    for kind in ("sliding", "full"):
        for tp in (4, 16):
            fig = tp_sum_figures(found[kind], found["config"], tp)
            ok &= fig["error"] <= 1e-5 * max(fig["scale"], 1.0)
            details.append(f"{kind} tp{tp} {fig['error']:.1e}")
    return ValidationOutcome(ok, "max |sum of rank outputs - full|: " + ", ".join(details))


def _flops_case() -> ValidationOutcome:
    found = attention_layers()
    rows = []
    for kind in ("sliding", "full"):
        for tp in (1, 8):
            for new, cached in ((160, 0), (1, 159)):
                rows.append((f"{kind} tp{tp} new{new} cached{cached}",
                             flop_figures(found[kind], found["config"], tp=tp, batch=2, new_tokens=new, cached=cached)))
    return _compare("projection FLOPs, pairs, bias elements, flops", rows)


def _bytes_case() -> ValidationOutcome:
    found = attention_layers()
    rows = [(f"{kind} tp{tp}", byte_figures(found[kind], found["config"], tp=tp, batch=2, context=150))
            for kind in ("sliding", "full") for tp in (1, 8, 16)]
    return _compare("params, weight and KV bytes", rows)


VALIDATION_CASES = [
    ValidationCase("gpt-oss-attention-numerics-sliding", _numerics_case("sliding"),
                   "reference = transformers GptOssAttention (eager), sliding layer, prefill and decode"),
    ValidationCase("gpt-oss-attention-numerics-full", _numerics_case("full"),
                   "reference = transformers GptOssAttention (eager), full layer, prefill and decode"),
    ValidationCase("gpt-oss-attention-tp-shards", _tp_case,
                   "tensor-parallel shards sum to the full output (tp 4, 16 with KV replication)"),
    ValidationCase("gpt-oss-attention-flops", _flops_case,
                   "FlopCounterMode projections, mask pairs, bias elements = analytic (tp 1, 8)"),
    ValidationCase("gpt-oss-attention-bytes", _bytes_case,
                   "parameter numel/nbytes and KV-cache nbytes = analytic (tp 1, 8, 16)"),
]
