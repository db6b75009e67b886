"""Quantized checkpoints as published: which storage format each linear weight has.

A :class:`QuantScheme` is read once from the config's ``quantization_config`` (or, for a
modelopt checkpoint that publishes it apart, from ``hf_quant_config.json`` beside config.json,
whose ``quantization`` object is the same thing) and answers, for a module name, the DType its
weight matrices are stored in. Biases, norms, embeddings and routers are never quantized
unless a layer says so.

Formats and their exact bytes (per weight matrix of ``rows × cols`` elements):

- ``mxfp4`` (GPT-OSS): 4 bits + one 8-bit scale per 32 elements.
- ``fp8`` with ``weight_block_size`` [128, 128] (DeepSeek, Qwen3-FP8, GLM-5-FP8): 1 byte + one
  float32 ``weight_scale_inv`` per 128 × 128 tile (mantile_core.dtypes.block_scaled).
- modelopt ``FP8`` (per-tensor, "fp8-pertensor"): 1 byte per element + a float32
  ``weight_scale`` and a float32 ``input_scale`` per matrix: ``rows·cols + 8``.
- modelopt ``NVFP4`` ("nvfp4-pertensor"): ``weight`` U8 [rows, cols/2] (two e2m1 values a
  byte), ``weight_scale`` F8_E4M3 [rows, cols/16], ``weight_scale_2`` F32 [] and
  ``input_scale`` F32 []: ``rows·cols/2 + rows·cols/16 + 8``.
- modelopt ``W4A16_NVFP4`` ("nvfp4-w4a16", weight-only: its config group has no
  ``input_activations``, so no ``input_scale``): ``rows·cols/2 + rows·cols/16 + 4``.
- modelopt ``MXFP8``: 1 byte + one 8-bit scale per 32 elements.
- ``MIXED_PRECISION``: the format of each quantized module is listed in ``quantized_layers``
  ({module: {"quant_algo": ...}}); modules not listed keep the checkpoint dtype (modelopt), or
  take the base method's format when ``quant_method`` names one (DeepSeek-V4-NVFP4: fp8 blocks
  for the rest, NVFP4 experts).
- ``kv_cache_quant_algo`` FP8: a float32 ``k_scale`` and ``v_scale`` per attention layer
  (``kv_scale_bytes`` = 8).

Module names are compared with the checkpoint's after dropping a ``language_model.`` segment
(multimodal wrappers name the text model ``model.language_model.layers.N``); exclusion patterns
(``modules_to_not_convert``, ``ignored_layers``, ``ignore``, ``exclude_modules``) are fnmatch
patterns matching the module or one of its ancestors; a ``re:`` pattern is a regular expression.
A layer asks for a module of several linears with ``linears=(names...)``: one format for all,
or a ConfigError when the checkpoint mixes formats inside it (never a silently wrong figure).
A layer type that costs each projection at its own format (mantile-mla's MLA and DSA) asks
:meth:`QuantScheme.formats_for` instead and gets a :class:`~mantile_core.dtypes.LinearFormats`.
Asked for the module alone while an exclusion names one of its projections (a ``*proj*``
name inside it: ``model.layers.0.self_attn.q_a_proj``), the scheme refuses too: the layer type
must name its projections.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from typing import Any, Mapping

import attrs

from . import checks
from .dtypes import DType, LinearFormats, get_dtype
from .errors import ConfigError

__all__ = ["QuantScheme", "read_quant_scheme", "MODELOPT_FORMATS", "hf_quant_to_quantization_config"]

# modelopt quant_algo -> storage format of a quantized weight matrix
MODELOPT_FORMATS: dict[str, DType] = {
    "FP8": DType("fp8-pertensor", 8, compute="fp8", tensor_scale_bytes=8),
    "NVFP4": DType("nvfp4-pertensor", 4, block=16, scale_bits=8, compute="fp4", tensor_scale_bytes=8),
    "W4A16_NVFP4": DType("nvfp4-w4a16", 4, block=16, scale_bits=8, compute="bf16", tensor_scale_bytes=4),
    "MXFP8": DType("mxfp8", 8, block=32, scale_bits=8, compute="fp8"),
}
KV_SCALE_BYTES = {"FP8": 8}  # float32 k_scale + v_scale per attention layer
SKIP_KEYS = ("modules_to_not_convert", "ignored_layers", "ignore", "exclude_modules")


def _canonical(name: str) -> str:
    """``model.language_model.layers.0.x`` / ``language_model.model.layers.0.x`` -> ``model.layers.0.x``."""
    name = name.replace("model.language_model.", "model.")
    return name.replace("language_model.model.", "model.").replace("language_model.", "")


def _matches(module: str, pattern: str) -> bool:
    """True when ``pattern`` names ``module`` or one of its ancestors."""
    if pattern.startswith("re:"):
        regex = re.compile(pattern[3:])
        return any(regex.fullmatch(part) or regex.match(part) for part in _ancestors(module))
    pattern = _canonical(pattern)
    # "x.*" (everything below x) excludes the module x itself too
    patterns = (pattern, pattern[:-2]) if pattern.endswith(".*") else (pattern,)
    return any(fnmatch.fnmatchcase(part, p) for part in _ancestors(module) for p in patterns)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


@attrs.frozen
class QuantScheme:
    """The storage format of each linear weight of a quantized checkpoint.

    ``default``: format of a quantized linear not listed per layer (None: not quantized);
    ``skip``: exclusion patterns; ``per_layer``: (canonical module, DType) of MIXED_PRECISION
    checkpoints; ``kv_scale_bytes``: bytes of KV-cache scales stored per attention layer."""

    method: str
    default: DType | None
    skip: tuple[str, ...] = ()
    per_layer: tuple[tuple[str, DType], ...] = ()
    kv_scale_bytes: int = 0

    def _one(self, module: str) -> DType | None:
        module = _canonical(module)
        if any(_matches(module, p) for p in self.skip):
            return None
        for name, dtype in self.per_layer:
            if module == name or module.startswith(name + "."):
                return dtype
        return self.default

    def _partly_excluded(self, module: str) -> list[str]:
        """Exclusion patterns naming a projection inside ``module`` (not the module itself):
        their literal part before any wildcard lies below it and names a ``*proj*`` linear
        (``...self_attn.q_a_proj``; norms, biases and routers listed there are not quantized
        anyway)."""
        if self._one(module) is None:
            return []
        inside = _canonical(module) + "."
        out = []
        for pattern in self.skip:
            literal = re.split(r"[*?\[]", _canonical(pattern), maxsplit=1)[0]
            if not pattern.startswith("re:") and literal.startswith(inside) and "proj" in literal[len(inside):]:
                out.append(pattern)
        return out

    def lists(self, module: str) -> bool:
        """True when a mixed-precision checkpoint names ``module`` in ``quantized_layers``."""
        module = _canonical(module)
        return any(module == name or module.startswith(name + ".") for name, _ in self.per_layer)

    def _per_linear(self, module: str, dense: DType, linears: tuple[str, ...]) -> dict[str, DType]:
        return {name: (self._one(f"{module}.{name}") or dense) for name in linears}

    def formats_for(self, module: str, dense: DType, linears: tuple[str, ...]) -> LinearFormats:
        """Format of each of ``module``'s ``linears``, for a layer that costs its projections
        one by one: the default is the format most of them have (the first such in
        ``linears`` order on a tie); the rest are listed per projection."""
        formats = self._per_linear(module, dense, linears)
        counts = Counter(formats.values())
        default = max(counts, key=lambda d: (counts[d], -list(formats.values()).index(d)))
        return LinearFormats(default, tuple((name, d) for name, d in formats.items() if d != default))

    def dtype_for(self, module: str, dense: DType, linears: tuple[str, ...] = (), where: str = "config") -> DType:
        """Format of the weight matrices of ``module`` (or of its ``linears``, which must
        agree); ``dense`` when they are not quantized."""
        if not linears:
            partial = self._partly_excluded(module)
            if partial:
                raise ConfigError(f"{where}: the checkpoint keeps part of {module} unquantized "
                                  f"({', '.join(partial[:3])}); the layer type must name its projections")
            found = self._one(module)
            if found is None and self.per_layer:
                # a module some of whose children are listed per layer (e.g. "mlp" of
                # gate/up/down) takes their format when they agree
                below = {d for name, d in self.per_layer if name.startswith(_canonical(module) + ".")}
                if len(below) == 1:
                    return below.pop()
                if len(below) > 1:
                    raise ConfigError(f"{where}: {module} mixes weight formats "
                                      f"({', '.join(sorted(d.name for d in below))}); give its linears")
            return found or dense
        formats = self._per_linear(module, dense, linears)
        kinds = set(formats.values())
        if len(kinds) > 1:
            listed = ", ".join(f"{name} {d.name}" for name, d in formats.items())
            raise ConfigError(f"{where}: {module} mixes weight formats across its projections ({listed}); "
                              f"this layer type stores one format per layer")
        return kinds.pop()


def hf_quant_to_quantization_config(data: Mapping[str, Any], where: str) -> dict:
    """modelopt's ``hf_quant_config.json`` -> the ``quantization_config`` it stands for."""
    quant = checks.get_mapping(data, "quantization", where)
    return {"quant_method": "modelopt", **quant}


