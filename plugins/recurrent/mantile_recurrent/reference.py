"""Torch references of the recurrent mixers (optional extra ``[torch]``; torch is imported
inside the functions, never when the plugin loads).

Each mixer runs in the two forms the cost model counts: a one-token step uses the recurrent
update (elementwise: FlopCounterMode counts only the projections), a longer step the chunked
scan written with matmuls (einsum / ``@``: FlopCounterMode counts exactly the GEMMs of the
module docstrings of :mod:`.mamba2` and :mod:`.deltanet`). Both carry the same state: a
convolution state of the last K−1 conv inputs and the SSM / delta state. Weights are named as
in transformers' modules (Mamba2Mixer, Qwen3_5GatedDeltaNet), so the numerics can be compared
with them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mamba1_weights", "mamba1_forward", "mamba2_weights", "mamba2_forward", "deltanet_weights", "deltanet_forward", "causal_conv",
           "ssd_chunked", "ssd_step", "delta_chunked", "delta_step"]


def _rand(gen, *shape, scale=0.1, dtype=None):
    import torch

    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype or torch.float64)


def causal_conv(x, conv_state, weight, bias):
    """Depthwise causal conv over [B, T, C] after ``conv_state`` [B, C, K−1]; SiLU; returns
    (output [B, T, C], new conv state: the last K−1 inputs)."""
    import torch
    import torch.nn.functional as F

    tokens, kernel = x.shape[1], weight.shape[-1]
    window = torch.cat([conv_state.transpose(1, 2), x], dim=1)  # [B, K−1+T, C]
    out = sum(window[:, j:j + tokens, :] * weight[:, j] for j in range(kernel))
    if bias is not None:
        out = out + bias
    return F.silu(out), window[:, tokens:, :].transpose(1, 2).contiguous()


# --- Mamba-1 ---------------------------------------------------------------------------------
def mamba1_weights(layer, *, seed: int = 0) -> dict[str, Any]:
    """Random float64 weights of a :class:`~.mamba.Mamba1Mixer`, named as in transformers'
    MambaMixer / FalconMambaMixer / JambaMambaMixer (Jamba adds dt/b/c_layernorm weights)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    h, i, n, r = layer.hidden, layer.intermediate, layer.state, layer.dt_rank
    weights = {
        "in_proj.weight": _rand(gen, 2 * i, h),
        "conv1d.weight": _rand(gen, i, layer.conv_kernel, scale=0.5),
        "x_proj.weight": _rand(gen, r + 2 * n, i),
        "dt_proj.weight": _rand(gen, i, r),
        "dt_proj.bias": _rand(gen, i),
        "A_log": torch.log(torch.arange(1, n + 1, dtype=torch.float64)).repeat(i, 1),
        "D": torch.ones(i, dtype=torch.float64),
        "out_proj.weight": _rand(gen, h, i),
    }
    if layer.conv_bias:
        weights["conv1d.bias"] = _rand(gen, i)
    if layer.use_bias:
        weights["in_proj.bias"] = _rand(gen, 2 * i)
        weights["out_proj.bias"] = _rand(gen, h)
    if layer.bcdt_norm == "weighted":
        weights.update({"dt_layernorm.weight": 1.0 + _rand(gen, r), "b_layernorm.weight": 1.0 + _rand(gen, n),
                        "c_layernorm.weight": 1.0 + _rand(gen, n)})
    return weights


def mamba1_forward(layer, weights, x, state=None, eps: float = 1e-6):
    """Run x [B, T, H] through the Mamba-1 mixer after ``state`` (conv [B, I, K−1], SSM
    [B, I, N]; None: a new sequence). The scan is elementwise (no chunked form), so prefill
    and decode share it. Returns (out, state)."""
    import torch
    import torch.nn.functional as F

    batch, tokens, _ = x.shape
    i, n, r = layer.intermediate, layer.state, layer.dt_rank
    if state is None:
        state = (torch.zeros(batch, i, layer.conv_kernel - 1, dtype=torch.float64),
                 torch.zeros(batch, i, n, dtype=torch.float64))
    conv_state, h = state
    xs, z = F.linear(x, weights["in_proj.weight"], weights.get("in_proj.bias")).chunk(2, dim=-1)
    u, conv_state = causal_conv(xs, conv_state, weights["conv1d.weight"], weights.get("conv1d.bias"))
    dt, b, c = torch.split(F.linear(u, weights["x_proj.weight"]), [r, n, n], dim=-1)
    if layer.bcdt_norm:
        def norm(t, key):
            out = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps)
            return out * weights[key] if key in weights else out

        dt, b, c = norm(dt, "dt_layernorm.weight"), norm(b, "b_layernorm.weight"), norm(c, "c_layernorm.weight")
    dt = F.softplus(F.linear(dt, weights["dt_proj.weight"], weights["dt_proj.bias"]))
    a = -torch.exp(weights["A_log"])
    ys = []
    for t in range(tokens):
        h = torch.exp(dt[:, t, :, None] * a) * h + (dt[:, t] * u[:, t])[:, :, None] * b[:, t, None, :]
        ys.append((h * c[:, t, None, :]).sum(-1) + weights["D"] * u[:, t])
    y = torch.stack(ys, dim=1) * F.silu(z)
    return F.linear(y, weights["out_proj.weight"], weights.get("out_proj.bias")), (conv_state, h)


