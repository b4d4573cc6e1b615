"""Property-based tests (Hypothesis) of every file hfp reads and every numeric option: whatever the input, hfp exits
0 or 2 with a one-line message; never a traceback, an "internal error", a hang or a native crash (issue #16).

The CLI runs in-process (click's CliRunner; under pytest, unexpected exceptions propagate, so an internal error
fails the test with its traceback). Each case has a time limit. GGUF cases never reach llama.cpp with a broken
file: they run `hfp inspect`/`hfp estimate`, which read the header only, and `hfp run` only on files the header
check must refuse first.

Budget: ``HFP_FUZZ_EXAMPLES`` cases per test (default 25, derandomized, so CI is stable); `make fuzz` runs a
long random campaign. ``HFP_FUZZ_STATS=<file>`` writes cases and outcomes per class of input (docs/reliability.md).
Every failure found became a fixed example (``@example``) below.
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiler import models, resources
from profiler.cli import cli
from profiler.errors import HfpError

EXAMPLES = int(os.environ.get("HFP_FUZZ_EXAMPLES", "25"))
LONG = "HFP_FUZZ_EXAMPLES" in os.environ
CASE_LIMIT_S = 60.0
settings.register_profile(
    "hfp-fuzz", max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)
fuzz = settings.get_profile("hfp-fuzz")

SPEC = ["--params", "1e9", "--quant", "Q4_K_M", "--layers", "16", "--kv-heads", "8", "--head-dim", "64"]
SCENARIO_FILES = sorted(resources.builtin_dir("scenarios").glob("*.yaml"))
PROFILE_FILES = sorted(resources.builtin_dir("hardware_profiles").glob("*.yaml"))

# --- bookkeeping: cases and outcomes per class, for docs/reliability.md ------------------------------------------

STATS: dict[str, Counter[str]] = defaultdict(Counter)
MESSAGES: dict[str, Counter[str]] = defaultdict(Counter)


@pytest.fixture(scope="module", autouse=True)
def _write_stats() -> Iterator[None]:
    yield
    target = os.environ.get("HFP_FUZZ_STATS")
    if target:
        old = json.loads(Path(target).read_text()) if Path(target).exists() else {}
        for klass, counts in STATS.items():
            entry = old.setdefault(klass, {"outcomes": {}, "messages": {}})
            for k, v in counts.items():
                entry["outcomes"][k] = entry["outcomes"].get(k, 0) + v
            for k, v in MESSAGES[klass].most_common(8):
                entry["messages"][k] = entry["messages"].get(k, 0) + v
        Path(target).write_text(json.dumps(old, indent=1, sort_keys=True))


class Hang(BaseException):
    """A case ran past its time limit (BaseException: no ``except Exception`` in hfp can swallow it)."""


@contextmanager
def time_limit(seconds: float = CASE_LIMIT_S) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"case ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _kind(message: str) -> str:
    """A message with its file paths and numbers blanked, to count kinds of refusal."""
    words = []
    for w in message.split()[:8]:
        if "/" in w:
            w = "<file>"
        elif any(c.isdigit() for c in w):
            w = "<n>"
        words.append(w)
    return " ".join(words)


def hfp(klass: str, *args: str) -> Result:
    """Run ``hfp args`` in-process under the time limit and check the property; returns the result."""
    with time_limit():
        result = CliRunner().invoke(cli, list(args))
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc  # an internal error (under pytest the CLI lets it through with its traceback)
    text = result.output + (result.stderr or "")
    assert "Traceback" not in text and "internal error" not in text, text
    assert result.exit_code in (0, 2), (args, result.exit_code, text)
    STATS[klass][f"exit {result.exit_code}"] += 1
    STATS[klass]["cases"] += 1
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        MESSAGES[klass][_kind(lines[0])] += 1
    return result


# --- GGUF headers ----------------------------------------------------------------------------------------------

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(raw: bytes, pos: int, vtype: int) -> int:
    if vtype in _SCALAR_SIZES:
        return pos + _SCALAR_SIZES[vtype]
    if vtype == 8:
        (n,) = struct.unpack_from("<Q", raw, pos)
        return pos + 8 + n
    etype, count = struct.unpack_from("<IQ", raw, pos)
    pos += 12
    for _ in range(count):
        pos = _skip_value(raw, pos, etype)
    return pos


def compact_header(raw: bytes, keep: int = 8) -> tuple[bytes, list[int]]:
    """The real model's header re-serialized with every array cut to ``keep`` items (tokens, merges), so a case
    is a few KiB; and the offsets of its structural fields (counts, types, lengths), where mutations bite."""
    n_tensors, n_kv = struct.unpack_from("<QQ", raw, 8)
    pos, out, fields = 24, bytearray(raw[:24]), [4, 8, 16]
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", raw, pos)
        key_end = pos + 8 + klen
        (vtype,) = struct.unpack_from("<I", raw, key_end)
        fields += [len(out), len(out) + 8 + klen]
        if vtype == 9:
            etype, count = struct.unpack_from("<IQ", raw, key_end + 4)
            items, p = [], key_end + 16
            for _ in range(count):
                q = _skip_value(raw, p, etype)
                if len(items) < keep:
                    items.append(raw[p:q])
                p = q
            fields.append(len(out) + 8 + klen + 8)
            out += raw[pos:key_end + 4] + struct.pack("<IQ", etype, len(items)) + b"".join(items)
            pos = p
        else:
            end = _skip_value(raw, key_end + 4, vtype)
            out += raw[pos:end]
            pos = end
    for _ in range(n_tensors):
        (nlen,) = struct.unpack_from("<Q", raw, pos)
        (n_dims,) = struct.unpack_from("<I", raw, pos + 8 + nlen)
        end = pos + 8 + nlen + 4 + 8 * n_dims + 4 + 8
        fields += [len(out), len(out) + 8 + nlen, len(out) + 8 + nlen + 4, len(out) + (end - pos) - 12,
                   len(out) + (end - pos) - 8]
        out += raw[pos:end]
        pos = end
    return bytes(out), fields


@pytest.fixture(scope="module")
def gguf_seed(default_model_path: Path) -> tuple[bytes, list[int], bytes]:
    with default_model_path.open("rb") as f:
        raw = f.read(4 << 20)  # the header (1.7 MiB: tokenizer arrays) and the start of the weights
    header, fields = compact_header(raw)
    return header, fields, raw


INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 9, 12, 13, 255, 2**16, 2**24 + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                    2**63 - 1, 2**63, 2**64 - 1]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("u32"), st.integers(0, 1 << 20), st.sampled_from(INTERESTING_INTS)),
    st.tuples(st.just("u64"), st.integers(0, 1 << 20), st.sampled_from(INTERESTING_INTS)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 64)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
)


def mutate(seed: bytes, fields: list[int], ops: list[tuple[str, int, Any]], on_field: list[bool]) -> bytes:
    data = bytearray(seed)
    for (op, pos, arg), structural in zip(ops, on_field):
        if not data:
            break
        pos = fields[pos % len(fields)] if structural else pos % len(data)
        pos = min(pos, len(data) - 1)
        if op == "flip":
            data[pos] ^= 1 << arg
        elif op == "byte":
            data[pos] = arg
        elif op in ("u32", "u64"):
            fmt = "<I" if op == "u32" else "<Q"
            packed = struct.pack(fmt, arg % (1 << (32 if op == "u32" else 64)))
            data[pos:pos + len(packed)] = packed
        elif op == "insert":
            data[pos:pos] = arg
        elif op == "delete":
            del data[pos:pos + arg]
        else:
            del data[pos:]
    return bytes(data)


def _extend_sparse(path: Path) -> bool:
    """When the header parses but the (absent) weights make it 'truncated', extend the file sparsely to the size
    the tensor table asks for, so the rest of hfp (description, memory plan, estimate) sees the header."""
    try:
        models.inspect(path, with_hash=False)
    except HfpError as e:
        text = str(e)
        if "tensor table needs" not in text:
            return False
        need = int(text.split("needs ")[1].split(")")[0].replace(",", ""))
        if need > 128 << 20:  # hfp hashes a model it inspects: keep each case small (found: a 1 TiB one)
            return False
        with path.open("r+b") as f:
            f.truncate(need)
        return True
    return True


@fuzz
@given(ops=st.lists(mutation, min_size=1, max_size=3), on_field=st.lists(st.booleans(), min_size=6, max_size=6),
       estimate=st.booleans())
@example(ops=[("u64", 1, 0)], on_field=[True] * 6, estimate=False)  # zero keys
@example(ops=[("u32", 0, 2**32 - 1)], on_field=[True] * 6, estimate=False)  # version
def test_mutated_gguf_header_is_refused_in_one_line_or_described(
        gguf_seed: tuple[bytes, list[int], bytes], tmp_path_factory: pytest.TempPathFactory,
        ops: list[tuple[str, int, Any]], on_field: list[bool], estimate: bool) -> None:
    header, fields, _ = gguf_seed
    path = tmp_path_factory.mktemp("gguf") / "mutated.gguf"
    path.write_bytes(mutate(header, fields, ops, on_field))
    parsed = _extend_sparse(path)
    hfp("GGUF header, mutated", "inspect", str(path), "--json")
    if parsed and estimate:
        hfp("GGUF header, mutated", "estimate", "-m", str(path), "--scenario", "fake-reviews", "--profile",
            "budget-laptop", "--json")


@fuzz
@given(cut=st.integers(0, 4 << 20))
@example(cut=0)
@example(cut=4)
@example(cut=24)
def test_truncated_gguf_is_refused_before_loading(
        gguf_seed: tuple[bytes, list[int], bytes], tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    _, _, raw = gguf_seed
    path = tmp_path_factory.mktemp("gguf") / "cut.gguf"
    path.write_bytes(raw[:cut])
    result = hfp("GGUF, truncated", "run", "-m", str(path), "--idle-seconds", "0", "-r", "1", "-n", "2")
    assert result.exit_code == 2  # never loaded: the header check refuses first
    hfp("GGUF, truncated", "inspect", str(path))


@fuzz
@given(data=st.binary(max_size=256))
@example(data=b"GGUF")
@example(data=b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
def test_random_bytes_as_gguf(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("gguf") / "random.gguf"
    path.write_bytes(data)
    hfp("GGUF, random bytes", "inspect", str(path))


# --- YAML: scenarios, profiles, model specs, probe sets ------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(), st.sampled_from([0.0, -0.0, 1e-308, 1e308, math.inf, -math.inf, math.nan]),
    st.text(max_size=40), st.sampled_from(["", "{topic}", "{output_words}", "{0}", "{topic.x}", "{:>999999999}",
                                           "bulk", "interactive", "cuda", "metal", "\x00", "\ud7ff"]),
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c,
                                                                                      max_size=5), max_leaves=12)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


plausible_number = st.one_of(st.integers(0, 10**15), st.floats(0, 1e15), st.sampled_from([1e-300, 5e-324, 1, 2]))


def tweak_numbers(draw: Any, doc: Any, n: int) -> Any:
    """Replace up to ``n`` numeric leaves with other non-negative numbers: the document mostly stays valid, so
    the extreme values reach the code behind the schema (estimates, fits)."""
    numeric = [p for p in _paths(doc)[1:] if isinstance(_get(doc, p), (int, float)) and
               not isinstance(_get(doc, p), bool)]
    for _ in range(min(n, len(numeric))):
        doc = _set(doc, draw(st.sampled_from(numeric)), draw(plausible_number), delete=False)
    return doc


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated_document(draw: st.DrawFn, files: list[Path]) -> str:
    """A shipped YAML file with its numbers changed (mostly still valid), 1-3 of its fields replaced, deleted or
    added, or its text damaged."""
    source = draw(st.sampled_from(files))
    text = source.read_text()
    how = draw(st.sampled_from(["numbers", "numbers", "fields", "fields", "text"]))
    if how == "numbers":
        return yaml.safe_dump(tweak_numbers(draw, yaml.safe_load(text), draw(st.integers(1, 4))),
                              allow_unicode=True)
    if how == "text":
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, max(len(data) - 1, 0)))
            data[pos:pos + draw(st.integers(0, 3))] = draw(st.binary(max_size=3))
        return data.decode("latin-1") if draw(st.booleans()) else bytes(data).hex()
    doc = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:] or paths))
        op = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if op == "add" and isinstance(doc, dict):
            doc[draw(st.text(max_size=10))] = draw(values)
        else:
            doc = _set(doc, path, draw(values), delete=op == "delete" and bool(path))
    return yaml.safe_dump(doc, allow_unicode=True)


def _write(tmp_path_factory: pytest.TempPathFactory, name: str, content: str | bytes) -> Path:
    path = tmp_path_factory.mktemp("yaml") / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    return path


@fuzz
@given(text=mutated_document(SCENARIO_FILES), estimate=st.booleans())
@example(text='name: x\nprompt_tokens:\n  "\\f": null\n', estimate=False)  # found: a form feed in a key
def test_mutated_scenario(tmp_path_factory: pytest.TempPathFactory, text: str, estimate: bool) -> None:
    path = _write(tmp_path_factory, "scenario.yaml", text)
    shown = hfp("scenario YAML, mutated", "scenarios", str(path))
    if shown.exit_code == 0 or estimate:
        hfp("scenario YAML, mutated", "estimate", "--scenario", str(path), "--profile", "budget-laptop", *SPEC)


@fuzz
@given(text=mutated_document(PROFILE_FILES), estimate=st.booleans())
@example(text="name: x\ntier: t\nprice_usd: 1\ncpu: {cores: 28, ram_gb: 96, ram_bandwidth_gbps: 5.0e-324, tflops: 3}\n"
              "power: {load_w: 270, idle_w: 15}\nsources: [s]\n", estimate=True)  # found: a division by zero
def test_mutated_profile(tmp_path_factory: pytest.TempPathFactory, text: str, estimate: bool) -> None:
    path = _write(tmp_path_factory, "profile.yaml", text)
    shown = hfp("profile YAML, mutated", "profiles", str(path))
    if shown.exit_code == 0 or estimate:
        hfp("profile YAML, mutated", "estimate", "--profile", str(path), "--scenario", "fake-reviews", *SPEC)
        hfp("profile YAML, mutated", "frontier", "--profile", str(path), "--quant", "Q4_K_M")


@fuzz
@given(doc=values, raw=st.one_of(st.none(), st.text(max_size=200), st.binary(max_size=200)))
@example(doc=None, raw=b"\xff\xfe bad utf-8")
@example(doc=None, raw="a: &a [*a]\n")
@example(doc=None, raw="[" * 5000)
@example(doc=None, raw="!!python/object/apply:os.system ['true']\n")
def test_random_yaml_as_every_kind_of_file(tmp_path_factory: pytest.TempPathFactory, doc: Any,
                                           raw: str | bytes | None) -> None:
    content = raw if raw is not None else yaml.safe_dump(doc, allow_unicode=True)
    path = _write(tmp_path_factory, "random.yaml", content)
    hfp("random YAML", "scenarios", str(path))
    hfp("random YAML", "profiles", str(path))
    hfp("random YAML", "estimate", "--model-spec", str(path), "--scenario", "fake-reviews", "--profile",
        "budget-laptop")
    from profiler.safety import load_probes

    try:
        with time_limit():
            load_probes(path)
        STATS["random YAML"]["exit 0"] += 1
    except HfpError as e:
        assert "\n" not in str(e)
        STATS["random YAML"]["exit 2"] += 1
    STATS["random YAML"]["cases"] += 1


@fuzz
@given(lines=st.lists(st.one_of(values.map(json.dumps), st.text(max_size=60)), max_size=6))
@example(lines=['{"\\n": null}'])  # found: a line break in a key
def test_random_jsonl_probe_set(tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> None:
    from profiler.safety import load_probes

    path = _write(tmp_path_factory, "probes.jsonl", "\n".join(lines))
    try:
        with time_limit():
            load_probes(path)
        STATS["probe set JSONL"]["exit 0"] += 1
    except HfpError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        STATS["probe set JSONL"]["exit 2"] += 1
        MESSAGES["probe set JSONL"][_kind(f"error: {e}")] += 1
    STATS["probe set JSONL"]["cases"] += 1


# --- records and calibrations ------------------------------------------------------------------------------------


@fuzz
@given(cut=st.integers(0, 1 << 22), doc=st.one_of(st.none(), values), field_ops=st.integers(0, 3), data=st.data(),
       numbers=st.integers(0, 6))
def test_truncated_random_and_mutated_records(small_record_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                              cut: int, doc: Any, field_ops: int, data: st.DataObject,
                                              numbers: int) -> None:
    text = small_record_path.read_text()
    if doc is not None:
        content = json.dumps(doc)
    elif numbers:
        content = json.dumps(tweak_numbers(data.draw, json.loads(text), numbers))
    elif field_ops:
        record = json.loads(text)
        for _ in range(field_ops):
            path = data.draw(st.sampled_from(_paths(record)[1:]))
            record = _set(record, path, data.draw(values), delete=data.draw(st.booleans()))
        content = json.dumps(record)
    else:
        content = text[:cut % (len(text) + 1)]
    folder = tmp_path_factory.mktemp("rec")
    path = _write(tmp_path_factory, "record.json", content)
    hfp("run record JSON", "calibrate", str(path), "--out", str(folder / "cal.json"))
    hfp("run record JSON", "estimate", "-m", str(path), "--scenario", "fake-reviews", "--profile", "budget-laptop")


@fuzz
@given(doc=values, cut=st.integers(0, 10_000))
def test_random_and_truncated_calibration(small_record_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                          doc: Any, cut: int) -> None:
    folder = tmp_path_factory.mktemp("cal")
    good = folder / "good.json"
    if not good.exists():
        hfp("calibration JSON", "calibrate", str(small_record_path), "--out", str(good))
    for content in (json.dumps(doc), good.read_text()[:cut]):
        path = _write(tmp_path_factory, "cal.json", content)
        hfp("calibration JSON", "estimate", "--calibration", str(path), "--scenario", "fake-reviews", "--profile",
            "budget-laptop", *SPEC)


# --- numeric options -----------------------------------------------------------------------------------------------

number_text = st.one_of(
    st.integers().map(str), st.floats().map(repr), st.sampled_from(
        ["0", "-1", "1", "nan", "inf", "-inf", "1e308", "1e-320", "9" * 30, "-" + "9" * 30, "0x10", "1_000", "",
         " 3", "2.5", "1e3"]),
)
ESTIMATE_OPTIONS = ["--params", "--active-params", "--experts", "--experts-used", "--weights-bytes", "--layers",
                    "--kv-heads", "--head-dim", "--price-kwh", "--utilisation", "--max-parallel", "--seed"]


@fuzz
@given(opts=st.dictionaries(st.sampled_from(ESTIMATE_OPTIONS), number_text, min_size=1, max_size=5))
@example(opts={"--price-kwh": "nan"})
@example(opts={"--params": "1e308", "--quant": "Q4_K_M"})
@example(opts={"--seed": "9" * 30})
@example(opts={"--seed": "-1"})  # found: numpy refuses a negative seed (ValueError deep in the Monte Carlo)
def test_estimate_numeric_options(opts: dict[str, str]) -> None:
    args = [a for k, v in opts.items() for a in (k, v)]
    base = dict(zip(SPEC[::2], SPEC[1::2]))
    base.update(opts)
    spec_args = [a for k, v in base.items() for a in (k, v)]
    hfp("numeric options", "estimate", *args, "--scenario", "fake-reviews", "--profile", "budget-laptop")
    hfp("numeric options", "estimate", *spec_args, "--scenario", "customer-support", "--profile", "rtx-3060-desktop")


@fuzz
@given(ctx=number_text, parallel=number_text, ngl=number_text, context=number_text)
def test_inspect_and_frontier_numeric_options(ctx: str, parallel: str, ngl: str, context: str) -> None:
    hfp("numeric options", "inspect", "--ctx", ctx, "--parallel", parallel, "--gpu-layers", ngl, "--json")
    hfp("numeric options", "frontier", "--context", context, "--profile", "budget-laptop", "--quant", "Q4_K_M")


RUN_OPTIONS = ["--repetitions", "--threads", "--batch-size", "--ubatch-size", "--seed", "--idle-seconds", "--tdp",
               "--output-tokens"]


@fuzz
@given(opts=st.dictionaries(st.sampled_from(RUN_OPTIONS), number_text, max_size=4), extra=st.integers(0, 10**12))
@example(opts={"--idle-seconds": "nan"}, extra=0)
@example(opts={"--tdp": "inf"}, extra=0)
def test_run_numeric_options_are_checked_before_loading(default_model: models.ModelFile, tmp_path_factory:
                                                        pytest.TempPathFactory, opts: dict[str, str],
                                                        extra: int) -> None:
    # the prompt is longer than the trained context, so every case ends before llama.cpp loads anything
    prompt = str(default_model.n_ctx_train + 1 + extra)
    args = [a for k, v in opts.items() for a in (k, v)]
    record = tmp_path_factory.mktemp("run") / "r.json"
    result = hfp("numeric options", "run", "-p", prompt, *args, "--parallel", "1", "--record", str(record))
    assert result.exit_code == 2 and not record.exists()


def test_record_with_a_short_per_layer_list_is_refused(small_record_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    # found by the long run: a record whose model.n_kv_heads lost an entry gave an IndexError in the KV formula
    record = json.loads(small_record_path.read_text())
    del record["model"]["n_kv_heads"][0]
    path = _write(tmp_path_factory, "record.json", json.dumps(record))
    result = hfp("run record JSON", "calibrate", str(path))
    assert result.exit_code == 2 and "n_kv_heads has" in result.stderr
