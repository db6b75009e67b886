"""Fuzzing the boundary (issue #15): generated inputs against the promise "bad input is one
MantileError line (CLI: exit 2), never a traceback, never a silently wrong number".

Hypothesis drives six families of inputs, sized by the profile in ``tests/conftest.py``
(``ci`` by default, about 2,400 cases in under a minute on one core; ``MANTILE_FUZZ_PROFILE=long``
multiplies every count by 25, see benchmarks/README.md):

- config mutations of every bundled model: one to three keys (top level or inside
  rope_scaling / quantization_config) replaced by type-confused, NaN, huge, negative or
  string-for-bool values, or deleted;
- config files as bytes: truncation, byte flips, BOMs, UTF-16, deep nesting, long integer
  literals, NaN literals;
- the CLI in-process (``mantile_core.cli.main``) with generated flag values for estimate,
  layers, sweep and the info commands;
- measurement CSVs for reconcile with junk cells;
- hostile in-process plugins whose hooks raise, print, exit or return junk;
- properties of the serving model: TPOT non-decreasing in the decode context, TTFT
  non-decreasing in the prompt length, throughput per GPU within the compute roofline, TPOT
  at least the time to read the weights once.

Every accepted result is checked for nonsense: every number finite, bytes / FLOPs / times /
params non-negative, TTFT and TPOT positive.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import types
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mantile_core  # noqa: E402
from mantile_core import hookimpl  # noqa: E402
from mantile_core.cli import main  # noqa: E402
from mantile_core.errors import MantileError  # noqa: E402
from mantile_core.model import DATA, Model, build_layers, bundled_models, read_model_config  # noqa: E402
from mantile_core.plugins import get_plugin_manager, make_plugin_manager, set_plugin_manager  # noqa: E402
from mantile_core.reconcile import read_measurements, reconcile  # noqa: E402

SCALE = 25 if os.environ.get("MANTILE_FUZZ_PROFILE", "ci") == "long" else 1


def cases(n: int) -> int:
    """Examples for one test under the active profile (ci: n; long: 25·n)."""
    return n * SCALE


def fuzz(n: int) -> settings:
    """The settings of one fuzz test: ``cases(n)`` examples on top of the active profile."""
    return settings(max_examples=cases(n), suppress_health_check=list(HealthCheck))

# the keys parse_config reads as integers / booleans (transformers' config types)
INT_KEYS = {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
            "intermediate_size", "vocab_size", "max_position_embeddings", "num_experts_per_tok",
            "moe_intermediate_size", "num_local_experts", "num_experts", "sliding_window",
            "max_window_layers", "decoder_sparse_step", "shared_expert_intermediate_size"}
BOOL_KEYS = {"tie_word_embeddings", "use_sliding_window"}
# 0 is meaningful for these (no experts / no shared expert / no sliding layers / no window)
POSITIVE_INT_KEYS = INT_KEYS - {"shared_expert_intermediate_size", "max_window_layers", "sliding_window",
                                "num_local_experts", "num_experts", "num_experts_per_tok"}


def _configs() -> dict[str, dict]:
    return {name: json.loads((DATA / f"{name}.json").read_text()) for name in bundled_models()}


CONFIGS = _configs()

# ---------------------------------------------------------------- accepted results are sane

COUNT_WORDS = ("bytes", "flops", "params", "time_ms", "kernels", "pairs")


def assert_sane(document, path: str = "") -> None:
    """Every number finite; every byte / FLOP / time / parameter count non-negative."""
    if isinstance(document, dict):
        for key, value in document.items():
            assert_sane(value, f"{path}.{key}")
    elif isinstance(document, (list, tuple)):
        for i, value in enumerate(document):
            assert_sane(value, f"{path}[{i}]")
    elif isinstance(document, float):
        assert math.isfinite(document), f"{path} = {document}"
        if any(word in path.rsplit(".", 1)[-1] for word in COUNT_WORDS + ("_ms", "tok_s")):
            assert document >= 0, f"{path} = {document}"
    elif isinstance(document, int) and not isinstance(document, bool):
        if any(word in path.rsplit(".", 1)[-1] for word in COUNT_WORDS):
            assert document >= 0, f"{path} = {document}"


def assert_estimate_sane(doc: dict) -> None:
    assert_sane(doc)
    assert doc["ttft_ms"] > 0 and doc["tpot_ms"] > 0 and doc["throughput_tok_s_per_gpu"] > 0
    assert doc["memory"]["weight_bytes"] > 0


def one_line(message: str) -> None:
    assert message.strip(), "an empty error message"
    assert "\n" not in message.strip(), f"a multi-line error: {message!r}"
    assert "Traceback" not in message


def strict_json(text: str):
    """json.loads that refuses NaN / Infinity, as a strict parser (RFC 8259) does."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------- hostile values

