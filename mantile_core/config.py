"""Parse a Hugging Face ``config.json`` into a frozen :class:`ModelConfig`.

Handles the file as published: old ``rope_scaling`` + ``rope_theta`` and new
``rope_parameters``, ``layer_types``, ``sliding_window`` with ``use_sliding_window`` /
``max_window_layers``, ``head_dim`` given or derived, tied embeddings, MoE key spellings and
``quantization_config`` (which modules keep the checkpoint dtype).
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path
from typing import Any, Mapping

import attrs

from .dtypes import DType, LinearFormats, block_scaled, get_dtype
from . import checks
from .errors import ConfigError
from .quant import QuantScheme, read_quant_scheme

__all__ = ["ModelConfig", "parse_config", "read_config_file"]

SLIDING = "sliding"
CAUSAL = "causal"


def _freeze(value: Any) -> Any:
    """Hashable form of a rope dict: sorted (key, value) pairs, lists as tuples."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@attrs.frozen
class ModelConfig:
    """The architecture facts Mantile needs, with ``raw`` (the whole parsed JSON) for plugins.

    Lengths are in tokens, sizes in elements; ``windows[i]`` is layer i's sliding window in
    tokens (None: full causal attention).
    """

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int | None
    max_position_embeddings: int
    tie_word_embeddings: bool
    rope: tuple  # frozen (key, value) pairs of the rope_parameters dict
    windows: tuple[int | None, ...]
    num_experts: int
    experts_per_token: int
    moe_intermediate_size: int | None
    shared_expert_intermediate_size: int | None
    moe_layers: tuple[bool, ...]
    dtype: DType
    quant_method: str | None
    quant_skip: tuple[str, ...]
    raw: Mapping[str, Any] = attrs.field(eq=False, hash=False, repr=False)
    quant_dtype: DType | None = None  # the quantized weights' storage (block scales included)
    quant: QuantScheme | None = None  # per-module formats of a quantized checkpoint (mantile_core.quant)

    @property
    def rope_parameters(self) -> dict:
        """The transformers-style ``rope_parameters`` dict (rope_type, rope_theta, ...)."""
        return dict(self.rope)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def mask(self, index: int) -> str:
        """"sliding" or "causal" for decoder layer ``index``."""
        return SLIDING if self.windows[index] is not None else CAUSAL

    def get(self, key: str, default: Any = None) -> Any:
        """A raw config key, unchecked; prefer :mod:`mantile_core.checks` with :attr:`where`:
        ``checks.get_bool(config.raw, "attention_bias", config.where, default=False)``."""
        return self.raw.get(key, default)

    @property
    def where(self) -> str:
        """The prefix of this config's error messages: "config 'name'"."""
        return f"config {self.name!r}"

    def weight_dtype(self, module: str, *, quantizable: bool = True, linears: tuple[str, ...] = ()) -> DType:
        """Storage dtype of the linear weights in ``module`` ("model.layers.0.mlp.experts"):
        the checkpoint's quantization format for that module (excluded modules, and modules a
        mixed-precision checkpoint does not list, keep ``dtype``); biases, norms and other
        non-quantizable tensors pass ``quantizable=False``. ``linears`` names the module's
        projections ("q_proj", ...) so that per-projection exclusions are honoured: one
        format for all of them, or a ConfigError when the checkpoint mixes formats."""
        if not quantizable or self.quant is None:
            return self.dtype
        return self.quant.dtype_for(module, self.dtype, tuple(linears), f"config {self.name!r}")

    def head_dtype(self, module: str) -> DType:
        """Storage dtype of the output projection ``module``: the checkpoint dtype unless a
        mixed-precision checkpoint lists it in ``quantized_layers`` (transformers and vLLM keep
        the head unquantized otherwise; nvidia's Qwen3.6-27B-NVFP4 stores it in W4A16 NVFP4)."""
        listed = self.quant is not None and self.quant.lists(module)
        return self.weight_dtype(module, quantizable=listed)

    def linear_formats(self, module: str, linears: tuple[str, ...]) -> LinearFormats:
        """Storage format of each projection ``linears`` of ``module``, for a layer that costs
        every projection at its own format (a checkpoint may quantize some and exclude others):
        one format for all of them (``dtype``) when the checkpoint is not quantized."""
        if self.quant is None:
            return LinearFormats(self.dtype)
        return self.quant.formats_for(module, self.dtype, tuple(linears))


