"""``load_model``: a bundled name or a config.json path to a :class:`Model` of built layers.

The model_type is recognised first (:func:`read_model_config`): a type no installed plugin
claims fails naming the type (and the plugin to install, when one is known) before any other
key is read; the type's config reader, if any, then normalises the family's spelling and the
core checks every standard key. Everything the model needs from plugins (a layer type per kind, its rope_type, a cache policy
for sliding layers) is checked here, and all that is missing is reported in one
MissingPluginError naming what to install.
"""

from __future__ import annotations

import functools
from pathlib import Path

import attrs

from .cache import MASK_PLUGINS
from . import checks
from .config import ModelConfig, parse_config, read_config_file
from .errors import ConfigError, MantileError, MissingPluginError, UnknownModelError, UnsupportedModelError
from .guard import layer_count
from .install_hints import install_hint
from .layers.base import Layer
from .layers.standard import standard_slots
from .plugins import get_plugin_manager
from .multimodal import EXCLUDED_KEY, excluded_part, text_part
from .rope import ROPE_PLUGINS

__all__ = ["Model", "load_model", "bundled_models", "MODEL_TYPE_PLUGINS", "build_layers",
           "read_model_config", "supported_model_types"]

DATA = Path(__file__).parent / "data" / "models"
# model_type -> the checkout's plugin distribution that supports it (for install hints when it
# is not installed); every plugin of this checkout lists its model types here
MODEL_TYPE_PLUGINS = {"gpt_oss": "mantile-gpt-oss-attention", "deepseek_v2": "mantile-mla", "deepseek_v3": "mantile-mla",
                      "kimi_k2": "mantile-mla", "deepseek_v32": "mantile-mla", "glm_moe_dsa": "mantile-mla",
                      "deepseek_v4": "mantile-mla", "deepseek_ref": "mantile-mla",
                      **dict.fromkeys(("mamba", "falcon_mamba", "mamba2", "jamba", "qwen3_next", "qwen3_5",
                                       "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text", "nemotron_h"),
                                      "mantile-recurrent")}
MODEL_TYPE_PLUGINS.update(dict.fromkeys(
    ("gpt2", "gpt_neox", "falcon", "RefinedWeb", "RefinedWebModel", "phi", "starcoder2", "cohere", "olmo", "olmo2",
     "olmoe", "dbrx", "granite", "granitemoe", "glm4_moe", "minimax_m2", "mimo_v2_flash"), "mantile-decoder-zoo"))
MODEL_TYPE_PLUGINS.update({
    "gemma2": "mantile-gemma", "gemma3": "mantile-gemma", "gemma3_text": "mantile-gemma",
    "gemma4": "mantile-gemma", "gemma4_text": "mantile-gemma",
    "llama4": "mantile-llama4", "llama4_text": "mantile-llama4",
    "phi3": "mantile-phi", "phimoe": "mantile-phi",
})


@attrs.frozen
class Model:
    """A model: its parsed ``config``, its ``layers`` in execution order and ``extras``, the
    figures its layout reports beside the totals (e.g. ``mtp_params``; not part of them)."""

    config: ModelConfig
    layers: tuple[Layer, ...]
    extras: dict = attrs.field(factory=dict, eq=False, hash=False)

    @property
    def name(self) -> str:
        return self.config.name

    def params(self) -> int:
        """Total parameters (unsharded), tied weights counted once."""
        return sum(layer_count(layer, "params") for layer in self.layers)

    def weight_bytes(self) -> int:
        """Total weight bytes in their storage dtypes (unsharded)."""
        return sum(layer_count(layer, "weight_bytes") for layer in self.layers)

    def buffer_params(self) -> int:
        """The part of :meth:`params` that transformers registers as buffers, not parameters
        (stored in the checkpoint, counted here as the safetensors totals count them):
        ``params() - buffer_params()`` is transformers' meta-device parameter count."""
        return sum(layer_count(layer, "buffer_params") for layer in self.layers)

    @functools.cached_property
    def unique_layers(self) -> tuple[tuple[Layer, tuple[int, ...]], ...]:
        """(representative layer, positions of the layers that cost the same): identical
        layers are costed once."""
        groups: dict[Layer, list[int]] = {}
        for position, layer in enumerate(self.layers):
            groups.setdefault(layer.cost_key, []).append(position)
        return tuple((self.layers[pos[0]], tuple(pos)) for pos in groups.values())

    @functools.cached_property
    def masks(self) -> frozenset[str]:
        """The attention masks the model's layers use ("causal", "sliding", "chunked")."""
        return frozenset(layer.mask for layer in self.layers if hasattr(layer, "mask"))


