"""Fit each GPU's kernel-level timing parameters on measured production kernels.

Source of truth: the parquet tables of measured kernel latencies that NVIDIA's
``aiconfigurator-core`` (Apache-2.0; ``pip install -r benchmarks/requirements.txt``, or
``tox -e kernels``) ships under ``aiconfigurator_core/systems/data/<system>/<op>/<engine>/<version>/``:
GEMM (m, n, k, dtype), generation and context attention (batch, context, heads, KV heads,
head_dim, KV dtype), MoE (tokens, hidden, inter, top-k, experts, TP/EP, dtype, routing) and
custom all-reduce (GPUs, message size), for vLLM and TensorRT-LLM. Latencies are in ms.

Every table row is costed with Mantile's own arithmetic (a :class:`LayerCost` per kernel, or
the MoE layer of the bundled GPT-OSS models) and timed with ``mantile_core.timing`` under a
candidate calibration; the parameters minimise the mean squared log error. So what is fitted
is exactly what the estimator uses. Stages, each with the earlier stages' values fixed:

1. GEMM (bf16, the engine's default linear kernel): ``gemm_efficiency``,
   ``gemm_half_rows`` (small-M falloff M/(M + h)), ``memory_efficiency`` (weight streaming)
   and ``kernel_overhead`` (the fixed cost of any kernel).
2. Decode attention (window 0, the engine's KV format on the GPU, grouped-query shapes): ``attention_overhead`` (beyond
   ``kernel_overhead``), ``attention_sequence_overhead`` (per sequence and local KV head)
   and ``kv_memory_efficiency`` (KV streaming).
3. Context attention (causal prompts ≥ 1024 tokens, window 0, bf16 attention, grouped-query
   shapes): ``attention_efficiency`` (the FLOP rate of long prompts) and
   ``attention_row_overhead`` (each query tile's fixed work per (query token, head) row:
   the ramp of the kernel's rate with prompt length).
4. MoE (the GPT-OSS expert shapes in mxfp4; the tables' balanced routing, costed as such:
   min(E, T·k) experts active; EP 1):
   ``mixed_gemm_efficiency`` and ``mixed_gemm_half_rows`` (the expert GEMMs' falloff by
   tokens per expert), ``mixed_memory_efficiency`` (the dequantising kernels' weight
   streaming), ``moe_overhead`` (the block's fixed cost per call beyond its kernels') and,
   where the table measures three or more TP sizes, ``expert_half_width`` (the expert width
   per GPU at which the grouped GEMMs run at half rate; ≤ 2048 columns).
   4b. Where the served runs used another MoE kernel that the tables time only at another
   model's shape (``SERVED_MOE``: Marlin on H100/H200 under vLLM), the compute side
   (``mixed_gemm_efficiency``, ``mixed_gemm_half_rows``, ``expert_half_width``) is refitted on
   that kernel's rows, costed at their own shape, where every expert is active (T·k ≥ E);
   its fixed cost and weight streaming stay the GPT-OSS-shape rows' (a call's fixed cost at
   896 experts and top-16 is not the fixed cost at 128 and top-4).
5. All-reduce (the engine's custom all-reduce, CUDA-graph backend where there is one):
   ``allreduce_latency`` and ``allreduce_efficiency``.

Physical bounds (every parameter is fitted inside them; ``kernels.toml`` lists a parameter
that ends on its bound under ``at_bound``):

- an efficiency of a peak is at most the best that any kernel of the same GPU's tables
  reaches against that peak: ``gemm_efficiency`` ≤ the fastest bf16 GEMM / the bf16 datasheet
  peak; ``memory_efficiency`` and ``kv_memory_efficiency`` ≤ the highest bandwidth any GEMM
  or decode-attention row moving ≥ 256 MB reaches / the datasheet HBM bandwidth (≥ 256 MB:
  larger than any of these GPUs' L2, so no cache hit inflates it; on H200 this is ≈ 0.90,
  the same as the device-to-device copy of shared/data/README.md: 4.3 of 4.8 TB/s);
  ``attention_efficiency`` ≤ the fastest context-attention row / bf16 peak;
  ``attention_row_overhead`` ≤ the least measured time per (query token, head) row of any
  context-attention kernel (no kernel takes less than its rows' fixed cost);
  ``mixed_gemm_efficiency`` ≤ 1 (a mixed-format GEMM is no faster than a native one);
  ``mixed_memory_efficiency`` ≤ ``memory_efficiency``'s bound (the best any kernel streams);
  ``allreduce_efficiency`` ≤ 1 (the NVLink / PCIe one-way datasheet bandwidth);
- a fixed cost is at most the fastest measured kernel of its kind (a kernel cannot take
  less than its fixed cost): ``kernel_overhead`` ≤ the fastest GEMM, ``kernel_overhead +
  attention_overhead`` ≤ the fastest decode attention, ``allreduce_latency`` ≤ the fastest
  all-reduce, ``moe_overhead`` ≤ the fastest MoE call less its kernels' ``kernel_overhead``; every fixed cost and ``gemm_half_rows`` ≥ 0;
- ``gemm_half_rows`` and ``mixed_gemm_half_rows`` ≤ 256 (the largest M tile a Hopper / Blackwell GEMM uses).

Held-out shapes: ``--exclude-model NAME`` leaves the GEMM and attention shapes of a bundled
model (at TP 1, 2, 4, 8) and, for GPT-OSS, its MoE shape out of the fit;
benchmarks/kernel_fidelity.py uses it to report per-kernel errors on held-out models.

    .venv/bin/python benchmarks/kernel_fit.py              # print the fits
    .venv/bin/python benchmarks/kernel_fit.py --write      # also mantile_core/data/kernels.toml
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "mantile_core" / "data" / "kernels.toml"

# Mantile hardware name -> aiconfigurator-core system directory
SYSTEMS = {"h100": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm", "gb200": "gb200", "b300": "b300_sxm",
           "gb300": "gb300", "a100": "a100_sxm", "l40s": "l40s"}
ENGINES = ("vllm", "trtllm")
# serving data used vLLM 0.13 / TensorRT-LLM 1.2: take each op's oldest measured version, and
# the same version on GPUs of one silicon (H100 and H200 are both GH100: a kernel measured at two
# versions on one and at one on the other would give the two chips different kernels, so both
# read the oldest version measured on both)
SILICON = {"h100": ("h100_sxm", "h200_sxm"), "h200": ("h100_sxm", "h200_sxm")}
# the MoE kernel the serving rows ran, where the tables time it only at another shape: on
# Hopper, vLLM served GPT-OSS's MXFP4 experts through Marlin (4-bit weights, bf16 activations;
# shared/data/README.md), which aiconfigurator times at hidden 3584, 896 experts, top-16
SERVED_MOE = {("h100", "vllm"): "marlin", ("h200", "vllm"): "marlin"}
# bytes per element of the all-reduce tables' dtype (their message_size counts elements: the
# collector all-reduces a tensor of message_size elements)
# the expert GEMMs' compute-side parameters and their bounds: the efficiency at most the peak,
# the falloff by rows at most the largest M tile, the half-rate expert width at most 2048 columns
MOE_COMPUTE_BOUNDS = {"mixed_gemm_efficiency": (0.02, 1.0), "mixed_gemm_half_rows": (0.0, 256.0),
                      "expert_half_width": (0.0, 2048.0)}
ELEMENT_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}
LARGE_BYTES = 256e6
MODELS = ("gpt-oss-120b", "gpt-oss-20b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "mistral-7b",
          "mixtral-8x7b", "qwen2.5-7b", "qwen3-8b", "qwen3-30b-a3b")
TPS = (1, 2, 4, 8)


def data_root() -> Path:
    try:
        import aiconfigurator_core
    except ImportError:
        sys.exit("kernel_fit needs aiconfigurator-core: pip install -r benchmarks/requirements.txt")
    return Path(aiconfigurator_core.__file__).parent / "systems" / "data"


def aic_version() -> str:
    from importlib.metadata import version

    return version("aiconfigurator-core")


def _vkey(v: str):
    import re

    return tuple(int(x) if x.isdigit() else x for x in re.split(r"[.]", re.sub(r"(rc|post|dev)", r".\1.", v)))


def table(system: str, op: str, engine: str, name: str, want=None, *, silicon=()):
    """(DataFrame, provenance) of the oldest version of ``op``/``engine``/``name`` whose rows
    satisfy ``want`` (a DataFrame -> mask), or (None, None). ``silicon``: the systems of the
    same chip (``SILICON``); versions every one of them measured come first, so that chips
    of one silicon read one kernel version."""
    import pandas

    base = data_root() / system / op / engine
    if not base.is_dir():
        return None, None
    versions = sorted((p.name for p in base.iterdir()), key=_vkey)
    shared = [v for v in versions if all((data_root() / s / op / engine / v / name).is_file() for s in silicon)]
    for version in shared + [v for v in versions if v not in shared]:
        path = base / version / name
        if not path.is_file():
            continue
        df = pandas.read_parquet(path)
        if want is not None:
            df = df[want(df)]
        if len(df):
            return df, f"{system}/{op}/{engine}/{version}/{name}"
    return None, None


# ---------------------------------------------------------------------------------------------
# the kernels as Mantile costs them


def _hw(name: str, values: dict, engine: str):
    """``name`` under ``engine`` with the candidate ``values``, starting from the datasheet and
    what hardware.toml and engines.toml state: the figures kernels.toml (this script's own
    previous output) holds are reset to the Calibration defaults, so a figure no stage of this
    fit sets does not carry over from the last run and a rerun writes the same file."""
    import attrs

    from mantile_core import get_hardware
    from mantile_core.engines import get_engine
    from mantile_core.hardware import REFERENCE_ENGINE, Calibration, kernel_calibration

    hw = get_hardware(name)
    stated = set(hw.calibrated)
    if engine in ENGINES:
        profile = get_engine(engine)
        stated |= set(profile.calibration.get(name, {}))
        hw = profile.calibrated(hw)
    previous = (set(kernel_calibration(name, REFERENCE_ENGINE)) | set(kernel_calibration(name, engine))) - stated
    defaults = {f.name: f.default for f in attrs.fields(Calibration) if f.name in previous}
    return attrs.evolve(hw, calibration=attrs.evolve(hw.calibration, **(defaults | values)))


def gemm_costs(df):
    from mantile_core.workload import LayerCost

    m, n, k = (df[c].to_numpy(dtype=float) for c in ("m", "n", "k"))
    return LayerCost(flops=2 * m * n * k, matmul_flops=2 * m * n * k, weight_bytes=2 * n * k,
                     activation_bytes=2 * m * n, kernels=numpy.ones_like(m), gemm_dtype="bf16")


def kv_bytes_per_element(dtype):
    return numpy.where(dtype == "fp8", 1.0, 2.0)


def decode_attention_costs(df):
    """One decode step of ``batch_size`` sequences with ``step`` tokens cached (context step + 1)."""
    from mantile_core.workload import LayerCost

    b, s, h, kv, dh = (df[c].to_numpy(dtype=float) for c in ("batch_size", "step", "num_heads",
                                                               "num_key_value_heads", "head_dim"))
    e = kv_bytes_per_element(df["kv_cache_dtype"].to_numpy())
    ctx = s + 1
    attention = 4 * dh * h * b * ctx
    return LayerCost(flops=attention, matmul_flops=attention, attention_flops=attention,
                     kv_read_bytes=b * ctx * 2 * kv * dh * e, kv_write_bytes=b * 2 * kv * dh * e,
                     activation_bytes=2 * b * h * dh, kernels=numpy.ones_like(b), attention_sequences=b * kv)


def context_rows(d, kv):
    """Mask of the context-attention rows the fit and the fidelity report use: full causal
    attention (window 0), prompts of at least 1024 tokens, the engine's KV format and bf16
    attention (TensorRT-LLM's tables also time an fp8 FMHA, another kernel at another peak)."""
    attn = d["attn_dtype"] == "bfloat16" if "attn_dtype" in d else True
    return (d.get("window_size", 0) == 0) & (d.isl >= 1024) & (d.kv_cache_dtype == kv) & attn


def context_attention_costs(df):
    """A causal prompt of ``isl`` tokens for ``batch_size`` sequences."""
    from mantile_core.workload import LayerCost

    b, s, h, kv, dh = (df[c].to_numpy(dtype=float) for c in ("batch_size", "isl", "num_heads",
                                                               "num_key_value_heads", "head_dim"))
    e = kv_bytes_per_element(df["kv_cache_dtype"].to_numpy())
    attention = 4 * dh * h * b * s * (s + 1) / 2
    return LayerCost(flops=attention, matmul_flops=attention, attention_flops=attention,
                     kv_write_bytes=b * s * 2 * kv * dh * e, activation_bytes=2 * b * s * (h + 2 * kv) * dh,
                     kernels=numpy.ones_like(b), attention_sequences=b * kv, attention_rows=b * s * h)


def shaped_moe_model(hidden: int, inter: int, experts: int, top_k: int):
    """GPT-OSS-120B with its MoE reshaped to a kernel table's own shape (hidden width, expert
    width, experts, top-k): for a kernel the tables time only at another model's shape."""
    import json
    import tempfile

    from mantile_core import load_model
    from mantile_core.model import DATA

    config = json.loads((DATA / "gpt-oss-120b.json").read_text())
    config.update(hidden_size=int(hidden), intermediate_size=int(inter), num_local_experts=int(experts),
                  num_experts_per_tok=int(top_k))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        return load_model(path)


def moe_costs(df, model):
    """The MoE layer of the bundled model, costed by Mantile, for each row's tokens / TP / EP,
    with the experts the table's routing activates. The tables' ``balanced`` rows spread the
    T·k token-expert assignments evenly: min(E_local, T·k) experts each get ⌈T·k/E⌉ tokens
    (32 GPT-OSS-120B tokens already touch all 128 experts), where Mantile's estimate assumes
    uniform random routing, E·(1 − (1 − k/E)^T) (82 of 128 at 32 tokens). So the weight
    bytes, and with them the rows per expert the GEMM falloff sees, are the balanced ones."""
    import attrs

    from mantile_core import load_model
    from mantile_core.workload import Step

    model = load_model(model) if isinstance(model, str) else model
    layer = next(layer for layer, _ in model.unique_layers if layer.kind == "moe")
    # the table's (moe_tp, moe_ep) over moe_tp·moe_ep GPUs is Mantile's tp = moe_tp·moe_ep
    # with ep = moe_ep (experts split ep ways, each expert's width tp/ep ways)
    ep = numpy.asarray(df["moe_ep_size"], dtype=numpy.int64)
    tokens = numpy.asarray(df["num_tokens"], dtype=numpy.int64)
    tp = numpy.asarray(df["moe_tp_size"], dtype=numpy.int64) * ep
    cost = layer.cost(Step(batch=tokens, new_tokens=1, cached=0, tp=tp, ep=ep))
    local = layer.experts // ep
    dense = layer._dense_bytes(layer.shared_intermediate // tp)
    per_expert = (cost.resident_weight_bytes - dense) / local
    active = numpy.minimum(local, tokens * layer.top_k)
    # the tables time the MoE kernels alone: no all-reduce of the layer's output (its kernel
    # and its transfer are the all-reduce stage's)
    return attrs.evolve(cost, weight_bytes=dense + active * per_expert, comm_bytes=0, collectives=0,
                        kernels=cost.kernels - (tp > 1))


def predict_seconds(cost, hw, tp=1):
    from mantile_core.timing import layer_seconds

    return layer_seconds(cost, SimpleNamespace(tp=tp, dp=1, batch=1), hw)


def allreduce_predict(df, hw):
    from mantile_core.timing import allreduce_seconds

    n = df["num_gpus"].to_numpy(dtype=float)
    # message_size is in elements of allreduce_dtype (ELEMENT_BYTES)
    p = df["message_size"].to_numpy(dtype=float) * df["allreduce_dtype"].map(ELEMENT_BYTES).to_numpy(dtype=float)
    return hw.calibration.kernel_overhead + allreduce_seconds(p, 1, n, hw)


# ---------------------------------------------------------------------------------------------
# fitting


def fit(names, bounds, start, predict, measured, *, fixed=None):
    """Least squares of log(predicted / measured) over ``names`` inside ``bounds`` (lists of
    (lo, hi)); ``predict(values)`` returns seconds. Returns ({name: value}, rms log error)."""
    from scipy.optimize import least_squares

    fixed = fixed or {}
    lo = numpy.array([b[0] for b in bounds], dtype=float)
    hi = numpy.array([b[1] for b in bounds], dtype=float)
    x0 = numpy.clip(numpy.array(start, dtype=float), lo + 1e-12 * (hi - lo) + 1e-15, hi - 1e-9 * (hi - lo))
    scale = numpy.maximum(numpy.abs(x0), 1e-9)

    def residual(z):
        values = dict(fixed) | dict(zip(names, z * scale))
        return numpy.log(predict(values) / measured)

    result = least_squares(residual, x0 / scale, bounds=(lo / scale, hi / scale), method="trf",
                           loss="soft_l1", f_scale=0.1, max_nfev=400)
    values = dict(zip(names, (result.x * scale).tolist()))
    rms = float(numpy.sqrt(numpy.mean(residual(result.x) ** 2)))
    return values, rms


def _excluded_shapes(models):
    """GEMM (n, k) and attention (heads, kv heads, head_dim) shapes of the given models at
    TP 1, 2, 4, 8; and the MoE model names."""
    from mantile_core import load_model
    from mantile_core.layers.attention import local_kv_heads

    gemm, attn, moe = set(), set(), set()
    for name in models:
        model = load_model(name)
        cfg = model.config
        hidden = cfg.hidden_size
        for layer, _ in model.unique_layers:
            if layer.kind == "attention":
                for tp in TPS:
                    if layer.heads % tp:
                        continue
                    hl, kvl = layer.heads // tp, local_kv_heads(layer.kv_heads, tp)
                    attn.add((hl, kvl, layer.head_dim))
                    gemm.update({((hl + 2 * kvl) * layer.head_dim, hidden), (hidden, hl * layer.head_dim)})
            elif layer.kind == "mlp":
                inter = getattr(layer, "intermediate", None) or getattr(cfg, "intermediate_size", None)
                for tp in TPS:
                    if inter and inter % tp == 0:
                        gemm.update({(2 * inter // tp, hidden), (hidden, inter // tp)})
            elif layer.kind == "moe" and name.startswith("gpt-oss"):
                moe.add(name)
    return gemm, attn, moe


def fit_gpu(hardware: str, engine: str, *, exclude=(), verbose=True, served_moe=True):
    """Fit one GPU under one engine; returns (values, provenance, bounds hit, errors) or None
    when the tables lack the GEMM or attention op. ``served_moe=False`` skips stage 4b (the
    per-kernel fidelity report compares the kernel timed at the models' own shapes)."""
    from mantile_core import get_hardware

    system = SYSTEMS[hardware]
    hw0 = get_hardware(hardware)
    peak, hbm = hw0.peak_for("bf16", "bf16"), hw0.hbm_bandwidth
    gemm_ex, attn_ex, moe_ex = _excluded_shapes(exclude) if exclude else (set(), set(), set())
    provenance, at_bound, errors = {}, [], {}
    values: dict = {}
    upper: dict = {}  # each fitted parameter's physical upper bound (kernels.toml [..bounds])

    def note(stage, path, rows, extra=""):
        provenance[stage] = f"{path}: {rows} rows{extra}"

    def check(stage, fitted, bounds):
        for name, (lo, hi) in zip(fitted, bounds):
            upper[name] = hi
            v = fitted[name]
            if hi > lo and (v >= hi - 1e-3 * (hi - lo) or v <= lo + 1e-3 * (hi - lo)) and not (lo == 0 and v < 1e-12):
                at_bound.append(f"{name} ({'upper' if v >= hi - 1e-3 * (hi - lo) else 'lower'} bound {hi if v >= hi - 1e-3 * (hi - lo) else lo:.4g})")

    # 1. GEMM --------------------------------------------------------------------------------
    # weights of at least 1M elements (2 MB): the projections of the models served; smaller
    # GEMMs are latency-bound in a way one fixed cost per kernel does not describe
    silicon = SILICON.get(hardware, ())
    gdf, path = table(system, "gemm", engine, "gemm_perf.parquet", silicon=silicon, want=
                      lambda d: (d.gemm_dtype == "bfloat16") & (d.n * d.k >= 1_000_000) & (d.m <= 16384))
    if gdf is None:
        return None
    # the engine's default dense kernel (vLLM: torch linear; TRT-LLM: torch_flow)
    sources = gdf.kernel_source.value_counts()
    gdf = gdf[gdf.kernel_source == sources.index[0]]
    shapes = list(zip(gdf.n, gdf.k))
    keep = numpy.array([s not in gemm_ex for s in shapes])
    allg = gdf
    gdf = gdf[keep]
    if len(gdf) > 6000:
        gdf = gdf.sample(6000, random_state=0)
    lat = gdf.latency.to_numpy() * 1e-3
    costs = gemm_costs(gdf)
    all_lat = allg.latency.to_numpy() * 1e-3
    all_costs = gemm_costs(allg)
    best_rate = float(numpy.max(all_costs.matmul_flops / all_lat)) / peak
    moved = all_costs.weight_bytes + all_costs.activation_bytes + 2 * allg.m.to_numpy() * allg.k.to_numpy()
    big = moved >= LARGE_BYTES
    best_bw = float(numpy.max(moved[big] / all_lat[big])) / hbm if big.any() else 0.95
    fastest = float(all_lat.min())
    names = ["gemm_efficiency", "gemm_half_rows", "memory_efficiency", "kernel_overhead"]
    bounds = [(0.2, min(best_rate, 1.0)), (0.0, 256.0), (0.3, min(best_bw, 1.0)), (0.0, fastest)]
    v, rms = fit(names, bounds, [0.75, 16, 0.8, 0.5 * fastest],
                 lambda x: predict_seconds(costs, _hw(hardware, x, engine)), lat)
    check("gemm", v, bounds)
    values.update(v)
    errors["gemm"] = rms
    note("gemm", path, len(gdf), f", kernel {sources.index[0]}, bf16; bounds: gemm_efficiency <= {best_rate:.3f} "
         f"(fastest GEMM / bf16 peak), memory_efficiency <= {best_bw:.3f} (best >= 256 MB GEMM / HBM), "
         f"kernel_overhead <= {fastest * 1e6:.2f} us (fastest GEMM)")

    # 2. decode attention -----------------------------------------------------------------
    # the KV format the engine keeps on this GPU (engines.toml): fp8 KV decodes at a different
    # rate than half the bytes of bf16 would give
    from mantile_core.engines import get_engine

    kv = "fp8" if get_engine(engine).kv_dtype_for(hardware) == "fp8" else "bfloat16"
    # grouped-query shapes (1 < query heads per KV head <= 16, KV heads <= 16): those of the
    # models served (groups of 4 to 8); groups of 32 to 128 query heads per KV head run another
    # kernel in TensorRT-LLM (not XQA), up to 80x slower
    adf, path = table(system, "attention", engine, "generation_attention_perf.parquet", silicon=silicon, want=
                      lambda d: (d.get("window_size", 0) == 0) & (d.isl == 1) & (d.kv_cache_dtype == kv)
                      & (d.num_heads > d.num_key_value_heads) & (d.num_heads <= 16 * d.num_key_value_heads)
                      & (d.num_key_value_heads <= 16))
    if adf is None:
        return None
    sources = adf.kernel_source.value_counts()
    adf = adf[adf.kernel_source == sources.index[0]]
    shapes = list(zip(adf.num_heads, adf.num_key_value_heads, adf.head_dim))
    alla = adf
    adf = adf[numpy.array([s not in attn_ex for s in shapes])]
    if len(adf) > 6000:
        adf = adf.sample(6000, random_state=0)
    alat = alla.latency.to_numpy() * 1e-3
    acost = decode_attention_costs(alla)
    big = acost.kv_read_bytes >= LARGE_BYTES
    best_kv = float(numpy.max(acost.kv_read_bytes[big] / alat[big])) / hbm if big.any() else best_bw
    best_kv = max(best_kv, best_bw)  # the copy-like bound of the GPU: any kernel's best
    fastest_attn = float(alat.min())
    lat = adf.latency.to_numpy() * 1e-3
    costs = decode_attention_costs(adf)
    names = ["attention_overhead", "attention_sequence_overhead", "kv_memory_efficiency"]
    bounds = [(0.0, max(fastest_attn - values["kernel_overhead"], 1e-9)), (0.0, 1e-6), (0.3, min(best_kv, 1.0))]
    v, rms = fit(names, bounds, [0.5 * bounds[0][1], 2e-8, 0.8],
                 lambda x: predict_seconds(costs, _hw(hardware, values | x, engine)), lat)
    check("attention", v, bounds)
    values.update(v)
    errors["decode_attention"] = rms
    note("decode_attention", path, len(adf), f", kernel {sources.index[0]}, window 0, {kv} KV; bounds: "
         f"kv_memory_efficiency <= {best_kv:.3f} (best >= 256 MB decode attention or GEMM / HBM), "
         f"kernel + attention overhead <= {fastest_attn * 1e6:.2f} us (fastest decode attention)")

    # 3. context attention -------------------------------------------------------------------
    cdf, path = table(system, "attention", engine, "context_attention_perf.parquet", silicon=silicon, want=
                      lambda d: context_rows(d, kv) & (d.num_heads > d.num_key_value_heads)
                      & (d.num_heads <= 16 * d.num_key_value_heads) & (d.num_key_value_heads <= 16))
    if cdf is not None:
        sources = cdf.kernel_source.value_counts()
        cdf = cdf[cdf.kernel_source == sources.index[0]]
        allc = cdf
        cdf = cdf[numpy.array([s not in attn_ex for s in zip(cdf.num_heads, cdf.num_key_value_heads, cdf.head_dim)])]
        if len(cdf) > 4000:
            cdf = cdf.sample(4000, random_state=0)
        ccost_all = context_attention_costs(allc)
        best_attn = float(numpy.max(ccost_all.attention_flops / (allc.latency.to_numpy() * 1e-3))) / peak
        costs = context_attention_costs(cdf)
        lat = cdf.latency.to_numpy() * 1e-3
        # a row's fixed cost is at most the measured time of any kernel divided by its rows
        row_bound = float(numpy.min(allc.latency.to_numpy() * 1e-3 / ccost_all.attention_rows))
        bounds = [(0.05, min(best_attn, 1.0)), (0.0, row_bound)]
        v, rms = fit(["attention_efficiency", "attention_row_overhead"], bounds, [0.5, 0.2 * row_bound],
                     lambda x: predict_seconds(costs, _hw(hardware, values | x, engine)), lat)
        check("context", v, bounds)
        values.update(v)
        errors["context_attention"] = rms
        note("context_attention", path, len(cdf), f", kernel {sources.index[0]}, causal, prompts >= 1024, bf16 "
             f"attention; bounds: attention_efficiency <= {best_attn:.3f} (fastest row / bf16 peak), "
             f"attention_row_overhead <= {row_bound * 1e9:.3f} ns (least measured time per query row)")

    # 4. MoE (GPT-OSS mxfp4 experts) ----------------------------------------------------------
    blackwell = hw0.calibration.activation_compute == "fp8"
    other = [e for e in ENGINES if e != engine]
    # the engine's own table first; on Blackwell the MXFP4 x MXFP8 path the serving engines run
    # (vLLM calls the same FlashInfer TRT-LLM-gen MoE kernel TensorRT-LLM measures), from either
    # engine's table, before the bf16-activation one
    candidates = ([(e, "w4a8_mxfp4_mxfp8") for e in (engine, *other)] + [(engine, "w4a16_mxfp4")] if blackwell
                  else [(engine, "w4a16_mxfp4")])
    mdf = None
    for moe_engine, dtype in candidates:
        # EP 1 only: the tables' rows with EP > 1 time the same as EP 1 (the whole expert set
        # is measured on one GPU), which no per-GPU cost model reproduces
        mdf, path = table(system, "moe", moe_engine, "moe_perf.parquet", silicon=silicon, want=
                          lambda d, dt=dtype: (d.moe_dtype == dt) & (d.hidden_size == 2880)
                          & (d.distribution == "balanced") & (d.moe_ep_size == 1))
        if mdf is not None:
            break
    if mdf is not None:
        # the kernel the table times most at GPT-OSS's shapes; a served kernel timed only at
        # another shape is stage 4b's (SERVED_MOE)
        source = mdf.kernel_source.value_counts().index[0]
        mdf = mdf[(mdf.kernel_source == source) & (mdf.num_tokens <= 16384)]
        parts, lat = [], []
        for experts, model_name in ((128, "gpt-oss-120b"), (32, "gpt-oss-20b")):
            part = mdf[(mdf.num_experts == experts) & (mdf.moe_tp_size * mdf.moe_ep_size <= 8)]
            if model_name in moe_ex or not len(part):
                continue
            parts.append((part, moe_costs(part, model_name)))
        if parts:
            act = "fp8" if dtype.startswith("w4a8") else "bf16"
            measured = numpy.concatenate([p.latency.to_numpy() * 1e-3 for p, _ in parts])

            def moe_predict(x):
                hw = _hw(hardware, values | x | {"activation_compute": act}, engine)
                return numpy.concatenate([predict_seconds(c, hw, tp=(p.moe_tp_size * p.moe_ep_size).to_numpy()) for p, c in parts])

            # a MoE block's fixed cost is at most the fastest measured MoE call less its kernels'
            # fixed costs; its weights stream no faster than the best any kernel of the GPU reaches
            kernels = numpy.concatenate([numpy.broadcast_to(c.kernels, len(p)) for p, c in parts])
            moe_hi = max(float(numpy.min(measured - kernels * values["kernel_overhead"])), 1e-9)
            mem_hi = upper["memory_efficiency"]
            names = ["mixed_gemm_efficiency", "mixed_gemm_half_rows", "mixed_memory_efficiency", "moe_overhead"]
            bounds = [MOE_COMPUTE_BOUNDS["mixed_gemm_efficiency"], MOE_COMPUTE_BOUNDS["mixed_gemm_half_rows"],
                      (0.1, mem_hi), (0.0, moe_hi)]
            start = [0.3, 16.0, 0.5 * mem_hi, 0.5 * moe_hi]
            # the expert-width falloff where the table measures several expert widths (TP sizes);
            # elsewhere the Calibration default (256 columns, one output tile) stands
            if len(set(numpy.concatenate([p.moe_tp_size.to_numpy() for p, _ in parts]))) >= 3:
                names.append("expert_half_width")
                bounds.append(MOE_COMPUTE_BOUNDS["expert_half_width"])
                start.append(256.0)
            v, rms = fit(names, bounds, start, moe_predict, measured)
            check("moe", v, bounds)
            values.update(v)
            values["activation_compute"] = act
            errors["moe"] = rms
            note("moe", path, len(measured), f", kernel {source}, {dtype}, balanced routing costed as balanced, GPT-OSS "
                 f"shapes ({', '.join(str(len(p)) for p, _ in parts)} rows by model); bounds: mixed_gemm_efficiency <= 1, "
                 f"mixed_gemm_half_rows <= 256, mixed_memory_efficiency <= {mem_hi:.3f} (memory_efficiency's bound), "
                 f"moe_overhead <= {moe_hi * 1e6:.2f} us (fastest MoE call less its kernels' kernel_overhead)")

    # 4b. the MoE kernel the serving runs used, timed at another shape ----------------------------
    served = SERVED_MOE.get((hardware, engine)) if served_moe and mdf is not None else None
    if served:
        sdf, spath = table(system, "moe", engine, "moe_perf.parquet", silicon=silicon, want=
                           lambda d: d.kernel_source.str.contains(served) & (d.moe_dtype == "w4a16_mxfp4")
                           & (d.distribution == "balanced") & (d.moe_ep_size == 1) & (d.num_tokens <= 16384)
                           & (d.moe_tp_size <= 8) & (d.num_tokens * d.topk >= d.num_experts))
        if sdf is not None:
            shape = sdf.iloc[0]
            if sdf[["hidden_size", "inter_size", "num_experts", "topk"]].nunique().max() > 1:
                raise SystemExit(f"{spath}: {served} rows at more than one shape")
            scosts = moe_costs(sdf, shaped_moe_model(shape.hidden_size, shape.inter_size, shape.num_experts, shape.topk))
            stp = sdf.moe_tp_size.to_numpy()
            names = [n for n in MOE_COMPUTE_BOUNDS if n in values]
            bounds = [MOE_COMPUTE_BOUNDS[n] for n in names]
            v, rms = fit(names, bounds, [values[n] for n in names],
                         lambda x: predict_seconds(scosts, _hw(hardware, values | x, engine), tp=stp), sdf.latency.to_numpy() * 1e-3)
            check("moe", v, bounds)
            values.update(v)
            errors["moe_served"] = rms
            note("moe_served", spath, len(sdf), f", kernel {sdf.kernel_source.iloc[0]} (the served runs' MoE kernel), "
                 f"w4a16_mxfp4 at hidden {shape.hidden_size}, expert width {shape.inter_size}, {shape.num_experts} "
                 f"experts, top-{shape.topk}, T·k >= E; refits {', '.join(names)} with the fixed cost and weight "
                 "streaming of the GPT-OSS-shape rows")

    # 5. all-reduce -----------------------------------------------------------------------------
    want = (lambda d: d.kernel_source.str.contains("graph")) if engine == "vllm" else (lambda d: d.kernel_source == "TRTLLM")
    rdf, path = table(system, "comm", engine, "custom_allreduce_perf.parquet", want, silicon=silicon)
    if rdf is not None and hw0.link_bandwidth > 0:
        rlat = rdf.latency.to_numpy() * 1e-3
        fastest_ar = float(rlat.min())
        names = ["allreduce_latency", "allreduce_efficiency"]
        bounds = [(0.0, max(fastest_ar - values["kernel_overhead"], 1e-9)), (0.05, 1.0)]
        v, rms = fit(names, bounds, [0.5 * bounds[0][1], 0.6],
                     lambda x: allreduce_predict(rdf, _hw(hardware, values | x, engine)), rlat)
        check("allreduce", v, bounds)
        values.update(v)
        errors["allreduce"] = rms
        note("allreduce", path, len(rdf), f"; bounds: allreduce_efficiency <= 1 (link datasheet), "
             f"kernel_overhead + allreduce_latency <= {fastest_ar * 1e6:.2f} us (fastest all-reduce)")
    if verbose:
        print(f"# {hardware} {engine}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                     for k, v in values.items()), file=sys.stderr)
        print(f"#   rms log error: " + ", ".join(f"{k} {v:.3f}" for k, v in errors.items()), file=sys.stderr)
        if at_bound:
            print(f"#   at bound: {', '.join(at_bound)}", file=sys.stderr)
    provenance["bounds"] = upper
    return values, provenance, at_bound, errors


def _fmt(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:.4g}"


def write_toml(results: dict, path: Path) -> None:
    today = datetime.date.today().isoformat()
    lines = ["# Kernel-level timing figures per GPU and engine, fitted by benchmarks/kernel_fit.py on the measured",
             f"# kernel tables of aiconfigurator-core {aic_version()} (NVIDIA, Apache-2.0) on {today}. Do not edit by hand:",
             "# rerun the script. mantile_core/hardware.py reads [<gpu>.vllm] as the GPU's own calibration and",
             "# engines.py the other engines' tables; hardware.toml / engines.toml values take precedence.",
             "# `provenance` gives each stage's table, kernel, rows and bounds; `bounds` each parameter's physical",
             "# upper bound (benchmarks/calibrate.py keeps its serving fit inside them); `at_bound` the parameters that",
             "# ended on a physical bound (docs/timing.md explains why); `rms_log_error` the fit's residuals.", ""]
    for (hardware, engine), (values, provenance, at_bound, errors) in results.items():
        lines.append(f"[{hardware}.{engine}]")
        for k, v in values.items():
            lines.append(f"{k} = {_fmt(v)}")
        lines.append(f"at_bound = [{', '.join(_fmt(a) for a in at_bound)}]")
        lines.append("")
        lines.append(f"[{hardware}.{engine}.provenance]")
        lines.append(f'source = "aiconfigurator-core {aic_version()}"')
        lines.append(f'date = "{today}"')
        for k, v in provenance.items():
            if k != "bounds":
                lines.append(f"{k} = {_fmt(v)}")
        lines.append("")
        lines.append(f"[{hardware}.{engine}.bounds]")
        for k, v in provenance["bounds"].items():
            lines.append(f"{k} = {_fmt(v)}")
        lines.append("")
        lines.append(f"[{hardware}.{engine}.rms_log_error]")
        for k, v in errors.items():
            lines.append(f"{k} = {v:.4f}")
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hardware", default=",".join(SYSTEMS), help="comma-separated Mantile hardware names")
    parser.add_argument("--engine", default=",".join(ENGINES))
    parser.add_argument("--exclude-model", action="append", default=[], help="leave a bundled model's shapes out")
    parser.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    results = {}
    for hardware in args.hardware.split(","):
        for engine in args.engine.split(","):
            out = fit_gpu(hardware, engine, exclude=tuple(args.exclude_model))
            if out is not None:
                results[(hardware, engine)] = out
    if args.write:
        # the loader must not read the file being rewritten mid-run: results are complete here
        write_toml(results, OUT)
        print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
