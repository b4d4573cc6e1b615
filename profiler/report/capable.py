"""The report's view of ``profiler.capability``: each scenario's smallest capable model and the capability trend.

Owns the translation of what ``profiler.capability`` answers (``estimate_capable``, ``trend``) into the report's
``CapableModel`` and ``TrendSection``, and the tier outlook (today's and next year's smallest capable size
against the largest model each tier holds, from the capability frontier). A scenario without a requirement is
left out. It must not choose models itself, estimate scores, or predict performance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from profiler import capability
from profiler.feasibility import Assumptions, Calibration, Estimate, FrontierPoint, ModelSpec
from profiler.profiles import HardwareProfile
from profiler.report.data import CapableModel, TierOutlook, TrendLevel, TrendPoint, TrendSection
from profiler.scenarios import Scenario


def capable_estimates(
    scenarios: Mapping[str, Scenario], profiles: Mapping[str, HardwareProfile], quant: str,
    assumptions: Assumptions | None = None, calibration: Calibration | None = None, as_of: str | None = None,
) -> dict[str, tuple[CapableModel, list[Estimate]]]:
    """Each scenario's smallest capable model (``capability.estimate_capable``) and its estimates on every tier
    with this run's calibration. Scenarios without a capability requirement are left out."""
    out: dict[str, tuple[CapableModel, list[Estimate]]] = {}
    for name, scenario in scenarios.items():
        req = getattr(scenario, "capability", None)
        if req is None:
            continue
        [(choice, estimates)] = capability.estimate_capable({name: scenario}, profiles, quant, assumptions,
                                                            calibration, as_of)
        ref = capability.find_model(choice.model) if choice.model else None
        bench = req.benchmark or ""
        note = ""
        if choice.smallest_active and choice.smallest_active != choice.model:
            note = f"smallest by active parameters: {choice.smallest_active}"
        if choice.smaller_without_shape:
            note += ("; " if note else "") + "smaller, shape unknown: " + ", ".join(choice.smaller_without_shape)
        sources = [s for s in (choice.score_source, ref.shape_source if ref else None) if s]
        out[name] = (CapableModel(
            scenario=name, requirement=choice.requirement, rationale=req.rationale, model=choice.model,
            params=choice.params_total_b * 1e9 if choice.params_total_b else None,
            active_params=choice.params_active_b * 1e9 if choice.params_active_b else None,
            released=ref.release_date.isoformat() if ref else None,
            score=f"{bench} {choice.score:g}" if choice.score is not None else None, quant=choice.quant,
            as_of=choice.as_of.isoformat(), note=note if choice.model else choice.note, sources=sources,
        ), estimates)
    return out


def trend_section(frontier_points: Sequence[FrontierPoint], as_of: str | None = None,
                  quant: str = "Q4_K_M") -> TrendSection:
    """The smallest parameter count reaching each level over time, the pooled yearly decline with its interval
    (compared with Puri's figure), each level's size extrapolated a year ahead, and for each tier whether the
    level's smallest model fits today and next year (largest model it holds at ``quant``, from the frontier)."""
    tr = capability.trend(as_of=as_of)
    rate = tr.rate
    next_year = tr.as_of + dt.timedelta(days=365)
    levels: list[TrendLevel] = []
    points: list[TrendPoint] = []
    for lt in tr.levels:
        lv = lt.level
        points += [TrendPoint(level=lv.name, date=s.date.isoformat(), model=s.model, params=s.params_b * 1e9,
                              score=s.score) for s in lt.steps]
        last = lt.steps[-1] if lt.steps else None
        ext = tr.extrapolate(lv.name, next_year) if last and rate.fold_per_year else None
        levels.append(TrendLevel(
            level=lv.name, requirement=f"{lv.benchmark} >= {lv.min_score:g}", meaning=lv.meaning,
            factor_per_year=lt.fold_per_year, n_points=len(lt.steps), latest_model=last.model if last else None,
            latest_params=last.params_b * 1e9 if last else None,
            next_year_date=ext.on.isoformat() if ext else None, next_year_params=ext.params_b * 1e9 if ext else None,
            next_year_low=ext.low_b * 1e9 if ext else None, next_year_high=ext.high_b * 1e9 if ext else None,
        ))
    quants = list(dict.fromkeys(p.quant for p in frontier_points))
    q = quant if quant in quants else (quants[len(quants) // 2] if quants else None)
    outlook = [
        TierOutlook(profile=p.profile, profile_name=p.profile_name, level=lv.level, max_params=p.max_params,
                    fits_now=bool(p.max_params and lv.latest_params and lv.latest_params <= p.max_params),
                    fits_next_year=bool(p.max_params and lv.next_year_params and lv.next_year_params <= p.max_params))
        for p in frontier_points if p.quant == q for lv in levels if lv.latest_params
    ]
    puri = tr.puri
    return TrendSection(
        as_of=tr.as_of.isoformat(), by=rate.by, points=points, levels=levels, factor_per_year=rate.fold_per_year,
        factor_low=rate.bootstrap_low, factor_high=rate.bootstrap_high,
        interval="95% bootstrap over models", method=rate.method, n_points=rate.n_steps, n_levels=rate.n_levels,
        published=f"{puri['statement']} ({puri['source']})",
        outlook_quant=q, outlook=outlook, source=tr.data_source,
    )


def capable_inputs(scenarios: Mapping[str, Scenario], quant: str, as_of: str | None = None) -> dict[str, ModelSpec]:
    """Each scenario's smallest capable model as the spec ``capability.estimate_capable`` estimates (for the
    concurrency curves of its plans); scenarios without a requirement or a known model are left out."""
    out: dict[str, ModelSpec] = {}
    for name, scenario in scenarios.items():
        if getattr(scenario, "capability", None) is None:
            continue
        _, ref = capability.choose(scenario, quant, as_of)
        if ref is not None:
            out[name] = capability.model_spec(ref, quant, context_length=max(8192, scenario.context_high()))
    return out
