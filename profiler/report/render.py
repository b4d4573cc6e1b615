"""Building and writing a report: estimates from a record, ``ReportData``, plots, then the two templates.

Owns the pipeline ``build`` (load the record; ask ``profiler.feasibility`` for calibration, estimates and the
frontier; ask ``profiler.capability`` for each scenario's smallest capable model and the capability trend) and
``render`` (``data.report_data`` -> ``plots`` -> ``templates/report.{html,md}.j2``), the section headings in reading
order, and writing ``report.html``, ``report.md``, ``plots/*.png`` and ``summary.json`` into one folder. Data flows
one way: records and estimates -> report data -> plots and templates; no module of ``profiler.report`` imports
this one. It must not measure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from profiler import feasibility
from profiler import profiles as profiles_mod
from profiler import scenarios as scenarios_mod
from profiler.errors import HfpError
from profiler.feasibility import Assumptions, Calibration, Estimate, FrontierPoint
from profiler.feasibility.ladder import LadderResult
from profiler.files import write_atomic
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord
from profiler.report import capable as capable_mod
from profiler.report import concurrency, plots, templating, view
from profiler.report import ladder as ladder_mod
from profiler.report.concurrency import ConcurrencySection
from profiler.report.data import (
    ANSWER_INTRO,
    HEADLINE_INTRO,
    CapableModel,
    Figure,
    ReportData,
    ReportPaths,
    TrendSection,
    report_data,
)
from profiler.report.ladder import LadderSection
from profiler.report.plots import Plot
from profiler.safety import SafetyRecord
from profiler.scenarios import Scenario

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.11+; annotations only

REPORTS_DIR = Path("reports")
# The quantization a campaign's capable model is estimated at (the usual llama.cpp default for local use).
CAMPAIGN_QUANT = "Q4_K_M"
CapableInput = Mapping[str, tuple[CapableModel, Sequence[Estimate]]]


def headings(data: ReportData) -> dict[str, str]:
    """Section id -> heading, in reading order; the trend and refusal sections only when the report has them."""
    out = {"answer": "What a campaign would use: answer per scenario"}
    if data.trend is not None:
        out["trend"] = "Capability trend: smallest model reaching each level"
    out |= {
        "measured-answer": f"What you measured: answer per scenario for {data.model.label}",
        "matrix": "Feasibility matrix of the measured model: scenario x hardware tier",
        "measured": "Host, model and settings measured",
        "throughput": "Measured throughput vs parallel sequences",
        "latency": "Latency distribution",
        "memory": "Memory: predicted vs measured",
        "energy": "Energy",
        "tiers": "Predicted decode rate per hardware tier",
        "concurrency": "Concurrency: aggregate decode rate vs parallel sequences, per tier",
        "ladder": "Local ladder: synthetic sizes measured here vs predicted per tier",
        "frontier": "Capability frontier",
    }
    if data.concurrency is None:
        out.pop("concurrency")
    if data.safety is not None:
        out["safety"] = "Refusal under quantization"
    out |= {"method": "Assumptions, method and sources", "limitations": "Limitations"}
    return out


def make_plots(record: RunRecord, data: ReportData) -> list[Plot]:
    """Every figure of a report, in reading order (figures without data are left out)."""
    found = [plots.trend(data.trend) if data.trend else None, *plots.record_plots(record),
             plots.concurrency(data.concurrency) if data.concurrency else None,
             plots.ladder(data.ladder) if data.ladder else None, plots.frontier(data.frontier),
             plots.refusal(data.safety) if data.safety else None]
    return [p for p in found if p is not None]


def write_plots(plot_list: Sequence[Plot], out_dir: Path) -> list[Path]:
    """Write each plot as ``out_dir/plots/<name>.png``."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in plot_list:
        path = plot_dir / f"{p.name}.png"
        write_atomic(path, p.png)
        paths.append(path)
    return paths


def default_out_dir(record: RunRecord) -> Path:
    """``reports/<record id>/``."""
    return REPORTS_DIR / record.id


def documents(data: ReportData, plot_list: Sequence[Plot]) -> tuple[str, str]:
    """The report as (HTML, Markdown), from the two templates and the same tables."""
    heads = headings(data)
    context: dict[str, Any] = {
        "data": data, "t": view.tables(data), "plots": {p.name: p for p in plot_list}, "headings": heads,
        "sections": list(heads.items()), "texts": {"answer_intro": ANSWER_INTRO, "headline_intro": HEADLINE_INTRO},
    }
    return templating.render("report.html.j2", **context), templating.render("report.md.j2", **context)


def _rounded(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float) and value and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def summary_json(data: ReportData) -> str:
    """``summary.json``: the report data as compact JSON, floats to 6 significant digits (far beyond any
    figure's precision; it keeps the sample report small enough to mail)."""
    return json.dumps(_rounded(data.model_dump(mode="json")), ensure_ascii=False, separators=(",", ":")) + "\n"