def bundled_models() -> list[str]:
    """Names of the bundled model configs (``gpt-oss-120b``, ``llama-3.1-8b``, ...)."""
    return sorted(p.stem for p in DATA.glob("*.json"))


MAX_NAME_CHARS = 4096
"""The longest model name or path accepted (PATH_MAX on Linux)."""


def _is(test, path: Path) -> bool:
    """``path.is_file()`` / ``is_dir()`` that is False on a name the OS refuses (too long)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def _display_name(data: dict, fallback: str) -> str:
    """The config's ``_name_or_path`` when it is a short printable string, else ``fallback``."""
    name = data.get("_name_or_path")
    if isinstance(name, str) and 0 < len(name) <= 256 and name.isprintable():
        return name
    return fallback


def _resolve(name_or_path: str | Path) -> tuple[dict, str]:
    text = str(name_or_path)
    if not text or len(text) > MAX_NAME_CHARS or "\x00" in text:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise UnknownModelError(f"unknown model {shown!r}: give a bundled name or a path to a config.json "
                                f"(at most {MAX_NAME_CHARS} characters)")
    bundled = DATA / f"{text.lower()}.json"
    if "/" not in text and "\\" not in text and _is(Path.is_file, bundled):
        return read_config_file(bundled), text.lower()
    path = Path(text)
    if _is(Path.is_dir, path):
        path = path / "config.json"
    if _is(Path.is_file, path) or path.suffix == ".json" or "/" in text:
        data = _with_hf_quant_config(read_config_file(path), path)
        stem = path.parent.name if path.name == "config.json" else path.stem
        return data, _display_name(data, stem or text[:256])
    shown = text if len(text) <= 80 else text[:80] + "..."
    raise UnknownModelError(
        f"unknown model {shown!r}: give a bundled name ({', '.join(bundled_models())}) or a path to a config.json"
    )


def _with_hf_quant_config(data: dict, path: Path) -> dict:
    """A modelopt checkpoint may publish its quantization in ``hf_quant_config.json`` beside
    config.json instead of in it (nvidia/*-NVFP4, *-FP8): used when config.json has none."""
    companion = path.parent / "hf_quant_config.json"
    if not isinstance(data, dict) or data.get("quantization_config") or not _is(Path.is_file, companion):
        return data
    from .quant import hf_quant_to_quantization_config

    quant = hf_quant_to_quantization_config(read_config_file(companion), f"{str(companion)!r}")
    return {**data, "quantization_config": quant}


def supported_model_types(registries=None) -> dict[str, tuple[str, ...]]:
    """model_type -> the installed distributions that claim it (through a config reader, a
    model layout or a model-specific layer type), sorted."""
    registries = registries or get_plugin_manager().registries
    claims: dict[str, set[str]] = {}
    for registry, records in (("config_readers", registries.config_readers), ("layouts", registries.layouts),
                              ("layer_types", registries.layer_types)):
        for name, record in records.items():
            for model_type in record.model_types:
                claims.setdefault(model_type, set()).add(registries.owners[(registry, name)])
    return {mt: tuple(sorted(owners)) for mt, owners in sorted(claims.items())}


def _other_needs(data: dict, registries) -> list[str]:
    """Best-effort: the rope and sliding-cache plugins a config will also need (so one message
    names everything to install); never raises on odd values."""
    needs = []
    rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type")) if isinstance(rope, dict) else None
    if isinstance(rope_type, str) and rope_type not in registries.rope_scalings and rope_type in ROPE_PLUGINS:
        needs.append(ROPE_PLUGINS[rope_type])
    layer_types = data.get("layer_types")
    sliding = data.get("sliding_window") is not None and (
        not isinstance(layer_types, list) or "sliding_attention" in layer_types)
    if sliding and "sliding" not in {p.mask for p in registries.cache_policies.values()}:
        needs.append(MASK_PLUGINS["sliding"])
    return needs


