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


def _text(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Validator: a non-empty string (a registry key, a kind, a mask)."""
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{attribute.name!r} must be a non-empty string (got {value!r:.60})")


def _string(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Validator: a string (a description)."""
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name!r} must be a string (got {type(value).__name__})")


def _callable(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"{attribute.name!r} must be callable (got {type(value).__name__})")


def _optional_callable(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.name!r} must be callable or None (got {type(value).__name__})")


def _model_types(value: Any) -> frozenset:
    """Converter: a collection of model_type strings as a frozenset (a lone string is refused:
    frozenset("llama") would be its letters)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"'model_types' must be a collection of model_type strings, not a string ({value!r:.60})")
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(f"'model_types' must hold non-empty strings (got {item!r:.60})")
    return items


def _bool(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name!r} must be True or False (got {value!r:.60})")


def _slot_index(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise TypeError(f"'index' must be a non-negative integer or None (got {value!r:.60})")


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

    name: str = attrs.field(validator=_text)
    model_types: frozenset[str] = attrs.field(converter=_model_types)
    read: Callable[[dict, str], dict] = attrs.field(validator=_callable)
    description: str = attrs.field(default="", validator=_string)


@attrs.frozen
class LayerSlot:
    """One position in a model: its ``kind``, decoder ``index`` (None outside the blocks) and
    module ``name`` as in the checkpoint ("model.layers.3.self_attn")."""

    kind: str = attrs.field(validator=_text)
    index: int | None = attrs.field(validator=_slot_index)
    name: str = attrs.field(validator=_text)


@attrs.frozen
class LayerType:
    """How to build one kind of layer for the models it applies to.

    ``build(config, slot)`` returns a :class:`mantile_core.layers.Layer`. A type applies to a
    config when its ``model_type`` is in ``model_types`` or ``applies(config)`` is true; a type
    with neither is generic and used only when no specific type matches.
    """

    name: str = attrs.field(validator=_text)
    kind: str = attrs.field(validator=_text)
    build: Callable[[Any, LayerSlot], Any] = attrs.field(validator=_callable)
    model_types: frozenset[str] = attrs.field(default=frozenset(), converter=_model_types)
    applies: Callable[[Any], bool] | None = attrs.field(default=None, validator=_optional_callable)
    description: str = attrs.field(default="", validator=_string)

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

    name: str = attrs.field(validator=_text)
    model_types: frozenset[str] = attrs.field(converter=_model_types)
    slots: Callable[[Any], list[LayerSlot]] = attrs.field(validator=_callable)
    description: str = attrs.field(default="", validator=_string)
    extras: Callable[[Any], dict] | None = attrs.field(default=None, validator=_optional_callable)


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

    rope_type: str = attrs.field(validator=_text)
    compute: Callable[[dict, int, int], RopeResult] = attrs.field(validator=_callable)
    description: str = attrs.field(default="", validator=_string)

    @property
    def name(self) -> str:
        return self.rope_type


@attrs.frozen
class CachePolicy:
    """A KV-cache policy for the attention layers whose mask is ``mask`` ("causal", "sliding",
    "chunked").

    All counts are per sequence and per KV head, and work element-wise on numpy arrays:

    - ``resident_positions(tokens, window, block)``: positions held once ``tokens`` tokens
      have been written (a decode step at context C has written C+1).
    - ``attended_pairs(new, cached, window)``: (query, key) pairs a chunk of ``new`` queries at
      absolute positions cached..cached+new-1 attends.
    - ``read_positions(tokens, window, block)``: keys the step that writes token number
      ``tokens`` reads.

    ``default`` marks the policy used for its mask when the user names none. ``retention``
    ("ring", "paged", "full"; default: the name) is what ``--kv-policy`` selects: one choice
    names the policy of that retention for every mask that has one (``--kv-policy paged``
    picks "paged" for sliding layers and "chunked-paged" for chunked ones).

    ``window`` passed to the counts is the layer's span: the sliding window, or the chunk of a
    chunked layer.
    """

    name: str = attrs.field(validator=_text)
    mask: str = attrs.field(validator=_text)
    resident_positions: Callable[..., Any] = attrs.field(validator=_callable)
    attended_pairs: Callable[..., Any] = attrs.field(validator=_callable)
    read_positions: Callable[..., Any] = attrs.field(validator=_callable)
    default: bool = attrs.field(default=False, validator=_bool)
    description: str = attrs.field(default="", validator=_string)
    retention: str = attrs.field(default="", validator=_string)

    @property
    def selector(self) -> str:
        """The ``--kv-policy`` name that selects this policy: ``retention`` or the name."""
        return self.retention or self.name


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

    name: str = attrs.field(validator=_text)
    run: Callable[[], ValidationOutcome] = attrs.field(validator=_callable)
    description: str = attrs.field(default="", validator=_string)