MAX_CONFIG_BYTES = 16 * 2**20
"""The largest config.json read (published configs are a few kB; a tokenizer-sized file is a
mistake). ``MANTILE_MAX_CONFIG_BYTES`` raises it."""

MAX_CONFIG_DEPTH = 32
"""The deepest nesting of objects / arrays accepted (published configs nest 3 or 4 deep)."""

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _max_config_bytes() -> int:
    value = os.environ.get("MANTILE_MAX_CONFIG_BYTES", "").strip()
    if not value:
        return MAX_CONFIG_BYTES
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"MANTILE_MAX_CONFIG_BYTES must be a positive integer of bytes (got {value!r})")
    return int(value)


def _depth_ok(data: Any, limit: int) -> bool:
    """True when no object / array in ``data`` nests deeper than ``limit`` (iterative)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return False
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def read_config_file(path: str | Path) -> dict:
    """Read and JSON-decode a config.json; any failure is a one-line ConfigError naming the
    path: missing or unreadable file, larger than MAX_CONFIG_BYTES, not UTF-8 (a UTF-8 BOM is
    accepted; UTF-16/32 are named), invalid JSON, integer literals too long for Python to
    read, nesting deeper than MAX_CONFIG_DEPTH, or not an object. ``NaN`` / ``Infinity``
    literals are read as Python's json and transformers read them (published configs hold
    ``time_step_limit: [0.0, Infinity]``): every key Mantile uses is checked finite where it
    is read (:mod:`mantile_core.checks`), so a non-finite value there is an error naming it."""
    path = Path(path)
    shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
    limit = _max_config_bytes()
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {shown!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {shown!r} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {shown!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an embedded NUL in the path
        raise ConfigError(f"cannot read config file {shown!r}: {exc}") from None
    if len(raw) > limit:
        raise ConfigError(f"config file {shown!r} is larger than {limit:,} bytes: not a model config "
                          "(MANTILE_MAX_CONFIG_BYTES raises the limit)")
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise ConfigError(f"{shown!r} is {encoding} encoded: save it as UTF-8")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown!r} is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{shown!r} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ConfigError(f"{shown!r} nests objects / arrays too deeply (at most {MAX_CONFIG_DEPTH} levels)") from None
    except ValueError as exc:  # an integer literal over Python's digit limit
        message = str(exc).split(";")[0].split("\n")[0]
        if "integer string conversion" in message:  # worded differently by each Python
            message = "an integer literal too long to read (over Python's 4300-digit limit)"
        raise ConfigError(f"{shown!r} is not a valid config: {message}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{shown!r} must hold a JSON object, not {type(data).__name__}")
    if not _depth_ok(data, MAX_CONFIG_DEPTH):
        raise ConfigError(f"{shown!r} nests objects / arrays too deeply (at most {MAX_CONFIG_DEPTH} levels)")
    return data


def _rope_parameters(data: Mapping, where: str) -> dict:
    """Normalise old ``rope_scaling``/``rope_theta`` and new ``rope_parameters`` to one dict;
    every numeric value must be finite, ``rope_theta`` positive (the rope_type's own plugin
    checks the rest when the model is built)."""
    if data.get("rope_parameters") is not None:
        params = dict(checks.get_mapping(data, "rope_parameters", where))
    else:
        params = dict(checks.get_mapping(data, "rope_scaling", where, default={}))
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params.pop("type")
    params["rope_type"] = checks.get_str(params, "rope_type", where + " rope_parameters", default="default")
    if "rope_theta" not in params:
        params["rope_theta"] = checks.get_float(data, "rope_theta", where, default=10000.0, positive=True)
    if params["rope_type"] != "default" and "original_max_position_embeddings" not in params \
            and data.get("original_max_position_embeddings") is not None:
        params["original_max_position_embeddings"] = data["original_max_position_embeddings"]
    if "partial_rotary_factor" not in params and data.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = data["partial_rotary_factor"]
    rope_where = where + " rope_parameters"
    params["rope_theta"] = checks.get_float(params, "rope_theta", rope_where, positive=True)
    if params.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = checks.get_float(params, "partial_rotary_factor", rope_where,
                                                           positive=True, maximum=1.0)
    if params.get("original_max_position_embeddings") is not None:
        params["original_max_position_embeddings"] = checks.get_int(
            params, "original_max_position_embeddings", rope_where, maximum=checks.MAX_POSITIONS)
    for key, value in params.items():
        _check_rope_value(value, key, rope_where)
    return params


def _check_rope_value(value: Any, key: str, where: str) -> None:
    """Rope values are strings, booleans, finite numbers or lists of them (longrope factors)."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, (int, float)):
        checks.get_float({key: value}, key, where)
        return
    if isinstance(value, (list, tuple)) and len(value) <= 1 << 16:
        for i, item in enumerate(value):
            _check_rope_value(item, f"{key}[{i}]", where)
        return
    if isinstance(value, Mapping) and len(value) <= 64:
        for sub, item in value.items():
            _check_rope_value(item, f"{key}.{sub}", where)
        return
    raise ConfigError(f"{where}: {key!r} has an unexpected value {value!r:.60}")



