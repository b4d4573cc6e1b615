"""The report data: one ``ReportData`` object built from a run record and the estimates derived from it.

Owns what a report says and in which order: the answer per scenario with the smallest capable model ("what a
campaign would use"), the capability trend, the answer and matrix for the measured model ("what you measured"),
host/model/settings, measured points, tier predictions, the capability frontier, refusal under quantization,
assumptions and method, and the limitations derived from the data. Every sentence is a fixed template filled
with figures from the record, the estimates or the declared files; a report never contains text a model
generated. ``summary.json`` is this object as JSON.

Data flows one way: records and estimates -> ``ReportData`` (this module) -> plots and templates. It must not
measure, predict (``profiler.feasibility`` does; the caller passes its results in), draw or lay out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from profiler import __version__
from profiler import profiles as profiles_mod
from profiler import scenarios as scenarios_mod
from profiler.errors import HfpError
from profiler.feasibility import Assumptions, Calibration, Estimate, FrontierPoint
from profiler.feasibility.efficiency import public_rows
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord, Settings, Stat, now_iso
from profiler.report import fmt
from profiler.report.concurrency import ConcurrencySection
from profiler.report.figures import EstimateOutcome, EstimateRates
from profiler.report.ladder import HOW_TO_GET as LADDER_HOW_TO_GET
from profiler.report.ladder import LadderSection
from profiler.safety import Retention, SafetyRecord, refusal_retention
from profiler.scenarios import Scenario
from profiler.schema.base import Strict
from profiler.schema.host import HostProfile
from profiler.schema.model import ModelFile
from profiler.synth import SYNTH_LABEL as SYNTHETIC_NOTE

T = TypeVar("T")

REPORT_SCHEMA_VERSION = 2
# A repetition-to-repetition spread above this (stddev / mean) is called out as a limitation.
HIGH_CV = 0.10
FEW_REPETITIONS = 3
HEADLINE_INTRO = ("Predicted from this run's measurements for the model it measured: campaign wall time on one "
                  "device of a tier, and the verdict against the scenario's deadline (uncertainty bands in the "
                  "matrix below).")
ANSWER_INTRO = ("For each scenario: the smallest open-weight model that meets the scenario's capability "
                "requirement (published benchmark scores), and the cheapest hardware tier that runs it within the "
                "deadline on one device. Predicted with the roofline model calibrated on this run; the band is the "
                "Monte Carlo interval over item lengths and the model's error.")
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


class ModelInfo(BaseModel):
    """What the report says about the measured model beyond its file: MoE sizes and synthetic weights."""

    label: str
    params: int
    active_params: int | None = None
    experts: int | None = None
    experts_used: int | None = None
    synthetic: bool = False
    synthetic_note: str | None = None


class ScenarioInfo(BaseModel):
    """A scenario as the report names it, with its declared sources and capability requirement."""

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

    key: str = Field(description="the profile's name in hardware_profiles/ (e.g. rtx-4090-desktop)")
    name: str
    tier: str
    price_usd: float = Field(description="the profile's declared purchase price")
    load_w: float | None = Field(default=None, description="declared power under load; None: not declared")
    idle_w: float | None = Field(default=None, description="declared idle power; None: not declared")
    sources: list[str] = []


class Headline(BaseModel):
    """The one-paragraph answer for a scenario."""

    scenario: str
    title: str
    text: str


class MatrixCell(EstimateRates, EstimateOutcome):
    """One (scenario, tier) cell of a feasibility matrix: the estimate's key figures (``summary.json`` keeps
    these; the full estimates are recomputed from the run record)."""

    scenario: str
    profile: str
    model: str = Field(default="", description="the capable model, in the capable-model matrix only")
    verdict: str  # every cell has an estimate, so a verdict
    verdict_kind: str
    configuration: str
    reason: str
    batched_decode_tok_s: float | None = None


class CapableModel(Strict):
    """The smallest open model that meets a scenario's capability requirement, as ``profiler.capability`` names
    it: what a campaign would use. ``model`` is None when no known model meets the requirement (``note`` says
    why); other ``None`` fields were not published."""

    scenario: str
    requirement: str = Field(description="e.g. 'olb2_ifeval >= 70 (instruction-following)'")
    rationale: str = ""
    model: str | None
    params: float | None = None
    active_params: float | None = None
    released: str | None = None
    score: str | None = Field(default=None, description="the published score that meets the requirement")
    quant: str
    as_of: str | None = None
    note: str = ""
    sources: list[str] = []


class Answer(EstimateOutcome):
    """The answer for one scenario with its capable model: the cheapest tier that meets the deadline, with the
    estimate's key figures and bands. ``tier`` is None when no tier runs the model (``text`` says why)."""

    scenario: str
    title: str
    capable: CapableModel | None
    tier: str | None = Field(default=None, description="the cheapest tier that meets the deadline")
    tier_name: str | None = None
    price_usd: float | None = Field(default=None, description="one device of that tier")
    band_level: float | None = None
    energy_kwh_low: float | None = None
    energy_kwh_high: float | None = None
    configuration: str | None = None
    tiers_feasible: int = 0
    tiers_total: int = 0
    text: str


