"""What the recurrent mixers share: elementwise FLOP constants, the chunk arithmetic of the
chunked scans, and where the recurrent state lives.

State dtypes (vLLM's ``MambaStateDtypeCalculator``): the convolution state is kept in the
model's dtype; the SSM / delta state in the dtype the checkpoint declares for it
(``mamba_ssm_dtype`` in Qwen3.5, ``mamba_ssm_cache_dtype`` in Nemotron-H: float32), else the
model's dtype. ``--kv-dtype`` (fp8 KV) applies to attention KV only, never to the state.
The convolution state holds the last K−1 inputs of every conv channel (vLLM's layout;
Hugging Face's cache keeps K).
"""

from __future__ import annotations

import numpy

from mantile_core.dtypes import DType
from mantile_core.workload import Step

__all__ = ["state_facts", "SILU_FLOPS", "SIGMOID_FLOPS", "SOFTPLUS_FLOPS", "NORM_FLOPS", "chunk_square_sum",
           "chunk_count", "state_dtype", "is_recurrent_step", "conv_flops_per_channel"]

SILU_FLOPS = 4  # x·sigmoid(x): negate, exp, add, divide (the core counts SiLU as 4 too)
SIGMOID_FLOPS = 3  # exp, add, reciprocal
SOFTPLUS_FLOPS = 3  # log(1 + exp(x))
NORM_FLOPS = 4  # RMSNorm per element: square, sum, scale by rsqrt, multiply by the weight


def conv_flops_per_channel(kernel: int, bias: bool) -> int:
    """Causal depthwise convolution per token per channel: K multiplies, K−1 adds (+1 bias)."""
    return 2 * kernel - 1 + int(bias)


def chunk_count(tokens, chunk: int):
    """Chunks a sequence of ``tokens`` is cut into: ceil(tokens / chunk)."""
    return -(-tokens // chunk)


def chunk_square_sum(tokens, chunk: int):
    """Σ L² over the chunks of a ``tokens``-long sequence (full chunks of ``chunk``, the last
    one shorter): (tokens // chunk)·chunk² + (tokens % chunk)². Works on numpy arrays."""
    full, rest = tokens // chunk, tokens % chunk
    return full * chunk * chunk + rest * rest


def is_recurrent_step(step: Step):
    """1 where each sequence adds one token (the recurrent update engines run for decode), 0
    where it adds a chunk (the chunked, matmul-based scan of prefill)."""
    if isinstance(step.new_tokens, numpy.ndarray):
        return (step.new_tokens == 1).astype(numpy.int64)
    return int(step.new_tokens == 1)


def state_dtype(step: Step, declared: DType | None) -> DType:
    """The SSM / delta state's dtype: the checkpoint's declared one, else the model's."""
    return declared if declared is not None else step.act_dtype


def state_facts(conv_elements: int, ssm_elements: int, declared: DType | None) -> dict:
    """The ``recurrent_state`` entry of ``mantile layers --json``: per sequence, unsharded,
    conv elements (model dtype) and SSM / delta elements (``ssm_dtype``; "model" when the
    checkpoint declares none)."""
    return {"conv_elements": conv_elements, "ssm_elements": ssm_elements,
            "ssm_dtype": declared.name if declared is not None else "model"}
