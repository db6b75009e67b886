"""Validation cases ``mantile validate`` runs for mantile-recurrent (torch imported inside).

- ``*-scan``: the chunked scan of a prompt equals a shorter prefill followed by one-token
  recurrent steps that carry only the state (the state is all a sequence keeps), and the
  bytes of that state, taken from the tensors in the engine's dtypes, equal
  ``recurrent_state_bytes``.
- ``*-flops``: torch's FlopCounterMode counts exactly ``matmul_flops`` for a chunked prefill
  (chunks of uneven length) and a decode step.
- ``*-transformers``: the reference equals transformers' own torch implementation
  (Mamba2Mixer.torch_forward, Qwen3_5GatedDeltaNet) with the same weights.
"""

from __future__ import annotations

from mantile_core.dtypes import get_dtype
from mantile_core.records import ValidationCase, ValidationOutcome
from mantile_core.workload import Step

from .deltanet import GatedDeltaNet
from .mamba import Mamba1Mixer
from .mamba2 import Mamba2Mixer

__all__ = ["VALIDATION_CASES", "small_mamba1", "small_mamba2", "small_deltanet", "counted_matmul_flops", "scan_check"]

TOLERANCE = 1e-9  # float64 references
TRANSFORMERS_TOLERANCE = 1e-5  # relative: transformers runs the decay / norms in float32


def small_mamba1(**changes) -> Mamba1Mixer:
    """H=12, I=24, N=5, K=4, R=3 with Jamba's weighted B/C/Δ norms; bf16 conv and SSM state."""
    fields = dict(name="mamba", index=0, hidden=12, intermediate=24, state=5, conv_kernel=4, dt_rank=3,
                  weight_dtype=get_dtype("bf16"), dtype=get_dtype("bf16"), bcdt_norm="weighted")
    return Mamba1Mixer(**{**fields, **changes})


def small_mamba2(**changes) -> Mamba2Mixer:
    """H=12, 4 heads of P=6 (I=24 = 2H), 2 groups, N=5, K=4, chunk 4 (prompts of 11 make chunks 4, 4, 3);
    bf16 conv state and a float32 SSM state as Nemotron-H declares."""
    fields = dict(name="mixer", index=0, hidden=12, heads=4, head_dim=6, groups=2, state=5, conv_kernel=4, chunk=4,
                  weight_dtype=get_dtype("bf16"), dtype=get_dtype("bf16"), ssm_dtype=get_dtype("fp32"))
    return Mamba2Mixer(**{**fields, **changes})


def small_deltanet(**changes) -> GatedDeltaNet:
    """H=16, 2 key heads, 4 value heads, dk=8, dv=6, K=4, chunk 4; float32 delta state as
    Qwen3.5 declares."""
    fields = dict(name="linear_attn", index=0, hidden=16, key_heads=2, value_heads=4, key_dim=8, value_dim=6,
                  conv_kernel=4, chunk=4, weight_dtype=get_dtype("bf16"), dtype=get_dtype("bf16"),
                  ssm_dtype=get_dtype("fp32"))
    return GatedDeltaNet(**{**fields, **changes})


def _functions(layer):
    from . import reference

    if isinstance(layer, Mamba1Mixer):
        return reference.mamba1_weights, reference.mamba1_forward
    if isinstance(layer, Mamba2Mixer):
        return reference.mamba2_weights, reference.mamba2_forward
    return reference.deltanet_weights, reference.deltanet_forward


