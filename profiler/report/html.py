"""The HTML writer: one self-contained file (inline CSS, figures as base64 ``data:`` URIs, no script, no network).

Owns markup and print styling of the report and of the comparison. Every value is escaped; the only links are
plain anchors inside the page. Feasibility verdicts are told by text and a mark as well as by colour, so the
page reads in greyscale and when printed to PDF. It must not compute figures: it lays out ``ReportData`` and
``Comparison`` as given.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from profiler.report import fmt
from profiler.report.plots import Plot
from profiler.report.render import HEADLINE_INTRO

if TYPE_CHECKING:
    from profiler.report.compare import Comparison
    from profiler.report.render import ReportData

CSS = """
:root { --ink: #1a1a1a; --muted: #555; --rule: #c8c8c8; --ok: #d4edda; --warn: #fff0c2; --bad: #ececec;
        --slow: #f8d7da; }
* { box-sizing: border-box; }
body { font: 15px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: var(--ink); margin: 0;
       background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
p, li { max-width: 78em; }
.sub { color: var(--muted); margin: 0 0 12px; }
.banner { border: 2px solid #a33; background: var(--slow); padding: 8px 12px; margin: 12px 0; }
nav ol { columns: 2; margin: 8px 0; padding-left: 1.4em; font-size: 0.92em; }
nav a, a { color: #0b4f8a; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 0.88em; }
th, td { border: 1px solid var(--rule); padding: 4px 7px; vertical-align: top; text-align: left; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 15em; font-weight: normal; color: var(--muted); background: #fafafa; }
.caption, figcaption { color: var(--muted); font-size: 0.82em; margin: 2px 0 14px; }
.src { font-family: "DejaVu Sans Mono", monospace; font-size: 0.95em; }
figure { margin: 10px 0 18px; page-break-inside: avoid; break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); }
.headline { border-left: 5px solid var(--ink); padding: 4px 12px; margin: 10px 0; page-break-inside: avoid; }
.headline b { display: block; }
table.matrix td { min-width: 7.2em; font-size: 0.92em; }
table.matrix th.row { white-space: normal; min-width: 14em; }
.v-feasible { background: var(--ok); }
.v-needs_devices { background: var(--warn); }
.v-does_not_fit { background: repeating-linear-gradient(45deg, var(--bad), var(--bad) 6px, #fff 6px, #fff 9px); }
.v-too_slow { background: var(--slow); }
.mark { font-family: "DejaVu Sans Mono", monospace; font-weight: bold; }
.band { color: var(--muted); font-size: 0.85em; }
.legend span { display: inline-block; padding: 2px 8px; margin: 2px 6px 2px 0; border: 1px solid var(--rule); }
.wide { overflow-x: auto; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.9em; word-break: break-all; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.82em; border-top: 1px solid var(--rule);
         padding-top: 8px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  table { font-size: 8pt; max-width: 100%; }
  td, th { overflow-wrap: anywhere; }
  table.matrix { width: 100%; table-layout: fixed; font-size: 7pt; }
  table.matrix td, table.matrix th, table.matrix th.row { min-width: 0; padding: 2px 3px; }
  table.matrix thead th:first-child { width: 16%; }
  table.matrix, table.matrix tr { page-break-inside: auto; break-inside: auto; }
  table.matrix tr { page-break-inside: avoid; break-inside: avoid; }
  figure img { max-width: 100%; }
  nav { display: none; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table, .headline, figure { page-break-inside: avoid; break-inside: avoid; }
  .wide { overflow: visible; }
  .v-feasible, .v-needs_devices, .v-does_not_fit, .v-too_slow { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
}
"""


def e(value: object) -> str:
    """Escape any value for HTML text or attributes."""
    return escape("" if value is None else str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = (),
          cls: str = "") -> str:
    """A table; cells are escaped; columns listed in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{e(c)}</td>' if i in numeric else f"<td>{e(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cls_attr = f' class="{e(cls)}"' if cls else ""
    return (f'<div class="wide"><table{cls_attr}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column key/value table."""
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def caption(text: str) -> str:
    """A source line under a table."""
    return f'<p class="caption">source: <span class="src">{e(text)}</span></p>'


def figure(plot: Plot | None) -> str:
    """A figure with the PNG embedded as a ``data:`` URI and its source label as caption."""
    if plot is None:
        return '<p class="caption">(no data for this figure)</p>'
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(plot.alt)}" title="{e(plot.title)}">'
            f'<figcaption>{e(plot.title)}. source: <span class="src">{e(plot.source)}</span></figcaption></figure>')


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], banner: str = "",
         footer: str = "") -> str:
    """A complete HTML document: title, contents, sections ``(id, heading, body html)``, footer."""
    toc = "".join(f'<li><a href="#{e(i)}">{e(h)}</a></li>' for i, h, _ in sections)
    body = "".join(f'<section id="{e(i)}"><h2>{e(h)}</h2>{b}</section>' for i, h, b in sections)
    banner_html = f'<div class="banner">{e(banner)}</div>' if banner else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{e(title)}</h1><p class=\"sub\">{e(subtitle)}</p>{banner_html}"
        f"<nav><b>Contents</b><ol>{toc}</ol></nav>{body}"
        f"<footer>{e(footer)}</footer></main></body></html>\n"
    )


# --- the report ------------------------------------------------------------------------------------------------


def _plot(plots: Sequence[Plot], name: str) -> Plot | None:
    return next((p for p in plots if p.name == name), None)


def _headlines(data: ReportData) -> str:
    out = [f'<div class="headline"><b>{e(h.title)}</b>{e(h.text)}</div>' for h in data.headlines]
    return f"<p>{e(HEADLINE_INTRO)}</p>" + ("".join(out) or "<p>No scenario was estimated.</p>")


def _matrix(data: ReportData) -> str:
    head = "".join(f'<th>{e(s.title)}<br><span class="band">{e(fmt.plural(s.items, s.item_unit))}, deadline '
                   f'{e(fmt.duration(s.deadline_hours * 3600))}</span></th>' for s in data.scenarios)
    rows = []
    for p in data.profiles:
        cells = []
        for s in data.scenarios:
            c = data.cell(s.name, p.key)
            if c is None:
                cells.append("<td>—</td>")
                continue
            band = ""
            if c.wall_time_low_s is not None and c.wall_time_high_s is not None:
                band = f'<br><span class="band">{e(fmt.duration(c.wall_time_low_s))} – ' \
                       f'{e(fmt.duration(c.wall_time_high_s))}</span>'
            wall = f"<b>{e(fmt.duration(c.wall_time_s))}</b>{band}<br>" if c.wall_time_s is not None else ""
            mark = e(VERDICT_MARKS.get(c.verdict_kind, "?"))
            cells.append(f'<td class="v-{e(c.verdict_kind)}" title="{e(c.configuration)}: {e(c.reason)}">'
                         f'{wall}<span class="mark">{mark}</span> {e(c.verdict)}</td>')
        rows.append(f'<tr><th class="row">{e(p.name)}<br><span class="band">{e(p.tier)}, '
                    f'{e(fmt.money(p.price_usd))}</span></th>{"".join(cells)}</tr>')
    legend = ('<p class="legend"><span class="v-feasible"><span class="mark">OK</span> one device meets the '
              'deadline</span><span class="v-needs_devices"><span class="mark">xN</span> needs N devices</span>'
              '<span class="v-does_not_fit"><span class="mark">--</span> does not fit in memory</span>'
              '<span class="v-too_slow"><span class="mark">!!</span> replies slower than the latency limit</span></p>')
    sources = sorted({src for x in data.estimates for src in (x.decode_source, x.prefill_source) if src})
    return (f'<p>Campaign wall time on one device of each tier (bold; below it the {_level(data)} band), and the '
            f'verdict against the scenario\'s deadline. Hover a cell for the configuration and the reason.</p>'
            f'<div class="wide"><table class="matrix"><thead><tr><th>hardware tier</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{legend}'
            + caption("; ".join(sources) or "predicted"))


VERDICT_MARKS = {"feasible": "OK", "needs_devices": "xN", "does_not_fit": "--", "too_slow": "!!"}


def _level(data: ReportData) -> str:
    band = next((x.wall_time_s_band for x in data.estimates if x.wall_time_s_band), None)
    return f"{band.level:.0%}" if band else "uncertainty"


def _host(data: ReportData) -> str:
    h, m, s, r = data.host, data.model, data.settings, data.record
    gpus = "; ".join(f"{g.name} ({fmt.gib(g.vram_total_bytes)})" for g in h.gpus) or "none detected"
    host = kv_table([
        ("CPU", f"{h.cpu_model}, {h.physical_cores} cores / {h.logical_cores} threads"),
        ("RAM", f"{fmt.gib(h.ram_total_bytes)} total, {fmt.gib(h.ram_available_bytes)} available at start"),
        ("GPU", gpus), ("OS / Python", f"{h.os} / Python {h.python}"), ("host name", h.hostname),
        ("memory bandwidth", f"{fmt.sig(h.memory_bandwidth_gbps)} GB/s ({h.memory_bandwidth_source})"),
        ("CPU FP32 GEMM", f"{fmt.sig(h.cpu_gflops)} GFLOP/s ({h.cpu_gflops_source})"),
        ("llama.cpp", f"llama-cpp-python {r.llama_cpp_version or 'unknown'}; GPU offload "
                      f"{'available' if h.backends.gpu_offload else 'not available'}"),
        ("llama.cpp system info", h.backends.system_info or "—"),
    ])
    model = kv_table([
        ("name", m.label), ("file", m.path), ("sha256", m.sha256 or "not computed"),
        ("architecture", m.architecture), ("parameters", f"{m.params:,} ({fmt.params(m.params)})"),
        ("file size / tensor bytes", f"{fmt.mib(m.size_bytes)} / {fmt.mib(m.tensor_bytes)}"),
        ("layers, embedding, heads (KV)",
         f"{m.n_layers}, {m.n_embd}, {m.n_heads} ({m.n_kv_heads[0] if m.n_kv_heads else '—'})"),
        ("vocabulary, training context", f"{m.n_vocab:,}, {m.n_ctx_train:,}"),
    ])
    settings = kv_table([(k, v) for k, v in s.model_dump().items()])
    run = kv_table([("record id", r.id), ("measured at", r.created_at), ("hfp", r.hfp_version),
                    ("complete", "yes" if r.complete else f"no ({r.interrupted or 'stopped early'})")]
                   + [("note", n) for n in r.notes])
    return (f"<h3>Host</h3>{host}<h3>Model</h3>{model}<h3>Settings (every llama.cpp and harness setting)</h3>"
            f"{settings}<h3>Run</h3>{run}" + caption("measured: this host, as recorded in the run record"))


def _throughput(data: ReportData, plots: Sequence[Plot]) -> str:
    rows = [(p.label, p.repetitions, fmt.stat(p.summary.get("prefill_tok_s")),
             fmt.stat(p.summary.get("decode_tok_s_per_seq")), fmt.stat(p.summary.get("decode_tok_s_aggregate")))
            for p in data.points]
    return figure(_plot(plots, "throughput")) + table(
        ["workload point", "repetitions", "prefill tok/s", "decode tok/s per sequence", "decode tok/s, all sequences"],
        rows, numeric=(1, 2, 3, 4)) + caption("measured: mean ± sample stddev over repetitions")


def _latency(data: ReportData, plots: Sequence[Plot]) -> str:
    rows = [(p.label, fmt.stat(p.summary.get("ttft_s"), 1e3), fmt.stat(p.summary.get("itl_p50_s"), 1e3),
             fmt.stat(p.summary.get("itl_p95_s"), 1e3), fmt.stat(p.summary.get("e2e_s")))
            for p in data.points]
    return figure(_plot(plots, "latency")) + table(
        ["workload point", "time to first token (ms)", "inter-token p50 (ms)", "inter-token p95 (ms)",
         "end to end (s)"], rows, numeric=(1, 2, 3, 4)) + caption(
        "measured: per-repetition percentiles of the gaps between decode steps, then mean ± stddev")


def _memory(data: ReportData, plots: Sequence[Plot]) -> str:
    rows = [(p.label, fmt.mib(p.predicted_ram_bytes), fmt.mib(p.predicted_vram_bytes), p.predicted_placement,
             fmt.stat(p.summary.get("peak_rss_bytes"), 1 / fmt.MiB) + " MiB", fmt.mib(p.rss_baseline_bytes),
             fmt.stat(p.summary.get("peak_vram_bytes"), 1 / fmt.MiB)) for p in data.points]
    src = data.points[0].memory_source if data.points else "predicted:gguf-metadata"
    return figure(_plot(plots, "memory")) + table(
        ["workload point", "predicted RAM", "predicted VRAM", "placement", "measured peak RSS",
         "RSS before loading", "measured peak VRAM (MiB)"], rows, numeric=(1, 2, 4, 5, 6)) + caption(
        f"{src} (planner) beside measured: process RSS (psutil) and VRAM (NVML) peaks")


def _energy(data: ReportData, plots: Sequence[Plot]) -> str:
    rows = [(p.label, fmt.stat(p.energy_j), fmt.stat(p.mean_power_w), fmt.stat(p.summary.get("j_per_token")),
             p.energy_source or "—") for p in data.points]
    sources = sorted({p.energy_source for p in data.points if p.energy_source})
    return figure(_plot(plots, "energy")) + table(
        ["workload point", "energy per repetition (J)", "mean power (W)", "J per generated token", "energy source"],
        rows, numeric=(1, 2, 3)) + caption(", ".join(sources) or "no energy figure")


def _band(b: object) -> str:
    low, high = getattr(b, "low", None), getattr(b, "high", None)
    return f"{fmt.sig(low)} – {fmt.sig(high)}" if low is not None and high is not None else "—"


def _tiers(data: ReportData, plots: Sequence[Plot]) -> str:
    rows = [(x.profile_name, x.configuration, fmt.sig(x.decode_tok_s), _band(x.decode_tok_s_band),
             fmt.sig(x.batched_decode_tok_s), fmt.sig(x.prefill_tok_s), x.decode_source or "—")
            for x in sorted(data.tiers, key=lambda x: -(x.decode_tok_s or 0.0))]
    intro = (f"<p>Decode and prefill rates each tier is predicted to reach on the workload of scenario "
             f"<b>{e(data.tier_scenario)}</b> (single stream at its mean context, and all sequences together at "
             f"the parallel count the estimate chose).</p>") if data.tier_scenario else ""
    return intro + figure(_plot(plots, "tiers")) + table(
        ["hardware tier", "configuration", "decode tok/s", "band", "decode tok/s, all sequences", "prefill tok/s",
         "source"], rows, numeric=(2, 3, 4, 5)) + caption(
        "predicted: roofline with the efficiency source named per row")


def _frontier(data: ReportData, plots: Sequence[Plot]) -> str:
    if not data.frontier:
        return "<p>No frontier was computed.</p>"
    quants = list(dict.fromkeys(p.quant for p in data.frontier))
    profiles = list(dict.fromkeys(p.profile for p in data.frontier))
    rows = []
    for pr in profiles:
        pts = {p.quant: p for p in data.frontier if p.profile == pr}
        first = next(iter(pts.values()))
        mid = pts.get(quants[len(quants) // 2])
        rows.append([first.profile_name] + [fmt.params(pts[q].max_params) if q in pts else "—" for q in quants]
                    + [fmt.params(mid.max_params_full_offload) if mid else "—",
                       fmt.sig(mid.decode_tok_s) if mid else "—", (mid.configuration or "—") if mid else "—"])
    mid_q = quants[len(quants) // 2]
    head = (["hardware tier"] + [f"largest at {q}" for q in quants]
            + [f"fully on GPU at {mid_q}", f"decode tok/s at {mid_q}", f"configuration at {mid_q}"])
    sources = sorted({p.decode_source for p in data.frontier if p.decode_source})
    return ("<p>The largest dense model (parameters) each tier holds in memory at a context of "
            f"{data.frontier[0].n_ctx:,} tokens and one sequence, per quantization, and how fast it would decode. "
            "Model sizes follow a reference family of published dense shapes.</p>"
            + figure(_plot(plots, "frontier"))
            + table(head, rows, numeric=tuple(range(1, len(quants) + 3)))
            + caption("; ".join(sources) + f"; sizes: {data.frontier[0].size_source}"))


def _rate(r: object) -> str:
    text = getattr(r, "text", None)
    return text() if callable(text) else "—"


def safety_rows(data: ReportData) -> list[list[object]]:
    """The refusal-retention table: one row per weight level."""
    assert data.safety is not None
    return [[f"{r.level}{' (reference)' if r.is_reference else ''}", f"{r.bits_per_weight:.2f}", _rate(r.refusal),
             "—" if r.drop_pp is None else f"{r.drop_pp:+.1f}", _rate(r.flip) if r.flip else "—",
             "—" if r.mcnemar_p is None else f"{r.mcnemar_p:.2f}", _rate(r.over_refusal)]
            for r in data.safety.rows]


SAFETY_HEADERS = ["weight level", "bits/weight", "refusal of harmful probes [95% CI]", "change (pp)",
                  "flip rate [95% CI]", "McNemar p", "over-refusal of controls [95% CI]"]


def _safety(data: ReportData, plots: Sequence[Plot]) -> str:
    sf = data.safety
    assert sf is not None
    intro = (f"<p>How often replies refuse harmful-category probes, and refuse benign look-alike controls, at each "
             f"weight quantization level (KV cache {e(sf.kv_type)}), against the highest-precision reference "
             f"{e(sf.reference)}. Measured by <code>hfp safety</code> (record {e(sf.record_id)}, classifier "
             f"{e(sf.classifier)}, probe set {e(sf.probe_set)}: {sf.n_harmful} harmful, {sf.n_control} controls) "
             f"on {e(', '.join(sf.models))}. The flip rate is the share of probes refused at the reference and "
             "complied with at the level. Only verdicts are used here.</p>")
    warnings = "".join(f"<li>{e(w)}</li>" for w in sf.warnings)
    return (intro + figure(_plot(plots, "refusal")) + table(SAFETY_HEADERS, safety_rows(data), numeric=(1, 3, 5))
            + caption(f"{sf.rows[0].source}: verdicts of the {sf.classifier} classifier")
            + (f"<ul>{warnings}</ul>" if warnings else ""))


def _method(data: ReportData) -> str:
    out = ["<h3>Method</h3>"] + [f"<p>{e(m)}</p>" for m in data.method]
    c = data.calibration
    if c is not None:
        out.append("<h3>Local calibration</h3>" + kv_table([
            ("backend", c.backend), ("fixed cost per step t0", f"{fmt.sig(c.t0_s * 1e3)} ms"),
            ("effective bandwidth eta_bw·BW", f"{fmt.sig(c.bandwidth_eff_gbps)} GB/s (eta_bw {fmt.sig(c.eta_bw)})"),
            ("effective compute eta_f·F", f"{fmt.sig(c.flops_eff_tflops)} TFLOP/s (eta_f {fmt.sig(c.eta_f)})"),
            ("reference peaks", c.reference_source), ("fit error (RMS of log residuals)", f"{c.rel_rms:.1%}"),
            ("points", f"{c.n_decode} decode, {c.n_prefill} prefill"),
        ] + [("note", n) for n in c.notes]))
        out.append(table(["kind", "workload point", "measured (s)", "predicted (s)", "error"],
                         [(p.kind, f"pp{p.prompt_tokens}+tg{p.output_tokens} x{p.parallel}", fmt.sig(p.measured_s),
                           fmt.sig(p.predicted_s), f"{p.rel_error:+.1%}") for p in c.points], numeric=(2, 3, 4)))
        out.append(caption(f"{c.source}: fitted to this run's measurements"))
    out.append("<h3>Assumptions</h3>" + table(["assumption", "value", "meaning and source"],
                                               [(a.name, a.value, a.description) for a in data.assumptions]))
    out.append(caption("declared: profiler.feasibility.Assumptions defaults unless overridden"))
    out.append("<h3>Hardware tiers</h3>" + table(
        ["tier", "class", "price", "power under load (W)", "idle power (W)", "sources"],
        [(p.name, p.tier, fmt.money(p.price_usd), fmt.sig(p.load_w), fmt.sig(p.idle_w), "; ".join(p.sources))
         for p in data.profiles], numeric=(2, 3, 4)))
    out.append(caption("declared: hardware_profiles/*.yaml"))
    out.append("<h3>Scenarios</h3>" + table(
        ["scenario", "mode", "items", "deadline", "not covered (no text generation involved)"],
        [(s.title, s.mode, fmt.plural(s.items, s.item_unit), fmt.duration(s.deadline_hours * 3600),
          "; ".join(s.out_of_scope) or "—") for s in data.scenarios], numeric=(2,)))
    out.append(caption("declared: scenarios/*.yaml"))
    out.append("<h3>Sources</h3><ol>" + "".join(f"<li>{e(s)}</li>" for s in data.sources) + "</ol>")
    return "".join(out)


def _limitations(data: ReportData) -> str:
    return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in data.limitations) + "</ul>"


def report_html(data: ReportData, plots: Sequence[Plot]) -> str:
    """The report as one self-contained HTML document."""
    sections = [
        ("answer", "Answer per scenario", _headlines(data)),
        ("matrix", "Feasibility matrix: scenario x hardware tier", _matrix(data)),
        ("measured", "Host, model and settings measured", _host(data)),
        ("throughput", "Measured throughput vs parallel sequences", _throughput(data, plots)),
        ("latency", "Latency distribution", _latency(data, plots)),
        ("memory", "Memory: predicted vs measured", _memory(data, plots)),
        ("energy", "Energy", _energy(data, plots)),
        ("tiers", "Predicted decode rate per hardware tier", _tiers(data, plots)),
        ("frontier", "Capability frontier", _frontier(data, plots)),
        *([("safety", "Refusal under quantization", _safety(data, plots))] if data.safety else []),
        ("method", "Assumptions, method and sources", _method(data)),
        ("limitations", "Limitations", _limitations(data)),
    ]
    r = data.record
    subtitle = (f"Run {r.id}, measured {r.created_at} on {data.host.hostname}; "
                f"report generated {data.generated_at} by hfp {data.hfp_version}.")
    banner = "" if r.complete else f"Incomplete run: {r.interrupted or 'stopped before every point finished'}."
    footer = ("Every figure is labelled measured: (this host), estimated: (a model of a quantity this host could "
              "not measure) or predicted: (from declared specifications and the calibration). The run used benign "
              "proxy prompts; this report contains no model-generated text. Rebuild it with "
              f"`hfp report` from the run record {r.id}.json.")
    return page(data.title, subtitle, sections, banner, footer)


# --- the comparison --------------------------------------------------------------------------------------------


def compare_html(comparison: Comparison, plots: Sequence[Plot]) -> str:
    """A comparison of run records as one self-contained HTML document."""
    c = comparison
    runs = table(["", "record", "host", "CPU / GPU", "measured at", "settings that differ"],
                 [(r.label, r.id, r.hostname, r.hardware, r.created_at, r.differences or "—") for r in c.runs])
    from profiler.report.compare import grid  # compare imports this module

    head, rows = grid(c)
    numeric = tuple(range(2, len(head)))
    sections = [
        ("runs", "Runs compared", runs + caption("measured: run records")),
        ("table", "Aligned workload points", f"<p>{e(c.ratio_note)}</p>" + table(head, rows, numeric=numeric)
         + caption("measured: mean ± stddev over repetitions; ratios of means")),
        ("plots", "Throughput", "".join(figure(p) for p in plots) or "<p>No common data to plot.</p>"),
    ]
    if c.notes:
        sections.append(("notes", "Notes", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in c.notes) + "</ul>"))
    return page(f"Comparison: {c.model}", f"{len(c.runs)} run records, generated {c.generated_at}.", sections,
                footer="Every figure is measured: on the host named in its run record. No model-generated text.")