def _windows(data: Mapping, num_layers: int, where: str) -> tuple[int | None, ...]:
    window = checks.get_int(data, "sliding_window", where, default=None, maximum=checks.MAX_POSITIONS)
    layer_types = checks.get_str_list(data, "layer_types", where, default=None)
    if layer_types is not None:
        if len(layer_types) != num_layers:
            raise ConfigError(
                f"{where}: layer_types has {len(layer_types)} entries for num_hidden_layers={num_layers}"
            )
        out = []
        for kind in layer_types:
            if kind == "sliding_attention":
                if window is None:
                    raise ConfigError(f"{where}: layer_types has sliding_attention but sliding_window is "
                                      f"{data.get('sliding_window')!r}")
                out.append(window)
            elif kind in ("full_attention", "attention"):
                out.append(None)
            else:
                raise ConfigError(f"{where}: unknown layer type {kind!r} in layer_types")
        return tuple(out)
    # transformers: Qwen2/Qwen3 configs gate sliding_window with use_sliding_window (default
    # false), then slide the layers i >= max_window_layers (default 28); Qwen3-MoE slides every
    # layer; Mistral/Mixtral have no gate and slide every layer.
    model_type = data.get("model_type")
    use = checks.get_bool(data, "use_sliding_window", where, default=None)
    gated = "use_sliding_window" in data or model_type in _GATED_FIRST_SLIDING
    if window is None or (gated and not use):
        return (None,) * num_layers
    first = checks.get_int(data, "max_window_layers", where, default=None, minimum=0,
                           maximum=checks.MAX_LAYERS) if gated else None
    if model_type == "qwen3_moe" or (first is None and model_type in _GATED_FIRST_SLIDING):
        first = _GATED_FIRST_SLIDING[model_type]
    if first is None:
        return (window,) * num_layers
    return tuple(window if i >= first else None for i in range(num_layers))


# model_type -> first sliding layer when use_sliding_window is true and max_window_layers is
# absent (transformers' defaults; Qwen3-MoE ignores max_window_layers)
_GATED_FIRST_SLIDING = {"qwen2": 28, "qwen3": 28, "qwen3_moe": 0}


