"""Served precision: the dtype an engine keeps a checkpoint's unquantized weights and runs
its activations in (vLLM's ``--dtype``; the KV cache follows unless ``--kv-dtype`` says
otherwise, as vLLM's ``kv_cache_dtype="auto"`` does).

``dtype="auto"`` follows vLLM's rule (``vllm/config/model.py``: ``_get_and_verify_dtype``,
``_resolve_auto_dtype``):

- the platform's supported dtypes, in order of preference: bf16, fp16, fp32 where the
  accelerator has bf16 (NVIDIA compute capability 8.0 and later, AMD Instinct MI200 and
  later: every accelerator Mantile knows, whose timing model needs a bf16 peak); fp16, fp32
  on older GPUs (V100, T4: ``has_bf16=False``). fp16 is struck for the model types vLLM
  finds numerically unstable in it (``FLOAT16_UNSTABLE``);
- a float32 checkpoint is downcast to the first of them (bf16 on every known accelerator);
- a bf16 or fp16 checkpoint is kept where supported, else the first supported dtype
  replaces it.

Older vLLM releases, and SGLang, serve a float32 checkpoint in fp16 instead (bf16 for Gemma):
``dtype="fp16"`` reproduces them. A config without ``torch_dtype`` is read as bf16 by the
config parser (vLLM would look at the safetensors files, then assume float32).

An explicit ``dtype`` (bf16, fp16 or fp32; vLLM's spellings half, float16, bfloat16, float,
float32 too) wins. Quantized weights (mxfp4, fp8, nvfp4 from ``quantization_config``) keep
their format: the served dtype applies to the tensors quantization leaves alone (biases,
norms, embeddings, modules_to_not_convert) and to activations.
"""

from __future__ import annotations

import attrs

from .dtypes import DType, get_dtype
from .errors import InputError

__all__ = ["Precision", "served_precision", "served_model", "precision_warnings", "FLOAT16_UNSTABLE", "SERVED_DTYPES"]

FLOAT16_UNSTABLE = frozenset({"gemma2", "gemma3", "gemma3_text", "plamo2", "glm4"})
"""model_types vLLM never serves in float16 (``_FLOAT16_NOT_SUPPORTED_MODELS``)."""

SERVED_DTYPES = ("bf16", "fp16", "fp32")
"""Values an explicit ``dtype`` may take (besides "auto" and the aliases get_dtype reads)."""


@attrs.frozen
class Precision:
    """``dtype`` the served dtype, ``checkpoint`` the config's ``torch_dtype``, ``rule``
    "auto" (vLLM's dtype=auto) or "given" (an explicit dtype)."""

    dtype: DType
    checkpoint: DType
    rule: str

    def describe(self) -> str:
        """"bf16 (checkpoint fp32, served as vLLM dtype=auto)"; "bf16 (as the checkpoint)"."""
        if self.rule == "given":
            return f"{self.dtype.name} (--dtype; checkpoint {self.checkpoint.name})"
        if self.dtype == self.checkpoint:
            return f"{self.dtype.name} (as the checkpoint)"
        return f"{self.dtype.name} (checkpoint {self.checkpoint.name}, served as vLLM dtype=auto)"


def _supported(model_type: str, has_bf16: bool) -> list[str]:
    names = ["bf16", "fp16", "fp32"] if has_bf16 else ["fp16", "fp32"]
    if model_type in FLOAT16_UNSTABLE:
        names.remove("fp16")
    return names


def served_precision(checkpoint: DType, model_type: str, dtype: str | None = None, *,
                     has_bf16: bool = True) -> Precision:
    """The served precision of a checkpoint stored in ``checkpoint`` for ``dtype`` None /
    "auto" (vLLM's rule, module docstring; ``has_bf16`` False: an accelerator without bf16)
    or an explicit bf16 / fp16 / fp32; InputError for anything else."""
    if dtype is not None and str(dtype).lower() != "auto":
        try:
            given = get_dtype(dtype)
        except Exception:
            given = None
        if given is None or given.name not in SERVED_DTYPES:
            raise InputError(f"'dtype' must be auto, bf16, fp16 or fp32 (got {dtype!r}): it sets the unquantized "
                             "weights and the activations; quantized weights keep the checkpoint's format and the "
                             "KV cache has --kv-dtype")
        return Precision(given, checkpoint, "given")
    supported = _supported(model_type, has_bf16)
    if checkpoint.name == "fp32":
        served = supported[0]
    elif checkpoint.name in supported:
        served = checkpoint.name
    else:
        served = supported[0]
    return Precision(get_dtype(served), checkpoint, "auto")


def precision_warnings(precision: Precision, model_type: str) -> list[str]:
    """The sentence for a given dtype vLLM refuses: fp16 for a model type in FLOAT16_UNSTABLE."""
    if precision.rule == "given" and precision.dtype.name == "fp16" and model_type in FLOAT16_UNSTABLE:
        return [f"dtype fp16 for model_type {model_type!r}: vLLM refuses it (numerically unstable in float16); "
                "bf16 or fp32 is what it serves"]
    return []


def served_model(model, dtype: DType):
    """``model`` with its layers rebuilt from a config whose ``dtype`` is ``dtype`` (the
    model itself when it already is)."""
    if model.config.dtype == dtype:
        return model
    from .model import Model, build_layers

    config = attrs.evolve(model.config, dtype=dtype)
    return Model(config=config, layers=build_layers(config))