huge_ints = st.sampled_from([2**31, 2**40, 2**63, 2**64 + 1, 2**70, 10**30, 10**300])
bad_ints = st.one_of(st.integers(-(2**64), 0), huge_ints)
weird_floats = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0.5, -0.0, 1e300, -1e300, 1e-300, 4096.5]),
                         st.floats(allow_nan=True, allow_infinity=True))
weird_strings = st.one_of(st.sampled_from(["", "false", "true", "abc", "1e3", "NaN", "4096", "null", " ", "\x00",
                                           "x" * 5000, "yarn", "sliding_attention", "bfloat16"]),
                          st.text(max_size=12))
hostile = st.deferred(lambda: st.one_of(
    st.none(), st.booleans(), bad_ints, weird_floats, weird_strings,
    st.integers(1, 2**24), st.lists(st.one_of(st.integers(-3, 5), weird_strings, st.none()), max_size=4),
    st.dictionaries(weird_strings, st.one_of(st.integers(-3, 5), weird_strings, st.none()), max_size=3),
))
DELETE = object()


@st.composite
def mutated_config(draw):
    """(model name, mutated config, [(key path, value)]) of a bundled model."""
    name = draw(st.sampled_from(sorted(CONFIGS)))
    data = copy.deepcopy(CONFIGS[name])
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        nested = [k for k in ("rope_scaling", "rope_parameters", "quantization_config")
                  if isinstance(data.get(k), dict) and data[k]]
        if nested and draw(st.integers(0, 4)) == 0:
            outer = draw(st.sampled_from(nested))
            target, prefix = data[outer], outer + "."
        else:
            target, prefix = data, ""
        keys = sorted(target) + (sorted(INT_KEYS | BOOL_KEYS) if not prefix else [])
        key = draw(st.sampled_from(keys))
        value = draw(st.one_of(hostile, st.just(DELETE)))
        if value is DELETE:
            target.pop(key, None)
        else:
            target[key] = value
        changes.append((prefix + key, value))
    return name, data, changes


def _rejected_type(key: str, value) -> bool:
    """True when ``value`` can never be valid for a top-level standard ``key``."""
    if value is DELETE or value is None:
        return False
    if key in BOOL_KEYS:
        return not isinstance(value, bool)
    if key in INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            return True
        return key in POSITIVE_INT_KEYS and value <= 0
    return False


@fuzz(700)
@given(case=mutated_config(), hw=st.sampled_from(["h100", "b200", "mi355x"]), tp=st.sampled_from([1, 2, 8]))
def test_config_mutations_are_rejected_in_one_line_or_estimated_sanely(case, hw, tp):
    name, data, changes = case
    try:
        config = read_model_config(data, name=name)
        model = Model(config=config, layers=build_layers(config))
        doc = mantile_core.estimate(model, hw, tp=tp, batch=4, input_len=256, output_len=64).to_dict()
    except MantileError as exc:
        one_line(str(exc))
        return
    assert_estimate_sane(doc)
    # type confusion is never accepted in a key the published config sets (the parser reads
    # it): the last value written to each key is what the parser saw
    final = {}
    for key, value in changes:
        final[key] = value
    for key, value in final.items():
        if key in CONFIGS[name] and key not in _rewritten(name) and _rejected_type(key, value):
            # accepted only if the parser never read it: the config is the same without the key
            without = {k: v for k, v in data.items() if k != key}
            try:
                unused = read_model_config(without, name=name) == config
            except MantileError:
                unused = False
            assert unused, f"{name}: {key} = {value!r} was accepted and changes the model"