def _moe_layers(data: Mapping, num_layers: int, num_experts: int, where: str) -> tuple[bool, ...]:
    step = checks.get_int(data, "decoder_sparse_step", where, default=1, maximum=checks.MAX_LAYERS)
    dense = set(checks.get_int_list(data, "mlp_only_layers", where, default=(), maximum=checks.MAX_LAYERS))
    first_dense = checks.get_int(data, "first_k_dense_replace", where, default=0, minimum=0,
                                 maximum=checks.MAX_LAYERS)
    if num_experts <= 0:
        return (False,) * num_layers
    return tuple(
        i not in dense and i >= first_dense and (i + 1) % step == 0 for i in range(num_layers)
    )


# first of these keys present names the number of routed experts
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")
# quant_method -> the base format it names ("modelopt": per quant_algo, mantile_core.quant)
QUANT_METHODS = {"mxfp4": "mxfp4", "fp8": "fp8", "nvfp4": "nvfp4", "modelopt": None}


def _num_experts(data: Mapping, where: str) -> int:
    """The routed-expert count; the spellings a config sets must agree (a config with
    num_local_experts 0 and n_routed_experts 256 is refused, not read as either)."""
    counts = {key: checks.get_int(data, key, where, minimum=0, maximum=1 << 16)
              for key in EXPERT_COUNT_KEYS if data.get(key) is not None}
    if len(set(counts.values())) > 1:
        given = ", ".join(f"{key}={value}" for key, value in counts.items())
        raise ConfigError(f"{where}: the expert counts disagree ({given}): give one")
    return next(iter(counts.values()), 0)


def _quantization(data: Mapping, where: str) -> tuple[str | None, DType | None, QuantScheme | None]:
    """(method, the base method's storage dtype, the per-module scheme); all None when the
    checkpoint is not quantized. A quantization_config with ``quant_algo`` and no
    ``quant_method`` is a modelopt export."""
    quant = checks.get_mapping(data, "quantization_config", where, default={})
    qwhere = where + " quantization_config"
    raw_method = checks.get_str(quant, "quant_method", qwhere, default=None)
    if raw_method is None and quant.get("quant_algo") is None:
        return None, None, None
    method = raw_method or "modelopt"
    if method not in QUANT_METHODS:
        raise ConfigError(f"{where}: quantization method {raw_method!r} is not supported "
                          f"({', '.join(sorted(QUANT_METHODS))})")
    base = None
    if QUANT_METHODS[method] is not None:
        base = (_block_scaled_dtype(quant, qwhere) if method == "fp8" else None) or get_dtype(QUANT_METHODS[method])
    return method, base, read_quant_scheme(quant, where, base=base)


def _block_scaled_dtype(quant: Mapping, qwhere: str) -> DType | None:
    """fp8 with ``weight_block_size`` [rows, cols] (DeepSeek-V3, Qwen3-FP8): one float32
    ``weight_scale_inv`` per block of each quantized matrix; None without a block size."""
    block = checks.get_int_list(quant, "weight_block_size", qwhere, default=None, length=2, minimum=1,
                                maximum=checks.MAX_DIM)
    if block is None:
        return None
    fmt = checks.get_str(quant, "fmt", qwhere, default="fp8")
    return block_scaled(fmt, (block[0], block[1]))


