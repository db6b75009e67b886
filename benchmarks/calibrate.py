"""Fit the timing model's per-GPU and per-engine parameters on part of the InferenceMAX rows.

What is fitted (everything else is a datasheet figure, a microbenchmark, a measured kernel
figure from kernels.toml or a documented constant; docs/timing.md explains every value):

- per engine, first (``fit_engines``): ``step_overhead`` (seconds per engine step outside the
  kernels), over every GPU the kernel tables cover, each timed with its kernel figures from the
  tables and the other serving figures at ``ENGINE_DEFAULTS``; it goes to engines.toml
  ``[<engine>.calibration.default]`` and stays fixed while the families below are fitted;
- per GPU: ``memory_efficiency`` (fraction of the HBM bandwidth the decode kernels reach)
  and ``allreduce_latency`` (seconds per all-reduce beyond its bandwidth term);
- per GPU and engine: ``mixed_gemm_efficiency`` (the expert GEMMs with mxfp4 weights
  against bf16 / fp8 activations, relative to a dense GEMM at ``gemm_efficiency`` 0.80, the
  H200's measured 8192³ bf16 product), ``kernel_overhead`` (seconds per kernel beyond its
  roofline time, CUDA-graph replay), ``eager_kernel_overhead`` (host seconds per kernel of a
  prompt step run without a graph), ``request_overhead`` (seconds of TTFT outside the steps),
  ``request_token_overhead`` (the front end's serial seconds per prompt token: tokenising and
  processing the prompt in the API server's one thread; serving.py), ``schedule_lag_steps``
  (steps a new request waits before its prompt starts; NVIDIA engines only: ATOM keeps its
  profile's 0.5), and for TensorRT-LLM ``attention_dp_wait_steps`` (the attention-DP balancer's hold).

Families share what the same silicon shares: H100 and H200 (GH100, NVLink 4) share all but
``memory_efficiency``; the two engines on B200 share the GPU's figures. The reference
engine's values go to ``[<gpu>.calibration]`` in mantile_core/data/hardware.toml (vLLM on
NVIDIA, ATOM on MI355X), another engine's to ``[<engine>.calibration.<gpu>]`` in
mantile_core/data/engines.toml. GB200 (disaggregated rows only) is never fitted: it copies B200.

Rows: the split of :func:`mantile_core.reconcile.split_rows` (seed 0: half of each GPU /
engine group, shuffled, fitted; the other half held out). Loss: mean over fitted rows of the
squared log errors of TPOT, TTFT (weight ½) and throughput per GPU, plus a weak log-normal
prior per parameter (``PARAMS``: bounds and centre) that only settles directions the rows
leave flat. Minimiser: Nelder–Mead in a bounded log space from several seeded starts
(numpy only). Run from the repository root:

    .venv/bin/python benchmarks/calibrate.py                 # every family, split seed 0
    .venv/bin/python benchmarks/calibrate.py --family hopper  # one family
    .venv/bin/python benchmarks/calibrate.py --seed 1         # another split
    .venv/bin/python benchmarks/calibrate.py --all-rows       # no hold-out
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import attrs
import numpy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "inferencemax_gpt-oss-120b.csv"

# parameter -> (lower bound, upper bound, prior centre); values are fitted in log space,
# squeezed into the bounds, with a weak log-normal prior PRIOR_WEIGHT · (ln(p/centre)/ln 2)²
# per parameter, which only decides directions the rows cannot (e.g. kernel overhead against
# all-reduce latency on a GPU measured at TP > 1 only)
PARAMS = {
    "memory_efficiency": (0.4, 0.95, 0.85),
    "mixed_gemm_efficiency": (0.05, 1.0, 0.5),
    "allreduce_latency": (5e-7, 5e-5, 3e-6),
    "kernel_overhead": (2e-7, 2e-5, 4e-6),
    "eager_kernel_overhead": (1e-6, 2e-4, 2e-5),
    "request_overhead": (1e-3, 0.2, 0.02),
    "request_token_overhead": (1e-8, 2e-5, 1e-6),
    "attention_dp_wait_steps": (0.5, 100.0, 10.0),
    # steps a new request waits before its prompt starts: at least the running step's half, at
    # most a few steps; centre vLLM's and TensorRT-LLM's 1.5 under asynchronous scheduling
    "schedule_lag_steps": (0.5, 4.0, 1.5),
}
PRIOR_WEIGHT = 1e-3
# The engine-level figure: ``step_overhead``, seconds per engine step outside the kernels
# (sampling, input preparation, synchronisation that asynchronous scheduling does not hide):
# the engine's host work, whatever the GPU. It is fitted once per engine over every GPU the
# kernel tables cover, each GPU timed with its kernel figures from the tables and the other
# serving figures at ENGINE_DEFAULTS (the no-serving-data setting), and written to engines.toml
# ``[<engine>.calibration.default]``: every GPU gets it under that engine, and the per-GPU
# families are fitted with it in place. (The request figures were tried at engine level too:
# they do not transfer between GPUs. Fitted on Hopper, whose table-timed prompts run 30-40 %
# faster than served ones at TP 1-2, the front end's per-token cost absorbs that deficit and
# B200's TTFT comes out 50 % high; so they stay per GPU family.)
ENGINE_PARAMS = {"step_overhead": (1e-5, 3e-3, 1e-4)}
# the other serving-level figures a GPU without serving rows gets (PARAMS' prior centres)
ENGINE_DEFAULTS = {"request_overhead": 0.02, "request_token_overhead": 1e-6, "eager_kernel_overhead": 2e-5,
                   "attention_dp_wait_steps": 10.0}
# efficiencies whose upper bound comes from the measured kernel tables (kernel_limits)
KERNEL_BOUNDED = ("memory_efficiency", "mixed_gemm_efficiency")
STARTS = 6
WEIGHTS = {"tpot_ms": 1.0, "ttft_ms": 0.5, "throughput_tok_s_per_gpu": 1.0}

# Fit families: GPUs whose shared silicon, interconnect or engine build justify shared
# parameters. Each entry: (parameter, scope label) -> the (hardware, engine) groups it applies to.
HOPPER_VLLM = (("h100", "vllm"), ("h200", "vllm"))
B200_BOTH = (("b200", "vllm"), ("b200", "trtllm"))
FAMILIES = {
    "hopper": {
        ("memory_efficiency", "h100"): (("h100", "vllm"),),
        ("memory_efficiency", "h200"): (("h200", "vllm"),),
        ("mixed_gemm_efficiency", "hopper vllm"): HOPPER_VLLM,
        ("allreduce_latency", "hopper"): HOPPER_VLLM,
        ("kernel_overhead", "hopper vllm"): HOPPER_VLLM,
        ("eager_kernel_overhead", "hopper vllm"): HOPPER_VLLM,
        ("request_overhead", "hopper vllm"): HOPPER_VLLM,
        ("request_token_overhead", "hopper vllm"): HOPPER_VLLM,
        ("schedule_lag_steps", "hopper vllm"): HOPPER_VLLM,
    },
    "b200": {
        ("memory_efficiency", "b200"): B200_BOTH,
        ("allreduce_latency", "b200"): B200_BOTH,
        ("mixed_gemm_efficiency", "b200 vllm"): (("b200", "vllm"),),
        ("kernel_overhead", "b200 vllm"): (("b200", "vllm"),),
        ("eager_kernel_overhead", "b200 vllm"): (("b200", "vllm"),),
        ("request_overhead", "b200 vllm"): (("b200", "vllm"),),
        ("request_token_overhead", "b200 vllm"): (("b200", "vllm"),),
        ("schedule_lag_steps", "b200 vllm"): (("b200", "vllm"),),
        ("mixed_gemm_efficiency", "b200 trtllm"): (("b200", "trtllm"),),
        ("kernel_overhead", "b200 trtllm"): (("b200", "trtllm"),),
        ("eager_kernel_overhead", "b200 trtllm"): (("b200", "trtllm"),),
        ("request_overhead", "b200 trtllm"): (("b200", "trtllm"),),
        ("request_token_overhead", "b200 trtllm"): (("b200", "trtllm"),),
        ("schedule_lag_steps", "b200 trtllm"): (("b200", "trtllm"),),
        ("attention_dp_wait_steps", "b200 trtllm"): (("b200", "trtllm"),),
    },
    "mi355x": {
        ("memory_efficiency", "mi355x"): (("mi355x", "atom"),),
        ("mixed_gemm_efficiency", "mi355x atom"): (("mi355x", "atom"),),
        ("allreduce_latency", "mi355x"): (("mi355x", "atom"),),
        ("kernel_overhead", "mi355x atom"): (("mi355x", "atom"),),
        ("eager_kernel_overhead", "mi355x atom"): (("mi355x", "atom"),),
        ("request_overhead", "mi355x atom"): (("mi355x", "atom"),),
        ("request_token_overhead", "mi355x atom"): (("mi355x", "atom"),),
    },
}


class Group:
    """The rows of one (GPU, engine): costed once, re-timed under any calibration with one
    vectorised pass (each LayerCost field stacked into a numpy array over the rows)."""

    def __init__(self, measurements, model):
        from mantile_core.engines import get_engine
        from mantile_core.estimate import estimate
        from mantile_core.reconcile import PROMPTS_PER_CONCURRENCY, _deployment, mean_length
        from mantile_core.workload import LayerCost

        self.rows = list(measurements)
        first = self.rows[0]
        self.hardware, self.engine_name = first.hardware, first.engine
        self.engine = get_engine(first.engine)
        deployments = [_deployment(m) for m in self.rows]
        self.I = numpy.array([mean_length(m.isl) for m in self.rows], dtype=float)
        self.O = numpy.array([mean_length(m.osl) for m in self.rows], dtype=float)
        self.C = numpy.array([m.concurrency for m in self.rows], dtype=float)
        self.prompts = PROMPTS_PER_CONCURRENCY * self.C
        self.tp = numpy.array([d["tp"] for d in deployments], dtype=float)
        estimates = [estimate(model, m.hardware, tp=d["tp"], ep=d["ep"], batch=m.concurrency,
                              input_len=mean_length(m.isl), output_len=mean_length(m.osl), engine=m.engine)
                     for m, d in zip(self.rows, deployments)]
        self.attention_dp = numpy.array([d["attention_dp"] for d in deployments])
        self.base_hw = estimates[0].hardware
        self.counts = tuple(len(p) for _, p in model.unique_layers)
        # every numeric field of a LayerCost (all but its format), so that no term is lost
        fields = tuple(f.name for f in attrs.fields(LayerCost) if f.name != "gemm_dtype")
        self.phases = {}
        for phase in ("decode", "request_prefill"):
            costs = []
            for i in range(len(self.counts)):
                per_row = [getattr(e, phase).costs[i] for e in estimates]
                stacked = {f: numpy.array([float(getattr(c, f)) for c in per_row]) for f in fields}
                costs.append(LayerCost(**stacked, gemm_dtype=per_row[0].gemm_dtype))
            self.phases[phase] = SimpleNamespace(step=SimpleNamespace(tp=self.tp, dp=1), costs=tuple(costs))
        self.measured = {k: numpy.array([m.measured(k) for m in self.rows]) for k in
                         ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu", "output_tok_s_per_gpu")}

    def _retime(self, phase, hw):
        from mantile_core.timing import layer_seconds

        seconds = tuple(layer_seconds(c, phase.step, hw) for c in phase.costs)
        total = sum(n * t for n, t in zip(self.counts, seconds))
        return SimpleNamespace(step=phase.step, costs=phase.costs, seconds=seconds, seconds_total=total)

    def predict(self, calibration) -> dict[str, numpy.ndarray]:
        """Predicted metrics (arrays over the rows) under ``calibration``."""
        from mantile_core.serving import phase_serving

        hw = attrs.evolve(self.base_hw, calibration=calibration)
        phases = SimpleNamespace(decode=self._retime(self.phases["decode"], hw),
                                 request_prefill=self._retime(self.phases["request_prefill"], hw))
        s = phase_serving(phases, hw, counts=self.counts, batch=self.C, input_len=self.I, output_len=self.O,
                          devices=self.tp, engine=self.engine, prompts=self.prompts, attention_dp=self.attention_dp)
        return {"tpot_ms": s.tpot_s * 1e3, "ttft_ms": s.ttft_s * 1e3,
                "throughput_tok_s_per_gpu": s.throughput_tok_s_per_gpu,
                "output_tok_s_per_gpu": s.output_tok_s_per_gpu}


def nelder_mead(f, x0, *, step=0.3, iterations=600, tol=1e-7):
    """Minimise f over R^n from x0 (simplex of side ``step``); returns (x, f(x))."""
    n = len(x0)
    simplex = [numpy.array(x0, dtype=float)]
    for i in range(n):
        x = numpy.array(x0, dtype=float)
        x[i] += step
        simplex.append(x)
    values = [f(x) for x in simplex]
    for _ in range(iterations):
        order = numpy.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < tol:
            break
        centroid = numpy.mean(simplex[:-1], axis=0)
        worst = simplex[-1]
        reflected = centroid + (centroid - worst)
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2 * (centroid - worst)
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (worst - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                best = simplex[0]
                simplex = [best + 0.5 * (x - best) for x in simplex]
                values = [f(x) for x in simplex]
    i = int(numpy.argmin(values))
    return simplex[i], values[i]


def unpack(names, bounds, z) -> dict:
    """The parameter values of the optimiser's unbounded point ``z``: each squeezed into its
    (lower, upper) bound in log space by a logistic."""
    values = {}
    for name, (lo, hi), zi in zip(names, bounds, z):
        llo, lhi = math.log(lo), math.log(hi)
        values[name] = math.exp(llo + (lhi - llo) / (1 + math.exp(-zi)))
    return values


def fit_loss(fits, values: dict, centres: dict) -> float:
    """The fit's loss: the mean over the fitted rows of the squared log errors (``WEIGHTS``)
    of each (group, mask of fitted rows, calibration) in ``fits``, plus the weak log-normal
    prior of ``values`` around ``centres``."""
    total, n = 0.0, 0
    for group, mask, calibration in fits:
        pred = group.predict(calibration)
        for metric, w in WEIGHTS.items():
            err = numpy.log(pred[metric][mask] / group.measured[metric][mask])
            total += w * float(numpy.sum(err ** 2))
        n += int(mask.sum())
    prior = sum(PRIOR_WEIGHT * (math.log(values[name] / centres[name]) / math.log(2)) ** 2 for name in values)
    return total / max(n, 1) + prior


def fit_family(family: dict, groups: dict, *, fitted_keys=None, verbose=True):
    """Fit one family's parameters on the fitted rows of its groups ({(hw, engine): Group});
    returns ({(param, scope): value}, loss)."""
    names = list(family)
    limits = {name: kernel_limits(name[0], family[name]) for name in names}
    bounds = [limits[name][:2] for name in names]
    active = {key: (g, fitted_mask(g, fitted_keys)) for key, g in groups.items()
              if any(key in scopes for scopes in family.values())}

    centres = {name: limits[name][2] for name in names}

    def pack(values):
        z = []
        for name, (lo, hi) in zip(names, bounds):
            llo, lhi = math.log(lo), math.log(hi)
            u = (math.log(values[name]) - llo) / (lhi - llo)
            z.append(math.log(u / (1 - u)))
        return numpy.array(z)

    def loss(z):
        values = unpack(names, bounds, z)
        return fit_loss([(group, mask, calibration_for(family, values, group)) for group, mask in active.values()],
                        values, centres)

    t = time.time()
    rng = numpy.random.default_rng(0)
    centre = pack(centres)
    best_z, best = centre, math.inf
    # multi-start: the prior centre and seeded random points around it, each polished by
    # Nelder-Mead with restarts; the best wins
    for start in [centre] + [centre + rng.normal(0.0, 1.5, len(names)) for _ in range(STARTS - 1)]:
        z = start
        for attempt in range(3):
            z, value = nelder_mead(loss, z, step=1.0 if attempt == 0 else 0.3, iterations=1500)
        if value < best - 1e-9:
            best_z, best = z, value
    if verbose:
        print(f"# fitted in {time.time() - t:.0f} s, loss {best:.5f}", file=sys.stderr)
    return unpack(names, bounds, best_z), best


def table_calibration(key, engine_figures=None):
    """The calibration of a (hardware, engine) group built from the kernel tables alone
    (kernels.toml), ENGINE_DEFAULTS and ``engine_figures`` (ENGINE_PARAMS values) when given;
    None when the tables do not cover the GPU."""
    from mantile_core.hardware import Calibration, kernel_calibration

    kernels = kernel_calibration(*key)
    if not kernels:
        return None
    return Calibration(**(kernels | ENGINE_DEFAULTS | dict(engine_figures or {})))


def fit_engines(groups: dict, *, fitted_keys=None, leave_out_gpu=None) -> dict:
    """{engine: {ENGINE_PARAMS name: value}} fitted per engine over its groups the kernel
    tables cover (``table_calibration``), on their fitted rows, less ``leave_out_gpu``'s; an
    engine with no such group is absent. Same loss, bounds and prior as fit_family."""
    engines: dict = {}
    for key, group in groups.items():
        if key[0] != leave_out_gpu and table_calibration(key) is not None:
            engines.setdefault(key[1], []).append(group)
    names = list(ENGINE_PARAMS)
    bounds = [(lo, hi) for lo, hi, _ in ENGINE_PARAMS.values()]
    centres = {name: centre for name, (_, _, centre) in ENGINE_PARAMS.items()}
    out = {}
    for engine, members in engines.items():
        masks = [fitted_mask(g, fitted_keys) for g in members]
        if not any(m.any() for m in masks):
            continue

        def loss(z, members=members, masks=masks):
            values = unpack(names, bounds, z)
            return fit_loss([(group, mask, table_calibration((group.hardware, group.engine_name), values))
                             for group, mask in zip(members, masks)], values, centres)

        z = numpy.zeros(len(names))
        for attempt in range(3):
            z, _ = nelder_mead(loss, z, step=1.0 if attempt == 0 else 0.3, iterations=400)
        out[engine] = unpack(names, bounds, z)
    return out


def with_engine_steps(groups: dict, engines: dict) -> None:
    """Set each group's base calibration ``step_overhead`` to its engine's in ``engines``."""
    for group in groups.values():
        if group.engine_name in engines:
            group.base_hw = attrs.evolve(group.base_hw, calibration=attrs.evolve(
                group.base_hw.calibration, step_overhead=engines[group.engine_name]["step_overhead"]))


def kernel_limits(param: str, scopes) -> tuple[float, float, float]:
    """(lower, upper, prior centre) of ``param`` for the (hardware, engine) groups ``scopes``:
    ``PARAMS``, with the upper bound of an efficiency of a peak (``KERNEL_BOUNDED``) lowered
    to the physical bound the measured kernel tables give where they cover the GPU
    (``kernels.toml`` [gpu.engine.bounds]: the best any measured kernel reaches; the tightest
    over the scopes; benchmarks/kernel_fit.py). The fixed costs keep ``PARAMS``: a serving
    step's mean cost per kernel (graph replay gaps, norms, RoPE, top-k) is not the fastest
    isolated GEMM's."""
    from mantile_core.hardware import kernel_figures

    lo, hi, centre = PARAMS[param]
    if param not in KERNEL_BOUNDED:
        return lo, hi, centre
    uppers = []
    for hardware, engine in scopes:
        entry = kernel_figures().get(hardware, {}).get(engine, {})
        if param in entry.get("bounds", {}):
            uppers.append(float(entry["bounds"][param]))
    if uppers:
        hi = max(min(hi, min(uppers)), lo * 1.5)
    centre = min(max(centre, lo * 1.02), hi * 0.98)
    return lo, hi, centre