_REWRITTEN: dict[str, set[str]] = {}


def _rewritten(name: str) -> set[str]:
    """Standard keys a plugin's config reader replaces in the published config (MLA sets
    num_key_value_heads to the head count): the published value is never read."""
    if name not in _REWRITTEN:
        raw = CONFIGS[name]
        readers = [r for r in get_plugin_manager().registries.config_readers.values()
                   if raw.get("model_type") in r.model_types]
        out = readers[0].read(dict(raw), name) if readers else raw
        _REWRITTEN[name] = {k for k in INT_KEYS | BOOL_KEYS if k in raw and out.get(k) != raw[k]}
    return _REWRITTEN[name]


# ---------------------------------------------------------------- config files as bytes

@st.composite
def mutated_bytes(draw):
    name = draw(st.sampled_from(sorted(CONFIGS)))
    raw = (DATA / f"{name}.json").read_bytes()
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "bom", "utf16", "nest", "longint", "nan", "latin1"]))
    if kind == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif kind == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    elif kind == "insert":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif kind == "bom":
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])) + raw
    elif kind == "utf16":
        raw = raw.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    elif kind == "nest":
        depth = draw(st.sampled_from([40, 1000, 100_000]))
        raw = b'{"model_type": "llama", "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "longint":
        key = draw(st.sampled_from([b'"hidden_size": ', b'"vocab_size": ']))
        raw = raw.replace(key, key + b"9" * draw(st.sampled_from([20, 400, 5000])), 1)
    elif kind == "nan":
        raw = raw.replace(b'"hidden_size": ', b'"hidden_size": ' + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])) + b", \"x\": ", 1)
    else:
        raw = raw.replace(b'"', b'"\xe9', 1)
    return raw


@fuzz(150)
@given(raw=mutated_bytes())
def test_config_files_as_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(raw)
    try:
        model = mantile_core.load_model(str(path))
    except MantileError as exc:
        one_line(str(exc))
        return
    assert model.params() > 0


# ---------------------------------------------------------------- the CLI, in-process

def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


int_text = st.one_of(st.integers(-5, 70_000).map(str), huge_ints.map(str), st.sampled_from(
    ["0", "-1", "1e3", "2.5", "", " ", "nan", "inf", "0x10", "1_000", "٣", "9" * 5000, "abc"]))
axis_text = st.one_of(int_text, st.sampled_from(["1:8", "1:4:x2", "2:64:x4", "1:1000000000", "8:1", "1:8:0",
                                                 "1,2,,4", "1:16:x1", "4:4", "1:3,2:5", "1:1024:x2"]))
float_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(["20", "0", "-5", "nan", "inf", "1e400", "abc", ""]))
small_model = st.sampled_from(["llama-3.2-1b", "qwen2.5-7b", "mixtral-8x7b", "qwen3-30b-a3b", "no-such-model", "",
                               "x" * 5000, "/nonexistent/config.json", "gpt-oss-20b"])
hardware = st.sampled_from(["h100", "b200", "mi355x", "tpu9", "", "h100,b200", "H200"])


@st.composite
def cli_argv(draw, out_dir: Path):
    command = draw(st.sampled_from(["estimate", "estimate", "estimate", "sweep", "layers", "hardware", "plugins"]))
    argv = [command]
    if command in ("hardware", "plugins"):
        return argv + draw(st.sampled_from([[], ["--json"]]))
    argv.append(draw(small_model))
    if command == "layers":
        return argv + draw(st.sampled_from([[], ["--json"]]))
    if command == "estimate":
        flags = {"--tp": int_text, "--ep": int_text, "--batch": int_text, "--input-len": int_text,
                 "--output-len": int_text, "--context": int_text, "--kv-block": int_text, "--prompts": int_text,
                 "--engine": st.sampled_from(["vllm", "trtllm", "atom", "nope"]),
                 "--kv-policy": st.sampled_from(["ring", "paged", "full", "weird"]),
                 "--kv-dtype": st.sampled_from(["fp8", "bf16", "int3"]), "--hardware": hardware}
    else:
        flags = {"--tp": axis_text, "--ep": axis_text, "--input-len": axis_text, "--output-len": axis_text,
                 "--max-tpot-ms": float_text, "--max-ttft-ms": float_text, "--kv-block": int_text,
                 "--prompts": int_text, "--rows": int_text, "--max-points": int_text,
                 "--engine": st.sampled_from(["vllm", "atom", "nope"])}
        argv += ["--hardware", draw(st.sampled_from(["h100", "b200", "h100,b200", "tpu9"])),
                 "--batch", draw(axis_text)]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4, unique=True)):
        argv += [flag, draw(flags[flag])]
    if command == "estimate" or draw(st.booleans()):
        argv.append("--json")
    return argv