class TrendPoint(BaseModel):
    """A model that lowered the smallest parameter count reaching a level when it was released (published score)."""

    level: str
    date: str
    model: str
    params: float
    score: float | None = None


class TrendLevel(BaseModel):
    """One capability level's frontier: its own fitted decline, today's smallest model and next year's
    extrapolated size (the pooled rate applied to today's frontier; an extrapolation, not a measurement)."""

    level: str
    requirement: str
    meaning: str = ""
    factor_per_year: float | None = Field(default=None, description="this level's own fit; None with < 2 points")
    n_points: int = 0
    latest_model: str | None = None
    latest_params: float | None = None
    next_year_date: str | None = None
    next_year_params: float | None = Field(default=None, description="latest_params x the pooled yearly factor")
    next_year_low: float | None = None
    next_year_high: float | None = None


class TierOutlook(BaseModel):
    """For one tier and level: the largest model the tier holds, and whether today's smallest model reaching the
    level fits it, and next year's extrapolated size."""

    profile: str
    profile_name: str
    level: str
    max_params: float | None
    fits_now: bool
    fits_next_year: bool


class TrendSection(BaseModel):
    """Puri's figure for this report: the smallest parameter count reaching each level over time, the pooled
    yearly decline with its interval, the published figure it is compared with, and what that implies for each
    tier next year (labelled an extrapolation)."""

    as_of: str
    by: str = "total"
    points: list[TrendPoint]
    levels: list[TrendLevel]
    factor_per_year: float | None = Field(default=None, description="pooled fit: params shrink by this per year")
    factor_low: float | None = None
    factor_high: float | None = None
    interval: str = ""
    method: str = ""
    n_points: int = 0
    n_levels: int = 0
    published: str | None = Field(default=None, description="the published rate it is compared with, and source")
    outlook_quant: str | None = None
    outlook: list[TierOutlook] = []
    source: str = "profiler/data/open_models.csv"

    def outlook_text(self) -> str:
        """One sentence on the tiers and levels: which tiers already hold every level's smallest model today."""
        if not self.outlook:
            return ""
        now = sorted({o.profile_name for o in self.outlook if o.fits_now} - {
            o.profile_name for o in self.outlook if not o.fits_now})
        tiers = len({o.profile for o in self.outlook})
        smallest = min((o.max_params for o in self.outlook if o.max_params), default=None)
        if len(now) == tiers:
            return (f"Every one of the {tiers} tiers already holds today's smallest model of every level at "
                    f"{self.outlook_quant} (the smallest tier holds up to {fmt.params(smallest)} parameters), so the "
                    "extrapolation changes no verdict of memory: next year's models would only be smaller and "
                    "faster on the same hardware.")
        return (f"{len(now)} of {tiers} tiers hold today's smallest model of every level at {self.outlook_quant}; "
                "the table shows where the extrapolated sizes would change that next year.")

    def text(self) -> str:
        """The fitted rate with its interval, compared with the published figure."""
        if self.factor_per_year is None:
            return "Too few points to fit a rate."
        out = (f"Fitted over {self.n_points} frontier points of {self.n_levels} levels: the smallest model "
               f"reaching a level shrinks {self.factor_per_year:.3g}-fold per year")
        if self.factor_low is not None and self.factor_high is not None:
            out += f" ({self.interval or 'interval'} {self.factor_low:.3g} to {self.factor_high:.3g})"
        out += "."
        if self.published:
            out += f" Published: {self.published}."
        return out


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
    predicted_anon_bytes: int | None = None  # anonymous part of the predicted resident memory (memory.py)
    anon_baseline_bytes: int | None = None


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


