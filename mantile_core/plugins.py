"""The plugin manager: entry-point discovery, broken-plugin isolation, and name registries.

``get_plugin_manager()`` builds the manager on first use (never at import) and caches it;
``set_plugin_manager`` / ``reset_plugin_manager`` swap it in tests. Environment variables:

- ``MANTILE_DISABLE_PLUGINS``: "1" / "all" loads no external plugin; otherwise a comma list of
  entry-point or distribution names to skip.
- ``MANTILE_LOAD_PLUGINS``: a comma list; only these external plugins load ("" loads none).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import itertools
import os
import warnings
from importlib import metadata
from typing import Any, Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import PluginConflictError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Registries",
    "MantilePluginManager",
    "get_plugin_manager",
    "set_plugin_manager",
    "reset_plugin_manager",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "mantile"
CORE_DISTRIBUTION = "mantile-core"

# hook name -> (registry attribute, the record field that keys it)
REGISTRY_HOOKS: dict[str, tuple[str, str]] = {
    "mantile_config_readers": ("config_readers", "name"),
    "mantile_layer_types": ("layer_types", "name"),
    "mantile_model_layouts": ("layouts", "name"),
    "mantile_rope_scalings": ("rope_scalings", "rope_type"),
    "mantile_cache_policies": ("cache_policies", "name"),
    "mantile_hardware": ("hardware", "name"),
    "mantile_validation_cases": ("validation_cases", "name"),
}


@attrs.frozen
class PluginInfo:
    """One loaded (or failed) plugin: entry-point ``name``, its ``distribution`` and
    ``version``, the ``error`` that stopped it loading, if any."""

    name: str
    distribution: str
    version: str
    error: str | None = None


@attrs.frozen
class Registries:
    """Every record the plugins yield, keyed by name and sorted; ``owners[(registry, name)]`` is
    the distribution that provided it."""

    config_readers: dict[str, Any]
    layer_types: dict[str, Any]
    layouts: dict[str, Any]
    rope_scalings: dict[str, Any]
    cache_policies: dict[str, Any]
    hardware: dict[str, Any]
    validation_cases: dict[str, Any]
    owners: dict[tuple[str, str], str]

    def provided_by(self, distribution: str) -> dict[str, list[str]]:
        """Registry name -> names the distribution provides (for ``mantile plugins``)."""
        out: dict[str, list[str]] = {}
        for (registry, name), owner in sorted(self.owners.items()):
            if owner == distribution:
                out.setdefault(registry, []).append(name)
        return out


class MantilePluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self._distribution_of: dict[str, str] = {}

    def register_plugin(self, plugin: object, name: str, distribution: str, version: str = "") -> None:
        """Register an in-process plugin object as coming from ``distribution``."""
        self.register(plugin, name=name)
        self._distribution_of[name] = distribution
        self.infos.append(PluginInfo(name, distribution, version))
        self.__dict__.pop("registries", None)

    def unregister_plugin(self, name: str) -> None:
        self.unregister(name=name)
        self._distribution_of.pop(name, None)
        self.infos = [i for i in self.infos if i.name != name]
        self.__dict__.pop("registries", None)

    def distribution_of(self, plugin_name: str) -> str:
        return self._distribution_of.get(plugin_name, plugin_name)

    @property
    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error]

    def mark_failed(self, plugin_name: str, error: str, *, unregister: bool = True) -> None:
        """Record ``error`` on the plugin's info, warn naming its distribution, and (by default)
        unregister it so no hook of it is called again."""
        distribution = self.distribution_of(plugin_name)
        self.infos = [attrs.evolve(i, error=error) if i.name == plugin_name else i for i in self.infos]
        warnings.warn(f"mantile plugin {plugin_name!r} from {distribution} is skipped: {error}", stacklevel=3)
        if unregister and self.has_plugin(plugin_name):
            self.unregister(name=plugin_name)

    def _collect(self) -> dict[str, list[tuple[str, Any]]]:
        """Plugin name -> (hook, record) pairs of every hook, each call isolated
        (:func:`call_isolated`) and its records checked (:func:`check_records`); a plugin with
        any failing hook is marked failed and yields nothing."""
        collected: dict[str, list[tuple[str, Any]]] = {}
        failed: dict[str, str] = {}
        for hook_name in REGISTRY_HOOKS:
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                if impl.plugin_name in failed:
                    continue
                try:
                    records = check_records(hook_name, call_isolated(impl.function))
                except PluginFault as fault:
                    failed[impl.plugin_name] = f"its {hook_name} hook {fault}"
                    continue
                collected.setdefault(impl.plugin_name, []).extend((hook_name, r) for r in records)
        for plugin_name, error in failed.items():
            collected.pop(plugin_name, None)
            self.mark_failed(plugin_name, error)
        return collected

    @functools.cached_property
    def registries(self) -> Registries:
        """Collect every hook's records; raises PluginConflictError on a duplicate name. A
        plugin whose hook raises, prints to stdout or yields junk is skipped (warning, and its
        ``PluginInfo.error``), never raised."""
        tables: dict[str, dict[str, Any]] = {reg: {} for reg, _ in REGISTRY_HOOKS.values()}
        owners: dict[tuple[str, str], str] = {}
        collected = self._collect()
        for hook_name, (registry, key) in REGISTRY_HOOKS.items():
            for plugin_name, pairs in collected.items():
                distribution = self.distribution_of(plugin_name)
                for record in (r for h, r in pairs if h == hook_name):
                    name = getattr(record, key)
                    if name in tables[registry]:
                        other = owners[(registry, name)]
                        raise PluginConflictError(
                            f"{registry} name {name!r} is provided by both {other} and "
                            f"{distribution}: uninstall one of them"
                        )
                    tables[registry][name] = record
                    owners[(registry, name)] = distribution
        _check_reader_claims(tables["config_readers"], owners)
        sorted_tables = {reg: dict(sorted(t.items())) for reg, t in tables.items()}
        return Registries(**sorted_tables, owners=owners)


def _check_reader_claims(readers: dict[str, Any], owners: dict[tuple[str, str], str]) -> None:
    """Two config readers may not own one model_type: PluginConflictError naming both."""
    claimed: dict[str, str] = {}
    for name, reader in readers.items():
        for model_type in sorted(reader.model_types):
            if model_type in claimed:
                first = claimed[model_type]
                raise PluginConflictError(
                    f"model_type {model_type!r} is read by both {first} ({owners[('config_readers', first)]}) "
                    f"and {name} ({owners[('config_readers', name)]}): uninstall one of them"
                )
            claimed[model_type] = name


MAX_RECORDS = 10_000
"""The most records one hook of one plugin may yield."""

# hook name -> (module, class) of the records it must yield
RECORD_TYPES: dict[str, tuple[str, str]] = {
    "mantile_config_readers": ("records", "ConfigReader"),
    "mantile_layer_types": ("records", "LayerType"),
    "mantile_model_layouts": ("records", "ModelLayout"),
    "mantile_rope_scalings": ("records", "RopeScaling"),
    "mantile_cache_policies": ("records", "CachePolicy"),
    "mantile_hardware": ("hardware", "HardwareSpec"),
    "mantile_validation_cases": ("records", "ValidationCase"),
}


class PluginFault(Exception):
    """What a plugin did wrong in an import or a hook call (the text completes "its hook ...")."""


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:300] + "..."


@contextlib.contextmanager
def captured_stdout():
    """Capture what plugin code writes to stdout, both ``print`` (sys.stdout) and raw writes to
    file descriptor 1 (``os.write(1, ...)``, a subprocess); yields a function returning the
    text captured so far. Only the with-block's writes are taken; fd 1 is restored after."""
    buffer = io.StringIO()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (a closed stdout): the Python-level capture still holds
        saved = None
    sink = None
    try:
        if saved is not None:
            import tempfile

            sink = tempfile.TemporaryFile()
            os.dup2(sink.fileno(), 1)
        with contextlib.redirect_stdout(buffer):
            yield lambda: buffer.getvalue() + _read_sink(sink)
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
        if sink is not None:
            buffer.write(_read_sink(sink))
            sink.close()


