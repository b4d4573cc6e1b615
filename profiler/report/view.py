"""What the templates lay out: the tables and the feasibility matrix of a report, as formatted text cells.

Owns which columns each table has, their headers, the number formatting of every cell (through ``fmt``) and
each table's source line, computed once from ``ReportData`` so that the HTML and the Markdown template show the
same cells. It must not compute figures (``data`` did) or know any markup (the templates do; they escape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from profiler.report import fmt
from profiler.report.data import VERDICT_MARK, ReportData, TrendSection
from profiler.report.ladder import LadderRate, LadderRow
from profiler.schema.units import MiB


@dataclass(frozen=True)
class Table:
    """A table of text cells: ``numeric`` columns are right-aligned; ``kv`` tables are key/value pairs."""

    headers: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()
    source: str | None = None
    kv: bool = False


@dataclass(frozen=True)
class Cell:
    """One matrix cell: wall time, band, verdict mark and words, and the configuration and reason on hover."""

    kind: str
    verdict: str
    mark: str
    wall: str | None = None
    band: str | None = None
    tooltip: str = ""


@dataclass(frozen=True)
class MatrixRow:
    """A hardware tier with one cell per scenario."""

    name: str
    tier: str
    price: str
    cells: list[Cell | None]


@dataclass(frozen=True)
class Matrix:
    """Hardware tiers (rows, by price) x scenarios (columns)."""

    columns: list[tuple[str, str]]  # (scenario title, "300,000 posts, deadline 30 days")
    rows: list[MatrixRow]
    source: str
    level: str
    models: list[str] = field(default_factory=list)


def _kv(pairs: Sequence[tuple[str, object]], source: str | None = None) -> Table:
    return Table(["", "value"], [[k, "—" if v is None else str(v)] for k, v in pairs], source=source, kv=True)


def _band(low: float | None, high: float | None, digits: int = 3) -> str:
    return f"{fmt.sig(low, digits)} – {fmt.sig(high, digits)}" if low is not None and high is not None else "—"


def _duration_band(low: float | None, high: float | None) -> str:
    return f"{fmt.duration(low)} – {fmt.duration(high)}" if low is not None and high is not None else "—"


# --- what a campaign would use ---------------------------------------------------------------------------------


def answers(data: ReportData) -> Table:
    """One row per scenario: its capable model and the cheapest tier that meets the deadline, with the figures."""
    rows = []
    for a in data.answers:
        c = a.capable
        model = "—"
        if c is not None and c.model:
            model = f"{c.model}, {fmt.params(c.params)}"
            if c.active_params and c.params and c.active_params < c.params * 0.95:
                model += f" ({fmt.params(c.active_params)} active)"
            model += f", {c.quant}"
        tier = "—" if a.tier_name is None else (
            f"{a.tier_name} ({fmt.money(a.price_usd)})" if a.verdict_kind == "feasible"
            else f"{a.devices_needed} x {a.tier_name} ({fmt.money((a.price_usd or 0) * (a.devices_needed or 1))})")
        rows.append([a.title, model, c.requirement if c else "—", tier, fmt.duration(a.wall_time_s),
                     _duration_band(a.wall_time_low_s, a.wall_time_high_s),
                     "—" if a.devices_needed is None else str(a.devices_needed),
                     fmt.sig(a.energy_kwh, 2) if a.energy_kwh is not None else "—",
                     _band(a.energy_kwh_low, a.energy_kwh_high, 2), fmt.money(a.electricity_usd)])
    return Table(["scenario", "smallest capable model", "requirement", "cheapest tier meeting the deadline",
                  "wall time, one device", f"{data.band_level()} band", "devices", "energy (kWh)",
                  "energy band (kWh)", "electricity"], rows, numeric=(4, 5, 6, 7, 8, 9),
                 source="; ".join(data.estimate_sources(capable=True)) or "predicted")


def capable_models(data: ReportData) -> Table:
    """The capable model of each scenario: requirement, published score, and the numbers of its sources in the
    report's list of sources (the rationale of each requirement follows the table)."""
    rows = []
    for a in data.answers:
        c = a.capable
        if c is None:
            rows.append([a.title, "—", "—", "—", "—", "—"])
            continue
        size = "—" if c.params is None else fmt.params(c.params) + (
            f" / {fmt.params(c.active_params)}" if c.active_params else "")
        found = f"{c.model} ({c.note})" if c.model and c.note else c.model or f"none: {c.note}"
        refs = [str(i) for i, src in enumerate(data.sources, start=1)
                if c.model and src.startswith(f"capable model {c.model}: ")]
        rows.append([a.title, c.requirement, found, size,
                     (c.score or "—") + (f", released {c.released}" if c.released else ""),
                     ", ".join(f"[{r}]" for r in refs) or "—"])
    as_of = next((a.capable.as_of for a in data.answers if a.capable and a.capable.as_of), None)
    return Table(["scenario", "capability requirement", "smallest open model meeting it", "parameters total / active",
                  "published score", "sources (numbered below)"], rows, numeric=(3,),
                 source="declared: scenarios/*.yaml requirements; published: scores of open models"
                 + (f", as of {as_of}" if as_of else ""))


