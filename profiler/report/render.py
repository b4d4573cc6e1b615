"""Building a report: ``ReportData`` from a run record and its estimates, then the HTML, Markdown and JSON outputs.

Owns what a report says and in which order (headline per scenario, feasibility matrix, host/model/settings,
throughput, latency, memory, energy, tier predictions, capability frontier, assumptions and method, limitations),
the limitations derived from the data, and writing ``report.html``, ``report.md``, ``plots/*.png`` and
``summary.json`` into one folder. Every text in a report is a fixed template filled with figures from the record,
the estimates or the declared files; a report never contains text a model generated. It must not measure or
predict: ``build`` asks ``profiler.feasibility`` for estimates, ``render`` takes them as given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from profiler import __version__
from profiler.errors import HfpError
from profiler.feasibility import Assumptions, Calibration, Estimate, FrontierPoint
from profiler.hardware import HostProfile
from profiler.models import ModelFile
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord, Settings, Stat, now_iso
from profiler.report import fmt
from profiler.report.plots import Plot
from profiler.safety import Retention, SafetyRecord, refusal_retention
from profiler.scenarios import Scenario

REPORT_SCHEMA_VERSION = 1
REPORTS_DIR = Path("reports")
# A repetition-to-repetition spread above this (stddev / mean) is called out as a limitation.
HIGH_CV = 0.10
FEW_REPETITIONS = 3
HEADLINE_INTRO = ("Predicted from this run's measurements: campaign wall time on one device of a tier, and the "
                  "verdict against the scenario's deadline (uncertainty bands in the matrix below).")
VERDICT_MARK = {"feasible": "OK", "needs_devices": "xN", "does_not_fit": "--", "too_slow": "!!"}


class ReportPaths(BaseModel):
    """Where a rendered report's files are."""

    out_dir: Path
    html: Path
    markdown: Path
    summary: Path
    plots: list[Path] = []


class Figure(BaseModel):
    """A figure of the report: its file beside ``report.md`` and the label of its source."""

    name: str
    title: str
    source: str
    alt: str
    file: str


class RecordInfo(BaseModel):
    """Which run the report is about, and whether that run finished."""

    id: str
    created_at: str
    hfp_version: str
    llama_cpp_version: str | None
    complete: bool
    interrupted: str | None
    notes: list[str]


class ScenarioInfo(BaseModel):
    """A scenario as the report names it, with its declared sources."""

    name: str
    title: str
    mode: str
    items: int
    item_unit: str
    deadline_hours: float
    out_of_scope: list[str] = []
    sources: list[str] = []


class ProfileInfo(BaseModel):
    """A hardware tier as the report names it, with its declared price, power and sources."""

    key: str
    name: str
    tier: str
    price_usd: float
    load_w: float | None = None
    idle_w: float | None = None
    sources: list[str] = []


class Headline(BaseModel):
    """The one-paragraph answer for a scenario."""

    scenario: str
    title: str
    text: str


class MatrixCell(BaseModel):
    """One (scenario, tier) cell of the feasibility matrix: the estimate's key figures (``summary.json`` keeps
    these; the full estimates are recomputed from the run record)."""

    scenario: str
    profile: str
    verdict: str
    verdict_kind: str
    wall_time_s: float | None
    wall_time_low_s: float | None = None
    wall_time_high_s: float | None = None
    devices_needed: int | None = None
    configuration: str
    reason: str
    decode_tok_s: float | None = None
    decode_tok_s_low: float | None = None
    decode_tok_s_high: float | None = None
    batched_decode_tok_s: float | None = None
    prefill_tok_s: float | None = None
    energy_kwh: float | None = None
    electricity_usd: float | None = None
    hardware_usd: float | None = None
    decode_source: str | None = None


class PointRow(BaseModel):
    """One measured workload point: summaries of every metric, energy with its source, memory predicted."""

    label: str
    prompt_tokens: int
    output_tokens: int
    parallel: int
    repetitions: int
    summary: dict[str, Stat]
    energy_j: Stat | None
    mean_power_w: Stat | None
    energy_source: str | None
    predicted_ram_bytes: int
    predicted_vram_bytes: int
    predicted_placement: str
    memory_source: str
    rss_baseline_bytes: int | None


class AssumptionRow(BaseModel):
    """One assumption of the estimates: value and where it comes from."""

    name: str
    value: str
    description: str


