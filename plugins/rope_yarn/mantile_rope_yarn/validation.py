"""Validation cases ``mantile validate`` runs for this plugin (torch imported inside each run):

- ``rope-yarn-vs-transformers``: inv_freq (max relative error <= 1e-6) and attention_factor
  (<= 1e-12) against transformers' own yarn initialisation on every variant of
  :data:`YARN_VARIANTS`; skipped when transformers is not installed;
- ``rope-yarn-rotation``: :func:`reference.apply_rotary` on random float32 q/k against the same
  rotation written out in float64 numpy (per pair: ``a·c - b·s``, ``b·c + a·s``);
- ``rope-yarn-relative-position``: q·k after rotation at positions (m, n) equals that at
  (m + t, n + t), and equals ``attention_factor² · q·R(n - m)·k``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from mantile_core.records import ValidationCase, ValidationOutcome

from .yarn import compute_yarn

__all__ = ["YarnVariant", "YARN_VARIANTS", "transformers_yarn", "VALIDATION_CASES"]

INV_FREQ_RTOL = 1e-6


@attrs.frozen
class YarnVariant:
    """A named yarn ``rope`` dict with the ``head_dim`` and ``max_position_embeddings`` of the
    model it comes from."""

    name: str
    rope: dict = attrs.field(hash=False)
    head_dim: int
    max_position_embeddings: int


_GPT_OSS = {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
            "original_max_position_embeddings": 4096, "truncate": False}

YARN_VARIANTS = (
    YarnVariant("gpt-oss", _GPT_OSS, 64, 131072),
    YarnVariant("gpt-oss-truncate", {**_GPT_OSS, "truncate": True}, 64, 131072),
    YarnVariant("qwen", {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                         "original_max_position_embeddings": 32768}, 128, 131072),
    YarnVariant("deepseek-v3", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "beta_fast": 32,
                                "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0,
                                "original_max_position_embeddings": 4096}, 64, 163840),
    YarnVariant("mscale-ratio", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "mscale": 1.0,
                                 "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096}, 64, 163840),
    YarnVariant("explicit-attention-factor", {"rope_type": "yarn", "rope_theta": 500000.0, "factor": 8.0,
                                              "attention_factor": 1.0, "original_max_position_embeddings": 8192},
                128, 65536),
    YarnVariant("partial-rotary", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                   "partial_rotary_factor": 0.5, "original_max_position_embeddings": 4096},
                128, 16384),
    YarnVariant("factor-from-lengths", {"rope_type": "yarn", "rope_theta": 1000000.0,
                                        "original_max_position_embeddings": 4096}, 128, 65536),
    YarnVariant("factor-one", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 1.0,
                               "original_max_position_embeddings": 4096}, 64, 4096),
    YarnVariant("beta-equal", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 16.0, "beta_fast": 4.0,
                               "beta_slow": 4.0, "truncate": False,
                               "original_max_position_embeddings": 2048}, 64, 32768),
    YarnVariant("range-clamped-low", {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                                      "original_max_position_embeddings": 100}, 64, 800),
    YarnVariant("range-clamped-high", {"rope_type": "yarn", "rope_theta": 500.0, "factor": 8.0,
                                       "original_max_position_embeddings": 10000000}, 64, 80000000),
)


def transformers_yarn(rope: dict, head_dim: int, max_position_embeddings: int) -> tuple[Any, float] | None:
    """(inv_freq as float64 numpy, attention_factor) from the installed transformers' yarn
    initialisation, or None when transformers (or its yarn function) is not available."""
    try:
        import transformers
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    except ImportError:
        return None
    init = ROPE_INIT_FUNCTIONS.get("yarn")
    if init is None:
        return None
    params = dict(rope)
    params.setdefault("factor", None)  # transformers reads the key; None means "derive it"
    params.setdefault("rope_theta", 10000.0)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its warnings about factor=None / key checks are expected here
    try:
        config = transformers.PretrainedConfig()
        config.hidden_size = head_dim
        config.num_attention_heads = 1
        config.head_dim = head_dim
        config.max_position_embeddings = max_position_embeddings
        if hasattr(config, "standardize_rope_params"):  # transformers >= 5: rope_parameters
            config.rope_parameters = params
        else:  # transformers 4.x reads rope_scaling, rope_theta, partial_rotary_factor
            config.rope_scaling = params
            config.rope_theta = params["rope_theta"]
            if "partial_rotary_factor" in params:
                config.partial_rotary_factor = params["partial_rotary_factor"]
        inv_freq, attention_factor = init(config, None)
    finally:
        hf_logging.set_verbosity(verbosity)
    return inv_freq.detach().double().cpu().numpy(), float(attention_factor)


def _vs_transformers() -> ValidationOutcome:
    import numpy

    worst: list[str] = []
    failed: list[str] = []
    for variant in YARN_VARIANTS:
        ref = transformers_yarn(variant.rope, variant.head_dim, variant.max_position_embeddings)
        if ref is None:
            return ValidationOutcome(False, "skipped: transformers (with a yarn rope init) is not installed",
                                     skipped=True)
        ours = compute_yarn(variant.rope, variant.head_dim, variant.max_position_embeddings)
        inv_ref, af_ref = ref
        if inv_ref.shape != ours.inv_freq.shape:
            failed.append(f"{variant.name}: shape {ours.inv_freq.shape} vs {inv_ref.shape}")
            continue
        rel = float(numpy.max(numpy.abs(ours.inv_freq - inv_ref) / numpy.abs(inv_ref)))
        af_err = abs(ours.attention_factor - af_ref)
        worst.append(f"{variant.name} {rel:.1e}")
        if rel > INV_FREQ_RTOL or af_err > 1e-12:
            failed.append(f"{variant.name}: inv_freq rel err {rel:.2e}, attention_factor "
                          f"{ours.attention_factor!r} vs {af_ref!r}")
    if failed:
        return ValidationOutcome(False, "; ".join(failed))
    return ValidationOutcome(True, f"{len(YARN_VARIANTS)} variants, max inv_freq rel err: " + ", ".join(worst))


def _rotation() -> ValidationOutcome:
    import numpy
    import torch

    from .reference import apply_rotary, rope_cos_sin

    result = compute_yarn(YARN_VARIANTS[0].rope, 64, 131072)
    positions = numpy.array([0, 1, 2, 7, 127, 128, 4095, 4096, 65535, 131071])
    cos, sin = rope_cos_sin(result.inv_freq, result.attention_factor, positions, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for heads in (64, 8):  # q and k heads of GPT-OSS
        x = torch.randn(2, heads, len(positions), 64, generator=gen, dtype=torch.float32)
        got = apply_rotary(x, cos, sin).double().numpy()
        xs = x.double().numpy()
        ang = positions[:, None].astype(numpy.float64) * result.inv_freq[None, :]
        c, s = numpy.cos(ang) * result.attention_factor, numpy.sin(ang) * result.attention_factor
        a, b = xs[..., :32], xs[..., 32:]
        want = numpy.concatenate([a * c - b * s, b * c + a * s], axis=-1)
        worst = max(worst, float(numpy.max(numpy.abs(got - want))))
    ok = worst <= 1e-5
    return ValidationOutcome(ok, f"GPT-OSS q/k rotation vs float64: max abs err {worst:.2e} (limit 1e-5)")


def _relative_position() -> ValidationOutcome:
    import torch

    from .reference import apply_rotary, rope_cos_sin

    result = compute_yarn(YARN_VARIANTS[0].rope, 64, 131072)
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, 1, 1, 64, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 64, generator=gen, dtype=torch.float64)

    def score(m: int, n: int) -> float:
        cq, sq = rope_cos_sin(result.inv_freq, result.attention_factor, [m], dtype=torch.float64)
        ck, sk = rope_cos_sin(result.inv_freq, result.attention_factor, [n], dtype=torch.float64)
        return float((apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum())

    worst = 0.0
    for m, n in ((0, 0), (5, 3), (3, 5), (100, 17), (4000, 4096)):
        base = score(m, n)
        # relative form: attention_factor^2 * q . R(n - m) k, R rotating k by (n - m)
        cr, sr = rope_cos_sin(result.inv_freq, 1.0, [n - m], dtype=torch.float64)
        relative = result.attention_factor ** 2 * float((q * apply_rotary(k, cr, sr)).sum())
        for shift in (1, 1000, 60000):
            worst = max(worst, abs(score(m + shift, n + shift) - base) / max(1.0, abs(base)))
        worst = max(worst, abs(relative - base) / max(1.0, abs(base)))
    ok = worst <= 1e-9 and math.isfinite(worst)
    return ValidationOutcome(ok, f"q.k depends only on n - m: max rel deviation {worst:.1e} (limit 1e-9)")


VALIDATION_CASES = [
    ValidationCase("rope-yarn-vs-transformers", _vs_transformers,
                   "YaRN inv_freq / attention_factor against transformers' yarn init"),
    ValidationCase("rope-yarn-rotation", _rotation, "torch RoPE rotation of q/k against float64"),
    ValidationCase("rope-yarn-relative-position", _relative_position,
                   "rotated q.k depends only on the position offset"),
]