class ReportData(Strict):
    """Everything a report shows, in reading order; ``summary.json`` is this model as JSON (without the full
    estimates, which ``build`` recomputes from the run record; their key figures are in the matrices)."""

    report_schema_version: int = REPORT_SCHEMA_VERSION
    generated_at: str
    hfp_version: str = __version__
    title: str
    record: RecordInfo
    # what a campaign would use
    answers: list[Answer] = []
    capable_matrix: list[MatrixCell] = []
    trend: TrendSection | None = None
    # what you measured
    headlines: list[Headline]
    scenarios: list[ScenarioInfo]
    profiles: list[ProfileInfo]
    matrix: list[MatrixCell]
    host: HostProfile
    model: ModelFile
    model_info: ModelInfo
    settings: Settings
    points: list[PointRow]
    tier_scenario: str | None
    tiers: list[Estimate] = Field(default=[], exclude=True)
    frontier: list[FrontierPoint]
    concurrency: ConcurrencySection | None = None
    ladder: LadderSection | None = None
    ladder_hint: str = LADDER_HOW_TO_GET
    safety: SafetySection | None = None
    calibration: Calibration | None
    assumptions: list[AssumptionRow]
    method: list[str]
    sources: list[str]
    limitations: list[str]
    figures: list[Figure] = []
    estimates: list[Estimate] = Field(default=[], exclude=True)
    capable_estimates: list[Estimate] = Field(default=[], exclude=True)

    def cell(self, scenario: str, profile: str, capable: bool = False) -> MatrixCell | None:
        """The matrix cell of a (scenario, profile) pair (of the capable-model matrix with ``capable``)."""
        cells = self.capable_matrix if capable else self.matrix
        return next((c for c in cells if c.scenario == scenario and c.profile == profile), None)

    def figure(self, name: str) -> Figure | None:
        """A figure by name, if the report has it."""
        return next((f for f in self.figures if f.name == name), None)

    def estimate_sources(self, capable: bool = False) -> list[str]:
        """The distinct decode and prefill sources of the measured (or capable) model's estimates."""
        found = self.capable_estimates if capable else self.estimates
        return sorted({s for x in found for s in (x.decode_source, x.prefill_source) if s})

    def band_level(self) -> str:
        """The level of the wall-time bands, as ``90%``."""
        band = next((x.wall_time_s_band for x in [*self.estimates, *self.capable_estimates] if x.wall_time_s_band),
                    None)
        return f"{band.level:.0%}" if band else "uncertainty"


# --- headline and matrix -------------------------------------------------------------------------------------


def _on(e: Estimate) -> str:
    return f"{fmt.duration(e.wall_time_s)} on {e.profile_name} ({e.verdict})"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


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
        cheapest = cheapest_feasible(runs)
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


