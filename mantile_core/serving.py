"""Continuous-batching serving model: TTFT, TPOT and throughput per GPU at concurrency B.

In steady state B requests are in flight; each needs one prefill of I tokens and O decode
steps, so on average B/O prefills join every decode step (chunked prefill). Then

- TPOT = decode_step(B) + (B/O) · prefill(1 request),
- TTFT = prefill(1 request) + decode_step(B) (it waits for the step in progress),
- end-to-end = TTFT + (O − 1) · TPOT; throughput per GPU = B·(I+O) / end-to-end / devices,
  output tokens/s per GPU = B·O / end-to-end / devices.
"""

from __future__ import annotations

import attrs

__all__ = ["ServingTimes", "serve"]


@attrs.frozen(eq=False)
class ServingTimes:
    """Per-request latencies in seconds and per-GPU rates in tokens/s."""

    ttft_s: object
    tpot_s: object
    e2e_s: object
    throughput_tok_s_per_gpu: object
    output_tok_s_per_gpu: object


def serve(prefill_request_s, decode_step_s, *, batch, input_len, output_len, devices) -> ServingTimes:
    """Apply the steady-state model above (element-wise on numpy arrays)."""
    tpot = decode_step_s + batch / output_len * prefill_request_s
    ttft = prefill_request_s + decode_step_s
    e2e = ttft + (output_len - 1) * tpot
    return ServingTimes(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        throughput_tok_s_per_gpu=batch * (input_len + output_len) / e2e / devices,
        output_tok_s_per_gpu=batch * output_len / e2e / devices,
    )