class SafetySection(BaseModel):
    """Refusal under quantization from an ``hfp safety`` record: retention per weight level at one KV type."""

    record_id: str
    created_at: str
    complete: bool
    classifier: str
    probe_set: str
    n_harmful: int
    n_control: int
    reference: str
    kv_type: str
    models: list[str]
    warnings: list[str] = []
    rows: list[Retention]


class ReportData(BaseModel):
    """Everything a report shows, in reading order; ``summary.json`` is this model as JSON (without the full
    estimates, which ``build`` recomputes from the run record; their key figures are in ``matrix``)."""

    model_config = ConfigDict(extra="forbid")

    report_schema_version: int = REPORT_SCHEMA_VERSION
    generated_at: str
    hfp_version: str = __version__
    title: str
    record: RecordInfo
    headlines: list[Headline]
    scenarios: list[ScenarioInfo]
    profiles: list[ProfileInfo]
    matrix: list[MatrixCell]
    host: HostProfile
    model: ModelFile
    settings: Settings
    points: list[PointRow]
    tier_scenario: str | None
    tiers: list[Estimate] = Field(default=[], exclude=True)
    frontier: list[FrontierPoint]
    safety: SafetySection | None = None
    calibration: Calibration | None
    assumptions: list[AssumptionRow]
    method: list[str]
    sources: list[str]
    limitations: list[str]
    figures: list[Figure] = []
    estimates: list[Estimate] = Field(default=[], exclude=True)

    def cell(self, scenario: str, profile: str) -> MatrixCell | None:
        """The matrix cell of a (scenario, profile) pair."""
        return next((c for c in self.matrix if c.scenario == scenario and c.profile == profile), None)

    def figure(self, name: str) -> Figure | None:
        """A figure by name, if the report has it."""
        return next((f for f in self.figures if f.name == name), None)


# --- headline and matrix -------------------------------------------------------------------------------------


def _on(e: Estimate) -> str:
    return f"{fmt.duration(e.wall_time_s)} on {e.profile_name} ({e.verdict})"


def headline(scenario: ScenarioInfo, estimates: Sequence[Estimate]) -> Headline:
    """The one-paragraph answer for one scenario: fastest tier, cheapest tier that meets the deadline alone,
    slowest tier that runs it, the tiers it does not fit, and the counts per verdict."""
    items = fmt.plural(scenario.items, scenario.item_unit)
    deadline = fmt.duration(scenario.deadline_hours * 3600)
    model = estimates[0].model if estimates else "the model"
    runs = [e for e in estimates if e.fits and e.wall_time_s is not None]
    parts: list[str] = []
    if runs:
        fastest = min(runs, key=lambda e: e.wall_time_s or math.inf)
        parts.append(_on(fastest) + ", the fastest tier")
        feasible = [e for e in runs if e.verdict_kind == "feasible"]
        cheapest = min(feasible, key=lambda e: (e.price_usd, e.wall_time_s or math.inf)) if feasible else None
        if cheapest is not None and cheapest is not fastest:
            parts.append(_on(cheapest) + f", the cheapest tier that meets the deadline alone "
                         f"({fmt.money(cheapest.price_usd)})")
        slowest = max(runs, key=lambda e: e.wall_time_s or 0.0)
        if slowest is not fastest and slowest is not cheapest:
            parts.append(_on(slowest) + ", the slowest")
    no_fit = [e.profile_name for e in estimates if e.verdict_kind == "does_not_fit"]
    if no_fit:
        parts.append("does not fit on " + _join(no_fit))
    counts = {k: sum(e.verdict_kind == k for e in estimates) for k in VERDICT_MARK}
    n = len(estimates)
    needs, no_fit_n = counts["needs_devices"], counts["does_not_fit"]
    tally = (f"One device meets the deadline on {counts['feasible']} of {n} tiers; {needs} "
             f"{'needs' if needs == 1 else 'need'} several devices; {no_fit_n} cannot hold the model")
    if counts["too_slow"]:
        tally += f"; on {counts['too_slow']} the replies are too slow for the latency limit"
    text = f"{items} within {deadline} with {model}: " + ("; ".join(parts) if parts else "no tier was estimated")
    text += f". {tally}."
    return Headline(scenario=scenario.name, title=scenario.title, text=text)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def matrix_cell(e: Estimate) -> MatrixCell:
    """The matrix cell of an estimate."""
    band, decode = e.wall_time_s_band, e.decode_tok_s_band
    return MatrixCell(
        scenario=e.scenario, profile=e.profile, verdict=e.verdict, verdict_kind=e.verdict_kind,
        wall_time_s=e.wall_time_s, wall_time_low_s=band.low if band else None,
        wall_time_high_s=band.high if band else None, devices_needed=e.devices_needed,
        configuration=e.configuration, reason=e.reason, decode_tok_s=e.decode_tok_s,
        decode_tok_s_low=decode.low if decode else None, decode_tok_s_high=decode.high if decode else None,
        batched_decode_tok_s=e.batched_decode_tok_s, prefill_tok_s=e.prefill_tok_s, energy_kwh=e.energy_kwh,
        electricity_usd=e.electricity_usd, hardware_usd=e.hardware_usd, decode_source=e.decode_source,
    )


