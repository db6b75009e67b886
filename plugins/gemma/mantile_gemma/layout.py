"""The Gemma decoder stack: four norms per block.

embedding; per block ``input_layernorm``, ``self_attn``, ``post_attention_layernorm``,
``pre_feedforward_layernorm``, ``mlp`` (Gemma 4 with ``enable_moe_block``: then the MoE block,
router + experts + its three norms, named after the block), ``post_feedforward_layernorm``;
final ``norm``; ``lm_head``. Module names follow the checkpoint: ``model.layers.N`` for the causal LM,
``model.language_model.layers.N`` inside the image-text wrapper (``text_module_prefix``, set by
the config reader), so quantization exclusion lists match.
"""

from __future__ import annotations

from mantile_core.records import LayerSlot, ModelLayout

__all__ = ["gemma_slots", "LAYOUTS", "NORMS"]

NORMS = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")


def gemma_slots(config) -> list[LayerSlot]:
    """Slots of a Gemma 2 / 3 model in execution order (4 norms around attention and MLP)."""
    prefix = config.get("text_module_prefix") or "model"
    slots = [LayerSlot("embedding", None, f"{prefix}.embed_tokens")]
    for i in range(config.num_layers):
        block = f"{prefix}.layers.{i}"
        slots += [
            LayerSlot("norm", i, f"{block}.input_layernorm"),
            LayerSlot("attention", i, f"{block}.self_attn"),
            LayerSlot("norm", i, f"{block}.post_attention_layernorm"),
            LayerSlot("norm", i, f"{block}.pre_feedforward_layernorm"),
            LayerSlot("mlp", i, f"{block}.mlp"),
        ]
        if config.moe_layers[i]:  # Gemma 4's MoE block runs beside the dense MLP
            slots.append(LayerSlot("moe", i, block))
        slots.append(LayerSlot("norm", i, f"{block}.post_feedforward_layernorm"))
    slots += [LayerSlot("norm", None, f"{prefix}.norm"), LayerSlot("lm_head", None, "lm_head")]
    return slots


def _layouts():
    from .layers import GEMMA_MODEL_TYPES

    return [ModelLayout("gemma", GEMMA_MODEL_TYPES, gemma_slots,
                        description="Gemma: norm, attention, norm, norm, MLP (+ Gemma 4 MoE block), norm per block")]


LAYOUTS = _layouts()