def trend_levels(trend: TrendSection) -> Table:
    """Per level: its own fitted decline, today's smallest model, next year's extrapolated size and band."""
    rows = []
    for lv in trend.levels:
        band = (f"{fmt.params(lv.next_year_low)} – {fmt.params(lv.next_year_high)}"
                if lv.next_year_low is not None and lv.next_year_high is not None else "—")
        own = "—" if lv.factor_per_year is None else f"÷{fmt.sig(lv.factor_per_year, 2)}"
        rows.append([lv.level, lv.requirement, own,
                     str(lv.n_points), f"{lv.latest_model or '—'} ({fmt.params(lv.latest_params)})",
                     fmt.params(lv.next_year_params), band])
    return Table(["level", "requirement", "own fit per year", "points", "smallest model today",
                  f"extrapolated {trend.levels[0].next_year_date if trend.levels else 'next year'}", "band"], rows,
                 numeric=(2, 3, 5, 6),
                 source=f"published: {trend.source}; predicted:extrapolation (pooled rate x today's frontier)")


def trend_points(trend: TrendSection) -> Table:
    """Every frontier point: the model that set a new smallest size for a level, by date."""
    rows = [[p.level, p.date, p.model, fmt.params(p.params), "—" if p.score is None else fmt.sig(p.score, 4)]
            for p in trend.points]
    return Table(["level", "released", "model", "parameters", "score"], rows, numeric=(3, 4),
                 source=f"published: {trend.source}")


def trend_outlook(data: ReportData) -> Table | None:
    """Tiers (rows, by price) x levels: whether the level's smallest model fits today, or its extrapolated size
    next year; None when every tier already holds every level's smallest model (``TrendSection.outlook_text``
    says so in one sentence)."""
    trend = data.trend
    if trend is None or not trend.outlook or all(o.fits_now for o in trend.outlook):
        return None
    levels = list(dict.fromkeys(o.level for o in trend.outlook))
    rows = []
    for p in data.profiles:
        mine = {o.level: o for o in trend.outlook if o.profile == p.key}
        if not mine:
            continue
        cells = ["now" if o.fits_now else ("next year (extrapolated)" if o.fits_next_year else "not by next year")
                 for o in (mine.get(lv) for lv in levels) if o is not None]
        rows.append([p.name, fmt.params(next(iter(mine.values())).max_params), *cells])
    return Table(["hardware tier", f"largest model it holds ({trend.outlook_quant})", *levels], rows, numeric=(1,),
                 source="predicted:memory-planner (frontier) against published sizes and predicted:extrapolation")


# --- matrices --------------------------------------------------------------------------------------------------


