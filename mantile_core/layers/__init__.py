"""Layers: the protocol (:class:`Layer`) and the core's built-in layer classes."""

from __future__ import annotations

from .attention import Attention
from .base import Layer, local_kv_heads, require_divides
from .mlp import MLP, GatedMLP, MoE, expected_active_experts
from .simple import Embedding, LayerNorm, LMHead, PositionEmbedding, RMSNorm

__all__ = ["Layer", "Attention", "MLP", "GatedMLP", "MoE", "Embedding", "PositionEmbedding", "LMHead", "RMSNorm",
           "LayerNorm", "local_kv_heads", "require_divides", "expected_active_experts"]
