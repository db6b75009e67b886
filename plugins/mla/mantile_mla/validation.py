"""Torch checks of MLA, run by ``mantile validate`` (and by the tests).

Each ``*_figures`` function imports torch when called and returns the compared figures:

- numerics: :class:`~.reference.MLAReference` equals transformers' ``DeepseekV3Attention``
  (eager) on random weights, over a prefill without cache (expanded) and over a chunked prefill
  followed by one absorbed decode step per token through the latent cache — both forms from one
  state dict; tiny shapes with q LoRA (V3-like) and without (V2-Lite-like), DeepSeek yarn with
  mscale_all_dim;
- tensor parallelism: the rank outputs of :meth:`~.reference.MLAReference.shard` sum to the
  full output; every rank's latent cache equals the full one (replicated);
- FLOPs: for rank 0 of DeepSeek-V3's and DeepSeek-V2-Lite's real attention shapes (built with
  heads/tp heads), FlopCounterMode's counts equal ``layer.cost``: in decode (absorbed) the whole
  matmul_flops; in prefill (expanded) the GEMMs by module plus the attention term rebuilt from
  the exact mask's allowed entries (pairs);
- bytes: parameter numel of the module (DeepSeek-V3 on the meta device, V2-Lite in bf16) equals
  ``params()``, bf16 nbytes ``weight_bytes()``, rank 0's the per-device resident bytes; the
  latent cache's nbytes after a prefill and after a decode step equal ``kv_cache_bytes`` at
  every tp (replicated);
- DSA: :class:`~.reference.DSAReference` equals transformers' ``DeepseekV32Attention``
  (half-split indexer RoPE) and ``GlmMoeDsaAttention`` (interleaved) with a small index_topk so
  the sparsity bites; on DeepSeek-V3.2's rank shapes (index_topk lowered to 16) the selected
  causal mask entries equal the capped pairs Σ min(p + 1, K), a decode step's FlopCounterMode
  total equals matmul_flops (indexer GEMMs and scores over every key, attention over the
  gathered top-k latents), and the cache (latent + indexer keys) nbytes equals kv_cache_bytes.
"""

from __future__ import annotations

from typing import Any

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["VALIDATION_CASES", "TINY", "TINY_ROPE", "TINY_DSA", "attention_layer", "make_step", "transformers_figures",
           "absorbed_figures", "tp_figures", "flop_figures", "byte_figures", "dsa_transformers_figures",
           "dsa_figures"]

TINY_ROPE = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "beta_fast": 32.0, "beta_slow": 1.0,
             "mscale": 0.707, "mscale_all_dim": 0.707, "original_max_position_embeddings": 64}
TINY = {"v3": dict(hidden=96, heads=4, q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                   v_head_dim=12),
        "v2-lite": dict(hidden=96, heads=4, q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16,
                        qk_rope_head_dim=8, v_head_dim=16)}


def attention_layer(model_name: str):
    """(first MLA layer, ModelConfig) of a bundled model or config path."""
    from mantile_core import load_model

    model = load_model(model_name)
    return next(layer for layer in model.layers if layer.kind == "attention"), model.config


def make_step(batch: int, new_tokens: int, cached: int, tp: int = 1, dtype: str = "bf16"):
    """A core Step with the causal policy from the registries."""
    from mantile_core import get_plugin_manager
    from mantile_core.workload import Step

    policies = get_plugin_manager().registries.cache_policies
    return Step(batch=batch, new_tokens=new_tokens, cached=cached, tp=tp, act_dtype=dtype, kv_dtype=dtype,
                policies={"causal": policies["causal"]})


