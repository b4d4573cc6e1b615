"""The Markdown writer: ``report.md`` (GitHub-flavoured tables, figures linked as ``plots/*.png`` beside it).

Owns the Markdown layout of the report and of the comparison, in the same section order as the HTML. Table
cells are escaped (pipes, newlines). It must not compute figures: it lays out ``ReportData`` and ``Comparison``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from profiler.report import fmt
from profiler.report.render import HEADLINE_INTRO

if TYPE_CHECKING:
    from profiler.report.compare import Comparison
    from profiler.report.render import ReportData

VERDICT_MARKS = {"feasible": "OK", "needs_devices": "xN", "does_not_fit": "--", "too_slow": "!!"}


def cell(value: object) -> str:
    """A value made safe for a Markdown table cell."""
    text = "—" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """A GitHub-flavoured Markdown table (``numeric`` columns right-aligned)."""
    align = ["---:" if i in numeric else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def source(text: str) -> str:
    """An italic source line."""
    return f"\n*source: `{text}`*\n"


def figure(data: ReportData, name: str) -> str:
    """A linked figure with its source label, or nothing when the report has no such figure."""
    f = data.figure(name)
    if f is None:
        return ""
    return f"![{f.alt}]({f.file})\n\n*{f.title}. source: `{f.source}`*\n\n"


def _matrix(data: ReportData) -> str:
    heads = ["hardware tier"] + [
        f"{s.title} ({fmt.plural(s.items, s.item_unit)}, {fmt.duration(s.deadline_hours * 3600)})"
        for s in data.scenarios]
    rows = []
    for p in data.profiles:
        row: list[object] = [f"{p.name} ({fmt.money(p.price_usd)})"]
        for s in data.scenarios:
            c = data.cell(s.name, p.key)
            if c is None:
                row.append("—")
                continue
            wall = f"**{fmt.duration(c.wall_time_s)}** " if c.wall_time_s is not None else ""
            row.append(f"{wall}`{VERDICT_MARKS.get(c.verdict_kind, '?')}` {c.verdict}")
        rows.append(row)
    sources = sorted({src for x in data.estimates for src in (x.decode_source, x.prefill_source) if src})
    return ("Campaign wall time on one device of each tier and the verdict against the deadline "
            "(`OK` one device is enough, `xN` needs several devices, `--` does not fit, `!!` too slow for the "
            "latency limit). Bands and configurations are in `summary.json`.\n\n"
            + table(heads, rows) + source("; ".join(sources) or "predicted"))


def _measured(data: ReportData) -> str:
    h, m, r = data.host, data.model, data.record
    gpus = "; ".join(f"{g.name} ({fmt.gib(g.vram_total_bytes)})" for g in h.gpus) or "none detected"
    pairs: list[tuple[str, object]] = [
        ("CPU", f"{h.cpu_model}, {h.physical_cores} cores / {h.logical_cores} threads"),
        ("RAM", f"{fmt.gib(h.ram_total_bytes)} total, {fmt.gib(h.ram_available_bytes)} available at start"),
        ("GPU", gpus), ("OS / Python", f"{h.os} / Python {h.python}"),
        ("memory bandwidth", f"{fmt.sig(h.memory_bandwidth_gbps)} GB/s ({h.memory_bandwidth_source})"),
        ("CPU FP32 GEMM", f"{fmt.sig(h.cpu_gflops)} GFLOP/s ({h.cpu_gflops_source})"),
        ("llama.cpp", f"llama-cpp-python {r.llama_cpp_version or 'unknown'}"),
        ("model", f"{m.label}, {fmt.params(m.params)} parameters, {m.architecture}, {fmt.mib(m.size_bytes)}"),
        ("model file", f"`{m.path}`"), ("sha256", m.sha256 or "not computed"),
        ("record", f"{r.id} (measured {r.created_at}, {'complete' if r.complete else 'INCOMPLETE'})"),
    ]
    pairs += [(f"setting `{k}`", v) for k, v in data.settings.model_dump().items()]
    return table(["", "value"], pairs) + source("measured: this host, as recorded in the run record")


def _points(data: ReportData) -> tuple[str, str, str, str]:
    p = data.points
    throughput = table(
        ["workload point", "repetitions", "prefill tok/s", "decode tok/s per sequence", "decode tok/s, all sequences"],
        [(x.label, x.repetitions, fmt.stat(x.summary.get("prefill_tok_s")),
          fmt.stat(x.summary.get("decode_tok_s_per_seq")), fmt.stat(x.summary.get("decode_tok_s_aggregate")))
         for x in p], numeric=(1, 2, 3, 4)) + source("measured: mean ± sample stddev over repetitions")
    latency = table(
        ["workload point", "TTFT (ms)", "inter-token p50 (ms)", "inter-token p95 (ms)", "end to end (s)"],
        [(x.label, fmt.stat(x.summary.get("ttft_s"), 1e3), fmt.stat(x.summary.get("itl_p50_s"), 1e3),
          fmt.stat(x.summary.get("itl_p95_s"), 1e3), fmt.stat(x.summary.get("e2e_s"))) for x in p],
        numeric=(1, 2, 3, 4)) + source("measured: per-repetition percentiles, then mean ± stddev")
    memory = table(
        ["workload point", "predicted RAM", "predicted VRAM", "measured peak RSS (MiB)", "RSS before loading",
         "measured peak VRAM (MiB)"],
        [(x.label, fmt.mib(x.predicted_ram_bytes), fmt.mib(x.predicted_vram_bytes),
          fmt.stat(x.summary.get("peak_rss_bytes"), 1 / fmt.MiB), fmt.mib(x.rss_baseline_bytes),
          fmt.stat(x.summary.get("peak_vram_bytes"), 1 / fmt.MiB)) for x in p], numeric=(1, 2, 3, 4, 5)
    ) + source(f"{p[0].memory_source if p else 'predicted'} beside measured: process RSS and NVML VRAM peaks")
    sources = sorted({x.energy_source for x in p if x.energy_source})
    energy = table(
        ["workload point", "energy per repetition (J)", "mean power (W)", "J per generated token", "source"],
        [(x.label, fmt.stat(x.energy_j), fmt.stat(x.mean_power_w), fmt.stat(x.summary.get("j_per_token")),
          x.energy_source) for x in p], numeric=(1, 2, 3)) + source(", ".join(sources) or "no energy figure")
    return throughput, latency, memory, energy


def _band(b: object) -> str:
    low, high = getattr(b, "low", None), getattr(b, "high", None)
    return f"{fmt.sig(low)} – {fmt.sig(high)}" if low is not None and high is not None else "—"


def _tiers(data: ReportData) -> str:
    rows = [(x.profile_name, x.configuration, fmt.sig(x.decode_tok_s), _band(x.decode_tok_s_band),
             fmt.sig(x.batched_decode_tok_s), fmt.sig(x.prefill_tok_s), x.decode_source)
            for x in sorted(data.tiers, key=lambda x: -(x.decode_tok_s or 0.0))]
    intro = (f"Rates on the workload of scenario **{data.tier_scenario}** (one sequence at its mean context; all "
             "sequences at the parallel count the estimate chose).\n\n") if data.tier_scenario else ""
    return intro + figure(data, "tiers") + table(
        ["hardware tier", "configuration", "decode tok/s", "band", "decode tok/s, all sequences", "prefill tok/s",
         "source"], rows, numeric=(2, 3, 4, 5)) + source("predicted: roofline, efficiency source per row")


def _frontier(data: ReportData) -> str:
    if not data.frontier:
        return "No frontier was computed.\n"
    quants = list(dict.fromkeys(p.quant for p in data.frontier))
    mid_q = quants[len(quants) // 2]
    rows = []
    for pr in dict.fromkeys(p.profile for p in data.frontier):
        pts = {p.quant: p for p in data.frontier if p.profile == pr}
        mid = pts.get(mid_q)
        rows.append([next(iter(pts.values())).profile_name]
                    + [fmt.params(pts[q].max_params) if q in pts else "—" for q in quants]
                    + [fmt.sig(mid.decode_tok_s) if mid else "—"])
    sources = sorted({p.decode_source for p in data.frontier if p.decode_source})
    return (f"Largest dense model each tier holds at a context of {data.frontier[0].n_ctx:,} tokens, one "
            "sequence, per quantization, and its predicted decode rate.\n\n" + figure(data, "frontier")
            + table(["hardware tier"] + [f"largest at {q}" for q in quants] + [f"decode tok/s at {mid_q}"], rows,
                    numeric=tuple(range(1, len(quants) + 2)))
            + source("; ".join(sources) + f"; sizes: {data.frontier[0].size_source}"))


def _safety(data: ReportData) -> str:
    from profiler.report.html import SAFETY_HEADERS, safety_rows

    sf = data.safety
    assert sf is not None
    intro = (f"Refusal of harmful-category probes and over-refusal of benign controls per weight level (KV cache "
             f"{sf.kv_type}), against the reference {sf.reference}; `hfp safety` record {sf.record_id}, classifier "
             f"{sf.classifier}, {sf.n_harmful} harmful probes + {sf.n_control} controls ({sf.probe_set}), on "
             f"{', '.join(sf.models)}.\n\n")
    warnings = "".join(f"- {w}\n" for w in sf.warnings)
    return (intro + figure(data, "refusal") + table(SAFETY_HEADERS, safety_rows(data), numeric=(1, 3, 5))
            + source(f"{sf.rows[0].source}: verdicts of the {sf.classifier} classifier")
            + ("\n" + warnings if warnings else ""))


def _method(data: ReportData) -> str:
    out = ["### Method\n"] + [f"{m}\n" for m in data.method]
    c = data.calibration
    if c is not None:
        out.append("### Local calibration\n")
        out.append(table(["", "value"], [
            ("fixed cost per step t0", f"{fmt.sig(c.t0_s * 1e3)} ms"),
            ("effective bandwidth", f"{fmt.sig(c.bandwidth_eff_gbps)} GB/s (eta_bw {fmt.sig(c.eta_bw)})"),
            ("effective compute", f"{fmt.sig(c.flops_eff_tflops)} TFLOP/s (eta_f {fmt.sig(c.eta_f)})"),
            ("fit error (RMS of log residuals)", f"{c.rel_rms:.1%}"), ("reference peaks", c.reference_source),
        ] + [("note", n) for n in c.notes]) + source(c.source))
    out.append("### Assumptions\n")
    out.append(table(["assumption", "value", "meaning and source"],
                     [(a.name, a.value, a.description) for a in data.assumptions]))
    out.append("\n### Hardware tiers\n")
    out.append(table(["tier", "price", "power under load (W)", "idle (W)", "sources"],
                     [(p.name, fmt.money(p.price_usd), fmt.sig(p.load_w), fmt.sig(p.idle_w), "; ".join(p.sources))
                      for p in data.profiles], numeric=(1, 2, 3)))
    out.append("\n### Scenarios\n")
    out.append(table(["scenario", "mode", "items", "deadline", "not covered"],
                     [(s.title, s.mode, fmt.plural(s.items, s.item_unit), fmt.duration(s.deadline_hours * 3600),
                       "; ".join(s.out_of_scope) or "—") for s in data.scenarios]))
    out.append("\n### Sources\n")
    out += [f"{i}. {s}" for i, s in enumerate(data.sources, start=1)]
    return "\n".join(out) + "\n"


def report_markdown(data: ReportData) -> str:
    """The report as Markdown, figures linked relative to the file."""
    r = data.record
    throughput, latency, memory, energy = _points(data)
    parts = [
        f"# {data.title}\n",
        f"Run `{r.id}`, measured {r.created_at} on {data.host.hostname}; report generated {data.generated_at} "
        f"by hfp {data.hfp_version}.\n",
    ]
    if not r.complete:
        parts.append(f"> **Incomplete run:** {r.interrupted or 'stopped before every point finished'}.\n")
    parts += ["## Answer per scenario\n", HEADLINE_INTRO + "\n"]
    parts += [f"**{h.title}.** {h.text}\n" for h in data.headlines]
    parts += ["## Feasibility matrix: scenario x hardware tier\n", _matrix(data)]
    parts += ["## Host, model and settings measured\n", _measured(data)]
    parts += ["## Measured throughput vs parallel sequences\n", figure(data, "throughput"), throughput]
    parts += ["## Latency distribution\n", figure(data, "latency"), latency]
    parts += ["## Memory: predicted vs measured\n", figure(data, "memory"), memory]
    parts += ["## Energy\n", figure(data, "energy"), energy]
    parts += ["## Predicted decode rate per hardware tier\n", _tiers(data)]
    parts += ["## Capability frontier\n", _frontier(data)]
    if data.safety:
        parts += ["## Refusal under quantization\n", _safety(data)]
    parts += ["## Assumptions, method and sources\n", _method(data)]
    parts += ["## Limitations\n"] + [f"- {x}" for x in data.limitations]
    parts.append("\n---\n*Every figure is labelled measured:, estimated: or predicted:. The run used benign proxy "
                 "prompts; this report contains no model-generated text.*\n")
    return "\n".join(parts)


def compare_markdown(comparison: Comparison, plot_files: Sequence[tuple[str, str, str]]) -> str:
    """A comparison of run records as Markdown; ``plot_files`` are (file, title, source)."""
    c = comparison
    parts = [f"# Comparison: {c.model}\n", f"{len(c.runs)} run records, generated {c.generated_at}.\n",
             "## Runs compared\n",
             table(["", "record", "host", "CPU / GPU", "measured at", "settings that differ"],
                   [(r.label, r.id, r.hostname, r.hardware, r.created_at, r.differences or "—") for r in c.runs]),
             "## Aligned workload points\n", c.ratio_note + "\n", comparison_table(c),
             source("measured: mean ± stddev over repetitions; ratios of means")]
    for file, title, src in plot_files:
        parts.append(f"![{title}]({file})\n\n*{title}. source: `{src}`*\n")
    if c.notes:
        parts += ["## Notes\n"] + [f"- {n}" for n in c.notes]
    return "\n".join(parts) + "\n"


def comparison_table(c: Comparison) -> str:
    """The aligned rows of a comparison as a Markdown table."""
    from profiler.report.compare import grid  # compare imports this module

    head, rows = grid(c)
    return table(head, rows, numeric=tuple(range(2, len(head))))