def matrix(data: ReportData, capable: bool = False) -> Matrix:
    """The feasibility matrix of the measured model, or of each scenario's capable model."""
    columns = [(s.title, f"{fmt.plural(s.items, s.item_unit)}, deadline {fmt.duration(s.deadline_hours * 3600)}")
               for s in data.scenarios]
    rows = []
    for p in data.profiles:
        cells: list[Cell | None] = []
        for s in data.scenarios:
            c = data.cell(s.name, p.key, capable)
            if c is None:
                cells.append(None)
                continue
            cells.append(Cell(
                kind=c.verdict_kind, verdict=c.verdict, mark=VERDICT_MARK.get(c.verdict_kind, "?"),
                wall=fmt.duration(c.wall_time_s) if c.wall_time_s is not None else None,
                band=_duration_band(c.wall_time_low_s, c.wall_time_high_s) if c.wall_time_low_s is not None else None,
                tooltip=f"{c.model + ': ' if c.model else ''}{c.configuration}: {c.reason}"))
        rows.append(MatrixRow(name=p.name, tier=p.tier, price=fmt.money(p.price_usd), cells=cells))
    models = [f"{a.title}: {a.capable.model}" for a in data.answers if a.capable] if capable else []
    return Matrix(columns=columns, rows=rows, source="; ".join(data.estimate_sources(capable)) or "predicted",
                  level=data.band_level(), models=models)


# --- what you measured -----------------------------------------------------------------------------------------


def host(data: ReportData) -> Table:
    """CPU, RAM, GPUs, OS, measured bandwidth and GEMM, llama.cpp."""
    h, r = data.host, data.record
    gpus = "; ".join(f"{g.name} ({fmt.gib(g.vram_total_bytes)})" for g in h.gpus) or "none detected"
    return _kv([
        ("CPU", f"{h.cpu_model}, {h.physical_cores} cores / {h.logical_cores} threads"),
        ("RAM", f"{fmt.gib(h.ram_total_bytes)} total, {fmt.gib(h.ram_available_bytes)} available at start"),
        ("GPU", gpus), ("OS / Python", f"{h.os} / Python {h.python}"), ("host name", h.hostname),
        ("memory bandwidth", f"{fmt.sig(h.memory_bandwidth_gbps)} GB/s ({h.memory_bandwidth_source})"),
        ("CPU FP32 GEMM", f"{fmt.sig(h.cpu_gflops)} GFLOP/s ({h.cpu_gflops_source})"),
        ("llama.cpp", f"llama-cpp-python {r.llama_cpp_version or 'unknown'}; GPU offload "
                      f"{'available' if h.backends.gpu_offload else 'not available'}"),
        ("llama.cpp system info", h.backends.system_info or "—"),
    ])


def model(data: ReportData) -> Table:
    """The measured model file and shape, MoE sizes and the synthetic-weights label where the record has them."""
    m, info = data.model, data.model_info
    params = f"{m.params:,} ({fmt.params(m.params)})"
    if info.active_params:
        params += f" total, {info.active_params:,} ({fmt.params(info.active_params)}) active per token"
    pairs: list[tuple[str, object]] = [("name", m.label)]
    if info.synthetic_note:
        pairs.append(("weights", info.synthetic_note))
    pairs += [
        ("file", m.path), ("sha256", m.sha256 or "not computed"), ("architecture", m.architecture),
        ("parameters", params),
    ]
    if info.experts:
        pairs.append(("experts", f"{info.experts}" + (f", {info.experts_used} used per token"
                                                     if info.experts_used else "")))
    pairs += [
        ("file size / tensor bytes", f"{fmt.mib(m.size_bytes)} / {fmt.mib(m.tensor_bytes)}"),
        ("layers, embedding, heads (KV)",
         f"{m.n_layers}, {m.n_embd}, {m.n_heads} ({m.n_kv_heads[0] if m.n_kv_heads else '—'})"),
        ("vocabulary, training context", f"{m.n_vocab:,}, {m.n_ctx_train:,}"),
    ]
    return _kv(pairs)


def settings(data: ReportData) -> Table:
    """Every llama.cpp and harness setting of the run, one row each."""
    return _kv(list(data.settings.model_dump().items()))


def run(data: ReportData) -> Table:
    """The record id, when, the hfp version, completeness and the sensor notes."""
    r = data.record
    return _kv([("record id", r.id), ("measured at", r.created_at), ("hfp", r.hfp_version),
                ("complete", "yes" if r.complete else f"no ({r.interrupted or 'stopped early'})")]
               + [("note", n) for n in r.notes], source="measured: this host, as recorded in the run record")


def throughput(data: ReportData) -> Table:
    """Prefill and decode rates per measured point."""
    return Table(
        ["workload point", "repetitions", "prefill tok/s", "decode tok/s per sequence", "decode tok/s, all sequences"],
        [[p.label, str(p.repetitions), fmt.stat(p.summary.get("prefill_tok_s")),
          fmt.stat(p.summary.get("decode_tok_s_per_seq")), fmt.stat(p.summary.get("decode_tok_s_aggregate"))]
         for p in data.points], numeric=(1, 2, 3, 4), source="measured: mean ± sample stddev over repetitions")