def _randomize(module, seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("layernorm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn_like(param))
            else:
                param.copy_(torch.randn_like(param) * 0.05)


def _tiny_reference(kind: str, dtype=None, rope_interleave: bool = True):
    import torch

    from .reference import MLAReference

    module = MLAReference(**TINY[kind], rope=TINY_ROPE, max_position=2560, rope_interleave=rope_interleave,
                          dtype=dtype or torch.float32)
    _randomize(module)
    return module.eval()


def _hf_attention(kind: str, rope_interleave: bool):
    from transformers import DeepseekV3Config
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention, DeepseekV3RotaryEmbedding

    shape = TINY[kind]
    config = DeepseekV3Config(hidden_size=shape["hidden"], num_attention_heads=shape["heads"],
                              num_key_value_heads=shape["heads"], q_lora_rank=shape["q_lora_rank"],
                              kv_lora_rank=shape["kv_lora_rank"], qk_nope_head_dim=shape["qk_nope_head_dim"],
                              qk_rope_head_dim=shape["qk_rope_head_dim"], v_head_dim=shape["v_head_dim"],
                              num_hidden_layers=1, max_position_embeddings=2560, rope_parameters=dict(TINY_ROPE),
                              rope_interleave=rope_interleave, attn_implementation="eager")
    module = DeepseekV3Attention(config, layer_idx=0).float().eval()
    _randomize(module)
    return module, DeepseekV3RotaryEmbedding(config)


def transformers_figures(kind: str = "v3", *, batch: int = 2, seq: int = 40, prefill: int = 30,
                         rope_interleave: bool = True) -> dict:
    """Max |reference − transformers| over a ``seq``-token prefill without cache (expanded) and
    over ``prefill`` tokens then one absorbed decode step per remaining token (float32)."""
    import torch

    from .reference import MLAReference

    hf, rotary = _hf_attention(kind, rope_interleave)
    ref = MLAReference(**TINY[kind], rope=TINY_ROPE, max_position=2560, rope_interleave=rope_interleave).eval()
    ref.load_state_dict(hf.state_dict())
    torch.manual_seed(1)
    x = torch.randn(batch, seq, ref.hidden)
    pos = torch.arange(seq)
    allowed = pos[None, :] <= pos[:, None]
    additive = torch.zeros(seq, seq).masked_fill(~allowed, float("-inf"))[None, None].expand(batch, 1, seq, seq)
    with torch.no_grad():
        cos, sin = rotary(x, pos[None].expand(batch, seq))
        expected, _ = hf(x, position_embeddings=(cos, sin), attention_mask=additive)
        full = ref(x)
        cache = ref.new_cache(batch, torch.float32)
        steps = [ref(x[:, :prefill], 0, cache)]
        modes = {ref.last_mode}
        for t in range(prefill, seq):
            steps.append(ref(x[:, t:t + 1], t, cache))
            modes.add(ref.last_mode)
        decoded = torch.cat(steps, dim=1)
    return {"prefill": float((full - expected).abs().max()), "decode": float((decoded - expected).abs().max()),
            "scale": float(expected.abs().max()), "modes": sorted(modes)}


def absorbed_figures(kind: str = "v3", *, batch: int = 2, seq: int = 24) -> dict:
    """Max |absorbed − expanded| of one module over a full causal prefill (float64)."""
    import torch

    ref = _tiny_reference(kind, torch.float64)
    torch.manual_seed(2)
    x = torch.randn(batch, seq, ref.hidden, dtype=torch.float64)
    with torch.no_grad():
        expanded, absorbed = ref(x, mode="expanded"), ref(x, mode="absorbed")
    return {"error": float((expanded - absorbed).abs().max()), "scale": float(expanded.abs().max())}


def tp_figures(kind: str, tp: int, *, batch: int = 2, seq: int = 20) -> dict:
    """Max |Σ_r rank_r(x) − full(x)| over a prefill and a decode step; whether every rank's
    latent cache equals the full module's (replicated)."""
    import torch

    ref = _tiny_reference(kind)
    torch.manual_seed(3)
    x = torch.randn(batch, seq + 1, ref.hidden)
    shards = [ref.shard(r, tp) for r in range(tp)]
    with torch.no_grad():
        cache = ref.new_cache(batch)
        full = torch.cat([ref(x[:, :seq], 0, cache), ref(x[:, seq:], seq, cache)], dim=1)
        caches = [s.new_cache(batch) for s in shards]
        parts = [torch.cat([s(x[:, :seq], 0, c), s(x[:, seq:], seq, c)], dim=1) for s, c in zip(shards, caches)]
    return {"error": float((sum(parts) - full).abs().max()), "scale": float(full.abs().max()),
            "replicated": all(torch.equal(c.latent, cache.latent) for c in caches)}


def _module_flops(counter) -> dict[str, int]:
    counts = counter.get_flop_counts()
    out = {}
    for key, ops in counts.items():
        name = key.rsplit(".", 1)[-1]
        if "." in key and name in ("q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"):
            out[name] = int(sum(ops.values()))
    return out


def flop_figures(layer, config, *, tp: int, batch: int, new_tokens: int, cached: int, seed: int = 0) -> dict:
    """Measured (torch, rank 0 of tp built with heads/tp heads) and analytic figures of a step:
    decode compares the whole matmul_flops with FlopCounterMode's total; prefill the GEMMs by
    module and the attention term 2·(dqk + dv)·hl·pairs with pairs = allowed mask entries ×
    batch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .reference import from_layer

    hl = layer.heads // tp
    module = from_layer(layer, heads=hl, rope=config.rope_parameters).eval()
    _randomize(module, seed)
    x = torch.randn(batch, cached + new_tokens, layer.hidden)
    with torch.no_grad():
        cache = module.new_cache(batch)
        if cached:
            module(x[:, :cached], 0, cache)
        with FlopCounterMode(display=False) as counter:
            module(x[:, cached:], cached, cache)
    cost = layer.cost(make_step(batch, new_tokens, cached, tp))
    by_module = _module_flops(counter)
    pairs = int(module.last_mask.sum()) * batch
    dqk, dv, r, dr = layer.qk_head_dim, layer.v_head_dim, layer.kv_lora_rank, layer.qk_rope_head_dim
    if new_tokens == 1:
        measured = {"mode": module.last_mode, "matmul_flops": int(counter.get_total_flops()),
                    "kv_b_expand": by_module.get("kv_b_proj", 0)}
        analytic = {"mode": "absorbed", "matmul_flops": int(cost.matmul_flops), "kv_b_expand": 0}
        measured["pairs"], analytic["pairs"] = pairs, int(cost.attention_flops) // (2 * (2 * r + dr) * hl)
    else:
        gemm = sum(by_module.values())
        measured = {"mode": module.last_mode, "gemm_flops": gemm,
                    "matmul_flops": gemm + 2 * (dqk + dv) * hl * pairs}
        analytic = {"mode": "expanded", "gemm_flops": int(cost.matmul_flops - cost.attention_flops),
                    "matmul_flops": int(cost.matmul_flops)}
    return {"measured": measured, "analytic": analytic}


def byte_figures(layer, config, *, tp: int, batch: int, context: int, meta: bool = False) -> dict:
    """Measured and analytic: the full module's numel (and bf16 nbytes, unless ``meta``),
    rank 0's bf16 nbytes, the latent cache's nbytes after a ``context``-token prefill and after
    the decode step that follows (rank 0; the same as the full module's)."""
    import torch

    from .reference import from_layer

    if meta:
        with torch.device("meta"):
            full = from_layer(layer, dtype=torch.bfloat16)
        measured = {"params": sum(p.numel() for p in full.parameters())}
        analytic = {"params": layer.params()}
    else:
        full = from_layer(layer, dtype=torch.bfloat16, rope=config.rope_parameters)
        measured = {"params": sum(p.numel() for p in full.parameters()),
                    "weight_bytes": sum(p.nbytes for p in full.parameters())}
        analytic = {"params": layer.params(), "weight_bytes": layer.weight_bytes()}
    rank = from_layer(layer, heads=layer.heads // tp, dtype=torch.bfloat16, rope=config.rope_parameters).eval()
    x = torch.randn(batch, context + 1, layer.hidden, dtype=torch.bfloat16)
    with torch.no_grad():
        cache = rank.new_cache(batch)
        rank(x[:, :context], 0, cache)
        after_prefill = cache.nbytes
        rank(x[:, context:], context, cache)
        after_decode = cache.nbytes
    prefill = layer.cost(make_step(batch, context, 0, tp))
    decode = layer.cost(make_step(batch, 1, context, tp))
    measured.update(kv_prefill_bytes=int(after_prefill), kv_decode_bytes=int(after_decode))
    analytic.update(kv_prefill_bytes=int(prefill.kv_cache_bytes), kv_decode_bytes=int(decode.kv_cache_bytes))
    if layer.weight_dtype.name == "bf16":
        measured["weight_bytes_per_device"] = sum(p.nbytes for p in rank.parameters())
        analytic["weight_bytes_per_device"] = int(decode.resident_weight_bytes)
    return {"measured": measured, "analytic": analytic}


TINY_DSA = dict(index_n_heads=8, index_head_dim=16, index_topk=6)


def dsa_transformers_figures(family: str = "deepseek_v32", *, batch: int = 2, seq: int = 24, prefill: int = 16,
                             seed: int = 0) -> dict:
    """Max |DSAReference − transformers| (DeepseekV32Attention or GlmMoeDsaAttention, eager,
    additive causal mask) over a prefill and over prefill + one sparse decode step per token."""
    import torch

    from .reference import DSAReference

    if family == "deepseek_v32":
        from transformers import DeepseekV32Config as Config
        from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32Attention as Attention
        from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32RotaryEmbedding as Rotary
    else:
        from transformers import GlmMoeDsaConfig as Config
        from transformers.models.glm_moe_dsa.modeling_glm_moe_dsa import GlmMoeDsaAttention as Attention
        from transformers.models.glm_moe_dsa.modeling_glm_moe_dsa import GlmMoeDsaRotaryEmbedding as Rotary
    shape = TINY["v3"]
    config = Config(hidden_size=shape["hidden"], num_attention_heads=shape["heads"], num_key_value_heads=shape["heads"],
                    q_lora_rank=shape["q_lora_rank"], kv_lora_rank=shape["kv_lora_rank"],
                    qk_nope_head_dim=shape["qk_nope_head_dim"], qk_rope_head_dim=shape["qk_rope_head_dim"],
                    v_head_dim=shape["v_head_dim"], num_hidden_layers=1, max_position_embeddings=2560,
                    rope_parameters=dict(TINY_ROPE), attn_implementation="eager", **TINY_DSA)
    hf = Attention(config, layer_idx=0).float().eval()
    _randomize(hf, seed)
    ref = DSAReference(**shape, rope=TINY_ROPE, max_position=2560, indexer_interleave=family == "glm_moe_dsa",
                       **TINY_DSA).eval()
    ref.load_state_dict(hf.state_dict())
    torch.manual_seed(seed + 1)
    x = torch.randn(batch, seq, ref.hidden)
    pos = torch.arange(seq)
    additive = torch.zeros(seq, seq).masked_fill(pos[None, :] > pos[:, None], float("-inf"))
    with torch.no_grad():
        cos, sin = Rotary(config)(x, pos[None].expand(batch, seq))
        expected = hf(x, position_embeddings=(cos, sin), attention_mask=additive[None, None].expand(batch, 1, seq, seq),
                      position_ids=pos[None].expand(batch, seq))[0]
        full = ref(x)
        cache = ref.new_cache(batch)
        decoded = torch.cat([ref(x[:, :prefill], 0, cache)] + [ref(x[:, t:t + 1], t, cache) for t in range(prefill, seq)],
                            dim=1)
    return {"prefill": float((full - expected).abs().max()), "decode": float((decoded - expected).abs().max()),
            "scale": float(expected.abs().max())}


def dsa_figures(*, tp: int = 32, topk: int = 16, batch: int = 2, cached: int = 47, seed: int = 0) -> dict:
    """DeepSeek-V3.2's attention at rank 0 of ``tp`` with index_topk lowered to ``topk``:
    measured (torch) and analytic pairs of a ``cached``-token prefill, FLOPs of the decode step
    that follows, and the cache's bytes (float32) after it."""
    import attrs
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .dsa import sparse_pairs
    from .reference import from_layer

    layer, config = attention_layer("deepseek-v3.2")
    layer = attrs.evolve(layer, index_topk=topk)
    module = from_layer(layer, heads=layer.heads // tp, rope=config.rope_parameters).eval()
    _randomize(module, seed)
    x = torch.randn(batch, cached + 1, layer.hidden)
    with torch.no_grad():
        cache = module.new_cache(batch)
        module(x[:, :cached], 0, cache)
        prefill_pairs = int(module.last_mask.sum())
        with FlopCounterMode(display=False) as counter:
            module(x[:, cached:], cached, cache)
    decode = layer.cost(make_step(batch, 1, cached, tp, dtype="fp32"))
    return {"measured": {"prefill_pairs": prefill_pairs, "decode_matmul_flops": int(counter.get_total_flops()),
                         "kv_bytes": int(cache.nbytes)},
            "analytic": {"prefill_pairs": batch * int(sparse_pairs(cached, 0, topk)),
                         "decode_matmul_flops": int(decode.matmul_flops), "kv_bytes": int(decode.kv_cache_bytes)}}


# --- the cases ----------------------------------------------------------------------------

def _compare(label: str, rows: list[tuple[str, dict]]) -> ValidationOutcome:
    bad = [f"{where}: {k} measured {f['measured'][k]} != analytic {f['analytic'][k]}"
           for where, f in rows for k in f["analytic"] if f["measured"][k] != f["analytic"][k]]
    if bad:
        return ValidationOutcome(False, "; ".join(bad))
    return ValidationOutcome(True, f"{label}: {len(rows)} settings equal")


def _numerics_case() -> ValidationOutcome:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
    details, ok = [], True
    for kind in ("v3", "v2-lite"):
        fig = transformers_figures(kind)
        tol = 1e-5 * max(fig["scale"], 1.0)
        ok &= fig["prefill"] <= tol and fig["decode"] <= tol and fig["modes"] == ["absorbed", "expanded"]
        details.append(f"{kind}: prefill (expanded) {fig['prefill']:.1e}, decode (absorbed) {fig['decode']:.1e}")
    return ValidationOutcome(ok, "max |ref - transformers DeepseekV3Attention|: " + "; ".join(details))


def _absorbed_case() -> ValidationOutcome:
    details, ok = [], True
    for kind in ("v3", "v2-lite"):
        fig = absorbed_figures(kind)
        ok &= fig["error"] <= 1e-12 * max(fig["scale"], 1.0)
        details.append(f"{kind} {fig['error']:.1e}")
    return ValidationOutcome(ok, "max |absorbed - expanded| (float64, one state dict): " + ", ".join(details))


def _tp_case() -> ValidationOutcome:
    details, ok = [], True
    for kind in ("v3", "v2-lite"):
        for tp in (2, 4):
            fig = tp_figures(kind, tp)
            ok &= fig["error"] <= 1e-5 * max(fig["scale"], 1.0) and fig["replicated"]
            details.append(f"{kind} tp{tp} {fig['error']:.1e} latent replicated {fig['replicated']}")
    return ValidationOutcome(ok, "rank outputs sum to the full output: " + ", ".join(details))


def _flops_case() -> ValidationOutcome:
    rows = []
    for name, tp in (("deepseek-v3", 32), ("deepseek-v2-lite", 4)):
        layer, config = attention_layer(name)
        for new, cached in ((48, 0), (16, 32), (1, 47)):
            rows.append((f"{name} tp{tp} new{new} cached{cached}",
                         flop_figures(layer, config, tp=tp, batch=2, new_tokens=new, cached=cached)))
    return _compare("FlopCounterMode = analytic (decode absorbed, prefill expanded)", rows)


def _bytes_case() -> ValidationOutcome:
    rows = []
    layer, config = attention_layer("deepseek-v2-lite")
    for tp in (1, 4, 16):
        rows.append((f"deepseek-v2-lite tp{tp}", byte_figures(layer, config, tp=tp, batch=2, context=40)))
    layer, config = attention_layer("deepseek-v3")
    rows.append(("deepseek-v3 tp32", byte_figures(layer, config, tp=32, batch=2, context=40, meta=True)))
    return _compare("params, weight bytes, latent KV bytes (replicated across tp)", rows)


def _dsa_numerics_case() -> ValidationOutcome:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
    details, ok = [], True
    for family in ("deepseek_v32", "glm_moe_dsa"):
        fig = dsa_transformers_figures(family)
        ok &= fig["prefill"] <= 1e-5 * max(fig["scale"], 1.0) and fig["decode"] <= 1e-5 * max(fig["scale"], 1.0)
        details.append(f"{family}: prefill {fig['prefill']:.1e}, decode {fig['decode']:.1e}")
    return ValidationOutcome(ok, f"max |ref - transformers| (index_topk {TINY_DSA['index_topk']}): " + "; ".join(details))


def _dsa_case() -> ValidationOutcome:
    rows = [(f"deepseek-v3.2 tp32 topk{k}", dsa_figures(topk=k)) for k in (16, 2048)]
    return _compare("selected pairs, decode FLOPs, latent + indexer cache bytes", rows)


def _v4_case() -> ValidationOutcome:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
    from .v4_validation import v4_figures

    fig = v4_figures()
    return _compare(f"DeepSeek-V4 vs transformers: {len(fig['analytic'])} figures (pairs, window rows, "
                    "compressed entries, params)", [("tiny deepseek_v4", fig)])


def _v4_flops_case() -> ValidationOutcome:
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return ValidationOutcome(False, "skipped: transformers is not installed", skipped=True)
    from .v4_validation import v4_flop_figures

    fig = v4_flop_figures()
    return _compare(f"DeepSeek-V4 decode FlopCounterMode per module = analytic: {len(fig['analytic'])} figures",
                    [("tiny deepseek_v4", fig)])


VALIDATION_CASES: list[Any] = [
    ValidationCase("mla-v4-decode-flops", _v4_flops_case,
                   "DeepSeek-V4 decode steps: FlopCounterMode per attention / HC module, HC combines, LM head "
                   "= analytic matmul FLOPs (CSA: transformers' dense masked attention accounted)"),
    ValidationCase("mla-v4-pairs-cache-params", _v4_case,
                   "DeepSeek-V4 (sliding, CSA, HCA) = transformers DeepseekV4ForCausalLM: mask pairs per step, "
                   "window rows, compressed entries' bytes, parameter numel"),
    ValidationCase("mla-dsa-numerics", _dsa_numerics_case,
                   "DSA reference = transformers DeepseekV32Attention / GlmMoeDsaAttention, prefill and decode"),
    ValidationCase("mla-dsa-pairs-flops-bytes", _dsa_case,
                   "DeepSeek-V3.2 rank shapes: top-k pairs, decode FlopCounterMode, indexer + latent cache bytes"),
    ValidationCase("mla-numerics", _numerics_case,
                   "reference = transformers DeepseekV3Attention: expanded prefill and absorbed decode, q LoRA or not"),
    ValidationCase("mla-absorbed-equals-expanded", _absorbed_case,
                   "W_UK/W_UV absorbed attention over the latent = expanded attention, one state dict"),
    ValidationCase("mla-tp-shards", _tp_case, "head shards sum to the full output; the latent is replicated"),
    ValidationCase("mla-flops", _flops_case,
                   "FlopCounterMode on DeepSeek-V3 / V2-Lite rank shapes = analytic FLOPs and pairs"),
    ValidationCase("mla-bytes", _bytes_case,
                   "parameter numel/nbytes and latent KV-cache nbytes = analytic at tp 1, 4, 16, 32"),
]
