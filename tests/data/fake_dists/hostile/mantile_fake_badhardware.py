"""A hostile fake plugin: a hook that returns an impossible accelerator."""

from __future__ import annotations

from mantile_core import hookimpl  # noqa: F401

from mantile_core.hardware import HardwareSpec


@hookimpl
def mantile_hardware():
    return [HardwareSpec(name="fakegpu", description="", peak_flops={"bf16": float("nan")}, hbm_bytes=-1,
                         hbm_bandwidth=1e12, link_bandwidth=1e11, link_latency=1e-6)]
