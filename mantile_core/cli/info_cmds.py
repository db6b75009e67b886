"""``mantile layers``, ``mantile plugins``, ``mantile models`` and ``mantile hardware``."""

from __future__ import annotations

from ..guard import layer_count, layer_facts
from .render import bytes_h, print_json, print_table, si


LAYERS_DESCRIPTION = """The layers of a model in execution order: kind, type, shape facts, parameters and
weight bytes of the whole model (unsharded), in the dtypes the checkpoint stores (mxfp4 =
4.25 bits per element). --summary prints one row per distinct layer type instead."""

PLUGINS_DESCRIPTION = """The installed Mantile plugins (entry points of the group 'mantile'): distribution,
version, and what each provides (layer types, layouts, RoPE scalings, KV-cache policies,
hardware, validation cases); a plugin that failed to import is listed with its error."""

HARDWARE_DESCRIPTION = """The known accelerators (bundled and from plugins), per GPU: dense peak FLOP/s per dtype,
HBM capacity (in GiB, as every table; the datasheet's decimal "80 GB" is 80e9 bytes = 74.51
GiB), HBM bandwidth and one-way scale-up link bandwidth (decimal TB/s and GB/s, as
datasheets give rates)."""


def register(sub) -> None:
    p = sub.add_parser("layers", help="the layers of a model: params and weight bytes (unsharded)",
                       description=LAYERS_DESCRIPTION)
    p.add_argument("model", help="bundled name or config.json path")
    p.add_argument("--summary", action="store_true",
                   help="one row per distinct layer type: how many, parameters and weight bytes")
    p.add_argument("--json", action="store_true",
                   help="print the JSON document (see docs/json.md; with --summary it adds a 'summary' list)")
    p.set_defaults(run=run_layers)
    p = sub.add_parser("plugins", help="installed plugins and what each provides", description=PLUGINS_DESCRIPTION)
    p.add_argument("--json", action="store_true", help="print the JSON document (see docs/json.md)")
    p.set_defaults(run=run_plugins)
    p = sub.add_parser("models", help="model types the installed plugins support, and bundled models",
                       description="Every model_type the installed plugins support (and which distribution "
                                   "provides it), the model types of this checkout's plugins that are not "
                                   "installed, and the bundled model names.")
    p.add_argument("--json", action="store_true", help="print the documented JSON document instead of tables")
    p.set_defaults(run=run_models)
    p = sub.add_parser("hardware", help="known accelerators and their figures", description=HARDWARE_DESCRIPTION)
    p.add_argument("--json", action="store_true", help="print the JSON document (exact bytes and bytes/s; see docs/json.md)")
    p.set_defaults(run=run_hardware)


def layers_document(model) -> dict:
    """The ``layers --json`` document: totals, the layout's extras (figures beside the totals,
    e.g. ``mtp_params``), and one row per layer, unsharded."""
    return {
        "model": model.name,
        "model_type": model.config.model_type,
        "params": model.params(),
        "buffer_params": model.buffer_params(),
        "weight_bytes": model.weight_bytes(),
        **model.extras,
        "layers": [{"index": layer.index, "name": layer.name, "kind": layer.kind, "type": layer.type,
                    **layer_facts(layer), "params": layer_count(layer, "params"),
                    "weight_bytes": layer_count(layer, "weight_bytes")}
                   for layer in model.layers],
    }


