"""Benchmark of ``mantile sweep``: points evaluated per second on one core, and the wall time
and peak resident memory of a sweep of over a million points, for GPT-OSS-120B.

Each measurement runs in a fresh child process pinned to one CPU core (``sched_setaffinity``,
BLAS / OpenMP thread pools set to 1), so its peak RSS (``getrusage().ru_maxrss``) is that
sweep's alone. Run from the repository root:

    .venv/bin/python benchmarks/sweep_bench.py            # GPT-OSS-120B (needs the three plugins)
    .venv/bin/python benchmarks/sweep_bench.py --model qwen3-30b-a3b

It prints a Markdown table (the figures in benchmarks/README.md come from it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

# The throughput grid: 3 accelerators x 10 valid (tp, ep) pairs for GPT-OSS x 1024 batches.
RATE_GRID = dict(hardware="h100,h200,b200", tp="1,2,4,8", ep="1,2,4,8", batch="1:1024", input_len="1024",
                 output_len="1024", max_tpot_ms=20, max_ttft_ms=1000)
# The million-point grid: the same x 6 input lengths x 6 output lengths (1,105,920 points for GPT-OSS).
LENGTHS = "256,512,1024,2048,4096,8192"
BIG_GRID = dict(RATE_GRID, input_len=LENGTHS, output_len=LENGTHS)


def _pin() -> int:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child_api(model_name: str, grid: str, repeats: int) -> dict:
    """Time ``mantile_core.sweep`` (plus frontier and best, as the CLI uses them)."""
    core = _pin()
    import mantile_core

    model = mantile_core.load_model(model_name)
    kwargs = BIG_GRID if grid == "big" else RATE_GRID
    mantile_core.sweep(model, **dict(kwargs, batch="1:8"))  # warm caches and imports
    rss_before = _peak_rss_bytes()
    times, points = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = mantile_core.sweep(model, **kwargs)
        for hw in result.hardware:
            result.frontier(hw)
            result.best(hw)
        times.append(time.perf_counter() - start)
        points = len(result)
        del result
    return {"core": core, "points": points, "seconds": times, "rss_before_bytes": rss_before,
            "peak_rss_bytes": _peak_rss_bytes()}


def child_cli(model_name: str) -> dict:
    """Time the whole ``mantile sweep`` command (load, sweep, frontier, report) in-process."""
    core = _pin()
    import contextlib
    import io

    from mantile_core.cli import main

    g = BIG_GRID
    argv = ["sweep", model_name, "--hardware", g["hardware"], "--tp", g["tp"], "--ep", g["ep"], "--batch", g["batch"],
            "--input-len", g["input_len"], "--output-len", g["output_len"], "--max-tpot-ms", str(g["max_tpot_ms"]),
            "--max-ttft-ms", str(g["max_ttft_ms"])]
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    seconds = time.perf_counter() - start
    return {"core": core, "status": status, "seconds": seconds, "peak_rss_bytes": _peak_rss_bytes(),
            "first_line": out.getvalue().splitlines()[0]}


def _spawn(*args: str) -> dict:
    env = dict(os.environ, **{var: "1" for var in THREAD_VARS})
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"child {args} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-oss-120b")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the throughput grid (default 5)")
    parser.add_argument("--big-repeats", type=int, default=3, help="repeats of the million-point grid (default 3)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_cli(rest[0]) if kind == "cli" else child_api(rest[0], rest[1], int(rest[2]))
        print(json.dumps(out))
        return 0

    import numpy

    rate = _spawn("api", args.model, "rate", str(args.repeats))
    big = _spawn("api", args.model, "big", str(args.big_repeats))
    cli = _spawn("cli", args.model)
    mib = 2 ** 20
    median = sorted(rate["seconds"])[len(rate["seconds"]) // 2]
    big_median = sorted(big["seconds"])[len(big["seconds"]) // 2]
    big_worst = max(big["seconds"])
    print(f"mantile sweep benchmark: {args.model}, one core of {_cpu()} "
          f"({os.cpu_count()} cores seen), Python {platform.python_version()}, numpy {numpy.__version__}\n")
    print("| measurement | points | wall time | points/s | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    print(f"| `sweep()` {RATE_GRID['hardware']}, tp {RATE_GRID['tp']}, ep {RATE_GRID['ep']}, batch 1:1024, "
          f"1024/1024 (median of {len(rate['seconds'])}) | {rate['points']:,} | {median:.3f} s | "
          f"{rate['points'] / median:,.0f} (slowest run {rate['points'] / max(rate['seconds']):,.0f}) | "
          f"{rate['peak_rss_bytes'] / mib:.0f} MiB |")
    print(f"| `sweep()` same x input_len and output_len in {{{LENGTHS}}} (median of {len(big['seconds'])}; "
          f"slowest {big_worst:.2f} s) | {big['points']:,} | {big_median:.2f} s | {big['points'] / big_median:,.0f} | "
          f"{big['peak_rss_bytes'] / mib:.0f} MiB (before the sweep: {big['rss_before_bytes'] / mib:.0f} MiB) |")
    print(f"| `mantile sweep` CLI, same grid, whole command in-process (load, sweep, frontier, report) | "
          f"{big['points']:,} | {cli['seconds']:.2f} s (process {cli['process_seconds']:.2f} s) | "
          f"{big['points'] / cli['seconds']:,.0f} | {cli['peak_rss_bytes'] / mib:.0f} MiB |")
    print(f"\nCLI first line: {cli['first_line']}\n")
    worst_rate = min(rate["points"] / max(rate["seconds"]), big["points"] / big_worst)
    peak = max(big["peak_rss_bytes"], cli["peak_rss_bytes"])
    checks = [(f"at least 100,000 points/s on one core (slowest run: {worst_rate:,.0f})", worst_rate >= 100_000),
              (f"a {big['points']:,}-point sweep under 15 s (slowest: {max(big_worst, cli['seconds']):.2f} s)",
               max(big_worst, cli["seconds"]) < 15),
              (f"peak RSS under 1 GiB (largest: {peak / mib:.0f} MiB)", peak < 2 ** 30)]
    for text, ok in checks:
        print(f"- {'PASS' if ok else 'FAIL'}: {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
