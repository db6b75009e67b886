"""Parse a Hugging Face ``config.json`` into a frozen :class:`ModelConfig`.

Handles the file as published: old ``rope_scaling`` + ``rope_theta`` and new
``rope_parameters``, ``layer_types``, ``sliding_window`` with ``use_sliding_window`` /
``max_window_layers``, ``head_dim`` given or derived, tied embeddings, MoE key spellings and
``quantization_config`` (which modules keep the checkpoint dtype).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, Mapping

import attrs

from .dtypes import DType, get_dtype
from .errors import ConfigError

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
        """A raw config key (for plugins reading architecture-specific fields)."""
        return self.raw.get(key, default)

    def weight_dtype(self, module: str, *, quantizable: bool = True) -> DType:
        """Storage dtype of a linear weight in ``module`` ("model.layers.0.mlp.experts"):
        the quantization format unless the module matches ``modules_to_not_convert``; biases,
        norms and other non-quantizable tensors pass ``quantizable=False``."""
        if not quantizable or self.quant_method is None:
            return self.dtype
        for pattern in self.quant_skip:
            if fnmatch.fnmatch(module, pattern) or module == pattern or module.startswith(pattern + "."):
                return self.dtype
            if fnmatch.fnmatch(module, pattern + ".*"):
                return self.dtype
        return get_dtype(self.quant_method)


def read_config_file(path: str | Path) -> dict:
    """Read and JSON-decode a config.json, raising ConfigError with the path on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r} must hold a JSON object, not {type(data).__name__}")
    return data


def _require_int(data: Mapping, key: str, where: str, *, positive: bool = True) -> int:
    if key not in data or data[key] is None:
        raise ConfigError(f"{where}: required key {key!r} is missing")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {key!r} must be an integer (got {value!r})")
    if positive and value <= 0:
        raise ConfigError(f"{where}: {key!r} must be positive (got {value})")
    return value


def _optional_int(data: Mapping, key: str, where: str) -> int | None:
    if data.get(key) is None:
        return None
    return _require_int(data, key, where)


def _rope_parameters(data: Mapping, where: str) -> dict:
    """Normalise old ``rope_scaling``/``rope_theta`` and new ``rope_parameters`` to one dict."""
    params = data.get("rope_parameters")
    if params is None:
        params = dict(data.get("rope_scaling") or {})
    else:
        params = dict(params)
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: rope_scaling must be an object or null (got {params!r})")
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params.pop("type")
    params.setdefault("rope_type", "default")
    if "rope_theta" not in params:
        params["rope_theta"] = data.get("rope_theta", 10000.0)
    if params["rope_type"] != "default" and "original_max_position_embeddings" not in params \
            and data.get("original_max_position_embeddings") is not None:
        params["original_max_position_embeddings"] = data["original_max_position_embeddings"]
    if "partial_rotary_factor" not in params and data.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = data["partial_rotary_factor"]
    return params


def _windows(data: Mapping, num_layers: int, where: str) -> tuple[int | None, ...]:
    window = data.get("sliding_window")
    layer_types = data.get("layer_types")
    if layer_types is not None:
        if len(layer_types) != num_layers:
            raise ConfigError(
                f"{where}: layer_types has {len(layer_types)} entries for num_hidden_layers={num_layers}"
            )
        out = []
        for kind in layer_types:
            if kind == "sliding_attention":
                if not window:
                    raise ConfigError(f"{where}: layer_types has sliding_attention but sliding_window is {window!r}")
                out.append(int(window))
            elif kind in ("full_attention", "attention"):
                out.append(None)
            else:
                raise ConfigError(f"{where}: unknown layer type {kind!r} in layer_types")
        return tuple(out)
    # transformers: Qwen2/Qwen3 configs gate sliding_window with use_sliding_window (default
    # false), then slide the layers i >= max_window_layers (default 28); Qwen3-MoE slides every
    # layer; Mistral/Mixtral have no gate and slide every layer.
    model_type = data.get("model_type")
    gated = "use_sliding_window" in data or model_type in _GATED_FIRST_SLIDING
    if not window or (gated and not data.get("use_sliding_window")):
        return (None,) * num_layers
    first = data.get("max_window_layers") if gated else None
    if model_type == "qwen3_moe" or (first is None and model_type in _GATED_FIRST_SLIDING):
        first = _GATED_FIRST_SLIDING[model_type]
    if first is None:
        return (int(window),) * num_layers
    return tuple(int(window) if i >= first else None for i in range(num_layers))