def cheapest_feasible(estimates: Sequence[Estimate]) -> Estimate | None:
    """The cheapest tier (then the fastest) that meets the deadline on one device, if any."""
    feasible = [e for e in estimates if e.verdict_kind == "feasible" and e.wall_time_s is not None]
    return min(feasible, key=lambda e: (e.price_usd, e.wall_time_s or math.inf)) if feasible else None


def cheapest_fleet(estimates: Sequence[Estimate]) -> Estimate | None:
    """Without a one-device answer: the tier whose devices together cost least (then the fastest)."""
    fleets = [e for e in estimates if e.verdict_kind == "needs_devices" and e.devices_needed]
    return min(fleets, key=lambda e: (e.price_usd * (e.devices_needed or 1), e.wall_time_s or math.inf),
               default=None)


def matrix_cell(e: Estimate, model: str = "") -> MatrixCell:
    """The matrix cell of an estimate (``model`` names the model in the capable-model matrix)."""
    return MatrixCell(**MatrixCell.fields_of(e), **MatrixCell.outcome_of(e), scenario=e.scenario, profile=e.profile,
                      model=model, configuration=e.configuration, reason=e.reason,
                      batched_decode_tok_s=e.batched_decode_tok_s)


# --- answer first: the capable model per scenario --------------------------------------------------------------


def _capable_name(c: CapableModel) -> str:
    size = fmt.params(c.params)
    if c.active_params and c.params and c.active_params < c.params * 0.95:
        size = f"{size} total, {fmt.params(c.active_params)} active"
    return f"{c.model} ({size}, {c.quant})"


def answer(scenario: ScenarioInfo, capable: CapableModel | None, estimates: Sequence[Estimate]) -> Answer:
    """The answer-first line for one scenario: the cheapest tier that runs its smallest capable model within the
    deadline (or, if no single device does, the cheapest set of devices), with wall time, devices, energy, cost
    and the uncertainty band."""
    items = fmt.plural(scenario.items, scenario.item_unit)
    deadline = fmt.duration(scenario.deadline_hours * 3600)
    base: dict[str, Any] = {"scenario": scenario.name, "title": scenario.title, "capable": capable,
                            "tiers_total": len(estimates),
                            "tiers_feasible": sum(e.verdict_kind == "feasible" for e in estimates)}
    if capable is None:
        return Answer(**base, text=f"{items} within {deadline}: no capability requirement or no open model that "
                                   "meets it is known, so no campaign model was estimated.")
    if capable.model is None:
        return Answer(**base, text=f"{items} within {deadline}: {capable.note or 'no known open model meets'} "
                                   f"({capable.requirement}), so no campaign model was estimated.")
    who = f"{items} within {deadline} with {_capable_name(capable)}, the smallest model that meets " \
          f"{capable.requirement}"
    chosen = cheapest_feasible(estimates)
    fleet = chosen is None
    if chosen is None:
        chosen = cheapest_fleet(estimates)
    if chosen is None:
        return Answer(**base, text=f"{who}: no tier holds this model in memory or replies within the latency "
                                   "limit.")
    band, energy = chosen.wall_time_s_band, chosen.energy_kwh_band
    figures = (f"{fmt.duration(chosen.wall_time_s)} on one device"
               + (f" ({fmt.duration(band.low)} – {fmt.duration(band.high)}, {band.level:.0%} band)" if band else "")
               + f", {fmt.sig(chosen.energy_kwh, 2)} kWh, {fmt.money(chosen.electricity_usd)} of electricity")
    if fleet:
        text = (f"{who}: no single device meets the deadline; the cheapest way is {chosen.devices_needed} x "
                f"{chosen.profile_name} ({fmt.money(chosen.price_usd * (chosen.devices_needed or 1))} of hardware)"
                f" — {figures}.")
    else:
        text = (f"{who}: the cheapest tier that meets the deadline on one device is {chosen.profile_name} "
                f"({fmt.money(chosen.price_usd)}) — {figures}. One device meets the deadline on "
                f"{base['tiers_feasible']} of {len(estimates)} tiers.")
    return Answer(
        **base, **Answer.outcome_of(chosen), tier=chosen.profile, tier_name=chosen.profile_name,
        price_usd=chosen.price_usd, band_level=band.level if band else None,
        energy_kwh_low=energy.low if energy else None, energy_kwh_high=energy.high if energy else None,
        configuration=chosen.configuration, text=text,
    )


