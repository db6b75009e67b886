"""The Llama 4 decoder stack: the standard one with the checkpoint's ``feed_forward`` names.

embedding; per block ``input_layernorm``, ``self_attn``, ``post_attention_layernorm``,
``feed_forward`` (MoE or dense MLP); final ``norm``; ``lm_head``.
"""

from __future__ import annotations

from mantile_core.records import LayerSlot, ModelLayout

from .config import MODEL_TYPES

__all__ = ["llama4_slots", "LAYOUTS"]


def llama4_slots(config) -> list[LayerSlot]:
    slots = [LayerSlot("embedding", None, "model.embed_tokens")]
    for i in range(config.num_layers):
        block = f"model.layers.{i}"
        slots += [
            LayerSlot("norm", i, f"{block}.input_layernorm"),
            LayerSlot("attention", i, f"{block}.self_attn"),
            LayerSlot("norm", i, f"{block}.post_attention_layernorm"),
            LayerSlot("moe" if config.moe_layers[i] else "mlp", i, f"{block}.feed_forward"),
        ]
    return slots + [LayerSlot("norm", None, "model.norm"), LayerSlot("lm_head", None, "lm_head")]


LAYOUTS = [ModelLayout("llama4", MODEL_TYPES, llama4_slots, description="Llama 4: feed_forward MoE / dense MLP")]
