"""Calls into a layer's code, contained: a plugin's layer that raises or returns junk while
it is costed becomes one :class:`~mantile_core.errors.PluginError` naming the layer, its
type and the distribution that provides it, never a traceback or a silently wrong number.

Checked at each call: ``params()`` / ``weight_bytes()`` / ``buffer_params()`` return a
non-negative integer;
``cost(step)`` returns a :class:`~mantile_core.workload.LayerCost` whose every numeric
field is finite and non-negative (scalars or numpy arrays, for the sweep); ``describe()``
returns a dict. A :class:`~mantile_core.errors.MantileError` a layer raises on purpose
(e.g. ParallelismError from ``check_deployment``) passes through unchanged; text a layer
prints while it is called is refused too (it would corrupt ``--json``).
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
from typing import Any

import attrs
import numpy

from .errors import MantileError, PluginError
from .workload import LayerCost

__all__ = ["call_layer", "layer_cost", "layer_count", "layer_facts"]

_NUMERIC_FIELDS = tuple(f.name for f in attrs.fields(LayerCost) if f.name != "gemm_dtype")


def _who(layer) -> str:
    """'layer NAME (type T, from DIST)' for messages."""
    from .plugins import get_plugin_manager

    owner = get_plugin_manager().registries.owners.get(("layer_types", layer.type), "unknown distribution")
    name = layer.name or layer.kind
    return f"layer {name!r} (type {layer.type or type(layer).__name__!r}, from {owner})"


def call_layer(layer, method: str, *args) -> Any:
    """``layer.method(*args)`` with ``print`` captured; any exception but a MantileError, or
    anything printed (it would corrupt ``--json``), becomes a PluginError."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            result = getattr(layer, method)(*args)
    except MantileError:
        raise
    except Exception as exc:
        raise PluginError(f"{_who(layer)} failed in {method}(): {type(exc).__name__}: {exc}") from None
    if buffer.getvalue():
        printed = " ".join(buffer.getvalue().split())[:60]
        raise PluginError(f"{_who(layer)} printed to stdout in {method}() ({printed!r})")
    return result


def layer_count(layer, method: str) -> int:
    """``params()``, ``weight_bytes()`` or ``buffer_params()``: a non-negative integer, else a
    PluginError."""
    value = call_layer(layer, method)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise PluginError(f"{_who(layer)}: {method}() returned {value!r}, not a non-negative integer")
    return int(value)


def layer_cost(layer, step) -> LayerCost:
    """``cost(step)``, checked: a LayerCost with finite, non-negative numeric fields."""
    cost = call_layer(layer, "cost", step)
    if not isinstance(cost, LayerCost):
        raise PluginError(f"{_who(layer)}: cost() returned {type(cost).__name__}, not a LayerCost")
    for field in _NUMERIC_FIELDS:
        value = getattr(cost, field)
        if not _finite_non_negative(value):
            raise PluginError(f"{_who(layer)}: cost() gave {field} = {value!r}, not a finite, non-negative number")
    if not isinstance(cost.gemm_dtype, str):
        raise PluginError(f"{_who(layer)}: cost() gave gemm_dtype = {cost.gemm_dtype!r}, not a dtype name")
    return cost


def _finite_non_negative(value) -> bool:
    """True for a finite number ≥ 0 or an array of them (exact Python ints of any size)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return value >= 0
    if isinstance(value, numbers.Real):
        return math.isfinite(value) and value >= 0
    if isinstance(value, numpy.ndarray) and value.dtype.kind in "iuf":
        return bool(numpy.all(numpy.isfinite(value)) and numpy.all(value >= 0))
    return False


def layer_facts(layer) -> dict:
    """``describe()``: a dict, else a PluginError."""
    facts = call_layer(layer, "describe")
    if not isinstance(facts, dict):
        raise PluginError(f"{_who(layer)}: describe() returned {type(facts).__name__}, not a dict")
    return facts