@fuzz(600)
@given(data=st.data())
def test_cli_argument_fuzz(tmp_path_factory, data):
    argv = data.draw(cli_argv(tmp_path_factory.getbasetemp()))
    if argv[0] == "sweep":  # a sweep's grid is the fuzz's, its size the limit's: keep it short
        os.environ["MANTILE_MAX_POINTS"] = "20000"
    try:
        code, out, err = run_cli(argv)
    finally:
        os.environ.pop("MANTILE_MAX_POINTS", None)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if not line.startswith("mantile: warning:")]
        assert len(lines) == 1, (argv, err)
        one_line(lines[0])
        return
    assert "Traceback" not in err
    if "--json" in argv:
        doc = strict_json(out)
        if argv[0] == "estimate":
            assert_estimate_sane(doc)
        else:
            assert_sane(doc)


# ---------------------------------------------------------------- reconcile CSVs

CSV_HEADER = ["gpu_model", "framework", "precision", "input_seq_len", "output_seq_len", "tensor_parallel",
              "expert_parallel", "concurrency", "throughput_tokens_per_sec_per_gpu", "output_throughput_per_gpu",
              "mean_time_to_first_token_sec", "mean_time_per_output_token_sec", "mean_end_to_end_latency_sec"]
GOOD_ROW = ["h100", "vllm", "bf16", "1024", "1024", "1", "1", "8", "900.5", "450.2", "0.05", "0.01", "10.2"]
junk_cell = st.one_of(st.sampled_from(["", "0", "-1", "nan", "NaN", "inf", "-inf", "1e400", "abc", "2.5", "8.0",
                                       "1e-320", "99999999999999999999", " 7 ", "h200", "b200-trt", "trt", "atom"]),
                      st.text(max_size=6), st.integers(-10, 5000).map(str), st.floats().map(repr))


@st.composite
def measurement_csv(draw):
    header = list(CSV_HEADER)
    if draw(st.integers(0, 9)) == 0:
        header.remove(draw(st.sampled_from(CSV_HEADER)))
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        row = dict(zip(CSV_HEADER, GOOD_ROW))
        for column in draw(st.lists(st.sampled_from(CSV_HEADER), max_size=3, unique=True)):
            row[column] = draw(junk_cell)
        cells = [row[c] for c in header]
        if draw(st.integers(0, 9)) == 0:
            cells = cells[:draw(st.integers(0, len(cells)))] if draw(st.booleans()) else cells + ["extra"]
        rows.append(cells)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


