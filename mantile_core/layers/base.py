"""The layer protocol every layer type (built-in or plugin) implements."""

from __future__ import annotations

import attrs

from ..errors import ParallelismError
from ..workload import LayerCost, Step

__all__ = ["Layer", "require_divides", "local_kv_heads"]


def require_divides(what: str, degree: int, name: str, value: int) -> None:
    """Raise ParallelismError("'tp' must divide num_attention_heads=64 (got 3)") unless
    ``degree`` divides ``value``."""
    if degree < 1:
        raise ParallelismError(f"{what!r} must be a positive integer (got {degree})")
    if value % degree:
        raise ParallelismError(f"{what!r} must divide {name}={value} (got {degree})")


def local_kv_heads(kv_heads: int, tp):
    """KV heads held per device: kv_heads/tp, or 1 (replicated) when tp exceeds kv_heads."""
    import numpy

    if isinstance(tp, numpy.ndarray):
        return numpy.maximum(kv_heads // tp, 1)
    return max(kv_heads // tp, 1)


@attrs.frozen(kw_only=True)
class Layer:
    """One layer of a model, built by a :class:`~mantile_core.records.LayerType`.

    Subclasses are attrs frozen classes (hashable, so identical layers are costed once) and
    implement ``params``, ``weight_bytes``, ``cost`` and, if they shard, ``check_parallelism``.
    ``name`` is the checkpoint module path, ``index`` the decoder block (None outside blocks),
    ``type`` the LayerType name (filled in by the core).
    """

    kind: str = "layer"
    name: str = ""
    index: int | None = None
    type: str = ""

    def params(self) -> int:
        """Parameters of the whole layer (unsharded)."""
        raise NotImplementedError

    def weight_bytes(self) -> int:
        """Bytes of the whole layer's weights in their storage dtypes (unsharded)."""
        raise NotImplementedError

    def buffer_params(self) -> int:
        """Elements of the buffers the checkpoint stores that ``params`` counts (a router's
        ``e_score_correction_bias``, Gemma 4's ``layer_scalar``): Mantile counts every tensor
        the checkpoint stores, as the published safetensors totals do, while transformers
        registers these as buffers, so its parameter count is ``params() - buffer_params()``."""
        return 0

    def check_parallelism(self, tp: int, ep: int) -> None:
        """Raise ParallelismError when ``tp`` / ``ep`` cannot split this layer."""

    def check_deployment(self, tp: int, ep: int, dp: int) -> None:
        """Raise ParallelismError when the deployment cannot split this layer: ``dp`` groups of
        ``tp`` devices (attention data parallelism). A layer run inside one group (attention,
        dense MLP, norms) splits by ``tp`` only; the default says so. The MoE overrides it."""
        self.check_parallelism(tp, ep)

    def cost(self, step: Step) -> LayerCost:
        """Per-device cost of one step (see :class:`LayerCost` for each field's units)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Extra facts for ``mantile layers`` (window, heads, ...); JSON-serialisable."""
        return {}

    @property
    def cost_key(self):
        """Layers equal under this key have equal costs (they are costed once)."""
        return attrs.evolve(self, name="", index=None)