# --- Mamba-2 ---------------------------------------------------------------------------------
def ssd_step(x, dt, a, b, c, state):
    """One recurrent update. x [B, nh, P], dt [B, nh], a [nh], b/c [B, nh, N] (groups already
    expanded to heads), state [B, nh, P, N]; elementwise only. Returns (y [B, nh, P], state)."""
    decay = (dt * a).exp()[..., None, None]
    state = decay * state + (dt[..., None] * x)[..., None] * b[:, :, None, :]
    return (state * c[:, :, None, :]).sum(-1), state


def ssd_chunked(x, dt, a, b, c, state, chunk, heads_per_group):
    """The chunked SSD scan over T tokens. x [B, T, nh, P], dt [B, T, nh], a [nh],
    b/c [B, T, G, N], state [B, nh, P, N]. GEMMs per chunk of L: C·Bᵀ per group (2·L²·N),
    the diagonal block (2·L²·P), chunk state and off-diagonal term (2·L·N·P each) per head."""
    import torch

    tokens = x.shape[1]
    ys = []
    for start in range(0, tokens, chunk):
        end = min(start + chunk, tokens)
        xc, dtc, bc, cc = x[:, start:end], dt[:, start:end], b[:, start:end], c[:, start:end]
        length = end - start
        da = torch.cumsum(dtc * a, dim=1)  # [B, L, nh]
        seg = da[:, :, None, :] - da[:, None, :, :]  # [B, i, j, nh]
        mask = torch.ones(length, length, dtype=torch.bool).tril()
        decay = torch.where(mask[None, :, :, None], seg, torch.tensor(float("-inf"), dtype=seg.dtype)).exp()
        cb = torch.einsum("bign,bjgn->bgij", cc, bc)  # per group: 2·L²·N
        cb = cb.repeat_interleave(heads_per_group, dim=1).permute(0, 2, 3, 1)  # [B, i, j, nh]
        xdt = xc * dtc[..., None]  # [B, L, nh, P]
        y_diag = torch.einsum("bijh,bjhp->bihp", cb * decay, xdt)  # 2·L²·P per head
        bh = bc.repeat_interleave(heads_per_group, dim=2)  # [B, L, nh, N]
        ch = cc.repeat_interleave(heads_per_group, dim=2)
        y_off = torch.einsum("bihn,bhpn->bihp", ch, state) * da.exp()[..., None]  # 2·L·N·P per head
        to_end = (da[:, -1:, :] - da).exp()  # [B, L, nh]
        chunk_state = torch.einsum("bjhn,bjhp->bhpn", bh, xdt * to_end[..., None])  # 2·L·N·P per head
        state = state * da[:, -1, :].exp()[..., None, None] + chunk_state
        ys.append(y_diag + y_off)
    return torch.cat(ys, dim=1), state


