"""A decode step of one GPT-OSS-120B attention layer: predicted by Mantile, and measured with
torch on a CUDA GPU when there is one.

The measured step is the layer as an engine runs it for ``batch`` sequences at ``context``
cached tokens, captured in a CUDA graph (so launch gaps are the graph-replay ones Mantile's
``kernel_overhead`` stands for): qkv projection with biases (2880 → 64·64 + 2·8·64), RoPE on
q and k, the new token's K/V written into a contiguous bf16 cache, attention of 64 query heads
over 8 KV heads with one sink logit per head (full: every cached key; sliding: the last 128),
o projection with bias (4096 → 2880). Attention is two batched matmuls and a softmax (the
sink joins the denominator), which reads K and V once like a decode kernel, plus the score
traffic. Run from the repository root:

    .venv/bin/python benchmarks/attention_layer.py                 # prediction only without CUDA
    .venv/bin/python benchmarks/attention_layer.py --hardware h200 # the card the GPU is

It prints, per mask, batch and context: predicted µs, measured µs and their ratio.
"""

from __future__ import annotations

import argparse
import sys

BATCHES = (1, 4, 16, 64, 256)
CONTEXTS = (1024, 4096, 8192, 16384, 32768)
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, WINDOW = 2880, 64, 8, 64, 128


def predicted_us(hardware: str, engine: str | None) -> dict:
    """{(mask, batch, context): µs} from ``mantile_core.estimate`` at TP1."""
    from mantile_core import estimate, load_model

    model = load_model("gpt-oss-120b")
    out = {}
    for batch in BATCHES:
        for context in CONTEXTS:
            est = estimate(model, hardware, tp=1, batch=batch, input_len=context, output_len=2, context=context,
                           engine=engine)
            for (layer, _), seconds in zip(model.unique_layers, est.decode.seconds):
                if layer.kind == "attention":
                    out[("full" if layer.mask == "causal" else "sliding", batch, context)] = float(seconds) * 1e6
    return out


def build_step(mask: str, batch: int, context: int, dev: str = "cuda"):
    """The layer's decode step as a closure over random weights and a filled cache."""
    import torch

    dt = torch.bfloat16
    group = HEADS // KV_HEADS
    keys = context + 1 if mask == "full" else min(context + 1, WINDOW)
    w_qkv = torch.randn(HIDDEN, (HEADS + 2 * KV_HEADS) * HEAD_DIM, device=dev, dtype=dt) * 0.02
    b_qkv = torch.zeros((HEADS + 2 * KV_HEADS) * HEAD_DIM, device=dev, dtype=dt)
    w_o = torch.randn(HEADS * HEAD_DIM, HIDDEN, device=dev, dtype=dt) * 0.02
    b_o = torch.zeros(HIDDEN, device=dev, dtype=dt)
    sinks = torch.zeros(KV_HEADS, group, 1, device=dev, dtype=torch.float32)
    cache_k = torch.randn(batch, KV_HEADS, keys, HEAD_DIM, device=dev, dtype=dt)
    cache_v = torch.randn(batch, KV_HEADS, keys, HEAD_DIM, device=dev, dtype=dt)
    cos = torch.randn(batch, 1, HEAD_DIM // 2, device=dev, dtype=dt)
    sin = torch.randn(batch, 1, HEAD_DIM // 2, device=dev, dtype=dt)
    x = torch.randn(batch, HIDDEN, device=dev, dtype=dt)
    slot = keys - 1

    def rope(t):
        a, b = t[..., : HEAD_DIM // 2], t[..., HEAD_DIM // 2:]
        return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)

    def step():
        qkv = torch.addmm(b_qkv, x, w_qkv)
        q, k, v = qkv.split((HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM), dim=-1)
        q = rope(q.view(batch, HEADS, HEAD_DIM))
        k = rope(k.view(batch, KV_HEADS, HEAD_DIM))
        cache_k[:, :, slot] = k
        cache_v[:, :, slot] = v.view(batch, KV_HEADS, HEAD_DIM)
        q = q.view(batch, KV_HEADS, group, HEAD_DIM)
        scores = torch.matmul(q, cache_k.transpose(-1, -2)).float() * HEAD_DIM ** -0.5
        top = torch.maximum(scores.amax(-1, keepdim=True), sinks)
        weights = torch.exp(scores - top)
        denominator = weights.sum(-1, keepdim=True) + torch.exp(sinks - top)
        out = torch.matmul((weights / denominator).to(dt), cache_v)
        return torch.addmm(b_o, out.reshape(batch, HEADS * HEAD_DIM), w_o)

    return step


def measured_us(mask: str, batch: int, context: int, iterations: int = 50) -> float:
    """µs of one decode step of the layer, CUDA-graph replayed (see the module docstring)."""
    import torch

    step = build_step(mask, batch, context)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(5):
        graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iterations):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / iterations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hardware", default="h200", help="Mantile hardware name of the GPU (default h200)")
    parser.add_argument("--engine", default="vllm", help="engine profile for the calibration (default vllm)")
    args = parser.parse_args(argv)
    predicted = predicted_us(args.hardware, args.engine)
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    print(f"GPT-OSS-120B attention layer, decode step, {args.hardware}, TP1, bf16 KV"
          + ("" if cuda else " (no CUDA device: prediction only)"))
    print("mask     batch context  predicted_us" + ("  measured_us  predicted/measured" if cuda else ""))
    worst = 0.0
    for mask in ("full", "sliding"):
        for batch in BATCHES:
            for context in CONTEXTS:
                p = predicted[(mask, batch, context)]
                line = f"{mask:8s} {batch:5d} {context:7d} {p:13.1f}"
                if cuda:
                    m = measured_us(mask, batch, context)
                    worst = max(worst, abs(p / m - 1))
                    line += f" {m:12.1f} {p / m:19.3f}"
                print(line)
    if cuda:
        print(f"largest |predicted/measured - 1|: {worst:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