# --- measured points and model -----------------------------------------------------------------------------


def point_row(record: RunRecord, i: int) -> PointRow:
    """One measured point of a record, as the report tables show it."""
    p = record.points[i]
    m = p.memory_predicted
    return PointRow(
        label=p.point.label, prompt_tokens=p.point.prompt_tokens, output_tokens=p.point.output_tokens,
        parallel=p.point.parallel, repetitions=len(p.repetitions), summary=p.summary, energy_j=p.energy_j,
        mean_power_w=p.mean_power_w, energy_source=p.energy_source, predicted_ram_bytes=m.ram_bytes,
        predicted_vram_bytes=m.vram_bytes, predicted_placement=m.placement, memory_source=m.source,
        rss_baseline_bytes=p.rss_baseline_bytes, predicted_anon_bytes=m.ram_anon_bytes,
        anon_baseline_bytes=p.anon_baseline_bytes,
    )


def model_info(model: ModelFile) -> ModelInfo:
    """MoE total/active sizes and the synthetic-weights label, where the model's record has them (dense models
    and real weights leave them out)."""
    moe = model.is_moe
    return ModelInfo(
        label=model.label, params=model.params, active_params=model.active_params if moe else None,
        experts=model.n_experts if moe else None, experts_used=model.n_experts_used if moe else None,
        synthetic=model.synthetic, synthetic_note=SYNTHETIC_NOTE if model.synthetic else None,
    )


# --- limitations ---------------------------------------------------------------------------------------------


def limitations(record: RunRecord, estimates: Sequence[Estimate], calibration: Calibration | None,
                safety: SafetySection | None = None, answers: Sequence[Answer] = (),
                ladder: LadderSection | None = None) -> list[str]:
    """What a reader must keep in mind, written from the record and the estimates (not a fixed list)."""
    out: list[str] = ladder.limitations() if ladder else []
    out += _record_limitations(record)
    out += _fit_limitations(record, estimates, calibration, ladder)
    out += _scope_limitations(record, answers)
    out += _safety_limitations(record, safety)
    out += [f"Recorded note: {note}." for note in record.notes]
    return out


def _record_limitations(record: RunRecord) -> list[str]:
    """The run record itself: completeness, synthetic weights, energy source, repetitions and their spread."""
    out = []
    if not record.complete:
        why = f" ({record.interrupted})" if record.interrupted else ""
        out.append(f"The run record is incomplete{why}: only {len(record.points)} measured point(s) are used.")
    if not record.points:
        out.append("The record holds no measured point: nothing on this host was measured, and predictions rest on "
                   "public efficiency factors only.")
    if record.model.synthetic:
        out.append(f"The measured model has synthetic weights ({SYNTHETIC_NOTE}): its speed and memory stand for a "
                   "real model of the same shape, its text and refusals do not.")
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
    return out


def _fit_limitations(record: RunRecord, estimates: Sequence[Estimate], calibration: Calibration | None,
                     ladder: LadderSection | None) -> list[str]:
    """How well the calibration is pinned down, and what the tier predictions rest on."""
    out = []
    if record.points and len({p.point.parallel for p in record.points}) < 3:
        out.append("Fewer than three parallel levels were measured, so the fixed cost per decode step and the "
                   "bandwidth term of the calibration are poorly separated.")
    if calibration is not None and calibration.rel_rms > 0.15 and not (ladder and ladder.anchors):
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
    return out


