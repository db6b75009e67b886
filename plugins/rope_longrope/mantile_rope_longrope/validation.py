"""``mantile validate`` cases of mantile-rope-longrope (skipped without transformers):

- ``longrope-inv-freq``: inv_freq (short and long) and attention factor = transformers'
  ``_compute_longrope_parameters`` for a Phi-3-128k-shaped config (head_dim 96, L 4096,
  max 131072), float32 rounding;
- ``longrope-rotary-tables``: the reference's cos/sin = transformers' ``Phi3RotaryEmbedding``
  for a forward within the original length (short factors) and one beyond it (long factors),
  and rotating q with them = transformers' ``apply_rotary_pos_emb``.
"""

from __future__ import annotations

from mantile_core.records import ValidationCase, ValidationOutcome

__all__ = ["VALIDATION_CASES"]

HEAD_DIM = 96
HALF = HEAD_DIM // 2
ROPE = {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 4096,
        "short_factor": [1.0 + 0.01 * j for j in range(HALF)], "long_factor": [1.0 + 0.9 * j for j in range(HALF)]}


def _phi3_config():
    from transformers import Phi3Config

    return Phi3Config(hidden_size=HEAD_DIM * 4, num_attention_heads=4, num_key_value_heads=4, intermediate_size=64,
                      num_hidden_layers=1, vocab_size=64, max_position_embeddings=131072,
                      original_max_position_embeddings=4096,
                      rope_parameters={k: (list(v) if isinstance(v, list) else v) for k, v in ROPE.items()})


def _available() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def check_inv_freq() -> ValidationOutcome:
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from .longrope import longrope_inv_freq

    config = _phi3_config()
    worst, ok = 0.0, True
    for seq_len in (None, 4096, 4097, 131072):
        theirs, their_factor = ROPE_INIT_FUNCTIONS["longrope"](config, "cpu", seq_len=seq_len)
        ours = longrope_inv_freq(ROPE, HEAD_DIM, 131072, seq_len)
        err = float((torch.as_tensor(ours.inv_freq, dtype=torch.float32) - theirs).abs().div(theirs).max())
        worst = max(worst, err)
        ok &= err <= 1e-6 and abs(ours.attention_factor - their_factor) <= 1e-12
    return ValidationOutcome(ok, f"max relative inv_freq error {worst:.2g} (short and long), attention factor "
                                 f"{longrope_inv_freq(ROPE, HEAD_DIM, 131072).attention_factor!r}")


def check_tables() -> ValidationOutcome:
    import torch
    from transformers.models.phi3.modeling_phi3 import Phi3RotaryEmbedding, apply_rotary_pos_emb

    from .reference import apply_rotary, longrope_cos_sin

    config = _phi3_config()
    module = Phi3RotaryEmbedding(config)
    x = torch.randn(1, 4, 3, HEAD_DIM, generator=torch.Generator().manual_seed(0))
    worst, lines = 0.0, []
    for positions in ([0, 1, 4095], [10, 5000, 9000]):
        ids = torch.tensor([positions])
        cos, sin = module(x, ids)
        ours_cos, ours_sin = longrope_cos_sin(ROPE, HEAD_DIM, 131072, positions)
        table = max(float((ours_cos - cos[0]).abs().max()), float((ours_sin - sin[0]).abs().max()))
        theirs_q, _ = apply_rotary_pos_emb(x, x, cos, sin)
        ours_q = apply_rotary(x, ours_cos, ours_sin)
        worst = max(worst, table, float((ours_q - theirs_q).abs().max()))
        lines.append(f"positions up to {max(positions)}: table error {table:.2g}")
    # transformers computes the angles in float32: position·2^-24 radians of rounding
    tolerance = 9000 * 2.0 ** -22
    return ValidationOutcome(worst <= tolerance, "; ".join(lines) + f" (tolerance {tolerance:.2g})")


def _guarded(check):
    def run() -> ValidationOutcome:
        if not _available():
            return ValidationOutcome(True, "transformers is not installed", skipped=True)
        return check()

    return run


VALIDATION_CASES = [
    ValidationCase("longrope-inv-freq", _guarded(check_inv_freq),
                   "LongRoPE inv_freq (short / long) and attention factor = transformers"),
    ValidationCase("longrope-rotary-tables", _guarded(check_tables),
                   "cos/sin and rotated q = transformers' Phi3RotaryEmbedding within and beyond the original length"),
]