@fuzz(300)
@given(text=measurement_csv())
def test_measurement_csv_fuzz(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_text(text)
    try:
        rows = read_measurements(path)
        for m in rows:
            for value in (m.throughput, m.output_throughput, m.ttft_s, m.tpot_s):
                assert math.isfinite(value) and value > 0
            assert m.isl > 0 and m.osl > 0 and m.concurrency > 0 and (m.tp or 1) > 0 and (m.ep or 1) > 0
        results = reconcile(rows, mantile_core.load_model("llama-3.2-1b"))
    except MantileError as exc:
        one_line(str(exc))
        return
    for r in results:
        for metric, value in r.predicted.items():
            assert math.isfinite(value) and value > 0, (metric, value)
            assert math.isfinite(r.error(metric))


# ---------------------------------------------------------------- hostile in-process plugins

HOOKS = ("mantile_layer_types", "mantile_model_layouts", "mantile_rope_scalings", "mantile_cache_policies",
         "mantile_hardware", "mantile_validation_cases", "mantile_config_readers")


class Hostile(BaseException):
    pass


def _behaviour(kind: str, payload):
    def hook():
        if kind == "raise":
            raise payload("hostile")
        if kind == "print":
            print("chatter from a plugin")
            return []
        if kind == "return":
            return payload
        if kind == "generator":
            def gen():
                yield from payload
                raise RuntimeError("midway")
            return gen()
        return []
    return hook


behaviours = st.one_of(
    st.tuples(st.just("raise"), st.sampled_from([RuntimeError, ValueError, SystemExit, Hostile, KeyError,
                                                  RecursionError, MemoryError, StopIteration])),
    st.tuples(st.just("print"), st.none()),
    st.tuples(st.just("return"), st.one_of(st.integers(), st.text(max_size=5), st.none(),
                                           st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3),
                                           st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))),
    st.tuples(st.just("generator"), st.lists(st.integers(), max_size=2)),
    st.tuples(st.just("fine"), st.none()),
)


@fuzz(150)
@given(plan=st.dictionaries(st.sampled_from(HOOKS), behaviours, min_size=1, max_size=4),
       command=st.sampled_from([["plugins", "--json"], ["estimate", "llama-3.2-1b", "--json"], ["hardware", "--json"],
                                ["layers", "qwen2.5-7b", "--json"]]))
def test_hostile_plugin_fuzz(plan, command):
    plugin = types.ModuleType("mantile_fuzz_plugin")
    for hook_name, (kind, payload) in plan.items():
        setattr(plugin, hook_name, hookimpl(_behaviour(kind, payload)))
    previous = set_plugin_manager(make_plugin_manager(entry_points=False, plugins=[(plugin, "mantile-fuzz-hostile")]))
    try:
        code, out, err = run_cli(command)
    finally:
        set_plugin_manager(previous)
    hostile_plan = any(kind != "fine" and not (kind == "return" and payload in (None, [])) for kind, payload in plan.values())
    assert code == 0, (plan, command, err)
    doc = strict_json(out)
    if command[0] == "plugins":
        info = {p["distribution"]: p for p in doc["plugins"]}["mantile-fuzz-hostile"]
        assert (info["error"] is not None) == hostile_plan, (plan, info)
        assert not hostile_plan or info["provides"] == {}
    if command[0] == "estimate":
        assert_estimate_sane(doc)
    warnings = [line for line in err.splitlines() if line]
    assert all(line.startswith("mantile: warning:") for line in warnings), err
    assert len(warnings) == (1 if hostile_plan else 0), (plan, err)


# ---------------------------------------------------------------- serving-model properties

TOLERANCE = 1e-6
"""Relative slack of the monotonicity properties: the serving model's fixed point converges
to about 1e-7 (the bug they guard against was 15 %). Every deployment is sampled, fitting or
not, with any output length: the closed loop's residual dips (a request's own prompt step
costed as if it ran alone while the steps around it carried many; the first wave's
prompt-only steps costed with the decode-overlapped marginal prompt, so they shrank as the
decode context grew) were fixed in the serving model (issue #15); the long profile passes."""

DENSE_AND_MOE = ["llama-3.2-1b", "llama-3.1-8b", "qwen2.5-7b", "qwen3-8b", "mistral-7b", "mixtral-8x7b", "qwen3-30b-a3b"]
_MODELS: dict[str, object] = {}


def model(name: str):
    if name not in _MODELS:
        _MODELS[name] = mantile_core.load_model(name)
    return _MODELS[name]


deployment = st.fixed_dictionaries({
    "name": st.sampled_from(DENSE_AND_MOE),
    "hardware": st.sampled_from(["h100", "h200", "b200", "gb200", "mi300x", "mi355x"]),
    "tp": st.sampled_from([1, 2, 4, 8]),
    "batch": st.one_of(st.integers(1, 16), st.sampled_from([64, 256, 1024, 4096])),
    "input_len": st.one_of(st.integers(1, 4096), st.sampled_from([8192, 32768, 131072])),
    "output_len": st.one_of(st.integers(2, 2048), st.sampled_from([8192])),
    "engine": st.sampled_from([None, "vllm", "trtllm", "atom"]),
    "prompts_waves": st.sampled_from([None, None, 1, 10]),
})