def _read_sink(sink) -> str:
    if sink is None:
        return ""
    sink.seek(0)
    data = sink.read()
    sink.truncate(0)
    return data.decode("utf-8", "replace")


def call_isolated(function, *args: Any) -> Any:
    """Call plugin code with stdout captured (so it can never corrupt ``--json``): returns its
    result, a returned iterable drained into a list (at most MAX_RECORDS) while still
    captured; PluginFault on any exception but KeyboardInterrupt (SystemExit included), on
    output to stdout, or on a result that is neither None nor iterable."""
    printed = ""
    try:
        with captured_stdout() as output:
            result = function(*args)
            if result is not None and not isinstance(result, (str, bytes, dict)):
                try:
                    iterator = iter(result)
                except TypeError:
                    raise PluginFault(f"returned {type(result).__name__}, not a list of records") from None
                result = list(itertools.islice(iterator, MAX_RECORDS + 1))
            printed = output()
    except (KeyboardInterrupt, PluginFault):
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit and the rest: a plugin never ends the process
        raise PluginFault(f"raised {_describe(exc)}") from None
    if isinstance(result, (str, bytes, dict)):
        raise PluginFault(f"returned {type(result).__name__}, not a list of records")
    if printed:
        raise PluginFault(f"printed to stdout ({' '.join(printed.split())[:60]!r})")
    if result is not None and len(result) > MAX_RECORDS:
        raise PluginFault(f"returned more than {MAX_RECORDS:,} records")
    return result