def mamba2_weights(layer, *, seed: int = 0) -> dict[str, Any]:
    """Random float64 weights of a :class:`~.mamba2.Mamba2Mixer` (unsharded), named as in
    transformers' Mamba2Mixer (conv1d.weight without its middle dim)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    h, i, nh = layer.hidden, layer.intermediate, layer.heads
    conv = i + 2 * layer.groups * layer.state
    weights = {
        "in_proj.weight": _rand(gen, 2 * i + 2 * layer.groups * layer.state + nh, h),
        "conv1d.weight": _rand(gen, conv, layer.conv_kernel, scale=0.5),
        "dt_bias": _rand(gen, nh),
        "A_log": torch.log(torch.linspace(1.0, 4.0, nh, dtype=torch.float64)),
        "D": torch.ones(nh, dtype=torch.float64),
        "norm.weight": 1.0 + _rand(gen, i),
        "out_proj.weight": _rand(gen, h, i),
    }
    if layer.conv_bias:
        weights["conv1d.bias"] = _rand(gen, conv)
    if layer.use_bias:
        weights["in_proj.bias"] = _rand(gen, 2 * i + 2 * layer.groups * layer.state + nh)
        weights["out_proj.bias"] = _rand(gen, h)
    return weights


def mamba2_empty_state(layer, batch: int):
    """Zero (conv_state [B, conv_dim, K−1], ssm_state [B, nh, P, N])."""
    import torch

    conv = layer.intermediate + 2 * layer.groups * layer.state
    return (torch.zeros(batch, conv, layer.conv_kernel - 1, dtype=torch.float64),
            torch.zeros(batch, layer.heads, layer.head_dim, layer.state, dtype=torch.float64))


def mamba2_forward(layer, weights, x, state=None, eps: float = 1e-5):
    """Run x [B, T, H] through the Mamba-2 mixer after ``state`` (None: a new sequence);
    T == 1 takes the recurrent update, T > 1 the chunked scan. Returns (out, state)."""
    import torch
    import torch.nn.functional as F

    batch, tokens, _ = x.shape
    i, g, n, nh, p = layer.intermediate, layer.groups, layer.state, layer.heads, layer.head_dim
    conv_state, ssm_state = state if state is not None else mamba2_empty_state(layer, batch)
    proj = F.linear(x, weights["in_proj.weight"], weights.get("in_proj.bias"))
    z, xbc, dt = torch.split(proj, [i, i + 2 * g * n, nh], dim=-1)
    xbc, conv_state = causal_conv(xbc, conv_state, weights["conv1d.weight"], weights.get("conv1d.bias"))
    xs, b, c = torch.split(xbc, [i, g * n, g * n], dim=-1)
    dt = F.softplus(dt + weights["dt_bias"])
    a = -torch.exp(weights["A_log"])
    xs = xs.reshape(batch, tokens, nh, p)
    b, c = b.reshape(batch, tokens, g, n), c.reshape(batch, tokens, g, n)
    if tokens == 1:
        y, ssm_state = ssd_step(xs[:, 0], dt[:, 0], a, b[:, 0].repeat_interleave(nh // g, dim=1),
                                c[:, 0].repeat_interleave(nh // g, dim=1), ssm_state)
        y = y[:, None]
    else:
        y, ssm_state = ssd_chunked(xs, dt, a, b, c, ssm_state, layer.chunk, nh // g)
    y = (y + xs * weights["D"][:, None]).reshape(batch, tokens, i)
    y = y * F.silu(z)
    grouped = y.reshape(batch, tokens, g, i // g)
    grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + eps)
    y = grouped.reshape(batch, tokens, i) * weights["norm.weight"]
    return F.linear(y, weights["out_proj.weight"], weights.get("out_proj.bias")), (conv_state, ssm_state)


# --- Gated DeltaNet --------------------------------------------------------------------------
def _l2norm(x, eps: float = 1e-6):
    import torch

    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def delta_step(q, k, v, g, beta, state):
    """One recurrent update per value head. q/k [B, Hv, dk] (normalised, q scaled), v [B, Hv,
    dv], g/beta [B, Hv], state [B, Hv, dk, dv]; elementwise only."""
    state = state * g.exp()[..., None, None]
    memory = (state * k[..., None]).sum(-2)  # Sᵀk  [B, Hv, dv]
    delta = (v - memory) * beta[..., None]
    state = state + k[..., None] * delta[..., None, :]
    return (state * q[..., None]).sum(-2), state


def delta_chunked(q, k, v, g, beta, state, chunk):
    """The chunked WY form of the gated delta rule over T tokens (q/k [B, T, Hv, dk], v [B,
    T, Hv, dv], g/beta [B, T, Hv], state [B, Hv, dk, dv]). GEMMs per chunk of L and head:
    (βK)Kᵀ 2L²dk, T(βV) 2L²dv, T(βK·e^g) 2L²dk, W·S 2Ldkdv, QKᵀ 2L²dk, (Qe^g)·S 2Ldkdv,
    (QKᵀ)V' 2L²dv, Kᵀ·V' 2Ldkdv; the unit-lower inverse by forward substitution (elementwise)."""
    import torch

    tokens = q.shape[1]
    outs = []
    q, k, v, g, beta = (t.transpose(1, 2) for t in (q, k, v, g, beta))  # heads before time
    for start in range(0, tokens, chunk):
        end = min(start + chunk, tokens)
        qc, kc, vc, bc = q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], beta[:, :, start:end]
        length = end - start
        gc = torch.cumsum(g[:, :, start:end], dim=-1)  # [B, Hv, L]
        seg = (gc[..., :, None] - gc[..., None, :])
        lower = torch.ones(length, length, dtype=torch.bool).tril(-1)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        neg_inf = torch.tensor(float("-inf"), dtype=seg.dtype)
        strict = torch.where(lower, seg, neg_inf).exp()
        inclusive = torch.where(causal, seg, neg_inf).exp()
        kb = kc * bc[..., None]
        a = -(kb @ kc.transpose(-1, -2)) * strict  # 2·L²·dk
        for row in range(1, length):  # (I − A)⁻¹ by forward substitution, in place
            a[..., row, :row] = a[..., row, :row] + (a[..., row, :row, None] * a[..., :row, :row]).sum(-2)
        t = a + torch.eye(length, dtype=a.dtype)
        u = t @ (vc * bc[..., None])  # 2·L²·dv
        w = t @ (kb * gc.exp()[..., None])  # 2·L²·dk
        v_new = u - w @ state  # 2·L·dk·dv
        attn = (qc @ kc.transpose(-1, -2)) * inclusive  # 2·L²·dk
        out = (qc * gc.exp()[..., None]) @ state + attn @ v_new  # 2·L·dk·dv + 2·L²·dv
        last = gc[..., -1:]
        state = state * last.exp()[..., None] + (kc * (last - gc).exp()[..., None]).transpose(-1, -2) @ v_new
        outs.append(out)
    return torch.cat(outs, dim=2).transpose(1, 2), state


def deltanet_weights(layer, *, seed: int = 0) -> dict[str, Any]:
    """Random float64 weights of a :class:`~.deltanet.GatedDeltaNet`, named as in
    transformers' Qwen3_5GatedDeltaNet (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    h, kd, vd, hv = layer.hidden, layer.key_heads * layer.key_dim, layer.value_heads * layer.value_dim, layer.value_heads
    return {
        "in_proj_qkv.weight": _rand(gen, 2 * kd + vd, h),
        "in_proj_z.weight": _rand(gen, vd, h),
        "in_proj_b.weight": _rand(gen, hv, h),
        "in_proj_a.weight": _rand(gen, hv, h),
        "conv1d.weight": _rand(gen, 2 * kd + vd, layer.conv_kernel, scale=0.5),
        "dt_bias": 1.0 + _rand(gen, hv),
        "A_log": torch.log(torch.linspace(0.5, 4.0, hv, dtype=torch.float64)),
        "norm.weight": 1.0 + _rand(gen, layer.value_dim),
        "out_proj.weight": _rand(gen, h, vd),
    }