def fitted_mask(group, fitted_keys):
    """True for the group's rows that are fitted (all when ``fitted_keys`` is None)."""
    if fitted_keys is None:
        return numpy.ones(len(group.rows), dtype=bool)
    return numpy.array([m.key in fitted_keys for m in group.rows])


def calibration_for(family: dict, values: dict, group):
    """The group's calibration with the family's values that apply to it."""
    key = (group.hardware, group.engine_name)
    changes = {name[0]: values[name] for name, scopes in family.items() if key in scopes and name in values}
    return attrs.evolve(group.base_hw.calibration, **changes)


def mape(group, pred, mask) -> dict[str, float]:
    """MAPE % of TPOT, TTFT and throughput per GPU over the masked rows."""
    return {k: 100 * float(numpy.mean(numpy.abs(pred[k][mask] / group.measured[k][mask] - 1)))
            for k in ("tpot_ms", "ttft_ms", "throughput_tok_s_per_gpu")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="?", default=str(DATA))
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction of each group fitted (default 0.5)")
    parser.add_argument("--family", default=None, help="fit one family only (" + ", ".join(FAMILIES) + ")")
    parser.add_argument("--all-rows", action="store_true", help="fit on every row (no hold-out)")
    parser.add_argument("--starts", type=int, default=STARTS, help=f"Nelder-Mead starts (default {STARTS})")
    args = parser.parse_args(argv)
    globals()["STARTS"] = args.starts

    from mantile_core import load_model
    from mantile_core.reconcile import read_measurements, split_rows

    model = load_model("gpt-oss-120b")
    measurements = [m for m in read_measurements(args.csv) if not m.disaggregated]
    fitted_keys = None if args.all_rows else split_rows(measurements, seed=args.seed, fraction=args.fraction)
    by_group: dict = {}
    for m in measurements:
        by_group.setdefault((m.hardware, m.engine), []).append(m)
    groups = {key: Group(ms, model) for key, ms in sorted(by_group.items())}
    engines = fit_engines(groups, fitted_keys=fitted_keys)
    print("# engines (engines.toml [<engine>.calibration.default])")
    for engine, values in engines.items():
        for param, value in values.items():
            print(f"{engine:14s} {param} = {value:.3g}")
    print()
    with_engine_steps(groups, engines)
    for name, family in FAMILIES.items():
        if args.family and name != args.family:
            continue
        values, _ = fit_family(family, groups, fitted_keys=fitted_keys)
        print(f"# family {name}")
        for (param, scope), value in values.items():
            print(f"{scope:14s} {param} = {value:.4g}")
        for key, group in groups.items():
            if not any(key in scopes for scopes in family.values()):
                continue
            pred = group.predict(calibration_for(family, values, group))
            fitted = fitted_mask(group, fitted_keys)
            for label, mask in (("fitted", fitted), ("held out", ~fitted)):
                if mask.any():
                    print(f"# {key[0]} {key[1]} {label} ({int(mask.sum())} rows): " + ", ".join(
                        f"{k.split('_')[0]} {v:.1f}%" for k, v in mape(group, pred, mask).items()))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