def _estimate(d, **override):
    args = dict(tp=d["tp"], batch=d["batch"], input_len=d["input_len"], output_len=d["output_len"],
                engine=d["engine"], prompts=None if d["prompts_waves"] is None else d["prompts_waves"] * d["batch"])
    args.update(override)
    try:
        return mantile_core.estimate(model(d["name"]), d["hardware"], **args)
    except MantileError:  # e.g. tp that does not divide the heads
        return None


@fuzz(200)
@given(d=deployment, contexts=st.tuples(st.integers(0, 200_000), st.integers(0, 200_000)))
@example(d={"name": "mistral-7b", "hardware": "mi355x", "tp": 2, "batch": 64, "input_len": 32768, "output_len": 181,
            "engine": None, "prompts_waves": None}, contexts=(3872, 4052))  # 96 % prompts: found by the long profile
def test_tpot_never_falls_as_the_context_grows(d, contexts):
    low, high = sorted(contexts)
    a, b = _estimate(d, context=low), _estimate(d, context=high)
    assume(a is not None and b is not None)
    assert float(b.serving.tpot_s) >= float(a.serving.tpot_s) * (1 - TOLERANCE), (d, low, high)


@fuzz(200)
@given(d=deployment, factor=st.floats(1.0, 4.0))
@example(d={"name": "llama-3.2-1b", "hardware": "mi355x", "tp": 8, "batch": 9, "input_len": 131072, "output_len": 289,
            "engine": None, "prompts_waves": None}, factor=1.0)  # found by the long profile
def test_a_longer_prompt_never_shortens_the_request_nor_its_ttft_but_at_a_bottleneck(d, factor):
    """A longer prompt never shortens the request (E2E), and never its TTFT unless the closed
    loop waits at a bottleneck (the front end or the prompt capacity): the cycle is then C times
    the bottleneck's service and TTFT what the cycle leaves after the decode, so a decode that
    slows by more than the bottleneck's service grows shortens the wait, and TTFT falls by no
    more than the decode grew (llama-3.2-1b on MI355X, TP 8, C 9, 130k -> 140k prompts: the
    tokeniser's 9 x 0.3 s cycle; TTFT 0.987 -> 0.957 s while the decode grows 0.23 s)."""
    longer = min(int(d["input_len"] * factor) + 1, 1 << 20)
    a, b = _estimate(d), _estimate(d, input_len=longer)
    assume(a is not None and b is not None)
    ttft_a, ttft_b = float(a.serving.ttft_s), float(b.serving.ttft_s)
    assert float(b.serving.e2e_s) >= float(a.serving.e2e_s) * (1 - TOLERANCE), (d, longer)
    if ttft_b < ttft_a * (1 - TOLERANCE):
        decode_growth = (d["output_len"] - 1) * (float(b.serving.tpot_s) - float(a.serving.tpot_s))
        assert decode_growth >= (ttft_a - ttft_b) * (1 - TOLERANCE), (d, longer)


@fuzz(200)
@given(d=deployment)
def test_throughput_within_the_roofline(d):
    e = _estimate(d)
    assume(e is not None)
    s, hw = e.serving, e.hardware
    # requests per second per instance, each needing at least its prompt's matmul FLOPs on
    # every device at the chip's highest dense peak, and every decode step at least one read
    # of the weights at the full HBM bandwidth
    requests_s = float(s.throughput_tok_s_per_gpu) * d["tp"] / (d["input_len"] + d["output_len"])
    prompt_s = float(e.request_prefill.total.matmul_flops) / max(hw.peak_flops.values())
    assert requests_s * prompt_s <= 1 + 1e-9, d
    assert float(s.tpot_s) >= float(e.decode.total.weight_bytes) / hw.hbm_bandwidth * (1 - 1e-9), d
    assert float(s.output_tok_s_per_gpu) <= float(s.throughput_tok_s_per_gpu) * (1 + 1e-9)
    assert_estimate_sane(e.to_dict())