# model_type -> first sliding layer when use_sliding_window is true and max_window_layers is
# absent (transformers' defaults; Qwen3-MoE ignores max_window_layers)
_GATED_FIRST_SLIDING = {"qwen2": 28, "qwen3": 28, "qwen3_moe": 0}


def _moe_layers(data: Mapping, num_layers: int, num_experts: int) -> tuple[bool, ...]:
    if num_experts <= 0:
        return (False,) * num_layers
    step = data.get("decoder_sparse_step") or 1
    dense = set(data.get("mlp_only_layers") or ())
    first_dense = data.get("first_k_dense_replace") or 0
    return tuple(
        i not in dense and i >= first_dense and (i + 1) % step == 0 for i in range(num_layers)
    )


def parse_config(data: Mapping[str, Any], name: str = "model") -> ModelConfig:
    """Build a ModelConfig from a decoded config.json; ConfigError names the missing key."""
    where = f"config {name!r}"
    if "text_config" in data and "hidden_size" not in data:
        data = {**data["text_config"], "quantization_config": data.get("quantization_config")}
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError(f"{where}: required key 'model_type' is missing")
    hidden = _require_int(data, "hidden_size", where)
    layers = _require_int(data, "num_hidden_layers", where)
    # attention-free architectures (Mamba, RWKV) declare no heads: 0, and the core's attention
    # layer types refuse to build without them (layers.standard.attention_kwargs)
    heads = _optional_int(data, "num_attention_heads", where) or 0
    kv_heads = _optional_int(data, "num_key_value_heads", where) or heads
    if heads and heads % kv_heads:
        raise ConfigError(
            f"{where}: num_attention_heads={heads} must be a multiple of num_key_value_heads={kv_heads}"
        )
    head_dim = _optional_int(data, "head_dim", where)
    if head_dim is None and not heads:
        head_dim = 0
    elif head_dim is None:
        if hidden % heads:
            raise ConfigError(f"{where}: head_dim is missing and hidden_size={hidden} is not divisible by num_attention_heads={heads}")
        head_dim = hidden // heads
    vocab = _require_int(data, "vocab_size", where)
    num_experts = data.get("num_local_experts") or data.get("num_experts") or data.get("n_routed_experts") or 0
    experts_per_token = data.get("num_experts_per_tok") or 0
    if num_experts and not experts_per_token:
        raise ConfigError(f"{where}: an MoE config needs 'num_experts_per_tok'")
    if num_experts and experts_per_token > num_experts:
        raise ConfigError(f"{where}: num_experts_per_tok={experts_per_token} exceeds the {num_experts} experts")
    intermediate = _optional_int(data, "intermediate_size", where)
    moe_intermediate = _optional_int(data, "moe_intermediate_size", where)
    if num_experts and moe_intermediate is None:
        moe_intermediate = intermediate
    moe_layers = _moe_layers(data, layers, num_experts)
    if not all(moe_layers) and intermediate is None:
        raise ConfigError(f"{where}: required key 'intermediate_size' is missing")
    if num_experts and moe_intermediate is None:
        raise ConfigError(f"{where}: required key 'moe_intermediate_size' is missing")
    quant = data.get("quantization_config") or {}
    quant_method = quant.get("quant_method") if isinstance(quant, Mapping) else None
    if quant_method is not None:
        quant_method = {"mxfp4": "mxfp4", "fp8": "fp8", "nvfp4": "nvfp4", "modelopt": "nvfp4"}.get(quant_method)
        if quant_method is None:
            raise ConfigError(f"{where}: quantization method {quant.get('quant_method')!r} is not supported (mxfp4, nvfp4, fp8)")
    skip = tuple(quant.get("modules_to_not_convert") or quant.get("ignored_layers") or ()) if quant_method else ()
    dtype = get_dtype(data.get("torch_dtype") or data.get("dtype") or "bfloat16")
    max_pos = data.get("max_position_embeddings") or 4096
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
        max_position_embeddings=int(max_pos),
        tie_word_embeddings=bool(data.get("tie_word_embeddings", False)),
        rope=_freeze(_rope_parameters(data, where)),
        windows=_windows(data, layers, where),
        num_experts=int(num_experts),
        experts_per_token=int(experts_per_token),
        moe_intermediate_size=moe_intermediate,
        shared_expert_intermediate_size=_optional_int(data, "shared_expert_intermediate_size", where),
        moe_layers=moe_layers,
        dtype=dtype,
        quant_method=quant_method,
        quant_skip=skip,
        raw=dict(data),
    )
