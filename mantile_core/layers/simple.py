"""Built-in embedding, RMSNorm and LM head.

Sharding follows vLLM: the embedding and LM head are vocab-parallel (ceil(V/tp) rows per
device; the embedding all-reduces its output, the LM head all-gathers the logits), norms are
replicated.
"""

from __future__ import annotations

import attrs

from ..dtypes import DType
from ..workload import LayerCost, Step
from .base import Layer

__all__ = ["Embedding", "RMSNorm", "LMHead", "NORM_FLOPS_PER_ELEMENT"]

NORM_FLOPS_PER_ELEMENT = 4  # square, sum, scale by rsqrt, multiply by weight


def _rows_per_device(vocab: int, tp):
    return (vocab + tp - 1) // tp


@attrs.frozen(kw_only=True)
class Embedding(Layer):
    """Token embedding, vocab × hidden; a step gathers one row per token."""

    kind: str = "embedding"
    vocab: int
    hidden: int
    dtype: DType

    def params(self) -> int:
        return self.vocab * self.hidden

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.params())

    def cost(self, step: Step) -> LayerCost:
        tokens = step.tokens
        act = step.act_dtype.nbytes(tokens * self.hidden)
        parallel = step.tp > 1
        return LayerCost(
            weight_bytes=self.dtype.nbytes(tokens * self.hidden),
            resident_weight_bytes=self.dtype.nbytes(_rows_per_device(self.vocab, step.tp) * self.hidden),
            activation_bytes=act,
            comm_bytes=act * parallel,
            collectives=1 * parallel,
            kernels=1 + 1 * parallel,
        )


@attrs.frozen(kw_only=True)
class RMSNorm(Layer):
    """RMSNorm over ``hidden``: 4 FLOPs per element (square, sum, rsqrt scale, weight)."""

    kind: str = "norm"
    hidden: int
    dtype: DType

    def params(self) -> int:
        return self.hidden

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.hidden)

    def cost(self, step: Step) -> LayerCost:
        elements = step.tokens * self.hidden
        return LayerCost(
            flops=NORM_FLOPS_PER_ELEMENT * elements,
            weight_bytes=self.weight_bytes(),
            resident_weight_bytes=self.weight_bytes(),
            activation_bytes=step.act_dtype.nbytes(elements),
            kernels=1,
        )


@attrs.frozen(kw_only=True)
class LMHead(Layer):
    """Output projection hidden → vocab, computed for the one sampled position per sequence
    (prefill and decode alike); ``tied`` heads share the embedding's weights (0 params)."""

    kind: str = "lm_head"
    vocab: int
    hidden: int
    dtype: DType
    tied: bool = False

    def params(self) -> int:
        return 0 if self.tied else self.vocab * self.hidden

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.params())

    def cost(self, step: Step) -> LayerCost:
        rows = _rows_per_device(self.vocab, step.tp)
        shard_bytes = self.dtype.nbytes(rows * self.hidden)
        matmul = 2 * step.batch * self.hidden * rows
        parallel = step.tp > 1
        logits = step.act_dtype.nbytes(step.batch * rows)
        return LayerCost(
            flops=matmul,
            matmul_flops=matmul,
            weight_bytes=shard_bytes,
            resident_weight_bytes=0 if self.tied else shard_bytes,
            activation_bytes=logits,
            comm_bytes=step.act_dtype.nbytes(step.batch * self.vocab) * parallel,
            collectives=1 * parallel,
            kernels=1 + 1 * parallel,
            gemm_dtype=self.dtype.compute_name,
        )