# --- measured points -----------------------------------------------------------------------------------------


def point_row(record: RunRecord, i: int) -> PointRow:
    """One measured point of a record, as the report tables show it."""
    p = record.points[i]
    m = p.memory_predicted
    return PointRow(
        label=p.point.label, prompt_tokens=p.point.prompt_tokens, output_tokens=p.point.output_tokens,
        parallel=p.point.parallel, repetitions=len(p.repetitions), summary=p.summary, energy_j=p.energy_j,
        mean_power_w=p.mean_power_w, energy_source=p.energy_source, predicted_ram_bytes=m.ram_bytes,
        predicted_vram_bytes=m.vram_bytes, predicted_placement=m.placement, memory_source=m.source,
        rss_baseline_bytes=p.rss_baseline_bytes,
    )


# --- limitations ---------------------------------------------------------------------------------------------


def limitations(record: RunRecord, estimates: Sequence[Estimate], calibration: Calibration | None,
                safety: SafetySection | None = None) -> list[str]:
    """What a reader must keep in mind, written from the record and the estimates (not a fixed list)."""
    out: list[str] = []
    if not record.complete:
        why = f" ({record.interrupted})" if record.interrupted else ""
        out.append(f"The run record is incomplete{why}: only {len(record.points)} measured point(s) are used.")
    if not record.points:
        out.append("The record holds no measured point: nothing on this host was measured, and predictions rest on "
                   "public efficiency factors only.")
    sources = sorted({p.energy_source for p in record.points if p.energy_source})
    estimated = [s for s in sources if s.startswith("estimated:")]
    if estimated:
        out.append(f"Energy on this host is estimated, not measured ({', '.join(estimated)}): no readable energy "
                   "counter or power sensor, so joules come from TDP x CPU utilisation.")
    elif any("estimated:" in s for s in sources):
        out.append(f"Part of the energy on this host is estimated ({', '.join(sources)}).")
    reps = min((len(p.repetitions) for p in record.points), default=0)
    if record.points and reps < FEW_REPETITIONS:
        out.append(f"Few repetitions: {reps} per point (llama-bench uses 5); means and spreads are rough.")
    for p in record.points:
        for field, label in (("decode_tok_s_aggregate", "decode rate"), ("prefill_tok_s", "prefill rate")):
            s = p.summary.get(field)
            if s and s.mean and s.stddev and s.n > 1 and s.stddev / s.mean > HIGH_CV:
                out.append(f"High spread at {p.point.label}: {label} varies by {s.stddev / s.mean:.0%} "
                           f"(stddev / mean) between repetitions; the machine may have been busy.")
    if record.points and len({p.point.parallel for p in record.points}) < 3:
        out.append("Fewer than three parallel levels were measured, so the fixed cost per decode step and the "
                   "bandwidth term of the calibration are poorly separated.")
    if calibration is not None and calibration.rel_rms > 0.15:
        out.append(f"The local calibration fits this run's points to within {calibration.rel_rms:.0%} (RMS of log "
                   "residuals); predictions inherit at least that error.")
    if record.points and not any(p.summary.get("peak_vram_bytes") and p.summary["peak_vram_bytes"].mean
                                 for p in record.points):
        out.append("No GPU memory was measured on this host (no NVIDIA GPU with NVML); GPU tiers are predicted "
                   "from declared specifications and public results only.")
    pooled = sorted({e.profile_name for e in estimates if e.decode_source and "pooled" in e.decode_source})
    if pooled:
        out.append("No public llama.cpp result covers the backend of " + _join(pooled) + "; their predictions use "
                   "efficiency factors pooled over all backends (wider error).")
    if record.points:
        measured = sorted({(p.point.prompt_tokens, p.point.output_tokens) for p in record.points})
        shapes = ", ".join(f"{a} prompt / {b} output tokens" for a, b in measured)
        out.append(f"Measured shapes ({shapes}) differ from the scenarios' token counts; the roofline model "
                   "extrapolates in context length and batch size.")
    out.append(f"Every estimate is for this run's model ({record.model.label}, {fmt.params(record.model.params)} "
               "parameters); larger models are covered only by the capability frontier.")
    if safety is None:
        out.append("Refusal under quantization was not measured for this report: run `hfp safety` on a "
                   "quantization ladder and pass its record with `hfp report --safety`.")
    else:
        if safety.n_harmful < 30:
            out.append(f"Refusal rates rest on {safety.n_harmful} harmful probes per configuration: their 95% "
                       "intervals are wide, and small differences between levels are not evidence of a change.")
        if not safety.complete:
            out.append(f"The safety record {safety.record_id} is incomplete.")
        if record.model.name not in " ".join(safety.models):
            out.append(f"The safety record measured {', '.join(safety.models)}, not this run's model "
                       f"({record.model.label}).")
    for note in record.notes:
        out.append(f"Recorded note: {note}.")
    return out