def _scope_limitations(record: RunRecord, answers: Sequence[Answer]) -> list[str]:
    """Which models the estimates are for."""
    if any(a.capable for a in answers):
        return [f"The campaign answers are for models this host did not run: their shapes come from published "
                f"configurations and their speed from the roofline calibrated on {record.model.label} "
                f"({fmt.params(record.model.params)} parameters); a model's capability is its published "
                "benchmark score, not a measurement of hfp."]
    return [f"Every estimate is for this run's model ({record.model.label}, {fmt.params(record.model.params)} "
            "parameters); no capability requirement was available, so larger models are covered only by "
            "the capability frontier."]


def _safety_limitations(record: RunRecord, safety: SafetySection | None) -> list[str]:
    """Refusal under quantization: absent, too few probes, incomplete, or of another model."""
    if safety is None:
        return ["Refusal under quantization was not measured for this report: run `hfp safety` on a "
                "quantization ladder and pass its record with `hfp report --safety`."]
    out = []
    if safety.n_harmful < 30:
        out.append(f"Refusal rates rest on {safety.n_harmful} harmful probes per configuration: their 95% "
                   "intervals are wide, and small differences between levels are not evidence of a change.")
    if not safety.complete:
        out.append(f"The safety record {safety.record_id} is incomplete.")
    if record.model.name not in " ".join(safety.models):
        out.append(f"The safety record measured {', '.join(safety.models)}, not this run's model "
                   f"({record.model.label}).")
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
    "Capable model: each scenario declares the benchmark level it needs; the smallest open-weight model whose "
    "published score meets it (by active parameters) is estimated from its published shape at the chosen "
    "quantization with the same calibrated model. Scores are carried over with their source, never estimated.",
]


def sources_of(scenarios: Sequence[ScenarioInfo], profiles: Sequence[ProfileInfo], estimates: Sequence[Estimate],
               frontier_points: Sequence[FrontierPoint], capable: Sequence[CapableModel] = ()) -> list[str]:
    """The distinct sources behind the figures: public results, bits per weight, capable models' scores,
    scenarios and profiles."""
    sources: list[str] = []
    used = {s for e in estimates for s in (e.decode_source, e.prefill_source) if s}
    if any("public" in s for s in used) or not estimates:
        by_source: dict[str, list[str]] = {}
        for r in public_rows():
            by_source.setdefault(r.source, []).append(f"{r.device}, {r.model}")
        sources += [f"public llama.cpp results ({len(rows)}: {'; '.join(dict.fromkeys(rows))}): {src}"
                    for src, rows in by_source.items()]
    if frontier_points:
        sources.append(f"bits per weight: {frontier_points[0].size_source}")
    sources += [f"capable model {c.model}: {src}" for c in capable if c.model for src in c.sources]
    sources += [f"scenario {s.name}: {src}" for s in scenarios for src in s.sources]
    sources += [f"profile {p.key}: {src}" for p in profiles for src in p.sources]
    return list(dict.fromkeys(sources))


# --- assembling ------------------------------------------------------------------------------------------------


def _declared(load: Callable[[str], T], name: str) -> T | None:
    """A declared scenario or profile by name, None where it cannot be loaded (the report shows it without)."""
    try:
        return load(name)
    except HfpError:
        return None


def _scenario_info(name: str, estimates: Sequence[Estimate], known: Mapping[str, Scenario]) -> ScenarioInfo:
    e = next(e for e in estimates if e.scenario == name)
    s = known.get(name) or _declared(scenarios_mod.load, name)
    return ScenarioInfo(
        name=name, title=e.scenario_title, mode=e.mode, items=e.items, item_unit=s.item_unit if s else "item",
        deadline_hours=e.deadline_s / 3600, out_of_scope=e.out_of_scope, sources=s.sources if s else [],
    )


