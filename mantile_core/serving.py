"""Continuous batching at concurrency C: TTFT, TPOT and throughput per GPU, as a serving
benchmark measures them. Every function works element-wise on numpy arrays.

The load (vLLM's ``benchmark_serving`` and its forks): at most C requests in flight, a new
one sent the moment one finishes; each has I prompt and O output tokens (means). The engine
runs steps. A decode step emits one token for every running request; prompts of newly
arrived requests either join a decode step (``mixed_prefill``: vLLM's chunked prefill,
TensorRT-LLM's in-flight batching) or run in prompt-only steps that go first (ATOM), at
most ``max_batched_tokens`` tokens per step. Inputs, in seconds:

- τ₀ ``decode_step_s``: a decode-only step of C sequences at the mean context I + O/2 (the
  KV read is linear in the context, so the mean step is the step at the mean context);
- Δ ``prefill_extra_s``: the GPU time one more prompt adds to a step (mixed: the mixed step
  minus τ₀, the weights being read anyway; prompt-only: the marginal prompt);
- P ``prefill_request_s``: a step that runs one prompt alone, so F = P − Δ is the part of a
  prompt step that does not grow with its prompts (reading the weights);
- H ``host_floor_s``: the least time a step holding prompt tokens takes when it launches its
  kernels from the host instead of replaying a CUDA graph (0: never host-bound).

A step holding k prompts lasts, beyond what a decode step would, X(k) = max(k·Δ, H − τ₀)
when prompts mix into decode steps, or X(k) = max(F + k·Δ, H) for a prompt-only step.

Steady state (a closed system: requests complete at λ = C / E2E per second):

- m = λ·τ prompts arrive per decode step; a fraction p = 1 − e^(−m) of the steps holds
  prompts, k = m/p of them each (at most the budget's k_max = (budget − C)/I); where k is
  held at k_max the fraction is m/k_max, and at most 1: a step never carries more prompt
  work than its budget, so prompts arriving faster than the steps take them wait in the
  queue (TTFT, W_q below) instead of lengthening every decode step. The mean step while a
  request decodes is τ = τ₀ + min(m/k, 1)·X(k) (k·Δ is the prompts' work, the excess the
  host floor), and TPOT = τ: the benchmark's (E2E − TTFT)/(O − 1) is the mean step a
  request sees. (Without the bound an overloaded τ absorbed the backlog, E2E was then set
  by prompt capacity alone and TPOT = (E2E − TTFT)/(O − 1) fell as a longer decode step
  raised TTFT: TPOT decreasing in the context);
- TTFT = r + h + lag·τ + own + W_q + W_h: the request overhead r (HTTP, scheduling, streaming
  the first token back), the front end's serial work on the prompt h = ``request_token_s`` · I
  (tokenising and processing it in the API server's one thread, so it grows with the prompt),
  the steps already scheduled when it arrives (``schedule_lag_steps``: 1.5 with
  asynchronous scheduling, the rest of the running step plus the one scheduled behind it),
  its own step and W_q waiting for prompt capacity. Its own step holds its prompt and the
  others that arrived during the same step, k' = min(1 + m·(C − 1)/C, k_max) (Poisson
  arrivals of the other C − 1 requests; 1 for C = 1): τ₀ + X(k') mixed, X(k') prompt-only.
  Queued prompts share full steps: the engine serves one in s = (T₀ + X(k_max))/k_max
  (T₀ = τ₀ mixed, 0 prompt-only). For C arrivals spread over a window W, ρ = C·s/W and
  W_q = s/2 · (C·relu(1 − 1/ρ) + min(ρ, √C)): the fluid backlog (C·s − W)/2 of an
  overloaded window plus collisions of random arrivals (ρ·s/2 at light load): what a burst
  of arrivals (a benchmark's wave) waits on average. W_h is the same wait at the front end
  (service h): requests that arrive together are tokenised one after another. In the steady
  state of the closed loop an overloaded queue is not a burst that drains: every request
  waits the whole deficit of the slower of the two, relu(C·max(s, h) − Z) (Z the rest of its
  cycle), plus both queues' collisions s/2·min(ρ, √C), ρ = λ·s (and h's), so a cycle lasts at
  least C·max(s, h) and requests complete no faster than the bottleneck's capacity;
- E2E = TTFT + (O − 1)·τ, solved by damped fixed-point iteration: ``ITERATIONS`` steps, and
  ``MAX_ITERATIONS`` in all where E2E or τ still moved by 1e-8 or more in the last of them;
- throughput per GPU = C·(I + O)/E2E/devices, output tokens per GPU = C·O/E2E/devices.

A benchmark of N prompts (``prompts``; InferenceMAX sends N = 10·C) runs K = N/C waves. The
first C requests arrive together with nothing running: they share prompt-only steps of
B₁ = min(budget, C·I) tokens, k₁ = B₁/I prompts, lasting max(F₁ + k₁·Δ₁, H) (F₁, Δ₁ the
chord of the prompt-only step through 1 and max(k₁, 2) prompts: no decode to overlap, so
nothing here depends on the decode context); the j-th
finishes after ⌈j/k₁⌉ of them, on average (C/k₁ + 1)/2 + relu(1/k₁ − 1)/2 steps (at least
one), after waiting (C − 1)/2 · h on average for the front end to process the
prompts ahead of it. Their first tokens leave over C·s, so the next wave arrives spread over
W₂ = √((C·s)² + (σ·O·τ)²) (σ = ``length_spread``, the output lengths' range over their mean:
0.2/0.9 for lengths uniform in [0.8, 1]·OSL), wave k over
W_k = min(√(max(W_{k−1}, C·s)² + (σ·O·τ)²), E2E), and wave k waits W_q(W_k). TTFT is the
mean over the K waves. The run lasts K·E2E plus the spread of the slots' totals,
√K·σ/√12·O·τ, and never less than K·C·max(s, h) (its N prompts through the slower of the
prompt capacity and the front end), which the throughputs divide by.

Disaggregated serving (``prefill_instances`` = n): prompts run on n prompt-only instances
(P, Δ, H theirs) and reach the decode instance after ``transfer_s``; decode steps are not
slowed (τ = τ₀), a queued prompt takes s/n, and the first wave splits over the instances.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import attrs
import numpy

__all__ = ["ServingTimes", "serve", "phase_serving", "host_floor_seconds", "prefill_extra_seconds", "BENCHMARK_LENGTH_SPREAD",
           "ASYNC_SCHEDULING_LAG", "DEFAULT_BUDGET", "DEFAULT_GRAPH_TOKENS"]

BENCHMARK_LENGTH_SPREAD = 0.2 / 0.9
"""Range over mean of lengths drawn uniform in [0.8, 1]·nominal (random range ratio 0.8)."""

ASYNC_SCHEDULING_LAG = 1.5
"""Steps a new request waits before its prompt runs under asynchronous scheduling: the
residual half of the running step plus the step already scheduled behind it."""

DEFAULT_BUDGET = 8192
"""Tokens per step without an engine profile (vLLM's default max_num_batched_tokens)."""

DEFAULT_GRAPH_TOKENS = 2048
"""Largest step with prompt tokens that replays a CUDA graph without an engine profile."""

ITERATIONS = 40
"""Fixed-point iterations every estimate runs (the measured rows converge within them to 1e-9)."""
MAX_ITERATIONS = 400
"""At most this many: near prompt or front-end saturation the damped iteration contracts
slowly (a 32k-token prompt at 96 % of the GPU still moved TPOT by 0.3 % after 40), so the
elements still moving iterate on, alone."""
CONVERGED = 1e-8
"""Relative change of E2E and τ in one iteration below which an element has converged."""
Num = Any


@attrs.frozen(eq=False)
class ServingTimes:
    """Per-request latencies in seconds and per-GPU rates in tokens/s; ``prefill_share`` is
    the fraction of decode-step time spent on prompts."""

    ttft_s: Num
    tpot_s: Num
    e2e_s: Num
    throughput_tok_s_per_gpu: Num
    output_tok_s_per_gpu: Num
    prefill_share: Num = 0.0


class _ScalarMath:
    """Python-float stand-ins for the numpy functions the serving model uses: with scalar
    inputs (one estimate) the fixed-point iteration runs on floats, about ten times faster
    than numpy scalar calls; arrays (the sweep) go through numpy. Same formulas, one code."""

    maximum = staticmethod(max)
    minimum = staticmethod(min)
    sqrt = staticmethod(math.sqrt)
    expm1 = staticmethod(math.expm1)
    ceil = staticmethod(math.ceil)

    @staticmethod
    def clip(x, low, high):
        return min(max(x, low), high)

    @staticmethod
    def asarray(x, dtype=float):
        return float(x)

    @staticmethod
    def zeros_like(x):
        return 0.0

    @staticmethod
    def max(x):
        return x


def _backend(*values):
    """numpy when any value is an array with dimensions, else the float stand-ins."""
    return numpy if any(numpy.ndim(v) for v in values if v is not None) else _ScalarMath


def _queue_wait(service_s, arrivals, window_s, xp=numpy):
    """Mean wait of ``arrivals`` prompts of ``service_s`` each arriving spread over
    ``window_s``: s/2 · (C·relu(1 − 1/ρ) + min(ρ, √C)), ρ = C·s/W."""
    rho = arrivals * service_s / xp.maximum(window_s, 1e-12)
    backlog = arrivals * xp.maximum(1.0 - 1.0 / xp.maximum(rho, 1e-12), 0.0)
    return 0.5 * service_s * backlog + _collisions(service_s, arrivals, window_s, xp)


def _collisions(service_s, arrivals, window_s, xp=numpy):
    """Wait from random arrivals colliding at a server of ``service_s``: s/2 · min(ρ, √C),
    ρ = C·s/W (``arrivals`` C spread over ``window_s`` W)."""
    rho = arrivals * service_s / xp.maximum(window_s, 1e-12)
    return 0.5 * service_s * xp.minimum(rho, xp.sqrt(arrivals))


def _steady_queue_wait(service_s, front_s, requests, rest_s, e2e_s, xp=numpy):
    """Mean wait in the steady state of a closed loop of ``requests`` clients passing the
    front end (``front_s`` each, serial) and the prompt capacity (``service_s`` each):
    relu(C·max(s, h) − Z) + Σ over both x/2 · min(C·x/E2E, √C), Z = ``rest_s`` the rest of a
    request's cycle. Overloaded (C·max(s, h) > Z), every request waits the bottleneck's whole
    deficit, so the cycle lasts at least C·max(s, h) and requests complete no faster than
    its capacity; light load leaves the collisions of random arrivals, as in
    :func:`_queue_wait`."""
    deficit = xp.maximum(requests * xp.maximum(service_s, front_s) - rest_s, 0.0)
    return deficit + _collisions(service_s, requests, e2e_s, xp) + _collisions(front_s, requests, e2e_s, xp)


def serve(prefill_request_s, decode_step_s, *, batch, input_len, output_len, devices,
          prefill_extra_s=None, max_batched_tokens=None, prompts=None, request_overhead_s=0.0,
          schedule_lag_steps=ASYNC_SCHEDULING_LAG, length_spread=BENCHMARK_LENGTH_SPREAD,
          mixed_prefill=True, host_floor_s=0.0, prefill_instances=None, transfer_s=0.0,
          output_devices=None, prompt_step_s=None, request_token_s=0.0) -> ServingTimes:
    """Apply the model of the module docstring (element-wise on numpy arrays).

    ``prefill_extra_s`` defaults to ``prefill_request_s`` (prompt and decode work simply
    add); ``max_batched_tokens`` None means no token budget; ``prompts`` None is the steady
    state of an endless run, an int N a benchmark of N prompts; ``prefill_instances`` (None:
    aggregated) the number of separate prompt instances of a disaggregated deployment, whose
    KV cache takes ``transfer_s`` to reach the decode instance; ``output_devices`` (default
    ``devices``) divides the output tokens/s (a disaggregated benchmark divides them by the
    decode GPUs only); ``prompt_step_s`` (a callable k -> seconds, or None) the prompt-only
    step holding k prompts that the first wave runs, nothing decoding yet (None: F + k·Δ);
    ``request_token_s`` the front end's serial seconds per prompt token."""
    xp = _backend(prefill_request_s, decode_step_s, batch, input_len, output_len, devices, prefill_extra_s,
                  max_batched_tokens, prompts, host_floor_s, prefill_instances, transfer_s, output_devices,
                  request_overhead_s, schedule_lag_steps, length_spread, request_token_s)
    C = xp.asarray(batch, dtype=float)
    I = xp.asarray(input_len, dtype=float)
    O = xp.asarray(output_len, dtype=float)
    tau0 = xp.asarray(decode_step_s, dtype=float)
    P = xp.asarray(prefill_request_s, dtype=float)
    H = xp.asarray(host_floor_s, dtype=float)
    budget = xp.maximum(C * I if max_batched_tokens is None else xp.asarray(max_batched_tokens, float), 1.0)
    disaggregated = prefill_instances is not None
    instances = xp.asarray(prefill_instances if disaggregated else 1, dtype=float)
    mixed = bool(mixed_prefill) and not disaggregated
    k_max = xp.maximum((budget - (C if mixed else 0.0)) / I, 1.0)
    if callable(prefill_extra_s):  # X(k) given: exact at 1 and at k_max (2 at least), the chord between
        k_far = xp.maximum(k_max, 2.0)
        x_one = xp.asarray(prefill_extra_s(1.0), dtype=float)
        slope = (xp.asarray(prefill_extra_s(k_far), dtype=float) - x_one) / (k_far - 1.0)
        delta = x_one if mixed else slope  # prompt-only: X(k) = F + k·Δ, so Δ is the chord's slope
    else:
        delta = P if prefill_extra_s is None else xp.asarray(prefill_extra_s, dtype=float)
        slope = delta
    fixed = xp.maximum(P - delta, 0.0)  # F: a prompt step's part that does not grow with its prompts

    def extra(k, q):
        """X(k): what a step holding k prompts lasts beyond a decode step."""
        if mixed:
            return xp.maximum(q.delta + (k - 1.0) * q.slope, q.H - q.tau0)
        return xp.maximum(q.fixed + k * q.delta, q.H)

    def own_step(k, q):
        """A request's own prompt step, shared with k − 1 other prompts."""
        if disaggregated:
            return extra(1.0, q) + q.transfer_s
        return q.tau0 + extra(k, q) if mixed else extra(k, q)

    q = SimpleNamespace(C=C, O=O, tau0=tau0, H=H, k_max=k_max, delta=delta, slope=slope, fixed=fixed,
                        transfer_s=transfer_s, request_overhead_s=request_overhead_s,
                        schedule_lag_steps=schedule_lag_steps, length_spread=length_spread, prompts=prompts)
    q.service = ((tau0 if mixed else 0.0) + extra(k_max, q)) / k_max / instances
    own = own_step(1.0, q)

    # the first wave: C prompts at once over the instances, nothing decoding yet, so its
    # prompt-only steps owe nothing to the decode context (F₁ + k·Δ₁, the chord of prompt_step_s)
    per_instance = C / instances
    k_first = xp.maximum(xp.minimum(budget, per_instance * I) / I, 1e-9)
    if callable(prompt_step_s):
        k_far = xp.maximum(k_first, 2.0)
        first_delta = (xp.asarray(prompt_step_s(k_far), dtype=float) - P) / (k_far - 1.0)
        first_fixed = xp.maximum(P - first_delta, 0.0)
    else:
        first_delta, first_fixed = delta, fixed
    first_steps = xp.maximum(1.0, (per_instance / k_first + 1.0) / 2.0
                                + xp.maximum(1.0 / k_first - 1.0, 0.0) / 2.0)
    first_step = xp.maximum(first_fixed + xp.minimum(k_first, per_instance) * first_delta, H)
    # the front end processes one prompt at a time, h = request_token_s · I each: a request
    # waits for those ahead of it (the first wave arrives at once: (C − 1)/2 · h on average)
    q.front = xp.asarray(request_token_s, dtype=float) * I
    q.ttft_first = (request_overhead_s + q.front + (C - 1.0) / 2.0 * q.front + first_steps * first_step
                    + (transfer_s if disaggregated else 0.0))

    def iterate(q, e2e, tau, ttft, own, share, iterations):
        """``iterations`` steps of the damped fixed point of the module docstring; returns the
        state and the last step's relative change of E2E and τ."""
        change = e2e * 0.0 + 1.0  # nothing measured yet
        for _ in range(iterations):
            e2e_before, tau_before = e2e, tau
            lam = q.C / e2e
            if disaggregated:
                tau = q.tau0
            else:
                m = lam * tau
                busy = xp.maximum(-xp.expm1(-m), 1e-12)  # p = 1 − e^(−m)
                k = xp.clip(m / busy, 1.0, q.k_max)
                per_step = xp.minimum(m / k, 1.0)  # a step holds at most k_max prompts
                tau = 0.5 * tau + 0.5 * (q.tau0 + per_step * extra(k, q))
                # a tagged prompt's step also holds the others that arrived with it: Poisson(m)
                # of the other C − 1 requests' share of the arrivals (none when C = 1)
                own = own_step(xp.clip(1.0 + m * (q.C - 1.0) / q.C, 1.0, q.k_max), q)
            share = 1.0 - q.tau0 / tau
            base = q.request_overhead_s + q.front + q.schedule_lag_steps * tau + own
            if q.prompts is None:
                ttft = base + _steady_queue_wait(q.service, q.front, q.C, base + (q.O - 1.0) * tau, e2e, xp)
            else:
                ttft = _benchmark_ttft(q.prompts, q.C, q.O, tau, e2e, q.service, base, q.ttft_first, q.length_spread,
                                       xp, q.front)
            e2e = 0.5 * e2e + 0.5 * (ttft + (q.O - 1.0) * tau)
            change = xp.maximum(abs(e2e / e2e_before - 1.0), abs(tau / tau_before - 1.0))
        return e2e, tau, ttft, own, share, change

    e2e = request_overhead_s + q.front + own + (O - 1.0) * tau0
    state = iterate(q, e2e, tau0, q.ttft_first, own, xp.zeros_like(e2e), ITERATIONS)
    e2e, tau, ttft, own, share, change = state
    # an element still moving after ITERATIONS (near prompt or front-end saturation the iteration
    # contracts slowly) runs the remaining MAX_ITERATIONS − ITERATIONS, alone (a sweep pays only
    # for those), the same number in an estimate and in a sweep, so the two agree
    if xp is numpy:
        shape = numpy.broadcast(e2e, tau, ttft, share).shape
        slow = numpy.broadcast_to(change >= CONVERGED, shape)
        if slow.any():
            at = numpy.nonzero(slow)

            def pick(value):
                return numpy.broadcast_to(value, shape)[at] if numpy.ndim(value) else value

            sub = SimpleNamespace(**{name: pick(v) for name, v in vars(q).items()})
            done = iterate(sub, *(pick(v) for v in state[:5]), MAX_ITERATIONS - ITERATIONS)
            e2e, tau, ttft, share = (numpy.array(numpy.broadcast_to(v, shape)) for v in (e2e, tau, ttft, share))
            for full, part in zip((e2e, tau, ttft, share), (done[0], done[1], done[2], done[4])):
                full[at] = part
    elif change >= CONVERGED:
        e2e, tau, ttft, own, share, change = iterate(q, e2e, tau, ttft, own, share, MAX_ITERATIONS - ITERATIONS)
    e2e = ttft + (O - 1.0) * tau

    if prompts is None:
        cycle = e2e
    else:
        waves = xp.maximum(xp.asarray(prompts, dtype=float) / C, 1.0)
        # the run lasts the waves' spread beyond K·E2E, and never less than its N prompts
        # through the prompt capacity (a wave's cycle at least C·s)
        cycle = xp.maximum(e2e + xp.sqrt(waves) * length_spread / xp.sqrt(12.0) * O * tau / waves,
                           C * xp.maximum(q.service, q.front))
    gpus = xp.asarray(devices, dtype=float)
    out_gpus = gpus if output_devices is None else xp.asarray(output_devices, dtype=float)
    return ServingTimes(
        ttft_s=ttft,
        tpot_s=tau,
        e2e_s=e2e,
        throughput_tok_s_per_gpu=C * (I + O) / cycle / gpus,
        output_tok_s_per_gpu=C * O / cycle / out_gpus,
        prefill_share=share,
    )


def _benchmark_ttft(prompts, C, O, tau, e2e, service, base, ttft_first, length_spread, xp=numpy, front=0.0):
    """Mean TTFT over the K = prompts/C waves of a benchmark (see the module docstring);
    ``front``: a prompt's serial front-end seconds, queued like the prompts' GPU service."""
    waves = xp.maximum(xp.asarray(prompts, dtype=float) / C, 1.0)
    k_max = int(xp.ceil(xp.max(waves)))
    output_spread = length_spread * O * tau
    total = ttft_first + 0.0 * e2e
    departures = C * service
    for k in range(2, k_max + 1):
        window = xp.minimum(xp.sqrt(departures ** 2 + output_spread ** 2), e2e)
        weight = xp.clip(waves - (k - 1), 0.0, 1.0)  # a fractional last wave counts in part
        total = total + weight * (base + _queue_wait(service, C, window, xp) + _queue_wait(front, C, window, xp))
        departures = xp.maximum(window, C * service)
    return total / waves


def prefill_extra_seconds(counts, decode, request_prefill, hw, prompts=1.0):
    """X(k): GPU seconds ``prompts`` = k requests' prompts add to a decode step when they run
    in one step, Σ over distinct layers of count · (mixed layer time − decode layer time)
    (see :func:`mantile_core.timing.mixed_layer_seconds`); Δ = X(1). ``decode`` and
    ``request_prefill`` are phase results (``costs``, ``step``, ``seconds`` aligned with
    ``counts``). X is convex in k: the decode's memory time can hide one step's prompt
    compute once, not once per prompt, so X(k) ≥ k·Δ."""
    from .timing import mixed_layer_seconds

    extra = 0.0
    for n, d_cost, d_time, p_cost in zip(counts, decode.costs, decode.seconds, request_prefill.costs):
        mixed = mixed_layer_seconds(d_cost, decode.step, p_cost, request_prefill.step, hw, prompts)
        extra = extra + n * (mixed - d_time)
    return extra


def prompt_step_seconds(counts, request_prefill, hw, prompts=1.0):
    """Seconds of a prompt-only step holding ``prompts`` = k prompts like ``request_prefill``'s:
    Σ over distinct layers of count · the layer with k prompts' compute and KV / activation
    traffic, its weights read once and its kernels launched once (k = 1: the prompt's step)."""
    from .timing import mixed_layer_seconds

    total = 0.0
    for n, p_cost in zip(counts, request_prefill.costs):
        step = request_prefill.step
        total = total + n * mixed_layer_seconds(p_cost, step, p_cost, step, hw, prompts - 1.0)
    return total


def step_kernels(phase, counts):
    """Kernels one step launches: Σ count · kernels over the distinct layers."""
    return sum(n * c.kernels for n, c in zip(counts, phase.costs))


def host_floor_seconds(kernels, prompt_tokens, graph_tokens, cal):
    """H: a step holding more prompt tokens than the engine's CUDA graphs cover launches its
    ``kernels`` from the host, kernels · ``eager_kernel_overhead`` seconds; 0 otherwise."""
    return numpy.where(prompt_tokens > graph_tokens, kernels * cal.eager_kernel_overhead, 0.0)


def schedule_lag(cal, engine) -> float:
    """Steps a new request waits before its prompt starts: the calibration's fitted value when
    it states one, else the engine profile's (ASYNC_SCHEDULING_LAG without a profile)."""
    if cal.schedule_lag_steps is not None:
        return cal.schedule_lag_steps
    return ASYNC_SCHEDULING_LAG if engine is None else engine.schedule_lag_steps


def phase_serving(phases, hw, *, counts=None, batch, input_len, output_len, devices, engine=None,
                  prompts=None, attention_dp=False) -> ServingTimes:
    """Serving times of a deployment from its costed steps (``phases.decode``,
    ``phases.request_prefill``): τ₀ = decode step + step overhead; P = one prompt's step +
    step overhead; Δ from the mixed step when the engine mixes prompts into decode steps
    (``counts``: layers per distinct layer of the phases; None: Δ = P); the host floor
    H = kernels · ``eager_kernel_overhead`` where a step with prompt tokens exceeds the
    engine's ``graph_max_tokens``; the engine's budget, scheduler and lag; the hardware's
    ``request_overhead``; with ``attention_dp`` its ``attention_dp_wait_steps`` more steps
    of lag. ``engine`` None: 8192-token budget, mixed, lag 1.5, graphs up to 2048 tokens."""
    cal = hw.calibration
    tau0 = phases.decode.seconds_total + cal.step_overhead
    prompt = phases.request_prefill.seconds_total + cal.step_overhead
    mixed = True if engine is None else engine.mixed_prefill
    graph_tokens = DEFAULT_GRAPH_TOKENS if engine is None else engine.graph_max_tokens
    if mixed and counts is not None:
        def delta(k):
            return prefill_extra_seconds(counts, phases.decode, phases.request_prefill, hw, k)
    else:
        delta = prompt
    prompt_step = None
    if counts is not None:
        def prompt_step(k):
            return prompt_step_seconds(counts, phases.request_prefill, hw, k) + cal.step_overhead
        if not mixed:
            delta = prompt_step
    host = 0.0
    if counts is not None and cal.eager_kernel_overhead:
        host = host_floor_seconds(step_kernels(phases.decode, counts), input_len + (batch if mixed else 0),
                                  graph_tokens, cal)
    return serve(prompt, tau0, batch=batch, input_len=input_len, output_len=output_len, devices=devices,
                 prefill_extra_s=delta,
                 max_batched_tokens=DEFAULT_BUDGET if engine is None else engine.max_batched_tokens,
                 prompts=prompts, request_overhead_s=cal.request_overhead,
                 request_token_s=cal.request_token_overhead,
                 schedule_lag_steps=schedule_lag(cal, engine)
                 + numpy.asarray(attention_dp, dtype=float) * cal.attention_dp_wait_steps,
                 mixed_prefill=mixed, host_floor_s=host, prompt_step_s=prompt_step)