def check_records(hook_name: str, records: Any) -> list[Any]:
    """The records of one hook call: each an instance of the hook's record class (which
    validates its own fields); PluginFault naming the first that is not."""
    if records is None:
        return []
    module, class_name = RECORD_TYPES[hook_name]
    cls = getattr(importlib.import_module(f".{module}", __package__), class_name)
    for record in records:
        if not isinstance(record, cls):
            raise PluginFault(f"returned {type(record).__name__} {str(record)[:40]!r}, not a {class_name}")
        if hook_name == "mantile_hardware":
            from .hardware import spec_problem

            problem = spec_problem(record)
            if problem:
                raise PluginFault(f"returned a bad HardwareSpec: {problem}")
    return list(records)


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _wanted(entry_point: metadata.EntryPoint, distribution: str) -> bool:
    names = {entry_point.name, distribution}
    disabled = _env_list("MANTILE_DISABLE_PLUGINS")
    if disabled is not None:
        if any(d.lower() in ("1", "all", "true", "*") for d in disabled):
            return False
        if names & set(disabled):
            return False
    load_only = _env_list("MANTILE_LOAD_PLUGINS")
    if load_only is not None and not names & set(load_only):
        return False
    return True


def _entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def load_entry_points(pm: MantilePluginManager, group: str = ENTRY_POINT_GROUP) -> None:
    """Load every plugin of the entry-point group; one that fails to import is recorded with
    its error and a warning, never raised."""
    for entry_point in _entry_points(group):
        dist = entry_point.dist
        distribution = dist.metadata["Name"] if dist is not None else entry_point.name
        version = dist.version if dist is not None else ""
        if distribution == CORE_DISTRIBUTION or not _wanted(entry_point, distribution):
            continue
        if pm.has_plugin(entry_point.name):
            continue
        try:
            plugin = _load_isolated(entry_point)
            pm.register_plugin(plugin, entry_point.name, distribution, version)
        except PluginFault as fault:  # a broken plugin must never lock the user out
            error = str(fault)
            warnings.warn(
                f"mantile plugin {entry_point.name!r} from {distribution} failed to load "
                f"and is skipped ({error})",
                stacklevel=2,
            )
            pm.infos.append(PluginInfo(entry_point.name, distribution, version, error))
            continue
        except Exception as exc:  # pluggy refused its hook implementations
            error = _describe(exc)
            warnings.warn(f"mantile plugin {entry_point.name!r} from {distribution} is skipped ({error})", stacklevel=2)
            pm.infos.append(PluginInfo(entry_point.name, distribution, version, error))


def _load_isolated(entry_point: metadata.EntryPoint) -> object:
    """Import an entry point with stdout captured: PluginFault with "ModuleNotFoundError: ..."
    when the import raises anything but KeyboardInterrupt (SystemExit included), or
    "printed to stdout at import (...)" when it writes to stdout."""
    try:
        with captured_stdout() as output:
            plugin = entry_point.load()
            printed = output()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginFault(_describe(exc)) from None
    if printed:
        raise PluginFault(f"printed to stdout at import ({' '.join(printed.split())[:60]!r})")
    return plugin


def make_plugin_manager(*, entry_points: bool = True, plugins: Iterable[tuple[object, str]] = ()) -> MantilePluginManager:
    """A fresh manager holding the core's built-ins, the installed entry points (unless
    ``entry_points`` is false) and any ``(plugin, distribution)`` pairs given."""
    from . import builtins

    pm = MantilePluginManager()
    pm.register_plugin(builtins, "mantile_core.builtins", CORE_DISTRIBUTION, _core_version())
    if entry_points:
        load_entry_points(pm)
    for number, (plugin, distribution) in enumerate(plugins):
        name = getattr(plugin, "__name__", None) or f"{distribution}:{type(plugin).__name__}:{number}"
        pm.register_plugin(plugin, name, distribution)
    return pm


def _core_version() -> str:
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


_manager: MantilePluginManager | None = None


def get_plugin_manager() -> MantilePluginManager:
    """The process-wide manager, built on first call and cached."""
    global _manager
    if _manager is None:
        _manager = make_plugin_manager()
    return _manager


def set_plugin_manager(pm: MantilePluginManager | None) -> MantilePluginManager | None:
    """Swap the cached manager (tests); returns the previous one."""
    global _manager
    previous, _manager = _manager, pm
    return previous


def reset_plugin_manager() -> None:
    """Forget the cached manager; the next call rebuilds it from the environment."""
    set_plugin_manager(None)