def _input(layer, batch, tokens, seed=1):
    import torch

    return torch.randn(batch, tokens, layer.hidden, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def counted_matmul_flops(layer, batch: int, tokens: int, cached: int = 0) -> int:
    """FlopCounterMode's count of one reference step of ``tokens`` tokens after a ``cached``
    token prefix (whose state is computed outside the count)."""
    from torch.utils.flop_counter import FlopCounterMode

    make, forward = _functions(layer)
    weights = make(layer)
    state = forward(layer, weights, _input(layer, batch, cached, seed=3))[1] if cached else None
    with FlopCounterMode(display=False) as counter:
        forward(layer, weights, _input(layer, batch, tokens), state)
    return int(counter.get_total_flops())


def scan_check(layer, batch: int = 2, prompt: int = 11, split: int = 5) -> tuple[float, int, int]:
    """(max abs difference between the chunked prompt and prefill ``split`` + recurrent steps,
    state bytes held by the tensors in the engine's dtypes, bytes predicted)."""
    import torch

    make, forward = _functions(layer)
    weights = make(layer)
    x = _input(layer, batch, prompt)
    whole, whole_state = forward(layer, weights, x)
    out, state = forward(layer, weights, x[:, :split])
    parts = [out]
    for t in range(split, prompt):
        out, state = forward(layer, weights, x[:, t:t + 1], state)
        parts.append(out)
    err = float((torch.cat(parts, dim=1) - whole).abs().max())
    err = max(err, max(float((a - b).abs().max()) for a, b in zip(state, whole_state)))
    conv, ssm = state
    held = conv.to(torch.bfloat16).nbytes + ssm.to(torch.float32 if layer.ssm_dtype else torch.bfloat16).nbytes
    step = Step(batch=batch, new_tokens=1, cached=prompt - 1, act_dtype="bf16", kv_dtype="bf16")
    return err, held, int(layer.cost(step).recurrent_state_bytes)


def _torch_missing() -> ValidationOutcome | None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        from mantile_core.install_hints import install_hint

        return ValidationOutcome(False, f"torch is not installed: {install_hint('mantile-recurrent', extra='torch')}",
                                 skipped=True)
    return None


def _scan(layer_factory):
    def run() -> ValidationOutcome:
        if (missing := _torch_missing()) is not None:
            return missing
        err, held, predicted = scan_check(layer_factory())
        ok = err < TOLERANCE and held == predicted
        return ValidationOutcome(ok, f"prefill 11 (chunks 4+4+3 where the scan is chunked) vs prefill 5 + 6 "
                                     f"recurrent steps: max abs err {err:.1e} (limit {TOLERANCE:.0e}); "
                                     f"state {held} bytes held, {predicted} predicted")
    return run


def _flops(layer_factory):
    def run() -> ValidationOutcome:
        if (missing := _torch_missing()) is not None:
            return missing
        layer = layer_factory()
        checks = []
        for batch, new, cached in ((2, 11, 0), (3, 1, 5), (1, 6, 4)):
            step = Step(batch=batch, new_tokens=new, cached=cached, act_dtype="bf16")
            predicted = int(layer.cost(step).matmul_flops)
            counted = counted_matmul_flops(layer, batch, new, cached)
            checks.append((predicted == counted, f"B={batch} T={new} after {cached}: {predicted} predicted, {counted} counted"))
        return ValidationOutcome(all(ok for ok, _ in checks), "; ".join(text for _, text in checks))
    return run


def _quiet_fallbacks():
    """transformers logs one line per kernel it falls back from; the fallback is what we test."""
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)


def _transformers_mamba1() -> ValidationOutcome:
    if (missing := _torch_missing()) is not None:
        return missing
    try:
        import transformers
    except ModuleNotFoundError:
        return ValidationOutcome(False, "transformers is not installed", skipped=True)
    import torch

    from .reference import mamba1_forward, mamba1_weights

    _quiet_fallbacks()
    results = []
    for norm in ("weightless", "weighted"):
        layer = small_mamba1(bcdt_norm=norm)
        if norm == "weightless":
            config = transformers.FalconMambaConfig(hidden_size=layer.hidden, intermediate_size=layer.intermediate,
                                                    state_size=layer.state, conv_kernel=layer.conv_kernel,
                                                    time_step_rank=layer.dt_rank, num_hidden_layers=1,
                                                    use_mambapy=False)
            falcon = transformers.models.falcon_mamba.modeling_falcon_mamba
            # transformers 5.24 initialises weights its weightless B/C/Δ norms do not have
            theirs = falcon.FalconMambaMixer(config, layer_idx=0, initialize_mixer_weights=False)
            eps, label = config.mixer_rms_eps, "FalconMambaMixer"
        else:
            config = transformers.JambaConfig(hidden_size=layer.hidden, mamba_expand=layer.intermediate // layer.hidden,
                                              mamba_d_state=layer.state, mamba_d_conv=layer.conv_kernel,
                                              mamba_dt_rank=layer.dt_rank, num_hidden_layers=1, num_attention_heads=2,
                                              num_key_value_heads=1, use_mamba_kernels=False, vocab_size=32,
                                              intermediate_size=24, attn_layer_period=1, attn_layer_offset=0,
                                              expert_layer_period=1, expert_layer_offset=0)
            theirs = transformers.models.jamba.modeling_jamba.JambaMambaMixer(config, layer_idx=0)
            eps, label = config.rms_norm_eps, "JambaMambaMixer"
        theirs = theirs.double()
        weights = mamba1_weights(layer)
        with torch.no_grad():
            for name, param in theirs.named_parameters():
                param.copy_(weights[name].reshape(param.shape))
            x = _input(layer, 2, 9)
            expected = theirs(x)
            ours, _ = mamba1_forward(layer, weights, x, eps=eps)
        err = float((ours - expected).abs().max() / expected.abs().max())
        results.append((err < TRANSFORMERS_TOLERANCE, f"{label} vs reference: max relative err {err:.1e}"))
    return ValidationOutcome(all(ok for ok, _ in results), "; ".join(text for _, text in results)
                             + f" (limit {TRANSFORMERS_TOLERANCE:.0e})")