def layer_summary(rows: list[dict]) -> list[dict]:
    """One entry per distinct (kind, type, detail, params, weight_bytes) in order of first
    appearance: ``count`` layers, ``params`` and ``weight_bytes`` of one such layer and of all
    of them (``_total``)."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["kind"], r["type"], _detail(r), r["params"], r["weight_bytes"])
        entry = groups.get(key)
        if entry is None:
            groups[key] = {"kind": r["kind"], "type": r["type"], "detail": key[2], "count": 1, "params": r["params"],
                           "weight_bytes": r["weight_bytes"], "params_total": r["params"],
                           "weight_bytes_total": r["weight_bytes"]}
            continue
        entry["count"] += 1
        entry["params_total"] += r["params"]
        entry["weight_bytes_total"] += r["weight_bytes"]
    return list(groups.values())


def run_layers(args) -> int:
    from ..model import load_model

    doc = layers_document(load_model(args.model))
    if args.summary:
        doc["summary"] = layer_summary(doc["layers"])
    if args.json:
        print_json(doc)
        return 0
    title = (f"{doc['model']} ({doc['model_type']}): {doc['params']:,} params, {bytes_h(doc['weight_bytes'])} of weights "
             "as the checkpoint stores them")
    if "excluded" in doc:
        print(f"note: {doc['excluded']['note']}")
    if args.summary:
        print_table(title, ["kind", "type", "detail", "layers", "params each", "params", "weight bytes"],
                    [(s["kind"], s["type"], s["detail"], s["count"], f"{s['params']:,}", f"{s['params_total']:,}",
                      bytes_h(s["weight_bytes_total"])) for s in doc["summary"]],
                    right=[False, False, False, True, True, True, True])
        return 0
    print_table(title, ["#", "name", "kind", "type", "detail", "params", "weight bytes"],
                [(r["index"] if r["index"] is not None else "-", r["name"], r["kind"], r["type"],
                  _detail(r), f"{r['params']:,}", f"{r['weight_bytes']:,}") for r in doc["layers"]])
    return 0


def _detail(row: dict) -> str:
    if row.get("mask"):
        text = f"{row['mask']}" + (f" window {row['window']}" if row.get("window") else "")
        if row.get("kv_cache") == "latent":  # MLA: one latent per token, every tp rank holds it
            text += f", latent KV {row['kv_values_per_token']}/token (replicated across tp)"
        if row.get("index_topk"):
            text += f", top-{row['index_topk']} sparse"
        return text
    if row.get("experts"):
        return f"{row['experts']} experts top-{row['top_k']} {row['expert_dtype']}"
    return ""


def plugins_document() -> dict:
    """Every plugin with its distribution, version, error and what it provides."""
    from ..errors import PluginConflictError
    from ..plugins import get_plugin_manager

    pm = get_plugin_manager()
    conflict = None
    try:
        registries = pm.registries
    except PluginConflictError as exc:
        registries, conflict = None, str(exc)
    plugins = []
    for info in sorted(pm.infos, key=lambda i: (i.distribution != "mantile-core", i.distribution, i.name)):
        provides = registries.provided_by(info.distribution) if registries and not info.error else {}
        plugins.append({"name": info.name, "distribution": info.distribution, "version": info.version,
                        "error": info.error, "provides": provides})
    return {"plugins": plugins, "conflict": conflict}


def run_plugins(args) -> int:
    doc = plugins_document()
    if args.json:
        print_json(doc)
        return 0
    rows = []
    for p in doc["plugins"]:
        what = "; ".join(f"{reg}: {', '.join(names)}" for reg, names in p["provides"].items())
        rows.append((p["distribution"], p["version"], p["name"], f"FAILED: {p['error']}" if p["error"] else what))
    print_table("installed mantile plugins", ["distribution", "version", "entry point", "provides"], rows,
                right=[False] * 4)
    if doc["conflict"]:
        print(f"conflict: {doc['conflict']}")
        return 2
    return 0


def models_document() -> dict:
    """Supported model types with their providers, known types whose plugin is missing, and
    the bundled models with their model_type."""
    from ..model import MODEL_TYPE_PLUGINS, bundled_models, supported_model_types
    from ..config import read_config_file
    from ..model import DATA

    supported = supported_model_types()
    missing = {mt: plugin for mt, plugin in sorted(MODEL_TYPE_PLUGINS.items()) if mt not in supported}
    bundled = []
    for name in bundled_models():
        model_type = read_config_file(DATA / f"{name}.json").get("model_type")
        bundled.append({"name": name, "model_type": model_type, "supported": model_type in supported})
    return {"model_types": [{"model_type": mt, "provided_by": list(owners)} for mt, owners in supported.items()],
            "not_installed": [{"model_type": mt, "plugin": plugin} for mt, plugin in missing.items()],
            "bundled": bundled}


def run_models(args) -> int:
    doc = models_document()
    if args.json:
        print_json(doc)
        return 0
    print_table("model types the installed plugins support", ["model_type", "provided by"],
                [(m["model_type"], ", ".join(m["provided_by"])) for m in doc["model_types"]], right=[False, False])
    if doc["not_installed"]:
        from ..install_hints import install_hint

        print_table("model types whose plugin is not installed", ["model_type", "plugin", "install"],
                    [(m["model_type"], m["plugin"], install_hint(m["plugin"])) for m in doc["not_installed"]],
                    right=[False, False, False])
    print_table("bundled models", ["name", "model_type", "loads"],
                [(b["name"], b["model_type"], "yes" if b["supported"] else "plugin missing") for b in doc["bundled"]],
                right=[False, False, False])
    return 0


def run_hardware(args) -> int:
    from ..hardware import list_hardware

    specs = list_hardware()
    if args.json:
        print_json({"hardware": [{
            "name": h.name, "description": h.description, "peak_flops": dict(h.peak_flops), "hbm_bytes": h.hbm_bytes,
            "hbm_bandwidth_bytes_s": h.hbm_bandwidth, "link_bandwidth_bytes_s": h.link_bandwidth,
            "link_latency_s": h.link_latency, "calibration": __import__("attrs").asdict(h.calibration),
            "source": h.source} for h in specs.values()]})
        return 0
    print_table("accelerators (dense peaks, per GPU; memory in GiB, rates in decimal units)",
                ["name", "description", "bf16", "fp8", "fp4", "HBM", "HBM bandwidth", "link (one way)"],
                [(h.name, h.description, si(h.peak_flops.get("bf16", 0), "FLOP/s"), si(h.peak_flops.get("fp8", 0), "FLOP/s"),
                  si(h.peak_flops["fp4"], "FLOP/s") if "fp4" in h.peak_flops else "-", bytes_h(h.hbm_bytes),
                  si(h.hbm_bandwidth, "B/s"), si(h.link_bandwidth, "B/s")) for h in specs.values()],
                right=[False, False] + [True] * 6)
    return 0
