"""Serving-engine profiles: the bundled ``data/engines.toml``.

An engine profile says how an engine runs a model on a GPU, as far as the cost model needs:

- ``max_batched_tokens``: tokens per step (prompt chunks + decode tokens);
- ``mixed_prefill``: true when prompt chunks run in the same step as the decodes (vLLM's and
  TensorRT-LLM's chunked prefill / in-flight batching), false when a step runs either prompts
  or decodes, prompts first (ATOM, nano-vLLM's scheduler);
- ``graph_max_tokens``: the most tokens a step holding prompt tokens may have and still
  replay a CUDA graph (vLLM's piecewise graphs: 2048 by default; 0 where prompt steps always
  run eagerly); decode-only steps always replay one;
- ``schedule_lag_steps``: steps a new request waits before its prompt starts (1.5 with
  asynchronous scheduling: the rest of the running step and the one scheduled behind it);
  a GPU's calibration may state the value fitted on its serving rows instead;
- ``kv_dtype`` / ``kv_policy`` / ``kv_block``: the KV cache it keeps (per hardware name, a
  ``default`` key for the others);
- ``calibration``: per hardware name, overrides of that GPU's
  :class:`~mantile_core.hardware.Calibration` for this engine (its kernels' overheads and
  formats); under ``default``, the engine's own figures for every GPU (its host's step
  overhead), which fill what the GPU's hardware.toml calibration does not state; see
  docs/timing.md for every value and how it was obtained.

``engine.calibrated(hw)`` returns the hardware spec with the engine's overrides applied.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Mapping

import attrs

from .errors import InputError
from .hardware import HardwareSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["EngineProfile", "bundled_engines", "get_engine", "list_engines"]

DATA = Path(__file__).parent / "data" / "engines.toml"


def _per_hardware(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {"default": value}


@attrs.frozen
class EngineProfile:
    """One serving engine (see the module docstring for the fields)."""

    name: str
    description: str = ""
    max_batched_tokens: int = 8192
    mixed_prefill: bool = True
    graph_max_tokens: int = 0
    schedule_lag_steps: float = 1.5
    kv_dtype: Mapping[str, str] = attrs.field(factory=lambda: {"default": "bf16"}, converter=_per_hardware,
                                              eq=False, hash=False)
    kv_policy: str | None = None
    kv_block: int = 16
    calibration: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, eq=False, hash=False)
    source: str = ""

    def _for(self, table: Mapping[str, Any], hw: HardwareSpec | str):
        name = hw if isinstance(hw, str) else hw.name
        return table.get(name, table.get("default"))

    def kv_dtype_for(self, hw: HardwareSpec | str) -> str | None:
        """The KV-cache dtype this engine keeps on ``hw`` (None: the model's dtype)."""
        return self._for(self.kv_dtype, hw)

    def calibrated(self, hw: HardwareSpec) -> HardwareSpec:
        """``hw`` with this engine's kernel-level figures for it (``kernels.toml``, when the
        engine is not the reference one, for the figures hardware.toml does not state) and its
        calibration overrides: the ``default`` ones where hardware.toml states no value for
        the GPU, then the GPU's own."""
        from .hardware import REFERENCE_ENGINE, kernel_calibration

        kernels = kernel_calibration(hw.name, self.name) if self.name != REFERENCE_ENGINE else {}
        kernels = {k: v for k, v in kernels.items() if k not in hw.calibrated}
        defaults = {k: v for k, v in self.calibration.get("default", {}).items()
                    if k not in hw.calibrated and getattr(hw.calibration, k, None) != v}
        overrides = kernels | defaults | dict(self.calibration.get(hw.name, {}))
        if not overrides:
            return hw
        return attrs.evolve(hw, calibration=attrs.evolve(hw.calibration, **overrides))


def _profile(name: str, entry: dict) -> EngineProfile:
    fields = {f.name for f in attrs.fields(EngineProfile)} - {"name"}
    unknown = set(entry) - fields
    if unknown:
        raise InputError(f"engine {name!r} in {DATA.name}: unknown keys {', '.join(sorted(unknown))}")
    return EngineProfile(name=name, **entry)


@functools.lru_cache(maxsize=None)
def bundled_engines() -> dict[str, EngineProfile]:
    """The profiles in ``data/engines.toml``, read once, by name."""
    with DATA.open("rb") as handle:
        table = tomllib.load(handle)
    return {name: _profile(name, entry) for name, entry in table.items()}


def list_engines() -> dict[str, EngineProfile]:
    """Every engine profile by name."""
    return bundled_engines()


def get_engine(name: str | EngineProfile) -> EngineProfile:
    """A profile by name (case-insensitive; "trt" and "tensorrt-llm" mean "trtllm");
    InputError lists the known ones."""
    if isinstance(name, EngineProfile):
        return name
    key = str(name).lower()
    key = {"trt": "trtllm", "tensorrt-llm": "trtllm", "tensorrt_llm": "trtllm", "dynamo-trt": "trtllm"}.get(key, key)
    engines = list_engines()
    if key not in engines:
        raise InputError(f"unknown engine {name!r}: known engines are {', '.join(engines)}")
    return engines[key]