def _profile_info(key: str, estimates: Sequence[Estimate], known: Mapping[str, HardwareProfile]) -> ProfileInfo:
    e = next(e for e in estimates if e.profile == key)
    p = known.get(key) or _declared(profiles_mod.load, key)
    return ProfileInfo(
        key=key, name=e.profile_name, tier=e.tier, price_usd=e.price_usd,
        load_w=p.power.load_w if p and p.power else None,
        idle_w=p.power.idle_w if p and p.power else None, sources=p.sources if p else [],
    )


def _capable_label(found: tuple[CapableModel, Sequence[Estimate]] | None) -> str:
    return f"{found[0].model} {found[0].quant}" if found and found[0].model else ""


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
    capable: Mapping[str, tuple[CapableModel, Sequence[Estimate]]] | None = None,
    trend: TrendSection | None = None,
    ladder: LadderSection | None = None,
    concurrency: ConcurrencySection | None = None,
) -> ReportData:
    """Assemble everything a report shows from a record and the estimates derived from it (no plots yet).

    ``capable`` maps a scenario name to its smallest capable model and that model's estimates on every tier
    ("what a campaign would use"); ``trend`` is the capability trend. Both are optional: without them the report
    answers for the measured model only. ``ladder`` (a local ladder calibration beside the tier predictions of its
    sizes, ``report/ladder.py``) and ``concurrency`` (per tier, the concurrency curve of each bulk plan,
    ``report/concurrency.py``) are optional sections.
    """
    scenario_names = list(dict.fromkeys(e.scenario for e in estimates))
    profile_names = list(dict.fromkeys(e.profile for e in estimates))
    s_info = [_scenario_info(n, estimates, scenarios or {}) for n in scenario_names]
    p_info = sorted((_profile_info(n, estimates, profiles or {}) for n in profile_names),
                    key=lambda p: (p.price_usd, p.name))
    by_scenario = {n: [e for e in estimates if e.scenario == n] for n in scenario_names}
    safety_view = safety_section(safety) if safety is not None else None
    tier_scenario = tier_scenario if tier_scenario in by_scenario else (scenario_names[0] if scenario_names else None)
    capable = capable or {}
    answers = [answer(s, *(capable.get(s.name) or (None, []))) for s in s_info] if capable else []
    capable_estimates = [e for s in s_info for e in (capable.get(s.name) or (None, []))[1]]
    capable_models = [c for c, _ in capable.values()]
    return ReportData(
        generated_at=now_iso(),
        title=f"Feasibility report: {record.model.label}"
              + (f" ({SYNTHETIC_NOTE})" if record.model.synthetic else "") + f" on {record.host.cpu_model}",
        record=RecordInfo(id=record.id, created_at=record.created_at, hfp_version=record.hfp_version,
                          llama_cpp_version=record.llama_cpp_version, complete=record.complete,
                          interrupted=record.interrupted, notes=record.notes),
        answers=answers, trend=trend,
        capable_matrix=[matrix_cell(e, _capable_label(capable.get(e.scenario))) for e in capable_estimates],
        headlines=[headline(s, by_scenario[s.name]) for s in s_info],
        scenarios=s_info, profiles=p_info, matrix=[matrix_cell(e) for e in estimates],
        host=record.host, model=record.model, model_info=model_info(record.model), settings=record.settings,
        points=[point_row(record, i) for i in range(len(record.points))],
        tier_scenario=tier_scenario, tiers=by_scenario.get(tier_scenario or "", []),
        frontier=list(frontier_points), safety=safety_view, calibration=calibration, ladder=ladder,
        concurrency=concurrency,
        assumptions=assumption_rows(assumptions or Assumptions()), method=METHOD + (ladder.method() if ladder else []),
        sources=sources_of(s_info, p_info, [*estimates, *capable_estimates], frontier_points, capable_models),
        limitations=limitations(record, estimates, calibration, safety_view, answers, ladder),
        estimates=list(estimates),
        capable_estimates=capable_estimates,
    )
