"""Uncertainty bands of TTFT, TPOT and throughput, from the cross-validated error of the regime
an estimate falls in (``data/uncertainty.toml``, written by benchmarks/crossval.py).

The cross-validation holds out one regime at a time (a length pair, high or low concurrency,
low or high TP), refits the serving calibration on the rest and measures the held-out MAPE
per GPU. An estimate's regime is its nearest length pair (1k/1k, 1k/8k, 8k/1k by log
distance of input and output length), its concurrency class (≥ 64 high, else low) and its
TP class (≤ 2 low, else high); its relative band f for a metric is the largest of the three
held-out errors, and the band is [v·(1 − f), v·(1 + f)]. GPUs without serving measurements
get the no-serving-data error (kernel tables and engine defaults only): the largest over
H100, H200 and B200. The band is an empirical typical error (a MAPE), not a confidence bound.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["band_fraction", "bands", "BAND_METRICS"]

DATA = Path(__file__).parent / "data" / "uncertainty.toml"
BAND_METRICS = ("ttft_ms", "tpot_ms", "throughput_tok_s_per_gpu")
LENGTHS = {"length 1k/1k": (1024, 1024), "length 1k/8k": (1024, 8192), "length 8k/1k": (8192, 1024)}


@functools.lru_cache(maxsize=None)
def _table() -> dict:
    if not DATA.is_file():
        return {}
    with DATA.open("rb") as handle:
        return tomllib.load(handle)


def _regimes(input_len: int, output_len: int, batch: int, tp: int) -> tuple[str, str, str]:
    def distance(pair):
        return (math.log(max(input_len, 1) / pair[0]) ** 2 + math.log(max(output_len, 1) / pair[1]) ** 2)

    length = min(LENGTHS, key=lambda name: distance(LENGTHS[name]))
    return (length, "concurrency high" if batch >= 64 else "concurrency low", "tp low" if tp <= 2 else "tp high")


def band_fraction(hardware: str, metric: str, *, input_len: int, output_len: int, batch: int, tp: int) -> float | None:
    """The relative half-width f of ``metric``'s band (see the module docstring); None when no
    cross-validated error is bundled."""
    table = _table()
    regimes = table.get(hardware)
    if regimes:
        errors = [regimes[r][metric] for r in _regimes(input_len, output_len, batch, tp)
                  if r in regimes and metric in regimes[r]]
        if errors:
            return max(errors) / 100.0
    fallback = table.get("no_serving_data", {}).get("all", {})
    return fallback[metric] / 100.0 if metric in fallback else None


def bands(hardware: str, values: dict, *, input_len: int, output_len: int, batch: int, tp: int) -> dict:
    """``{metric + "_band": [lo, hi]}`` for the metrics of ``values`` that have a bundled error."""
    out = {}
    for metric in BAND_METRICS:
        f = band_fraction(hardware, metric, input_len=input_len, output_len=output_len, batch=batch, tp=tp)
        if f is not None and metric in values:
            v = values[metric]
            out[f"{metric}_band"] = [v * max(0.0, 1.0 - f), v * (1.0 + f)]
    return out
