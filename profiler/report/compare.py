"""Comparing run records side by side: the same model measured on other machines or with other settings.

Owns the compatibility check (same model file by SHA-256, same record schema version; anything else is refused
with one line), the alignment of workload points by (prompt tokens, output tokens, parallel), ratios of means
against the first record, the settings that differ, the one grid every output renders, the terminal table, and
writing ``compare.html``/``compare.md`` through the templates (``templates/compare.*.j2``). It must not measure
or predict.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from profiler.errors import RecordError
from profiler.files import write_atomic
from profiler.record import PointResult, RunRecord, now_iso
from profiler.report import fmt, plots, templating
from profiler.report.view import Table
from profiler.schema.units import MiB

# (summary field, label, scale to the unit in the label)
METRICS: tuple[tuple[str, str, float], ...] = (
    ("decode_tok_s_aggregate", "decode tok/s, all sequences", 1.0),
    ("decode_tok_s_per_seq", "decode tok/s per sequence", 1.0),
    ("prefill_tok_s", "prefill tok/s", 1.0),
    ("ttft_s", "time to first token (ms)", 1e3),
    ("itl_p50_s", "inter-token p50 (ms)", 1e3),
    ("itl_p95_s", "inter-token p95 (ms)", 1e3),
    ("peak_rss_bytes", "peak RSS (MiB)", 1 / MiB),
    ("peak_vram_bytes", "peak VRAM (MiB)", 1 / MiB),
    ("j_per_token", "J per generated token", 1.0),
)
RATIO_NOTE = ("Ratios are each run's mean divided by the first run's ({first}). Above 1 means more tokens/s "
              "(faster) for throughput, and more time, memory or energy for the other metrics.")
PointKey = tuple[int, int, int]


class Value(BaseModel):
    """One run's figure for a (point, metric) row, and its ratio to the first run's."""

    mean: float | None
    stddev: float | None
    text: str
    ratio: float | None = None


class Row(BaseModel):
    """One metric at one workload point, across every run."""

    point: str
    prompt_tokens: int
    output_tokens: int
    parallel: int
    metric: str
    metric_label: str
    values: list[Value]


class RunInfo(BaseModel):
    """One compared run: its label in tables (A, B, …), where and when it was measured, what differs."""

    label: str
    id: str
    hostname: str
    hardware: str
    created_at: str
    complete: bool
    energy_sources: list[str]
    differences: str


class Comparison(BaseModel):
    """Run records of one model side by side; ``compare.json`` is this model as JSON."""

    generated_at: str
    model: str
    model_sha256: str | None
    runs: list[RunInfo]
    rows: list[Row]
    ratio_note: str
    notes: list[str] = []


class ComparePaths(BaseModel):
    """Where a rendered comparison's files are."""

    out_dir: Path
    html: Path
    markdown: Path
    summary: Path
    plots: list[Path] = []


def _model_id(r: RunRecord) -> str:
    m = r.model
    return f"{m.label} (sha256 {m.sha256[:12]}…)" if m.sha256 else f"{m.label} ({m.size_bytes:,} bytes)"


def check_compatible(records: Sequence[RunRecord], names: Sequence[str] | None = None) -> None:
    """Refuse, with one line, fewer than two records, other schema versions, or records of different models."""
    names = list(names) if names else [r.id for r in records]
    if len(records) < 2:
        raise RecordError("compare needs at least two run records")
    first, first_name = records[0], names[0]
    for r, name in zip(records[1:], names[1:]):
        if r.schema_version != first.schema_version:
            raise RecordError(f"{name}: run record schema version {r.schema_version}, but {first_name} has "
                              f"{first.schema_version}; re-run one of them with the same hfp")
        a, b = first.model, r.model
        if a.sha256 and b.sha256:
            same = a.sha256 == b.sha256
        else:
            same = (a.size_bytes, a.tensor_bytes, a.file_type, a.params) == (b.size_bytes, b.tensor_bytes,
                                                                             b.file_type, b.params)
        if not same:
            raise RecordError(f"{name} measured {_model_id(r)}, {first_name} measured {_model_id(first)}; "
                              "compare runs of the same model file")