def latency(data: ReportData) -> Table:
    """TTFT, inter-token p50/p95 and end-to-end time per measured point."""
    return Table(
        ["workload point", "time to first token (ms)", "inter-token p50 (ms)", "inter-token p95 (ms)",
         "end to end (s)"],
        [[p.label, fmt.stat(p.summary.get("ttft_s"), 1e3), fmt.stat(p.summary.get("itl_p50_s"), 1e3),
          fmt.stat(p.summary.get("itl_p95_s"), 1e3), fmt.stat(p.summary.get("e2e_s"))] for p in data.points],
        numeric=(1, 2, 3, 4),
        source="measured: per-repetition percentiles of the gaps between decode steps, then mean ± stddev")


def memory(data: ReportData) -> Table:
    """Predicted memory beside measured peaks per point."""
    src = data.points[0].memory_source if data.points else "predicted:gguf-metadata"
    return Table(
        ["workload point", "predicted RAM", "predicted VRAM", "placement", "measured peak RSS (MiB)",
         "RSS before loading", "measured peak VRAM (MiB)", "predicted anonymous", "measured peak anonymous (MiB)",
         "anonymous before loading"],
        [[p.label, fmt.mib(p.predicted_ram_bytes), fmt.mib(p.predicted_vram_bytes), p.predicted_placement,
          fmt.stat(p.summary.get("peak_rss_bytes"), 1 / MiB), fmt.mib(p.rss_baseline_bytes),
          fmt.stat(p.summary.get("peak_vram_bytes"), 1 / MiB), fmt.mib(p.predicted_anon_bytes),
          fmt.stat(p.summary.get("peak_anon_bytes"), 1 / MiB), fmt.mib(p.anon_baseline_bytes)]
         for p in data.points],
        numeric=(1, 2, 4, 5, 6, 7, 8, 9),
        source=f"{src} (planner; predicted = above the pre-load baseline) beside measured: process RSS and its "
               "anonymous part (/proc statm; only swap can free it) and VRAM (NVML) peaks")


def energy(data: ReportData) -> Table:
    """Energy, power and J/token per point, with the energy source."""
    sources = sorted({p.energy_source for p in data.points if p.energy_source})
    return Table(
        ["workload point", "energy per repetition (J)", "mean power (W)", "J per generated token", "energy source"],
        [[p.label, fmt.stat(p.energy_j), fmt.stat(p.mean_power_w), fmt.stat(p.summary.get("j_per_token")),
          p.energy_source or "—"] for p in data.points], numeric=(1, 2, 3),
        source=", ".join(sources) or "no energy figure")


def tiers(data: ReportData) -> Table:
    """Predicted rates per tier for the tier scenario, fastest first."""
    rows = [[x.profile_name, x.configuration, fmt.sig(x.decode_tok_s),
             _band(x.decode_tok_s_band.low, x.decode_tok_s_band.high) if x.decode_tok_s_band else "—",
             fmt.sig(x.batched_decode_tok_s), fmt.sig(x.prefill_tok_s), x.decode_source or "—"]
            for x in sorted(data.tiers, key=lambda x: -(x.decode_tok_s or 0.0))]
    return Table(["hardware tier", "configuration", "decode tok/s", "band", "decode tok/s, all sequences",
                  "prefill tok/s", "source"], rows, numeric=(2, 3, 4, 5),
                 source="predicted: roofline with the efficiency source named per row")