class ReportParts(TypedDict, total=False):
    """The optional parts ``render`` hands on to ``data.report_data`` (see there)."""

    frontier_points: Sequence[FrontierPoint]
    calibration: Calibration | None
    assumptions: Assumptions | None
    scenarios: Mapping[str, Scenario] | None
    profiles: Mapping[str, HardwareProfile] | None
    tier_scenario: str | None
    capable: CapableInput | None
    trend: TrendSection | None
    ladder: LadderSection | None
    concurrency: ConcurrencySection | None


def render(record: RunRecord, estimates: Sequence[Estimate], out_dir: Path | str | None = None,
           safety: SafetyRecord | Path | str | None = None, **parts: Unpack[ReportParts]) -> ReportPaths:
    """Write ``report.html`` (self-contained), ``report.md`` with ``plots/*.png`` and ``summary.json``."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(record)
    if safety is not None and not isinstance(safety, SafetyRecord):
        safety = SafetyRecord.load(safety)
    data = report_data(record, estimates, safety=safety, **parts)
    plot_list = make_plots(record, data)
    data.figures = [Figure(name=p.name, title=p.title, source=p.source, alt=p.alt, file=f"plots/{p.name}.png")
                    for p in plot_list]
    html, markdown = documents(data, plot_list)
    out.mkdir(parents=True, exist_ok=True)
    plot_paths = write_plots(plot_list, out)
    paths = ReportPaths(out_dir=out, html=out / "report.html", markdown=out / "report.md",
                        summary=out / "summary.json", plots=plot_paths)
    write_atomic(paths.html, html)
    write_atomic(paths.markdown, markdown)
    write_atomic(paths.summary, summary_json(data))
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
    quant: str = CAMPAIGN_QUANT,
    as_of: str | None = None,
    ladder: Path | str | None = "auto",
) -> ReportPaths:
    """Load a run record (or take one), derive calibration, estimates, frontier, capable models and trend from it,
    and render.

    ``scenarios`` and ``profiles`` are names (file stems) or YAML paths; ``None`` means all that ship with hfp.
    ``safety`` (an ``hfp safety`` record or its path) adds the refusal-under-quantization section. ``quant`` is
    the quantization the capable models are estimated at, ``as_of`` (ISO date) the date they are chosen at.
    ``ladder`` is a ``hfp calibrate --ladder`` record: ``"auto"`` the newest of the run's host, ``None`` or
    ``"none"`` none; when it was measured on the run's host and backend its fit is the report's calibration. The
    out folder defaults to ``reports/<record id>/``.
    """
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
    ladder_result, ladder_path = _ladder(record, ladder)
    if ladder_result is not None and ladder_mod.anchors_report(ladder_result, record):
        calibration = ladder_result.calibration
    estimates = feasibility.estimate(record, profiles=prof, scenarios=scen, assumptions=a, calibration=calibration)
    frontier_points = feasibility.frontier(profiles=prof, assumptions=a, calibration=calibration)
    capable = capable_mod.capable_estimates(scen, prof, quant, a, calibration, as_of)
    trend = capable_mod.trend_section(frontier_points, as_of, quant)
    ladder_view = None
    if ladder_result is not None and ladder_path is not None:
        ladder_view = ladder_mod.ladder_section(
            ladder_result, ladder_path, record, ladder_mod.anchors_report(ladder_result, record),
            ladder_mod.ladder_estimates(ladder_result, prof, a, calibration))
    curves = _concurrency(record, estimates, capable, scen, prof, a, calibration, quant, as_of)
    return render(record, estimates, out_dir, frontier_points=frontier_points, calibration=calibration,
                  assumptions=a, scenarios=scen, profiles=prof, safety=safety, capable=capable, trend=trend,
                  ladder=ladder_view, concurrency=curves)


def _ladder(record: RunRecord, ladder: Path | str | None) -> tuple[LadderResult | None, Path | None]:
    """The ladder record a report uses and its path (None, None without one)."""
    path = ladder_mod.find_ladder(record, ladder)
    return (ladder_mod.load_ladder(path), path) if path is not None else (None, None)


def _concurrency(record: RunRecord, estimates: Sequence[Estimate], capable: CapableInput,
                 scen: Mapping[str, Scenario], prof: Mapping[str, HardwareProfile], a: Assumptions,
                 calibration: Calibration | None, quant: str, as_of: str | None) -> ConcurrencySection | None:
    """Per tier, the concurrency curve of each bulk plan: the capable models' plans when the report has them,
    else the measured model's."""
    if capable:
        plans = [e for _, found in capable.values() for e in found]
        inputs = capable_mod.capable_inputs({n: s for n, s in scen.items() if n in capable}, quant, as_of)
        return concurrency.concurrency_section(plans, scen, inputs, prof, a, calibration, "capable")
    return concurrency.concurrency_section(estimates, scen, {n: record for n in scen}, prof, a, calibration,
                                           "measured")
