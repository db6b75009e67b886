"""Validation cases ``mantile validate`` runs for the Mamba mixer (torch imported inside)."""

from __future__ import annotations

from mantile_core.install_hints import install_hint
from mantile_core.records import ValidationCase, ValidationOutcome
from mantile_core.workload import Step

from .mixer import MambaMixer

__all__ = ["VALIDATION_CASES", "small_mixer", "counted_matmul_flops"]


def small_mixer(**changes) -> MambaMixer:
    """A mixer small enough to run in milliseconds (H=32, I=64, N=8, K=4, R=4, fp32)."""
    from mantile_core.dtypes import get_dtype

    fields = dict(name="mixer", index=0, hidden=32, intermediate=64, state=8, conv_kernel=4, dt_rank=4,
                  weight_dtype=get_dtype("fp32"), dtype=get_dtype("fp32"))
    return MambaMixer(**{**fields, **changes})


def counted_matmul_flops(layer: MambaMixer, batch: int, tokens: int, state=None) -> int:
    """FLOPs torch's FlopCounterMode counts for one reference forward of ``tokens`` tokens."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .reference import mixer_forward, random_weights

    weights = random_weights(layer)
    x = torch.randn(batch, tokens, layer.hidden, generator=torch.Generator().manual_seed(1))
    with FlopCounterMode(display=False) as counter:
        mixer_forward(layer, weights, x, state)
    return int(counter.get_total_flops())


def _flops() -> ValidationOutcome:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        return ValidationOutcome(False, f"torch is not installed: {install_hint('mantile-mamba', extra='torch')}", skipped=True)
    layer = small_mixer(use_bias=True)
    checks = []
    for batch, new, cached in ((2, 7, 0), (3, 1, 5)):
        predicted = int(layer.cost(Step(batch=batch, new_tokens=new, cached=cached, act_dtype="fp32")).matmul_flops)
        counted = counted_matmul_flops(layer, batch, new)
        checks.append((predicted == counted, f"B={batch} T={new}: {predicted} predicted, {counted} counted"))
    return ValidationOutcome(all(ok for ok, _ in checks), "; ".join(text for _, text in checks))


def _state() -> ValidationOutcome:
    try:
        import torch
    except ModuleNotFoundError:
        return ValidationOutcome(False, f"torch is not installed: {install_hint('mantile-mamba', extra='torch')}", skipped=True)
    from .reference import mixer_forward, random_weights

    layer = small_mixer()
    weights = random_weights(layer)
    x = torch.randn(2, 9, layer.hidden, generator=torch.Generator().manual_seed(2))
    whole, _ = mixer_forward(layer, weights, x)
    out, state = mixer_forward(layer, weights, x[:, :5])
    parts = [out]
    for t in range(5, 9):  # decode one token at a time, carrying only the recurrent state
        out, state = mixer_forward(layer, weights, x[:, t:t + 1], state)
        parts.append(out)
    err = float((torch.cat(parts, dim=1) - whole).abs().max())
    held = sum(s.nbytes for s in state)
    predicted = int(layer.cost(Step(batch=2, new_tokens=1, cached=8, act_dtype="fp32", kv_dtype="fp32")).recurrent_state_bytes)
    ok = err < 1e-5 and held == predicted
    return ValidationOutcome(ok, f"prefill 5 + decode 4 vs prefill 9: max abs err {err:.1e} (limit 1e-5); "
                                 f"state {held} bytes held, {predicted} predicted")


VALIDATION_CASES = [
    ValidationCase("mamba-mixer-flops", _flops, "GEMM FLOPs equal FlopCounterMode's count of the torch reference"),
    ValidationCase("mamba-mixer-state", _state, "the K−1 + N recurrent state carries decode exactly; its bytes as predicted"),
]