def _modelopt_format(algo: str, where: str) -> DType:
    try:
        return MODELOPT_FORMATS[algo]
    except KeyError:
        raise ConfigError(f"{where}: quant_algo {algo!r} is not supported "
                          f"({', '.join(sorted(MODELOPT_FORMATS))}, MIXED_PRECISION)") from None


def _skip_patterns(quant: Mapping, where: str) -> tuple[str, ...]:
    out: list[str] = []
    for key in SKIP_KEYS:
        out += checks.get_str_list(quant, key, where, default=())
    return tuple(out)


def read_quant_scheme(quant: Mapping[str, Any], where: str, base: DType | None = None) -> QuantScheme | None:
    """The scheme of a ``quantization_config`` object (None when it quantizes nothing).

    ``base`` is the format the core already derived for ``quant_method`` (mxfp4, fp8 with or
    without blocks); modelopt keys (``quant_algo``, ``quantized_layers``,
    ``kv_cache_quant_algo``) refine it."""
    qwhere = where + " quantization_config"
    method = checks.get_str(quant, "quant_method", qwhere, default=None)
    algo = checks.get_str(quant, "quant_algo", qwhere, default=None)
    if method is None and algo is None:
        return None
    if method is None:  # a modelopt export that omits quant_method (Qwen3-32B-FP8-Static-PerTensor)
        method = "modelopt"
    skip = _skip_patterns(quant, qwhere)
    kv_algo = checks.get_str(quant, "kv_cache_quant_algo", qwhere, default=None)
    scheme = quant.get("kv_cache_scheme")
    if kv_algo is None and isinstance(scheme, str):  # "FP8" (a modelopt export's shorthand)
        kv_algo = scheme
    elif kv_algo is None and isinstance(scheme, Mapping) and scheme.get("type") == "float" \
            and scheme.get("num_bits") == 8:
        kv_algo = "FP8"
    kv_bytes = KV_SCALE_BYTES.get(kv_algo, 0) if kv_algo else 0
    if algo == "MIXED_PRECISION":
        layers = checks.get_mapping(quant, "quantized_layers", qwhere)
        per_layer = []
        for name, spec in layers.items():
            lwhere = f"{qwhere} quantized_layers {name!r}"
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{lwhere} must be an object (got {spec!r})")
            per_layer.append((_canonical(name), _modelopt_format(checks.get_str(spec, "quant_algo", lwhere), lwhere)))
        default = base if method != "modelopt" else None
        # longest names first, so a listed child wins over a listed ancestor
        per_layer.sort(key=lambda item: -len(item[0]))
        return QuantScheme(method, default, skip, tuple(per_layer), kv_bytes)
    if method == "modelopt" or (algo is not None and base is None):
        if algo is None:
            raise ConfigError(f"{qwhere}: a modelopt quantization_config needs 'quant_algo'")
        return QuantScheme("modelopt", _modelopt_format(algo, qwhere), skip, (), kv_bytes)
    if base is None:
        base = get_dtype(method)
    return QuantScheme(method, base, skip, (), kv_bytes)
