"""Built-in embeddings (token, learned absolute position), norms (RMSNorm, LayerNorm) and
LM head.

Sharding follows vLLM: the token embedding and LM head are vocab-parallel (ceil(V/tp) rows per
device; the embedding all-reduces its output, the LM head all-gathers the logits), position
embeddings and norms are replicated.

Norm FLOPs per element: RMSNorm 4 (square, sum, scale by rsqrt, weight); LayerNorm 5 without
affine parameters (sum for the mean, subtract it, square, sum, scale by rsqrt), + 1 with a
weight, + 1 with a bias. A learned position embedding adds its row to the token's: 1 FLOP per
element. An LM head bias adds 1 FLOP per logit.
"""

from __future__ import annotations

import attrs

from ..dtypes import DType
from ..workload import LayerCost, Step
from .base import Layer

__all__ = ["Embedding", "PositionEmbedding", "RMSNorm", "LayerNorm", "LMHead", "NORM_FLOPS_PER_ELEMENT",
           "LAYERNORM_FLOPS_PER_ELEMENT"]

NORM_FLOPS_PER_ELEMENT = 4  # square, sum, scale by rsqrt, multiply by weight
LAYERNORM_FLOPS_PER_ELEMENT = 5  # mean (sum), subtract, square, sum, scale by rsqrt; + weight, + bias


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
class PositionEmbedding(Layer):
    """Learned absolute positions (GPT-2's ``wpe``), positions × hidden, replicated: a step
    gathers one row per token and adds it to the token embedding (1 FLOP per element)."""

    kind: str = "position_embedding"
    positions: int
    hidden: int
    dtype: DType

    def params(self) -> int:
        return self.positions * self.hidden

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.params())

    def describe(self) -> dict:
        return {"positions": self.positions}

    def cost(self, step: Step) -> LayerCost:
        elements = step.tokens * self.hidden
        return LayerCost(
            flops=elements,
            weight_bytes=self.dtype.nbytes(elements),
            resident_weight_bytes=self.weight_bytes(),
            activation_bytes=step.act_dtype.nbytes(elements),
            kernels=1,
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
class LayerNorm(Layer):
    """LayerNorm over ``hidden``: with a weight and a bias (GPT-2, Falcon), a weight only
    (``bias=False``: Cohere, DBRX) or neither (``affine=False``: OLMo); FLOPs per element
    LAYERNORM_FLOPS_PER_ELEMENT + affine + affine·bias."""

    kind: str = "norm"
    hidden: int
    dtype: DType
    bias: bool = True
    affine: bool = True

    def params(self) -> int:
        return self.affine * (1 + self.bias) * self.hidden

    def weight_bytes(self) -> int:
        return self.dtype.nbytes(self.params())

    def describe(self) -> dict:
        return {"norm": "layernorm", "bias": self.bias and self.affine, "affine": self.affine}

    def cost(self, step: Step) -> LayerCost:
        elements = step.tokens * self.hidden
        per_element = LAYERNORM_FLOPS_PER_ELEMENT + self.affine * (1 + self.bias)
        return LayerCost(
            flops=per_element * elements,
            weight_bytes=self.weight_bytes(),
            resident_weight_bytes=self.weight_bytes(),
            activation_bytes=step.act_dtype.nbytes(elements),
            kernels=1,
        )


@attrs.frozen(kw_only=True)
class LMHead(Layer):
    """Output projection hidden → vocab, computed for the one sampled position per sequence
    (prefill and decode alike); ``tied`` heads share the embedding's weights (0 params);
    ``bias`` (Phi-2) adds vocab parameters in ``bias_dtype`` (default: ``dtype``), sharded with
    the rows, and one FLOP per logit."""

    kind: str = "lm_head"
    vocab: int
    hidden: int
    dtype: DType
    tied: bool = False
    bias: bool = False
    bias_dtype: DType | None = None

    def _bias_bytes(self, rows) -> int:
        return (self.bias_dtype or self.dtype).nbytes(rows) if self.bias else 0

    def params(self) -> int:
        return (0 if self.tied else self.vocab * self.hidden) + self.bias * self.vocab

    def weight_bytes(self) -> int:
        weights = 0 if self.tied else self.dtype.matrix_nbytes(self.vocab, self.hidden)
        return weights + self._bias_bytes(self.vocab)

    def cost(self, step: Step) -> LayerCost:
        rows = _rows_per_device(self.vocab, step.tp)
        shard_bytes = self.dtype.matrix_nbytes(rows, self.hidden) + self._bias_bytes(rows)
        matmul = 2 * step.batch * self.hidden * rows
        parallel = step.tp > 1
        logits = step.act_dtype.nbytes(step.batch * rows)
        return LayerCost(
            flops=matmul + self.bias * step.batch * rows,
            matmul_flops=matmul,
            weight_bytes=shard_bytes,
            resident_weight_bytes=((0 if self.tied else self.dtype.matrix_nbytes(rows, self.hidden))
                                   + self._bias_bytes(rows)),
            activation_bytes=logits,
            comm_bytes=step.act_dtype.nbytes(step.batch * self.vocab) * parallel,
            collectives=1 * parallel,
            kernels=1 + 1 * parallel,
            gemm_dtype=self.dtype.compute_name,
        )
