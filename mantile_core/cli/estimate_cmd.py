"""``mantile estimate``: one deployment's per-device cost, latency and memory.

Prints a title, the precision and KV cache assumed (in words), a table (memory in GiB, rates
with three significant digits) and what TTFT and TPOT are made of. Inputs that can be costed
but describe no real deployment (a request longer than the model's max_position_embeddings,
a --context no request reaches, a deployment that does not fit) print one warning each on
stderr and exit 0; with --strict they are errors (exit status 2, nothing on stdout).
"""

from __future__ import annotations

import argparse
import sys

from .args import bounded_int
from .render import bytes_h, print_json, print_table, si, sig

DEFAULT_MODEL = "gpt-oss-120b"
DEFAULT_HARDWARE = "h200"

ENGINE_HELP = ("serving-engine profile: vllm, trtllm, atom (its calibration, token budget, scheduler, KV format). "
               "Omitted: no profile, i.e. vLLM's defaults (chunked prefill of at most 8192 tokens per step, "
               "asynchronous scheduling, CUDA graphs up to 2048 tokens, KV in the served dtype) with the "
               "accelerator's bundled calibration")
DTYPE_HELP = ("served dtype of the unquantized weights and the activations: auto, bf16, fp16, fp32 "
              "(default auto: vLLM's dtype=auto, a float32 checkpoint served in bf16, bf16/fp16 kept; "
              "quantized weights keep the checkpoint's format)")
KV_DTYPE_HELP = "KV-cache dtype (bf16, fp8; default the served dtype, or the engine's)"
STRICT_HELP = "treat the warnings (request beyond max_position_embeddings, unreachable --context, does not fit) as errors: exit 2"


def add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hardware", default=DEFAULT_HARDWARE, help=f"accelerator name (default {DEFAULT_HARDWARE})")
    parser.add_argument("--tp", type=bounded_int("tp"), default=1, help="tensor-parallel degree (GPUs), default 1")
    parser.add_argument("--ep", type=bounded_int("ep"), default=1,
                        help="expert-parallel degree (divides tp, or tp*dp with --dp), default 1")
    parser.add_argument("--dp", type=bounded_int("dp"), default=1,
                        help="attention data-parallel groups of tp GPUs (tp*dp GPUs; MoE experts spread over all "
                             "of them with all-to-all dispatch/combine), default 1")
    parser.add_argument("--batch", type=bounded_int("batch"), default=1, help="concurrent sequences, default 1")
    parser.add_argument("--input-len", type=bounded_int("input_len"), default=1024, help="prompt tokens, default 1024")
    parser.add_argument("--output-len", type=bounded_int("output_len"), default=1024, help="generated tokens, default 1024")
    parser.add_argument("--kv-policy", default=None, help="KV-cache policy for the layers it applies to (ring, paged, full)")
    parser.add_argument("--kv-block", type=bounded_int("kv_block"), default=None, help="paged KV block in tokens (default 16, or the engine's)")
    parser.add_argument("--dtype", default=None, help=DTYPE_HELP)
    parser.add_argument("--kv-dtype", default=None, help=KV_DTYPE_HELP)