def safety_section(record: SafetyRecord, kv_type: str | None = None) -> SafetySection | None:
    """The refusal-retention view of a safety record (``profiler.safety.refusal_retention``), or None if empty."""
    rows = sorted(refusal_retention(record, kv_type).values(), key=lambda r: -r.bits_per_weight)
    if not rows:
        return None
    ref = record.config(record.reference).config
    models = sorted({f"{c.config.model_name} ({c.config.level})" for c in record.configs})
    return SafetySection(
        record_id=record.id, created_at=record.created_at, complete=record.complete, classifier=record.classifier,
        probe_set=f"{record.probe_set.name} v{record.probe_set.version}", n_harmful=record.probe_set.n_harmful,
        n_control=record.probe_set.n_control, reference=record.reference, kv_type=kv_type or ref.kv_type,
        models=models, warnings=record.warnings, rows=rows,
    )


# --- assumptions, method, sources ------------------------------------------------------------------------------


def assumption_rows(assumptions: Assumptions) -> list[AssumptionRow]:
    """Every field of ``Assumptions`` with its value and documented source."""
    rows = []
    for name, info in type(assumptions).model_fields.items():
        rows.append(AssumptionRow(name=name, value=str(getattr(assumptions, name)), description=info.description or ""))
    return rows


METHOD = [
    "Measured: llama.cpp (through llama-cpp-python) ran benign proxy prompts of the requested token length on "
    "this host; each workload point was repeated after a warm-up, and every metric is the mean ± sample standard "
    "deviation over repetitions. Energy carries the label of its source (hardware counter, integrated power "
    "samples, or a TDP x utilisation estimate).",
    "Calibrated: a roofline model, t_step(B, ctx) = t0 + max((W + B·ctx·k) / (eta_bw·BW), B·2P / (eta_f·F)) for "
    "decode and n·2P / (eta_f·F) for prefill, was fitted to this run's points (least squares on log times).",
    "Predicted: each hardware tier's declared bandwidth and FLOPS, scaled by efficiency factors (the local fit "
    "when the backend matches, otherwise medians of public llama.cpp results per backend), give decode and "
    "prefill rates; the memory planner picks the best configuration that fits (full offload, partial, CPU).",
    "Campaign: a scenario's items are drawn (Monte Carlo) from its token-count spreads; wall time = items / "
    "sustained throughput at the best parallel count, devices = wall time / deadline, energy = declared power x "
    "predicted time, cost = energy x electricity price. Bands combine item variation with the model's error.",
]