def deltanet_empty_state(layer, batch: int):
    """Zero (conv_state [B, conv_dim, K−1], delta state [B, Hv, dk, dv])."""
    import torch

    conv = 2 * layer.key_heads * layer.key_dim + layer.value_heads * layer.value_dim
    return (torch.zeros(batch, conv, layer.conv_kernel - 1, dtype=torch.float64),
            torch.zeros(batch, layer.value_heads, layer.key_dim, layer.value_dim, dtype=torch.float64))


def deltanet_forward(layer, weights, x, state=None, eps: float = 1e-6):
    """Run x [B, T, H] through Gated DeltaNet after ``state``; T == 1 takes the recurrent
    update, T > 1 the chunked form. Returns (out, state)."""
    import torch
    import torch.nn.functional as F

    batch, tokens, _ = x.shape
    hk, hv, dk, dv = layer.key_heads, layer.value_heads, layer.key_dim, layer.value_dim
    conv_state, delta_state = state if state is not None else deltanet_empty_state(layer, batch)
    qkv = F.linear(x, weights["in_proj_qkv.weight"])
    z = F.linear(x, weights["in_proj_z.weight"]).reshape(batch, tokens, hv, dv)
    beta = F.linear(x, weights["in_proj_b.weight"]).sigmoid()
    g = -weights["A_log"].exp() * F.softplus(F.linear(x, weights["in_proj_a.weight"]) + weights["dt_bias"])
    qkv, conv_state = causal_conv(qkv, conv_state, weights["conv1d.weight"], None)
    q, k, v = torch.split(qkv, [hk * dk, hk * dk, hv * dv], dim=-1)
    q = _l2norm(q.reshape(batch, tokens, hk, dk)) * dk ** -0.5
    k = _l2norm(k.reshape(batch, tokens, hk, dk))
    q, k = q.repeat_interleave(hv // hk, dim=2), k.repeat_interleave(hv // hk, dim=2)
    v = v.reshape(batch, tokens, hv, dv)
    if tokens == 1:
        o, delta_state = delta_step(q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0], delta_state)
        o = o[:, None]
    else:
        o, delta_state = delta_chunked(q, k, v, g, beta, delta_state, layer.chunk)
    o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + eps) * weights["norm.weight"] * F.silu(z)
    out = F.linear(o.reshape(batch, tokens, hv * dv), weights["out_proj.weight"])
    return out, (conv_state, delta_state)