def concurrency(data: ReportData) -> Table | None:
    """Per tier and bulk scenario: the B the plan uses, the aggregate decode rate there with its band, and the
    gain over one sequence."""
    sec = data.concurrency
    if sec is None:
        return None
    scen = sec.scenarios()

    def cell(profile: str, scenario: str) -> str:
        c = sec.curve(profile, scenario)
        if c is None or not c.plan_batch:
            return "does not fit"
        at = next((p for p in c.points if p.batch == c.plan_batch), None)
        one = next((p for p in c.points if p.batch == 1), None)
        text = f"B {c.plan_batch}: {fmt.sig(c.plan_tok_s)}"
        if at:
            text += f" ({_band(at.low, at.high)})"
        if one and c.plan_tok_s:
            text += f", x{fmt.sig(c.plan_tok_s / one.aggregate_tok_s, 2)} over B 1"
        return text

    rows = [[name] + [cell(key, s) for s in scen] for key, name in sec.profiles()]
    models = [f"{s}: {m}" for s, m in sec.models.items()]
    return Table(["hardware tier"] + [f"{s}: plan B, decode tok/s all sequences" for s in scen], rows,
                 numeric=tuple(range(1, len(scen) + 1)),
                 source=f"{sec.source}; models: {'; '.join(models)}")


def ladder(data: ReportData) -> tuple[Table, Table] | None:
    """The ladder's sizes measured and fitted on this host, and their predicted decode / prefill per tier."""
    sec = data.ladder
    if sec is None:
        return None

    def rates(found: Sequence[LadderRate]) -> str:
        return "; ".join(f"B {r.parallel}: {fmt.sig(r.decode_tok_s)} / {fmt.sig(r.prefill_tok_s)}" for r in found)

    here = Table(["size (synthetic)", "parameters", "weights", "measured here: decode / prefill tok/s",
                  "ladder fit: decode / prefill tok/s"],
                 [[r.rung, fmt.params(r.params), fmt.gib(r.weight_bytes), rates(r.measured), rates(r.fitted)]
                  for r in sec.rows], numeric=(1, 2), source=f"{sec.measured_label}; {sec.rows[0].fitted[0].label}"
                 if sec.rows and sec.rows[0].fitted else sec.measured_label)

    def predicted(key: str, row: LadderRow) -> str:
        p = next((p for p in row.predicted if p.profile == key), None)
        if p is None:
            return "—"
        return f"{fmt.sig(p.decode_tok_s)} / {fmt.sig(p.prefill_tok_s)}" if p.fits else "does not fit"

    tiers = Table(["hardware tier"] + [r.rung for r in sec.rows],
                  [[name] + [predicted(key, r) for r in sec.rows] for key, name in sec.tiers()],
                  numeric=tuple(range(1, len(sec.rows) + 1)),
                  source=f"{sec.predicted_label}: decode / prefill tok/s, one sequence, "
                         f"pp{sec.prompt_tokens}+tg{sec.output_tokens}")
    return here, tiers