def sources_of(scenarios: Sequence[ScenarioInfo], profiles: Sequence[ProfileInfo], estimates: Sequence[Estimate],
               frontier_points: Sequence[FrontierPoint]) -> list[str]:
    """The distinct sources behind the figures: public results, bits per weight, scenarios and profiles."""
    from profiler.feasibility.efficiency import public_rows

    sources: list[str] = []
    used = {s for e in estimates for s in (e.decode_source, e.prefill_source) if s}
    if any("public" in s for s in used) or not estimates:
        sources += [f"public llama.cpp results: {r.device}, {r.model} ({r.source})" for r in public_rows()]
    if frontier_points:
        sources.append(f"bits per weight: {frontier_points[0].size_source}")
    sources += [f"scenario {s.name}: {src}" for s in scenarios for src in s.sources]
    sources += [f"profile {p.key}: {src}" for p in profiles for src in p.sources]
    return list(dict.fromkeys(sources))


# --- assembling ------------------------------------------------------------------------------------------------


def _scenario_info(name: str, estimates: Sequence[Estimate], known: Mapping[str, Scenario]) -> ScenarioInfo:
    e = next(e for e in estimates if e.scenario == name)
    s = known.get(name)
    if s is None:
        try:
            from profiler import scenarios

            s = scenarios.load(name)
        except HfpError:
            s = None
    return ScenarioInfo(
        name=name, title=e.scenario_title, mode=e.mode, items=e.items, item_unit=s.item_unit if s else "item",
        deadline_hours=e.deadline_s / 3600, out_of_scope=e.out_of_scope, sources=s.sources if s else [],
    )


def _profile_info(key: str, estimates: Sequence[Estimate], known: Mapping[str, HardwareProfile]) -> ProfileInfo:
    e = next(e for e in estimates if e.profile == key)
    p = known.get(key)
    if p is None:
        try:
            from profiler import profiles

            p = profiles.load(key)
        except HfpError:
            p = None
    return ProfileInfo(
        key=key, name=e.profile_name, tier=e.tier, price_usd=e.price_usd, load_w=p.power.load_w if p else None,
        idle_w=p.power.idle_w if p else None, sources=p.sources if p else [],
    )


def report_data(
    record: RunRecord,
    estimates: Sequence[Estimate],
    frontier_points: Sequence[FrontierPoint] = (),
    calibration: Calibration | None = None,
    assumptions: Assumptions | None = None,
    scenarios: Mapping[str, Scenario] | None = None,
    profiles: Mapping[str, HardwareProfile] | None = None,
    tier_scenario: str | None = None,
    safety: SafetyRecord | None = None,
) -> ReportData:
    """Assemble everything a report shows from a record and the estimates derived from it (no plots yet)."""
    scenario_names = list(dict.fromkeys(e.scenario for e in estimates))
    profile_names = list(dict.fromkeys(e.profile for e in estimates))
    s_info = [_scenario_info(n, estimates, scenarios or {}) for n in scenario_names]
    p_info = sorted((_profile_info(n, estimates, profiles or {}) for n in profile_names),
                    key=lambda p: (p.price_usd, p.name))
    by_scenario = {n: [e for e in estimates if e.scenario == n] for n in scenario_names}
    safety_view = safety_section(safety) if safety is not None else None
    tier_scenario = tier_scenario if tier_scenario in by_scenario else (scenario_names[0] if scenario_names else None)
    return ReportData(
        generated_at=now_iso(),
        title=f"Feasibility report: {record.model.label} on {record.host.cpu_model}",
        record=RecordInfo(id=record.id, created_at=record.created_at, hfp_version=record.hfp_version,
                          llama_cpp_version=record.llama_cpp_version, complete=record.complete,
                          interrupted=record.interrupted, notes=record.notes),
        headlines=[headline(s, by_scenario[s.name]) for s in s_info],
        scenarios=s_info, profiles=p_info, matrix=[matrix_cell(e) for e in estimates],
        host=record.host, model=record.model, settings=record.settings,
        points=[point_row(record, i) for i in range(len(record.points))],
        tier_scenario=tier_scenario, tiers=by_scenario.get(tier_scenario or "", []),
        frontier=list(frontier_points), safety=safety_view, calibration=calibration,
        assumptions=assumption_rows(assumptions or Assumptions()), method=METHOD,
        sources=sources_of(s_info, p_info, estimates, frontier_points),
        limitations=limitations(record, estimates, calibration, safety_view), estimates=list(estimates),
    )


def make_plots(record: RunRecord, data: ReportData) -> list[Plot]:
    """Every figure of a report, in reading order (figures without data are left out)."""
    from profiler.report import plots

    found = [*plots.record_plots(record), plots.tier_decode(data.tiers), plots.frontier(data.frontier),
             plots.refusal(data.safety) if data.safety else None]
    return [p for p in found if p is not None]


