"""The core's own hook implementations: standard layers, core RoPE types, the causal cache
policy and the bundled hardware. Registered as distribution ``mantile-core``."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def mantile_layer_types():
    from .layers.standard import CORE_LAYER_TYPES

    return CORE_LAYER_TYPES


@hookimpl
def mantile_rope_scalings():
    from .rope import CORE_ROPE_SCALINGS

    return CORE_ROPE_SCALINGS


@hookimpl
def mantile_cache_policies():
    from .cache import CAUSAL_POLICY

    return [CAUSAL_POLICY]


@hookimpl
def mantile_hardware():
    from .hardware import bundled_hardware

    return bundled_hardware()