def _transformers_mamba2() -> ValidationOutcome:
    if (missing := _torch_missing()) is not None:
        return missing
    try:
        import transformers
    except ModuleNotFoundError:
        return ValidationOutcome(False, "transformers is not installed", skipped=True)
    import torch

    from .reference import mamba2_forward, mamba2_weights

    _quiet_fallbacks()
    layer = small_mamba2()
    config = transformers.Mamba2Config(hidden_size=layer.hidden, num_heads=layer.heads, head_dim=layer.head_dim,
                                       n_groups=layer.groups, state_size=layer.state, conv_kernel=layer.conv_kernel,
                                       chunk_size=layer.chunk, expand=layer.intermediate // layer.hidden,
                                       use_conv_bias=layer.conv_bias, use_bias=layer.use_bias, num_hidden_layers=1)
    theirs = transformers.models.mamba2.modeling_mamba2.Mamba2Mixer(config, layer_idx=0).double()
    weights = mamba2_weights(layer)
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            value = weights[name]
            param.copy_(value.reshape(param.shape))
        x = _input(layer, 2, 11)
        expected = theirs(x)
        ours, _ = mamba2_forward(layer, weights, x, eps=config.layer_norm_epsilon)
    err = float((ours - expected).abs().max() / expected.abs().max())
    return ValidationOutcome(err < TRANSFORMERS_TOLERANCE, f"transformers Mamba2Mixer vs reference, 2×11 tokens: "
                                                           f"max relative err {err:.1e} (limit {TRANSFORMERS_TOLERANCE:.0e})")


def _transformers_deltanet() -> ValidationOutcome:
    if (missing := _torch_missing()) is not None:
        return missing
    try:
        from transformers.models.qwen3_5 import modeling_qwen3_5
        from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig
    except ModuleNotFoundError:
        return ValidationOutcome(False, "transformers (with qwen3_5) is not installed", skipped=True)
    import torch

    from .reference import deltanet_forward, deltanet_weights

    _quiet_fallbacks()
    layer = small_deltanet()
    config = Qwen3_5TextConfig(hidden_size=layer.hidden, linear_num_key_heads=layer.key_heads,
                               linear_num_value_heads=layer.value_heads, linear_key_head_dim=layer.key_dim,
                               linear_value_head_dim=layer.value_dim, linear_conv_kernel_dim=layer.conv_kernel,
                               num_hidden_layers=1, layer_types=["linear_attention"], num_attention_heads=2,
                               num_key_value_heads=1, head_dim=8, intermediate_size=32, vocab_size=32)
    theirs = modeling_qwen3_5.Qwen3_5GatedDeltaNet(config, layer_idx=0).double()
    weights = deltanet_weights(layer)
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            param.copy_(weights[name].reshape(param.shape))
        x = _input(layer, 2, 70)  # more than transformers' 64-token chunk
        expected = theirs(x)
        ours, _ = deltanet_forward(layer, weights, x, eps=config.rms_norm_eps)
    err = float((ours - expected).abs().max() / expected.abs().max())
    return ValidationOutcome(err < TRANSFORMERS_TOLERANCE, f"transformers Qwen3_5GatedDeltaNet (chunk 64) vs reference "
                                                           f"(chunk 4), 2×70 tokens: max relative err {err:.1e} "
                                                           f"(limit {TRANSFORMERS_TOLERANCE:.0e})")


VALIDATION_CASES = [
    ValidationCase("recurrent-mamba1-scan", _scan(small_mamba1),
                   "Mamba-1 (Jamba norms): prefill equals prefill + recurrent decode; conv + SSM state bytes as predicted"),
    ValidationCase("recurrent-mamba1-flops", _flops(small_mamba1),
                   "Mamba-1: GEMM FLOPs (four projections) equal FlopCounterMode's count"),
    ValidationCase("recurrent-mamba1-transformers", _transformers_mamba1,
                   "Mamba-1: the reference equals transformers' FalconMambaMixer and JambaMambaMixer torch paths"),
    ValidationCase("recurrent-mamba2-scan", _scan(small_mamba2),
                   "Mamba-2: chunked SSD prefill equals prefill + recurrent decode; conv + SSM state bytes as predicted"),
    ValidationCase("recurrent-mamba2-flops", _flops(small_mamba2),
                   "Mamba-2: GEMM FLOPs (projections + chunked SSD) equal FlopCounterMode's count"),
    ValidationCase("recurrent-mamba2-transformers", _transformers_mamba2,
                   "Mamba-2: the reference equals transformers' Mamba2Mixer torch path"),
    ValidationCase("recurrent-deltanet-scan", _scan(small_deltanet),
                   "Gated DeltaNet: chunked prefill equals prefill + recurrent decode; conv + delta state bytes as predicted"),
    ValidationCase("recurrent-deltanet-flops", _flops(small_deltanet),
                   "Gated DeltaNet: GEMM FLOPs (projections + chunked delta rule) equal FlopCounterMode's count"),
    ValidationCase("recurrent-deltanet-transformers", _transformers_deltanet,
                   "Gated DeltaNet: the reference equals transformers' Qwen3_5GatedDeltaNet torch path"),
]
