"""Hook specifications of the ``mantile`` pluggy project.

Every hook is *collecting*: an implementation returns a list (or any iterable) of records, the
core flattens what all plugins return into registries keyed by name, rejects duplicates naming
both distributions, and sorts by name so installation order never matters. Implementations take
no arguments and are marked with :data:`mantile_core.hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT = "mantile"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl", "PROJECT"]


@hookspec
def mantile_config_readers():
    """Config reading: yield :class:`mantile_core.records.ConfigReader` records. A reader owns
    the ``model_types`` it lists (two readers claiming one model_type is a conflict) and turns
    their config.json into the standard spelling before the core checks and parses it; the
    core recognises a config's model_type before it reads any other key. Example::

        @hookimpl
        def mantile_config_readers():
            return [ConfigReader("gpt2", {"gpt2"}, read=lambda raw, where: {
                **raw, "hidden_size": checks.get_int(raw, "n_embd", where), ...})]
    """


@hookspec
def mantile_layer_types():
    """Layer construction: yield :class:`mantile_core.records.LayerType` records.

    Fields: ``name`` (unique, e.g. "gpt-oss-attention"), ``kind`` ("attention", "mlp", "moe",
    "norm", "embedding", "lm_head" or a new kind), ``build(config, slot)`` returning a
    :class:`mantile_core.layers.Layer`, and ``model_types`` / ``applies(config)`` saying which
    configs it is for. Example::

        @hookimpl
        def mantile_layer_types():
            return [LayerType("my-mixer", "mixer", build=MyMixer.from_config,
                              model_types={"my_arch"})]
    """


@hookspec
def mantile_model_layouts():
    """Model layouts: yield :class:`mantile_core.records.ModelLayout` records, for
    architectures the core's standard decoder stack (embedding; per block norm, attention, norm,
    mlp or moe; final norm; lm_head) does not describe. ``slots(config)`` returns
    :class:`LayerSlot` (kind, index, name) in execution order. Example::

        ModelLayout("my-arch", {"my_arch"}, slots=lambda cfg: [LayerSlot("mixer", i, f"m.{i}")
                                                              for i in range(cfg.num_layers)])
    """


@hookspec
def mantile_rope_scalings():
    """RoPE scaling: yield :class:`mantile_core.records.RopeScaling` records keyed by
    ``rope_type``; ``compute(rope, head_dim, max_position_embeddings)`` gets transformers'
    ``rope_parameters`` dict and returns a :class:`RopeResult` (inv_freq float64 of length
    rotary_dim/2, attention_factor). Example: ``RopeScaling("yarn", compute=yarn_inv_freq)``.
    """


@hookspec
def mantile_cache_policies():
    """KV-cache policy: yield :class:`mantile_core.records.CachePolicy` records keyed by
    ``name``, each for the layers whose mask is ``mask``. Counts are per sequence per KV head:
    resident positions after ``tokens`` written, (query, key) pairs of a chunk, positions a
    decode step reads. Example: ``CachePolicy("ring", "sliding", ..., default=True)``.
    """


@hookspec
def mantile_hardware():
    """Accelerators beyond the bundled ones: yield :class:`mantile_core.hardware.HardwareSpec`
    records keyed by ``name`` (dense peak FLOP/s per dtype, HBM bytes and bytes/s, scale-up link
    bytes/s and latency, calibration)."""


@hookspec
def mantile_validation_cases():
    """Torch-backed checks: yield :class:`mantile_core.records.ValidationCase` records keyed by
    ``name``; ``mantile validate`` runs them. ``run()`` imports torch lazily and returns a
    :class:`ValidationOutcome`."""