def frontier(data: ReportData) -> Table | None:
    """Per tier: the largest dense model per quantization, fully on the GPU, and its decode rate."""
    if not data.frontier:
        return None
    quants = list(dict.fromkeys(p.quant for p in data.frontier))
    mid_q = quants[len(quants) // 2]
    rows = []
    for pr in dict.fromkeys(p.profile for p in data.frontier):
        pts = {p.quant: p for p in data.frontier if p.profile == pr}
        mid = pts.get(mid_q)
        rows.append([next(iter(pts.values())).profile_name]
                    + [fmt.params(pts[q].max_params) if q in pts else "—" for q in quants]
                    + [fmt.params(mid.max_params_full_offload) if mid else "—",
                       fmt.sig(mid.decode_tok_s) if mid else "—", (mid.configuration or "—") if mid else "—"])
    sources = sorted({p.decode_source for p in data.frontier if p.decode_source})
    return Table(["hardware tier"] + [f"largest at {q}" for q in quants]
                 + [f"fully on GPU at {mid_q}", f"decode tok/s at {mid_q}", f"configuration at {mid_q}"],
                 rows, numeric=tuple(range(1, len(quants) + 3)),
                 source="; ".join(sources) + f"; sizes: {data.frontier[0].size_source}")


def safety(data: ReportData) -> Table | None:
    """The refusal-retention table: one row per weight level."""
    sf = data.safety
    if sf is None:
        return None

    def rate(r: object) -> str:
        text = getattr(r, "text", None)
        return text() if callable(text) else "—"

    rows = [[f"{r.level}{' (reference)' if r.is_reference else ''}", f"{r.bits_per_weight:.2f}", rate(r.refusal),
             "—" if r.drop_pp is None else f"{r.drop_pp:+.1f}", rate(r.flip) if r.flip else "—",
             "—" if r.mcnemar_p is None else f"{r.mcnemar_p:.2f}", rate(r.over_refusal)] for r in sf.rows]
    return Table(["weight level", "bits/weight", "refusal of harmful probes [95% CI]", "change (pp)",
                  "flip rate [95% CI]", "McNemar p", "over-refusal of controls [95% CI]"], rows, numeric=(1, 3, 5),
                 source=f"{sf.rows[0].source}: verdicts of the {sf.classifier} classifier")


def calibration(data: ReportData) -> tuple[Table, Table] | None:
    """The local calibration's parameters, and the residual of every point."""
    c = data.calibration
    if c is None:
        return None
    params = _kv([
        ("backend", c.backend), ("fixed cost per step t0", f"{fmt.sig(c.t0_s * 1e3)} ms"),
        ("effective bandwidth eta_bw·BW", f"{fmt.sig(c.bandwidth_eff_gbps)} GB/s (eta_bw {fmt.sig(c.eta_bw)})"),
        ("effective compute eta_f·F", f"{fmt.sig(c.flops_eff_tflops)} TFLOP/s (eta_f {fmt.sig(c.eta_f)})"),
        ("reference peaks", c.reference_source), ("fit error (RMS of log residuals)", f"{c.rel_rms:.1%}"),
        ("points", f"{c.n_decode} decode, {c.n_prefill} prefill"),
    ] + [("note", n) for n in c.notes])
    points = Table(["kind", "workload point", "measured (s)", "predicted (s)", "error"],
                   [[p.kind, f"pp{p.prompt_tokens}+tg{p.output_tokens} x{p.parallel}", fmt.sig(p.measured_s),
                     fmt.sig(p.predicted_s), f"{p.rel_error:+.1%}"] for p in c.points], numeric=(2, 3, 4),
                   source=f"{c.source}: fitted to "
                   + ("the ladder's measurements (synthetic models of several sizes)" if "ladder" in c.source
                      else "this run's measurements"))
    return params, points


def assumptions(data: ReportData) -> Table:
    """Every assumption with its value and source."""
    return Table(["assumption", "value", "meaning and source"],
                 [[a.name, a.value, a.description] for a in data.assumptions],
                 source="declared: profiler.feasibility.Assumptions defaults unless overridden")


def profiles(data: ReportData) -> Table:
    """Each tier's class, price, power and sources."""
    return Table(["tier", "class", "price", "power under load (W)", "idle power (W)", "sources"],
                 [[p.name, p.tier, fmt.money(p.price_usd), fmt.sig(p.load_w), fmt.sig(p.idle_w),
                   "; ".join(p.sources)] for p in data.profiles], numeric=(2, 3, 4),
                 source="declared: hardware_profiles/*.yaml")


def scenarios(data: ReportData) -> Table:
    """Each scenario's mode, size, deadline and what no text model does."""
    return Table(["scenario", "mode", "items", "deadline", "not covered (no text generation involved)"],
                 [[s.title, s.mode, fmt.plural(s.items, s.item_unit), fmt.duration(s.deadline_hours * 3600),
                   "; ".join(s.out_of_scope) or "—"] for s in data.scenarios], numeric=(2,),
                 source="declared: scenarios/*.yaml")


def tables(data: ReportData) -> dict[str, object]:
    """Every table and matrix of the report by name, for the templates."""
    trend = data.trend
    return {
        "answers": answers(data) if data.answers else None,
        "capable_models": capable_models(data) if data.answers else None,
        "capable_matrix": matrix(data, capable=True) if data.capable_matrix else None,
        "trend_points": trend_points(trend) if trend and trend.points else None,
        "trend_levels": trend_levels(trend) if trend and trend.levels else None,
        "trend_outlook": trend_outlook(data),
        "matrix": matrix(data), "host": host(data), "model": model(data), "settings": settings(data),
        "run": run(data), "throughput": throughput(data), "latency": latency(data), "memory": memory(data),
        "energy": energy(data), "tiers": tiers(data), "frontier": frontier(data), "safety": safety(data),
        "concurrency": concurrency(data), "ladder": ladder(data),
        "calibration": calibration(data), "assumptions": assumptions(data), "profiles": profiles(data),
        "scenarios": scenarios(data),
    }
