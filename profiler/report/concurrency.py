"""The report's concurrency curves: per tier, the aggregate decode rate as the number of sequences decoded
together (B) grows, with its band, and the B each bulk campaign plan uses.

Owns the ``ConcurrencySection`` the templates and the plot show and the B levels a curve is drawn at; each curve
is ``profiler.feasibility.concurrency_curve`` (the batched step-time model) at the scenario's mean context, and a
B past the tier's memory limit is left off. The caller passes the plans (estimates) and the model each scenario's
plans are for (the capable model's spec, or the run record), so this module never chooses models. It must not
measure or draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import Field

from profiler import feasibility
from profiler.feasibility import Assumptions, Calibration, Estimate, ModelInput
from profiler.profiles import HardwareProfile
from profiler.scenarios import Scenario
from profiler.schema.base import Strict

CURVE_SOURCE = "predicted: batched step-time model at each B (profiler.feasibility.concurrency_curve)"


@dataclass(frozen=True)
class CurvePoint:
    """The aggregate decode rate at B sequences (tokens/s, all sequences together) with its band."""

    batch: int
    aggregate_tok_s: float
    low: float
    high: float


class Curve(Strict):
    """One tier's curve for one scenario's plan, as parallel lists (B, aggregate tok/s, band low and high; only
    the B that fit in the tier's memory), the context it is drawn at, and the plan's own B and rate."""

    profile: str
    scenario: str
    context: int = Field(description="tokens of context per sequence the curve is drawn at (the scenario's mean)")
    plan_batch: int | None
    plan_tok_s: float | None = None
    batch: list[int]
    aggregate_tok_s: list[float]
    low: list[float]
    high: list[float]
    source: str

    @property
    def points(self) -> list[CurvePoint]:
        """The curve as points."""
        return [CurvePoint(*x) for x in zip(self.batch, self.aggregate_tok_s, self.low, self.high)]


class ConcurrencySection(Strict):
    """Every tier's curves for the bulk campaign plans, with the tiers' names and each scenario's model."""

    plans: str = Field(description="'capable' (what a campaign would use) or 'measured' (the run's model)")
    band_level: float | None = None
    levels: list[int]
    profile_names: dict[str, str]
    models: dict[str, str] = Field(description="scenario -> the model its plans are for")
    curves: list[Curve]
    source: str = CURVE_SOURCE

    def profiles(self) -> list[tuple[str, str]]:
        """(key, name) of the tiers with a curve, in the curves' order."""
        return [(k, self.profile_names.get(k, k)) for k in dict.fromkeys(c.profile for c in self.curves)]

    def scenarios(self) -> list[str]:
        """The scenarios with a curve."""
        return list(dict.fromkeys(c.scenario for c in self.curves))

    def curve(self, profile: str, scenario: str) -> Curve | None:
        """The curve of a (tier, scenario) pair."""
        return next((c for c in self.curves if c.profile == profile and c.scenario == scenario), None)


def levels(max_parallel: int) -> list[int]:
    """1, 2, 4 … up to ``max_parallel`` (included)."""
    out, b = [], 1
    while b < max_parallel:
        out.append(b)
        b *= 2
    return [*out, max_parallel]


def curve(model: ModelInput, scenario: Scenario, profile_key: str, profile: HardwareProfile,
          levels_: Sequence[int], assumptions: Assumptions, calibration: Calibration | None
          ) -> tuple[list[CurvePoint], str, float]:
    """The curve of one (model, scenario, tier) from ``feasibility.concurrency_curve`` (the batched step-time
    model): the points that fit in memory, the curve's source label and the context it is drawn at."""
    c = feasibility.concurrency_curve(model, scenario, profile, profile_key, assumptions, calibration,
                                      levels=levels_)
    points = [CurvePoint(p.batch, p.aggregate_tok_s, p.low, p.high) for p in c.points if p.fits]
    return points, c.source, c.context


def concurrency_section(plans: Sequence[Estimate], scenarios: Mapping[str, Scenario],
                        models: Mapping[str, ModelInput], profiles: Mapping[str, HardwareProfile],
                        assumptions: Assumptions, calibration: Calibration | None,
                        kind: str = "capable") -> ConcurrencySection | None:
    """The curve of every bulk plan in ``plans`` (one estimate per scenario and tier) whose scenario's model is in
    ``models`` (scenario name -> the model its plans are for), with the plan's B. None when no plan is bulk."""
    chosen = [e for e in plans if e.mode == "bulk" and e.scenario in models and e.scenario in scenarios
              and e.profile in profiles]
    if not chosen:
        return None
    lv = levels(assumptions.max_parallel)
    curves = []
    for e in chosen:
        points, source, context = curve(models[e.scenario], scenarios[e.scenario], e.profile, profiles[e.profile], lv,
                                        assumptions, calibration)
        curves.append(Curve(
            profile=e.profile, scenario=e.scenario, context=round(context), plan_batch=e.parallel if e.fits else None,
            plan_tok_s=e.batched_decode_tok_s, batch=[p.batch for p in points],
            aggregate_tok_s=[p.aggregate_tok_s for p in points], low=[p.low for p in points],
            high=[p.high for p in points], source=source))
    level = next((e.decode_tok_s_band.level for e in plans if e.decode_tok_s_band), None)
    return ConcurrencySection(plans=kind, band_level=level, levels=lv,
                              profile_names={e.profile: e.profile_name for e in chosen},
                              models={e.scenario: e.model for e in chosen}, curves=curves)
