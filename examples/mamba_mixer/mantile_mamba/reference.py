"""A torch reference of the Mamba mixer (optional extra ``[torch]``; torch is imported inside
the functions, never when the plugin loads).

It runs the recurrence the cost model counts, with the state the cost model charges for: a
convolution state of the last K−1 inputs and an SSM state of N values per channel. The four
projections are ``torch.nn.functional.linear`` calls (what FlopCounterMode counts); the
depthwise convolution and the scan are written with elementwise operations, as the fused
kernels run them, so FlopCounterMode counts exactly the cost model's ``matmul_flops``.
"""

from __future__ import annotations

from typing import Any

from .mixer import MambaMixer

__all__ = ["random_weights", "mixer_forward", "empty_state"]


def random_weights(layer: MambaMixer, *, seed: int = 0, dtype: Any = None) -> dict[str, Any]:
    """Random weights of ``layer`` (unsharded), named as in Hugging Face's MambaMixer."""
    import torch

    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(seed)
    h, i, n, k, r = layer.hidden, layer.intermediate, layer.state, layer.conv_kernel, layer.dt_rank

    def rand(*shape, scale=0.1):
        return (torch.randn(*shape, generator=gen) * scale).to(dtype)

    weights = {
        "in_proj.weight": rand(2 * i, h),
        "conv1d.weight": rand(i, k, scale=0.5),
        "x_proj.weight": rand(r + 2 * n, i),
        "dt_proj.weight": rand(i, r),
        "dt_proj.bias": rand(i),
        "A_log": torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(i, 1).to(dtype),
        "D": torch.ones(i, dtype=dtype),
        "out_proj.weight": rand(h, i),
    }
    if layer.conv_bias:
        weights["conv1d.bias"] = rand(i)
    if layer.use_bias:
        weights["in_proj.bias"] = rand(2 * i)
        weights["out_proj.bias"] = rand(h)
    return weights


def empty_state(layer: MambaMixer, batch: int, dtype: Any = None) -> tuple[Any, Any]:
    """Zero (conv_state [B, I, K−1], ssm_state [B, I, N]): what a new sequence starts with."""
    import torch

    dtype = dtype or torch.float32
    return (torch.zeros(batch, layer.intermediate, layer.conv_kernel - 1, dtype=dtype),
            torch.zeros(batch, layer.intermediate, layer.state, dtype=dtype))


def mixer_forward(layer: MambaMixer, weights: dict[str, Any], x: Any, state: tuple[Any, Any] | None = None):
    """Run ``x`` [B, T, H] through the mixer after ``state`` (None: a new sequence).

    Returns (output [B, T, H], (conv_state, ssm_state)): the state after the T tokens, which
    is all a later step needs.
    """
    import torch
    import torch.nn.functional as F

    batch, tokens, _ = x.shape
    k, n, r = layer.conv_kernel, layer.state, layer.dt_rank
    conv_state, ssm_state = state if state is not None else empty_state(layer, batch, x.dtype)

    xz = F.linear(x, weights["in_proj.weight"], weights.get("in_proj.bias"))
    xs, z = xz.chunk(2, dim=-1)  # [B, T, I] each

    # causal depthwise convolution over the K−1 remembered inputs and the new ones
    window = torch.cat([conv_state.transpose(1, 2), xs], dim=1)  # [B, K−1+T, I]
    conv = weights["conv1d.weight"]  # [I, K]
    u = sum(window[:, j:j + tokens, :] * conv[:, j] for j in range(k))
    if "conv1d.bias" in weights:
        u = u + weights["conv1d.bias"]
    u = F.silu(u)
    new_conv_state = window[:, tokens:, :].transpose(1, 2).contiguous()  # the last K−1 inputs

    dbc = F.linear(u, weights["x_proj.weight"])
    dt_in, b, c = torch.split(dbc, [r, n, n], dim=-1)
    dt = F.softplus(F.linear(dt_in, weights["dt_proj.weight"], weights["dt_proj.bias"]))  # [B, T, I]
    a = -torch.exp(weights["A_log"])  # [I, N], once per load in a real engine

    h = ssm_state
    ys = []
    for t in range(tokens):
        d_a = torch.exp(dt[:, t, :, None] * a)  # [B, I, N]
        d_bx = (dt[:, t, :] * u[:, t, :])[:, :, None] * b[:, t, None, :]
        h = d_a * h + d_bx
        ys.append((h * c[:, t, None, :]).sum(-1) + weights["D"] * u[:, t, :])
    y = torch.stack(ys, dim=1) * F.silu(z)
    out = F.linear(y, weights["out_proj.weight"], weights.get("out_proj.bias"))
    return out, (new_conv_state, h)
