"""Entry point of mantile-mamba (group ``mantile``, name ``mamba``).

Three hooks make a Mamba model estimable:

- ``mantile_model_layouts``: a Mamba model is not the standard decoder stack (no attention, no
  MLP); its layout is embedding, then per block an RMSNorm and a mixer, a final norm, the head.
- ``mantile_layer_types``: the new ``mixer`` kind, and an LM head that follows
  ``MambaConfig``'s default of tied embeddings (the published configs omit the key).
- ``mantile_validation_cases``: torch checks that ``mantile validate`` runs.

Importing this module imports neither numpy nor torch: the records are built on first use.
"""

from __future__ import annotations

from mantile_core import checks, hookimpl

__all__ = ["mantile_layer_types", "mantile_model_layouts", "mantile_validation_cases", "MODEL_TYPES"]

MODEL_TYPES = frozenset({"mamba"})


def build_mixer(config, slot):
    """A :class:`MambaMixer` from a Hugging Face ``MambaConfig`` (config.json keys)."""
    from .mixer import MambaMixer

    raw, where = config.raw, config.where  # every key read through mantile_core.checks
    hidden = config.hidden_size
    intermediate = config.intermediate_size or checks.get_int(raw, "expand", where, default=2) * hidden
    dt_rank = raw.get("time_step_rank", "auto")
    if dt_rank == "auto":
        dt_rank = -(-hidden // 16)  # MambaConfig: ceil(hidden / 16)
    else:
        dt_rank = checks.get_int(raw, "time_step_rank", where)
    return MambaMixer(
        name=slot.name,
        index=slot.index,
        hidden=hidden,
        intermediate=intermediate,
        state=checks.get_int(raw, "state_size", where, default=16),
        conv_kernel=checks.get_int(raw, "conv_kernel", where, default=4, maximum=1024),
        dt_rank=dt_rank,
        weight_dtype=config.weight_dtype(slot.name),
        dtype=config.dtype,
        use_bias=checks.get_bool(raw, "use_bias", where, default=False),
        conv_bias=checks.get_bool(raw, "use_conv_bias", where, default=True),
    )


def build_lm_head(config, slot):
    """The core's LM head, tied unless the config says ``tie_word_embeddings: false``."""
    from mantile_core.layers import LMHead

    return LMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.weight_dtype(slot.name, quantizable=False),
                  tied=checks.get_bool(config.raw, "tie_word_embeddings", config.where, default=True))


def mamba_slots(config):
    """backbone.embeddings; per block backbone.layers.i.{norm, mixer}; backbone.norm_f; lm_head."""
    from mantile_core.records import LayerSlot

    slots = [LayerSlot("embedding", None, "backbone.embeddings")]
    for i in range(config.num_layers):
        slots += [LayerSlot("norm", i, f"backbone.layers.{i}.norm"),
                  LayerSlot("mixer", i, f"backbone.layers.{i}.mixer")]
    return slots + [LayerSlot("norm", None, "backbone.norm_f"), LayerSlot("lm_head", None, "lm_head")]


@hookimpl
def mantile_model_layouts():
    from mantile_core.records import ModelLayout

    return [ModelLayout("mamba", MODEL_TYPES, slots=mamba_slots,
                        description="Mamba: per block RMSNorm + selective-SSM mixer, no attention")]


@hookimpl
def mantile_layer_types():
    from mantile_core.records import LayerType

    return [
        LayerType("mamba-mixer", "mixer", build_mixer, MODEL_TYPES,
                  description="Mamba-1 selective state-space mixer; recurrent state instead of a KV cache"),
        LayerType("mamba-lm-head", "lm_head", build_lm_head, MODEL_TYPES,
                  description="LM head, tied to the embedding by default as in MambaConfig"),
    ]


@hookimpl
def mantile_validation_cases():
    from .validation import VALIDATION_CASES

    return VALIDATION_CASES
