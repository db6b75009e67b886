"""``mantile estimate``: one deployment's per-device cost, latency and memory."""

from __future__ import annotations

import argparse

from .render import bytes_h, print_json, print_table, si

DEFAULT_MODEL = "gpt-oss-120b"
DEFAULT_HARDWARE = "h200"


def add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hardware", default=DEFAULT_HARDWARE, help=f"accelerator name (default {DEFAULT_HARDWARE})")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (GPUs), default 1")
    parser.add_argument("--ep", type=int, default=1, help="expert-parallel degree (divides tp), default 1")
    parser.add_argument("--batch", type=int, default=1, help="concurrent sequences, default 1")
    parser.add_argument("--input-len", type=int, default=1024, help="prompt tokens, default 1024")
    parser.add_argument("--output-len", type=int, default=1024, help="generated tokens, default 1024")
    parser.add_argument("--kv-policy", default=None, help="KV-cache policy for the layers it applies to (ring, paged, full)")
    parser.add_argument("--kv-block", type=int, default=None, help="paged KV block in tokens (default 16, or the engine's)")
    parser.add_argument("--kv-dtype", default=None, help="KV-cache dtype (bf16, fp8; default the model's, or the engine's)")


def register(sub) -> None:
    p = sub.add_parser("estimate", help="estimate one deployment", description=__doc__)
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"bundled name or config.json path (default {DEFAULT_MODEL})")
    add_deployment_arguments(p)
    p.add_argument("--context", type=int, default=None, help="tokens cached before the decode step (default input+output/2)")
    p.add_argument("--engine", default=None,
                   help="serving-engine profile: vllm, trtllm, atom (its calibration, token budget, scheduler, KV format)")
    p.add_argument("--prompts", type=int, default=None,
                   help="report the means of a benchmark of N prompts at concurrency --batch (default: steady state)")
    p.add_argument("--layers", action="store_true", help="also print the per-layer table")
    p.add_argument("--json", action="store_true", help="print the JSON document (see docs/json.md)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..estimate import estimate

    result = estimate(args.model, args.hardware, tp=args.tp, ep=args.ep, batch=args.batch,
                      input_len=args.input_len, output_len=args.output_len, context=args.context,
                      kv_policy=args.kv_policy, kv_block=args.kv_block, kv_dtype=args.kv_dtype,
                      engine=args.engine, prompts=args.prompts)
    doc = result.to_dict()
    if args.json:
        print_json(doc)
        return 0
    mem = doc["memory"]
    title = (f"{doc['model']} on {doc['tp']}× {doc['hardware']} (tp {doc['tp']}, ep {doc['ep']}), batch {doc['batch']}, "
             f"{doc['input_len']} in / {doc['output_len']} out, KV {doc['kv_dtype']} {', '.join(f'{m}:{p}' for m, p in doc['kv_policy'].items())}")
    print(title)  # one line above the table: a long title is not wrapped to the table's width
    print_table(None, ["metric", "value"], [
        ("TTFT", f"{doc['ttft_ms']:.2f} ms"),
        ("TPOT", f"{doc['tpot_ms']:.3f} ms"),
        ("throughput per GPU (in+out)", f"{doc['throughput_tok_s_per_gpu']:.1f} tok/s"),
        ("output tokens per GPU", f"{doc['output_tok_s_per_gpu']:.1f} tok/s"),
        ("prefill step (batch)", f"{doc['prefill']['time_ms']:.2f} ms, {si(doc['prefill']['flops'], 'FLOP')}"),
        (f"decode step (context {doc['context']})", f"{doc['decode']['time_ms']:.3f} ms, {bytes_h(doc['decode']['weight_bytes'] + doc['decode']['kv_read_bytes'])} read"),
        ("weights per device", bytes_h(mem["weight_bytes"])),
        ("KV cache per device (end of request)", bytes_h(mem["kv_cache_bytes"])),
        ("activations (largest layer)", bytes_h(mem["activation_bytes"])),
        ("total / capacity", f"{bytes_h(mem['total_bytes'])} / {bytes_h(mem['capacity_bytes'])}"),
        ("fits", "yes" if mem["fits"] else "NO"),
        ("max batch at this length", str(mem["max_batch"])),
    ])
    if args.layers:
        print_layers(doc["layers"])
    return 0


def print_layers(rows) -> None:
    print_table("per layer, per device", ["#", "name", "type", "params", "prefill FLOPs", "prefill ms",
                                          "decode bytes", "decode KV", "decode ms"], [
        (r["index"] if r["index"] is not None else "-", r["name"], r["type"] + (f" w{r['window']}" if r.get("window") else ""),
         si(r["params"]), si(r["prefill"]["flops"]), f"{r['prefill']['time_ms']:.3f}",
         bytes_h(r["decode"]["weight_bytes"] + r["decode"]["kv_read_bytes"]), bytes_h(r["decode"]["kv_cache_bytes"]),
         f"{r['decode']['time_ms']:.4f}") for r in rows])
