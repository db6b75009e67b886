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

from mantile_core import hookimpl

__all__ = ["mantile_layer_types", "mantile_model_layouts", "mantile_validation_cases", "MODEL_TYPES"]

MODEL_TYPES = frozenset({"mamba"})


def build_mixer(config, slot):
    """A :class:`MambaMixer` from a Hugging Face ``MambaConfig`` (config.json keys)."""
    from .mixer import MambaMixer

    hidden = config.hidden_size
    intermediate = config.intermediate_size or int(config.get("expand", 2) * hidden)
    dt_rank = config.get("time_step_rank", "auto")
    if dt_rank == "auto":
        dt_rank = -(-hidden // 16)  # MambaConfig: ceil(hidden / 16)
    return MambaMixer(
        name=slot.name,
        index=slot.index,
        hidden=hidden,
        intermediate=intermediate,
        state=int(config.get("state_size", 16)),
        conv_kernel=int(config.get("conv_kernel", 4)),
        dt_rank=int(dt_rank),
        weight_dtype=config.weight_dtype(slot.name),
        dtype=config.dtype,
        use_bias=bool(config.get("use_bias", False)),
        conv_bias=bool(config.get("use_conv_bias", True)),
    )


def build_lm_head(config, slot):
    """The core's LM head, tied unless the config says ``tie_word_embeddings: false``."""
    from mantile_core.layers import LMHead

    return LMHead(name=slot.name, index=slot.index, vocab=config.vocab_size, hidden=config.hidden_size,
                  dtype=config.weight_dtype(slot.name, quantizable=False),
                  tied=bool(config.get("tie_word_embeddings", True)))


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