def _key(p: PointResult) -> PointKey:
    return (p.point.prompt_tokens, p.point.output_tokens, p.point.parallel)


def _label(key: PointKey) -> str:
    return f"pp{key[0]}+tg{key[1]} x{key[2]}"


def _hardware(r: RunRecord) -> str:
    gpus = ", ".join(g.name for g in r.host.gpus)
    return r.host.cpu_model + (f" + {gpus}" if gpus and r.settings.n_gpu_layers else "")


def _differences(records: Sequence[RunRecord]) -> list[str]:
    dumps = [r.settings.model_dump() for r in records]
    keys = [k for k in dumps[0] if any(d.get(k) != dumps[0].get(k) for d in dumps[1:])]
    return [", ".join(f"{k}={d.get(k)}" for k in keys) for d in dumps]


def compare(records: Sequence[RunRecord], names: Sequence[str] | None = None) -> Comparison:
    """Align the records' workload points and compute every metric's ratio to the first record."""
    check_compatible(records, names)
    labels = list(string.ascii_uppercase[: len(records)]) if len(records) <= 26 else [
        f"R{i + 1}" for i in range(len(records))]
    by_key = [{_key(p): p for p in r.points} for r in records]
    keys = sorted(set().union(*by_key))
    rows: list[Row] = []
    for key in keys:
        for field, label, scale in METRICS:
            values = []
            for points in by_key:
                p = points.get(key)
                s = p.summary.get(field) if p else None
                values.append(Value(mean=s.mean * scale if s and s.mean is not None else None,
                                    stddev=s.stddev * scale if s and s.stddev is not None else None,
                                    text=fmt.stat(s, scale) if p else "not measured"))
            if all(v.mean is None for v in values):
                continue
            ref = values[0].mean
            for v in values[1:]:
                v.ratio = v.mean / ref if v.mean is not None and ref else None
            rows.append(Row(point=_label(key), prompt_tokens=key[0], output_tokens=key[1], parallel=key[2],
                            metric=field, metric_label=label, values=values))
    diffs = _differences(records)
    runs = [RunInfo(label=lab, id=r.id, hostname=r.host.hostname, hardware=_hardware(r), created_at=r.created_at,
                    complete=r.complete, energy_sources=sorted({p.energy_source for p in r.points if p.energy_source}),
                    differences=d) for lab, r, d in zip(labels, records, diffs)]
    return Comparison(generated_at=now_iso(), model=records[0].model.label, model_sha256=records[0].model.sha256,
                      runs=runs, rows=rows, ratio_note=RATIO_NOTE.format(first=labels[0]),
                      notes=_notes(records, runs, by_key, keys))


def _notes(records: Sequence[RunRecord], runs: Sequence[RunInfo], by_key: list[dict[PointKey, PointResult]],
           keys: list[PointKey]) -> list[str]:
    notes = []
    common = [k for k in keys if all(k in points for points in by_key)]
    if not common:
        notes.append("No workload point was measured in every run: no ratio can be formed; re-run with a shared "
                      "--prompt-tokens, --output-tokens and --parallel level.")
    for k in keys:
        missing = [run.label for run, points in zip(runs, by_key) if k not in points]
        if missing and common:
            notes.append(f"{_label(k)} was not measured in {', '.join(missing)}.")
    for run in runs:
        if not run.complete:
            notes.append(f"{run.label} ({run.id}) is an incomplete run.")
    if len({tuple(run.energy_sources) for run in runs}) > 1:
        notes.append("Energy sources differ (" + "; ".join(f"{run.label}: {', '.join(run.energy_sources) or 'none'}"
                                                           for run in runs) + "): J/token ratios mix them.")
    if len({r.host.hostname for r in records}) == 1 and not any(run.differences for run in runs):
        notes.append("Same host and identical settings: differences are run-to-run noise.")
    return notes