def parse_config(data: Mapping[str, Any], name: str = "model") -> ModelConfig:
    """Build a ModelConfig from a config dict in the standard (Llama-style) spelling, checking
    every key it reads (:mod:`mantile_core.checks`); ConfigError names the key, the value and
    what is expected. Families with other spellings are normalised first by their plugin's
    config reader (:func:`mantile_core.model.read_model_config`)."""
    where = f"config {name!r}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a JSON object, not {type(data).__name__}")
    if "text_config" in data and "hidden_size" not in data:
        text = checks.get_mapping(data, "text_config", where)
        # the wrapper's quantization_config, else the text model's own (Kimi-K2.5 keeps its
        # int4 compressed-tensors config inside text_config): never silently dropped
        data = {**text, "quantization_config": data.get("quantization_config") or text.get("quantization_config")}
    model_type = checks.get_str(data, "model_type", where)
    hidden = checks.get_int(data, "hidden_size", where)
    layers = checks.get_int(data, "num_hidden_layers", where, maximum=checks.MAX_LAYERS)
    # attention-free architectures (Mamba, RWKV) declare no heads: 0, and the core's attention
    # layer types refuse to build without them (layers.standard.attention_kwargs)
    heads = checks.get_int(data, "num_attention_heads", where, default=0, maximum=1 << 16)
    kv_heads = checks.get_int(data, "num_key_value_heads", where, default=heads, maximum=1 << 16)
    if heads and heads % kv_heads:
        raise ConfigError(
            f"{where}: num_attention_heads={heads} must be a multiple of num_key_value_heads={kv_heads}"
        )
    head_dim = checks.get_int(data, "head_dim", where, default=None)
    if head_dim is None and not heads:
        head_dim = 0
    elif head_dim is None:
        if hidden % heads:
            raise ConfigError(f"{where}: head_dim is missing and hidden_size={hidden} is not divisible by num_attention_heads={heads}")
        head_dim = hidden // heads
    vocab = checks.get_int(data, "vocab_size", where)
    num_experts = _num_experts(data, where)
    experts_per_token = checks.get_int(data, "num_experts_per_tok", where, default=0, minimum=0, maximum=1 << 16)
    if num_experts and not experts_per_token:
        raise ConfigError(f"{where}: an MoE config needs 'num_experts_per_tok' >= 1")
    if num_experts and experts_per_token > num_experts:
        raise ConfigError(f"{where}: num_experts_per_tok={experts_per_token} exceeds the {num_experts} experts")
    intermediate = checks.get_int(data, "intermediate_size", where, default=None)
    moe_intermediate = checks.get_int(data, "moe_intermediate_size", where, default=None)
    if num_experts and moe_intermediate is None:
        moe_intermediate = intermediate
    moe_layers = _moe_layers(data, layers, num_experts, where)
    if not all(moe_layers) and intermediate is None:
        raise ConfigError(f"{where}: required key 'intermediate_size' is missing")
    if num_experts and moe_intermediate is None:
        raise ConfigError(f"{where}: required key 'moe_intermediate_size' is missing")
    # 0 means "no shared expert" (Qwen3-Coder-480B-A35B publishes it so)
    shared = checks.get_int(data, "shared_expert_intermediate_size", where, default=None, minimum=0)
    quant_method, quant_dtype, quant = _quantization(data, where)
    dtype_name = checks.get_str(data, "torch_dtype", where, default=None) or checks.get_str(
        data, "dtype", where, default="bfloat16")
    try:
        dtype = get_dtype(dtype_name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: 'torch_dtype': {exc}") from None
    max_pos = checks.get_int(data, "max_position_embeddings", where, default=4096, maximum=checks.MAX_POSITIONS)
    return ModelConfig(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        intermediate_size=intermediate,
        max_position_embeddings=max_pos,
        tie_word_embeddings=checks.get_bool(data, "tie_word_embeddings", where, default=False),
        rope=_freeze(_rope_parameters(data, where)),
        windows=_windows(data, layers, where),
        num_experts=num_experts,
        experts_per_token=experts_per_token,
        moe_intermediate_size=moe_intermediate,
        shared_expert_intermediate_size=shared or None,
        moe_layers=moe_layers,
        dtype=dtype,
        quant_method=quant_method,
        quant_skip=quant.skip if quant is not None else (),
        quant_dtype=quant_dtype,
        quant=quant,
        raw=dict(data),
    )