def write_plots(plot_list: Sequence[Plot], out_dir: Path) -> list[Path]:
    """Write each plot as ``out_dir/plots/<name>.png``."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in plot_list:
        path = plot_dir / f"{p.name}.png"
        path.write_bytes(p.png)
        paths.append(path)
    return paths


def default_out_dir(record: RunRecord) -> Path:
    """``reports/<record id>/``."""
    return REPORTS_DIR / record.id


def render(
    record: RunRecord,
    estimates: Sequence[Estimate],
    out_dir: Path | str | None = None,
    frontier_points: Sequence[FrontierPoint] = (),
    calibration: Calibration | None = None,
    assumptions: Assumptions | None = None,
    scenarios: Mapping[str, Scenario] | None = None,
    profiles: Mapping[str, HardwareProfile] | None = None,
    tier_scenario: str | None = None,
    safety: SafetyRecord | Path | str | None = None,
) -> ReportPaths:
    """Write ``report.html`` (self-contained), ``report.md`` with ``plots/*.png`` and ``summary.json``."""
    from profiler.report import html, markdown

    out = Path(out_dir) if out_dir is not None else default_out_dir(record)
    out.mkdir(parents=True, exist_ok=True)
    if safety is not None and not isinstance(safety, SafetyRecord):
        safety = SafetyRecord.load(safety)
    data = report_data(record, estimates, frontier_points, calibration, assumptions, scenarios, profiles,
                       tier_scenario, safety)
    plot_list = make_plots(record, data)
    data.figures = [Figure(name=p.name, title=p.title, source=p.source, alt=p.alt, file=f"plots/{p.name}.png")
                    for p in plot_list]
    plot_paths = write_plots(plot_list, out)
    paths = ReportPaths(out_dir=out, html=out / "report.html", markdown=out / "report.md",
                        summary=out / "summary.json", plots=plot_paths)
    paths.html.write_text(html.report_html(data, plot_list), encoding="utf-8")
    paths.markdown.write_text(markdown.report_markdown(data), encoding="utf-8")
    paths.summary.write_text(data.model_dump_json(indent=1), encoding="utf-8")
    return paths


def _load_named(names: Sequence[str | Path] | None, loader: Any, key: Any) -> dict[str, Any] | None:
    if names is None:
        return None
    out: dict[str, Any] = {}
    for n in names:
        obj = loader(n)
        out[key(n, obj)] = obj
    return out


def build(
    record_path_or_record: RunRecord | Path | str,
    scenarios: Sequence[str | Path] | None = None,
    profiles: Sequence[str | Path] | None = None,
    out_dir: Path | str | None = None,
    assumptions: Assumptions | None = None,
    safety: SafetyRecord | Path | str | None = None,
) -> ReportPaths:
    """Load a run record (or take one), derive calibration, estimates and frontier from it, and render.

    ``scenarios`` and ``profiles`` are names (file stems) or YAML paths; ``None`` means all that ship with hfp.
    ``safety`` (an ``hfp safety`` record or its path) adds the refusal-under-quantization section. The out
    folder defaults to ``reports/<record id>/``.
    """
    from profiler import feasibility
    from profiler import profiles as profiles_mod
    from profiler import scenarios as scenarios_mod

    record = (record_path_or_record if isinstance(record_path_or_record, RunRecord)
              else RunRecord.load(record_path_or_record))
    if safety is not None and not isinstance(safety, SafetyRecord):
        safety = SafetyRecord.load(safety)
    a = assumptions or Assumptions()
    scen = _load_named(scenarios, scenarios_mod.load, lambda n, s: s.name) or scenarios_mod.load_all()
    prof = _load_named(profiles, profiles_mod.load, lambda n, p: Path(n).stem) or profiles_mod.load_all()
    calibration: Calibration | None = None
    if record.points:
        try:
            calibration = feasibility.fit(record)
        except HfpError:
            calibration = None
    estimates = feasibility.estimate(record, profiles=prof, scenarios=scen, assumptions=a, calibration=calibration)
    frontier_points = feasibility.frontier(profiles=prof, assumptions=a, calibration=calibration)
    return render(record, estimates, out_dir, frontier_points=frontier_points, calibration=calibration,
                  assumptions=a, scenarios=scen, profiles=prof, safety=safety)