def load(paths: Sequence[Path | str]) -> list[RunRecord]:
    """Read run records (each refused with one line if unreadable or of another schema version)."""
    return [RunRecord.load(p) for p in paths]


def grid(c: Comparison, point_header: str = "workload point") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the aligned table: point, metric, then each run's value and (after the first) its
    ratio to the first run. The terminal, HTML and Markdown outputs all render this one grid."""
    first = c.runs[0].label
    head = [point_header, "metric"] + [h for i, r in enumerate(c.runs)
                                       for h in ((r.label,) if i == 0 else (r.label, f"{r.label}/{first}"))]
    body = []
    for row in c.rows:
        cells = [row.point, row.metric_label]
        for i, v in enumerate(row.values):
            cells.append(v.text)
            if i:
                cells.append(fmt.ratio(v.ratio))
        body.append(cells)
    return head, body


def text_table(c: Comparison) -> str:
    """The comparison as aligned plain text for the terminal: runs, then one row per (point, metric)."""
    lines = [f"model: {c.model}" + (f" (sha256 {c.model_sha256[:12]}…)" if c.model_sha256 else "")]
    for r in c.runs:
        extra = f"; {r.differences}" if r.differences else ""
        lines.append(f"  {r.label}: {r.id} on {r.hostname} ({r.hardware}){extra}")
    head, body = grid(c, "point")
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines += ["", line(head), "  ".join("-" * w for w in widths)]
    previous = None
    for cells in body:
        if previous is not None and cells[0] != previous:
            lines.append("")
        previous = cells[0]
        lines.append(line(cells))
    lines += ["", c.ratio_note] + [f"note: {n}" for n in c.notes]
    return "\n".join(lines)


def render_comparison(records: Sequence[RunRecord], out_dir: Path | str,
                      comparison: Comparison | None = None) -> ComparePaths:
    """Write ``compare.html`` (self-contained), ``compare.md`` with ``plots/*.png`` and ``compare.json``."""
    c = comparison or compare(records)
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plot = plots.compare_throughput(records, [f"{r.label}: {r.hostname}" + (f" ({r.differences})" if r.differences
                                                                             else "") for r in c.runs])
    plot_list = [plot] if plot is not None else []
    plot_paths = []
    for p in plot_list:
        path = out / "plots" / f"{p.name}.png"
        write_atomic(path, p.png)
        plot_paths.append(path)
    head, body = grid(c)
    context = {
        "c": c, "plots": plot_list,
        "runs": Table(["", "record", "host", "CPU / GPU", "measured at", "settings that differ"],
                      [[r.label, r.id, r.hostname, r.hardware, r.created_at, r.differences or "—"] for r in c.runs],
                      source="measured: run records"),
        "grid": Table(head, body, numeric=tuple(range(2, len(head))),
                      source="measured: mean ± stddev over repetitions; ratios of means"),
        "sections": [("runs", "Runs compared"), ("table", "Aligned workload points"), ("plots", "Throughput")]
        + ([("notes", "Notes")] if c.notes else []),
    }
    paths = ComparePaths(out_dir=out, html=out / "compare.html", markdown=out / "compare.md",
                         summary=out / "compare.json", plots=plot_paths)
    write_atomic(paths.html, templating.render("compare.html.j2", **context))
    write_atomic(paths.markdown, templating.render("compare.md.j2", **context))
    write_atomic(paths.summary, c.model_dump_json(indent=1))
    return paths


def ratio_of(c: Comparison, point: PointKey, metric: str, run: int = 1) -> float | None:
    """The ratio of ``run``'s mean to the first run's for one point and metric (None when not formed)."""
    for row in c.rows:
        if (row.prompt_tokens, row.output_tokens, row.parallel) == point and row.metric == metric:
            v = row.values[run].ratio
            return None if v is None or math.isnan(v) else v
    return None