def register(sub) -> None:
    p = sub.add_parser("estimate", help="estimate one deployment", description=__doc__.replace("``", ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"bundled name or config.json path (default {DEFAULT_MODEL})")
    add_deployment_arguments(p)
    p.add_argument("--context", type=bounded_int("context"), default=None, help="tokens cached before the decode step (default input+output/2)")
    p.add_argument("--engine", default=None, help=ENGINE_HELP)
    p.add_argument("--prompts", type=bounded_int("prompts"), default=None,
                   help="report the means of a benchmark of N prompts at concurrency --batch (default: steady state)")
    p.add_argument("--layers", action="store_true", help="also print the per-layer table")
    p.add_argument("--strict", action="store_true", help=STRICT_HELP)
    p.add_argument("--json", action="store_true", help="print the JSON document (see docs/json.md); warnings stay on stderr")
    p.set_defaults(run=run)


def report_warnings(warnings, strict: bool) -> bool:
    """Print each warning as one line on stderr ("mantile: warning: ..."; with ``strict``
    "mantile: error: ... (--strict)"); True when the command must stop with exit status 2."""
    for text in warnings:
        if strict:
            print(f"mantile: error: {text} (--strict)", file=sys.stderr)
        else:
            print(f"mantile: warning: {text}", file=sys.stderr)
    return bool(strict and warnings)


def run(args) -> int:
    from ..estimate import estimate

    result = estimate(args.model, args.hardware, tp=args.tp, ep=args.ep, batch=args.batch,
                      input_len=args.input_len, output_len=args.output_len, context=args.context,
                      kv_policy=args.kv_policy, kv_block=args.kv_block, kv_dtype=args.kv_dtype,
                      engine=args.engine, prompts=args.prompts, dtype=args.dtype, dp=args.dp)
    if report_warnings(result.warnings, args.strict):
        return 2
    doc = result.to_dict()
    if args.json:
        print_json(doc)
        return 0
    print_report(result, doc, kv_given=args.kv_dtype is not None)
    if args.layers:
        print_layers(doc["layers"])
    if "excluded" in doc:
        print(f"note: {doc['excluded']['note']}")
    return 0


POLICY_WORDS = {
    "causal": "full layers keep the whole context",
    "ring": "sliding layers keep a ring buffer of the last {w} tokens",
    "paged": "sliding layers keep the {b}-token blocks still holding one of the last {w} tokens (vLLM's paging)",
    "full": "sliding layers keep the whole context (no eviction) and attend the last {w} tokens",
    "chunked-ring": "chunked layers keep only their current {c}-token chunk",
    "chunked-paged": "chunked layers keep the {b}-token blocks from their current {c}-token chunk's start (vLLM's paging)",
    "chunked-full": "chunked layers keep the whole context (no eviction) and attend their own {c}-token chunk",
}


def kv_words(result) -> str:
    """The KV policy in force, in words: "sliding layers keep a ring buffer of the last 128
    tokens; full layers keep the whole context"; a plugin's policy by its description."""
    windows = sorted({w for w in result.model.config.windows if w is not None})
    w = "/".join(str(x) for x in windows) or "W"
    chunks = sorted({lay.chunk for lay in result.model.layers if getattr(lay, "chunk", None)})
    c = "/".join(str(x) for x in chunks) or "C"
    parts = []
    recurrent = bool(int(result.final.total.recurrent_state_bytes))  # Mamba / DeltaNet layers
    for mask, policy in sorted(result.kv_policies.items(), key=lambda item: (item[0] == "causal", item[0])):
        template = POLICY_WORDS.get(policy.name)
        if template is None:
            parts.append(f"{mask} layers: {policy.name} ({policy.description or 'a plugin policy'})")
            continue
        text = template.format(w=w, b=result.kv_block, c=c)
        if mask == "causal" and len(result.kv_policies) == 1:
            text = "attention layers keep the whole context" if recurrent else "every layer keeps the whole context"
        parts.append(text)
    if recurrent:
        parts.append("recurrent layers keep a fixed-size state per sequence, whatever the context")
    # what layers keep beyond their mask's policy (DeepSeek-V4's compressed entries), in their words
    parts += sorted({words for layer in result.model.layers if (words := getattr(layer, "cache_words", lambda: "")())})
    return "; ".join(parts)


def quantized_formats(model) -> list[str]:
    """Names of the storage formats narrower than the checkpoint dtype that the model's layers
    hold their weights in (their DType fields), in order of first use: "mxfp4" for GPT-OSS,
    "fp8-b128x128-ue8m0 / mxfp4-b1x32" for DeepSeek-V4; [] for an unquantized checkpoint."""
    import attrs

    from ..dtypes import DType, LinearFormats

    if model.config.quant_method is None:
        return []
    names: dict[str, None] = {}
    for layer in model.layers:
        for field in attrs.fields(type(layer)):
            value = getattr(layer, field.name)
            found = ([value.default, *(d for _, d in value.per_linear)] if isinstance(value, LinearFormats)
                     else [value] if isinstance(value, DType) else [])
            for dtype in found:
                if dtype.bits < model.config.dtype.bits:
                    names.setdefault(dtype.name)
    return list(names) or [model.config.quant_method]


def print_report(result, doc: dict, kv_given: bool = False) -> None:
    """The title, precision and KV lines, the table and the TTFT / TPOT note."""
    mem = doc["memory"]
    bench = doc.get("prompts")
    mode = f"means over a benchmark of {bench} prompts at concurrency {doc['batch']}" if bench else \
        f"steady state at concurrency {doc['batch']}"
    engine = f"engine {doc['engine']}" if doc.get("engine") else "no engine profile (vLLM's defaults)"
    dp = f", dp {doc['dp']}" if doc["dp"] > 1 else ""
    print(f"{doc['model']} on {doc['devices']}× {doc['hardware']} (tp {doc['tp']}, ep {doc['ep']}{dp}), "
          f"{doc['input_len']} in / {doc['output_len']} out, {mode}, {engine}")
    config = result.model.config
    precision = result.precision.describe() if result.precision else config.dtype.name
    formats = quantized_formats(result.model)
    quantized = f", {' / '.join(formats)} where the checkpoint quantizes them" if formats else ""
    kv_from = "--kv-dtype" if kv_given else ("the served dtype" if doc["kv_dtype"] == doc["dtype"] else "the engine's")
    print(f"precision: weights and activations {precision}{quantized}; KV cache {doc['kv_dtype']} ({kv_from})")
    words = kv_words(result)
    if words:
        print(f"KV cache: {words}" if result.kv_policies else f"no KV cache: {words}")
    mean = "benchmark mean" if bench else "mean"

    def band(key: str) -> str:
        """The cross-validated uncertainty band, when bundled (docs/json.md)."""
        lo_hi = doc.get(f"{key}_band")
        return f" (band {sig(lo_hi[0])}–{sig(lo_hi[1])})" if lo_hi else ""

    print_table(None, ["metric", "value"], [
        (f"TTFT ({mean})", f"{sig(doc['ttft_ms'])} ms" + band("ttft_ms")),
        (f"TPOT ({mean})", f"{sig(doc['tpot_ms'])} ms" + band("tpot_ms")),
        (f"throughput per GPU, input + output ({mean})", f"{sig(doc['throughput_tok_s_per_gpu'])} tok/s"
         + band("throughput_tok_s_per_gpu")),
        (f"output tokens per GPU ({mean})", f"{sig(doc['output_tok_s_per_gpu'])} tok/s"),
        ("one request's prompt step", f"{sig(float(result.request_prefill.seconds_total) * 1e3)} ms"),
        (f"prefill of the batch's {doc['batch']} prompt{'s' if doc['batch'] != 1 else ''} in one step", f"{sig(doc['prefill']['time_ms'])} ms, {si(doc['prefill']['flops'], 'FLOP')}"),
        (f"decode step (context {doc['context']})", f"{sig(doc['decode']['time_ms'])} ms, {bytes_h(doc['decode']['weight_bytes'] + doc['decode']['kv_read_bytes'])} read"),
        ("weights per device", bytes_h(mem["weight_bytes"])),
        ("KV cache per device (end of request)", bytes_h(mem["kv_cache_bytes"])),
        *([("recurrent state per device", bytes_h(mem["recurrent_state_bytes"]))]
          if mem["recurrent_state_bytes"] else []),
        ("activations (largest layer)", bytes_h(mem["activation_bytes"])),
        ("total / capacity", f"{bytes_h(mem['total_bytes'])} / {bytes_h(mem['capacity_bytes'])}"),
        ("fits", "yes" if mem["fits"] else "NO"),
        ("max batch at this length", "no limit (no KV cache)" if mem["max_batch"] is None else str(mem["max_batch"])),
    ])
    cal = result.hardware.calibration
    front = (f" + the front end's {sig(cal.request_token_overhead * 1e6)} µs per prompt token"
             if cal.request_token_overhead else "")
    print(f"TTFT = request overhead ({sig(cal.request_overhead * 1e3)} ms){front} + the steps already scheduled "
          "+ the request's own prompt step + waiting for prompt capacity; the prefill row costs every prompt in one "
          "step and is not a latency.")
    print("TPOT = the mean step a decoding request sees: the decode step plus the prompts of arriving requests "
          "(docs/timing.md).")


def print_layers(rows) -> None:
    print_table("per layer, per device", ["#", "name", "type", "params", "prefill FLOPs", "prefill ms",
                                          "decode bytes", "decode KV", "decode ms"], [
        (r["index"] if r["index"] is not None else "-", r["name"], r["type"] + (f" w{r['window']}" if r.get("window") else ""),
         si(r["params"]), si(r["prefill"]["flops"]), sig(r["prefill"]["time_ms"]),
         bytes_h(r["decode"]["weight_bytes"] + r["decode"]["kv_read_bytes"]), bytes_h(r["decode"]["kv_cache_bytes"]),
         sig(r["decode"]["time_ms"])) for r in rows])