def _unsupported(model_type: str, where: str, supported: dict[str, tuple[str, ...]], data: dict,
                 registries) -> MantileError:
    plugin = MODEL_TYPE_PLUGINS.get(model_type)
    if plugin:
        plugins = [plugin] + [p for p in _other_needs(data, registries) if p != plugin]
        return MissingPluginError(f"{where}: model_type {model_type!r} needs {', '.join(plugins)}, not installed: "
                                  f"{install_hint(*plugins)}")
    by_owner: dict[str, list[str]] = {}
    for mt, owners in supported.items():
        for owner in owners:
            by_owner.setdefault(owner, []).append(mt)
    covered = "; ".join(f"{owner}: {', '.join(types)}" for owner, types in sorted(by_owner.items()))
    return UnsupportedModelError(f"{where}: model_type {model_type!r} is not supported by the installed plugins "
                                 f"({covered}; see `mantile models`)")


def read_model_config(data: dict, name: str = "model") -> ModelConfig:
    """Recognise the model_type, run its config reader (if a plugin provides one), then check
    and parse the standard keys. A multimodal wrapper whose own model_type no plugin claims is
    read from its ``text_config`` or, for a flat wrapper (Qwen2.5-VL), its top-level text keys
    (:func:`mantile_core.multimodal.text_part`; dtype from the wrapper when it has one); what it
    leaves out (the vision tower, :func:`mantile_core.multimodal.excluded_part`) is kept under
    ``raw["mantile_excluded"]`` and reported as the model's ``excluded`` extra."""
    where = f"config {name!r}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object, not {type(data).__name__}")
    registries = get_plugin_manager().registries
    supported = supported_model_types(registries)
    model_type = checks.get_str(data, "model_type", where)
    excluded = None
    text = text_part(data) if model_type not in supported else None
    if text is not None:  # a wrapper's text model, if typed (text_config, or a flat wrapper's keys)
        wrapper = data
        # the wrapper's quantization_config, else the text model's own (Kimi-K2.5 keeps its
        # int4 compressed-tensors config inside text_config): never silently dropped
        data = {**text, "quantization_config": data.get("quantization_config") or text.get("quantization_config")}
        # the wrapper's dtype is the checkpoint's (transformers loads the whole model in it); a
        # sparse text_config has none, and Qwen2.5-VL re-saved by transformers 4.53 writes a
        # stale float32 inside text_config
        if any(wrapper.get(key) is not None for key in ("torch_dtype", "dtype")):
            for key in ("torch_dtype", "dtype"):
                data.pop(key, None)
                if wrapper.get(key) is not None:
                    data[key] = wrapper[key]
        model_type = checks.get_str(data, "model_type", where + " text_config")
        excluded = excluded_part(wrapper, text)
    if model_type not in supported:
        raise _unsupported(model_type, where, supported, data, registries)
    readers = [r for r in registries.config_readers.values() if model_type in r.model_types]
    if readers:
        reader = readers[0]
        try:
            data = reader.read(dict(data), where)
        except MantileError:
            raise
        except Exception as exc:  # a reader's bug must still be one line, naming the reader
            owner = registries.owners[("config_readers", reader.name)]
            raise ConfigError(f"{where}: the {reader.name!r} config reader ({owner}) failed: "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: the {reader.name!r} config reader returned {type(data).__name__}, not a dict")
    if excluded is not None:
        data = {**data, EXCLUDED_KEY: excluded}
    return parse_config(data, name=name)


_CONFLICT_FIX = ": uninstall one of them, or skip one with MANTILE_DISABLE_PLUGINS=<distribution>"


def _pick_type(types, kind: str, config: ModelConfig, registries):
    candidates = [t for t in types if t.kind == kind]
    specific = [t for t in candidates if t.matches(config)]
    if len(specific) > 1:
        from .errors import PluginConflictError

        names = ", ".join(f"{t.name} ({registries.owners[('layer_types', t.name)]})" for t in specific)
        raise PluginConflictError(f"several layer types claim {kind!r} for model_type {config.model_type!r}: {names}"
                                  f"{_CONFLICT_FIX}")
    if specific:
        return specific[0]
    generic = [t for t in candidates if t.generic]
    return generic[0] if generic else None


def build_layers(config: ModelConfig) -> tuple[Layer, ...]:
    """Build every layer of ``config`` through the registries; MissingPluginError lists all
    that no installed plugin provides."""
    registries = get_plugin_manager().registries
    layouts = [lay for lay in registries.layouts.values() if config.model_type in lay.model_types]
    if len(layouts) > 1:
        from .errors import PluginConflictError

        names = ", ".join(f"{lay.name} ({registries.owners[('layouts', lay.name)]})" for lay in layouts)
        raise PluginConflictError(f"several layouts claim model_type {config.model_type!r}: {names}{_CONFLICT_FIX}")
    slots = layouts[0].slots(config) if layouts else standard_slots(config)
    types = list(registries.layer_types.values())
    missing: dict[str, str] = {}
    layers: list[Layer] = []
    chosen: dict[str, object] = {}
    for slot in slots:
        if slot.kind not in chosen:
            chosen[slot.kind] = _pick_type(types, slot.kind, config, registries)
        layer_type = chosen[slot.kind]
        if layer_type is None:
            plugin = MODEL_TYPE_PLUGINS.get(config.model_type)
            what = f"layers of model_type {config.model_type!r}" if plugin else f"{slot.kind} layers of model_type {config.model_type!r}"
            missing[plugin or what] = what
            continue
        try:
            layer = layer_type.build(config, slot)
        except MantileError:
            raise
        except Exception as exc:  # a config the layer type cannot handle: one line, never a traceback
            raise ConfigError(f"config {config.name!r}: cannot build {slot.name} ({layer_type.name}): "
                              f"{type(exc).__name__}: {exc}") from None
        layers.append(attrs.evolve(layer, type=layer_type.name))
    rope_type = config.rope_parameters.get("rope_type", "default")
    if rope_type not in registries.rope_scalings:
        missing[ROPE_PLUGINS.get(rope_type) or f"rope_type {rope_type!r}"] = f"rope_type {rope_type!r}"
    else:  # bad rope parameters are a config error now, not a surprise later
        try:
            registries.rope_scalings[rope_type].compute(config.rope_parameters, config.head_dim,
                                                        config.max_position_embeddings)
        except MantileError:
            raise
        except Exception as exc:  # a rope plugin's bug on odd parameters: one line, never a traceback
            owner = registries.owners[("rope_scalings", rope_type)]
            raise ConfigError(f"config {config.name!r}: rope_type {rope_type!r} ({owner}) cannot use these "
                              f"rope parameters: {type(exc).__name__}: {exc}") from None
    # the masks of the layers built, and the config's sliding layers (named even when their
    # attention layer type is itself missing)
    masks = {layer.mask for layer in layers if hasattr(layer, "mask")}
    masks |= {"sliding" for w in config.windows if w is not None}
    have = {p.mask for p in registries.cache_policies.values()}
    for mask in sorted(masks - have):
        missing[MASK_PLUGINS.get(mask) or f"a {mask} cache policy"] = f"{mask}-{'window' if mask == 'sliding' else 'attention'} KV cache"
    if missing:
        installable = [name for name in missing if name.startswith("mantile-")]
        needs = "; ".join(f"{name} ({why})" if name != why else name for name, why in missing.items())
        fix = f": {install_hint(*installable)}" if installable else ": no installed plugin provides them"
        raise MissingPluginError(f"{config.name} needs plugins that are not installed: {needs}{fix}")
    return tuple(layers)


def layout_extras(config: ModelConfig) -> dict:
    """The ``extras(config)`` of the layout that claims the model type ({} when none)."""
    registries = get_plugin_manager().registries
    for layout in registries.layouts.values():
        if config.model_type in layout.model_types and layout.extras is not None:
            return dict(layout.extras(config))
    return {}


def load_model(name_or_path: str | Path) -> Model:
    """Load a bundled model by name or a Hugging Face config.json (file or its directory)."""
    data, name = _resolve(name_or_path)
    config = read_model_config(data, name=name)
    layers = build_layers(config)
    extras = layout_extras(config)
    if config.raw.get(EXCLUDED_KEY):
        extras["excluded"] = dict(config.raw[EXCLUDED_KEY])
    return Model(config=config, layers=layers, extras=extras)
