"""The records plugins yield from the hooks (attrs frozen value classes).

Every record has a ``name`` (or ``rope_type``) that keys its registry; the core rejects two
records of one registry with the same key, naming both distributions.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import numpy

__all__ = [
    "ConfigReader",
    "LayerSlot",
    "LayerType",
    "ModelLayout",
    "RopeResult",
    "RopeScaling",
    "CachePolicy",
    "ValidationCase",
    "ValidationOutcome",
]


@attrs.frozen
class ConfigReader:
    """Reads the config.json of the model types it owns into the standard spelling.

    ``read(raw, where)`` gets the decoded config.json (a dict; ``where`` is the prefix for
    error messages, "config 'name'") and returns a dict in the standard (Llama-style
    transformers) spelling the core parses: ``hidden_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``, ``intermediate_size``,
    ``vocab_size``, ``max_position_embeddings``, ``tie_word_embeddings``, rope keys, MoE keys,
    ``torch_dtype``, ``quantization_config``. Keys the plugin's own layers need stay in the
    returned dict (they read them from ``config.raw``); the reader checks them with
    :mod:`mantile_core.checks` and raises ConfigError on bad values.
    """

    name: str
    model_types: frozenset[str] = attrs.field(converter=frozenset)
    read: Callable[[dict, str], dict]
    description: str = ""


@attrs.frozen
class LayerSlot:
    """One position in a model: its ``kind``, decoder ``index`` (None outside the blocks) and
    module ``name`` as in the checkpoint ("model.layers.3.self_attn")."""

    kind: str
    index: int | None
    name: str


@attrs.frozen
class LayerType:
    """How to build one kind of layer for the models it applies to.

    ``build(config, slot)`` returns a :class:`mantile_core.layers.Layer`. A type applies to a
    config when its ``model_type`` is in ``model_types`` or ``applies(config)`` is true; a type
    with neither is generic and used only when no specific type matches.
    """

    name: str
    kind: str
    build: Callable[[Any, LayerSlot], Any]
    model_types: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    applies: Callable[[Any], bool] | None = None
    description: str = ""

    def matches(self, config) -> bool:
        """True when this type is specific to ``config``."""
        if config.model_type in self.model_types:
            return True
        return bool(self.applies is not None and self.applies(config))

    @property
    def generic(self) -> bool:
        return not self.model_types and self.applies is None


@attrs.frozen
class ModelLayout:
    """Which layers a model is made of, for architectures the standard decoder stack does not
    describe: ``slots(config)`` returns the :class:`LayerSlot` list in execution order.
    ``extras(config)``, if given, returns figures reported beside the model's totals and not
    part of them (JSON-serialisable, e.g. ``{"mtp_params": ...}`` for DeepSeek's
    next-token-prediction module, which serving without speculation never runs)."""

    name: str
    model_types: frozenset[str] = attrs.field(converter=frozenset)
    slots: Callable[[Any], list[LayerSlot]]
    description: str = ""
    extras: Callable[[Any], dict] | None = None


@attrs.frozen
class RopeResult:
    """``inv_freq`` (float64, rotary_dim/2 values, radians per position) and the
    ``attention_factor`` that scales cos and sin."""

    inv_freq: numpy.ndarray = attrs.field(eq=attrs.cmp_using(eq=numpy.array_equal))
    attention_factor: float = 1.0


@attrs.frozen
class RopeScaling:
    """A RoPE scaling keyed by ``rope_type``.

    ``compute(rope, head_dim, max_position_embeddings)`` takes the transformers-style
    ``rope_parameters`` dict and returns a :class:`RopeResult`; it raises MantileError on bad
    parameters.
    """

    rope_type: str
    compute: Callable[[dict, int, int], RopeResult]
    description: str = ""

    @property
    def name(self) -> str:
        return self.rope_type


@attrs.frozen
class CachePolicy:
    """A KV-cache policy for the attention layers whose mask is ``mask`` ("causal", "sliding").

    All counts are per sequence and per KV head, and work element-wise on numpy arrays:

    - ``resident_positions(tokens, window, block)``: positions held once ``tokens`` tokens
      have been written (a decode step at context C has written C+1).
    - ``attended_pairs(new, cached, window)``: (query, key) pairs a chunk of ``new`` queries at
      absolute positions cached..cached+new-1 attends.
    - ``read_positions(tokens, window, block)``: keys the step that writes token number
      ``tokens`` reads.

    ``default`` marks the policy used for its mask when the user names none.
    """

    name: str
    mask: str
    resident_positions: Callable[..., Any]
    attended_pairs: Callable[..., Any]
    read_positions: Callable[..., Any]
    default: bool = False
    description: str = ""


@attrs.frozen
class ValidationOutcome:
    """What one validation case found: ``passed``, a ``detail`` line with the figures compared,
    or ``skipped`` with the reason (e.g. transformers not installed)."""

    passed: bool
    detail: str = ""
    skipped: bool = False


@attrs.frozen
class ValidationCase:
    """A torch-backed check, run by ``mantile validate``: ``run()`` imports torch itself and
    returns a :class:`ValidationOutcome`."""

    name: str
    run: Callable[[], ValidationOutcome]
    description: str = ""
