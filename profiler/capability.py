"""Which open model is good enough for a campaign: published capability data, requirements and the size trend.

Owns the capability data (``profiler/data/open_models.csv``: open-weight instruction models with release date,
parameter counts, architecture shape, licence and published benchmark scores, every figure group with its
source), the requirement a scenario declares (``capability:`` in ``scenarios/*.yaml``, a benchmark and a
minimum score or a named level), the smallest capable model per requirement as of a date (by total and by
active parameters), the model spec ``hfp estimate --model capable`` uses, and the trend of the smallest
parameter count reaching each level over time with a fitted yearly rate of decline.

Scores are carried over from their sources and never estimated: a model without a published score for the
requirement's benchmark is not capable by this data (it may still be). Vendor-reported scores and leaderboard
scores sit in separate columns and are never mixed within one requirement. It must not measure or print.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from profiler import feasibility
from profiler.config import validated
from profiler.errors import ConfigError
from profiler.feasibility import Assumptions, Calibration, Estimate, ModelSpec
from profiler.feasibility.spec import bits_per_weight
from profiler.schema.base import Strict
from profiler.schema.capability import BENCHMARKS as BENCHMARKS
from profiler.schema.capability import LEVELS as LEVELS
from profiler.schema.capability import Benchmark as Benchmark
from profiler.schema.capability import CapabilityRequirement as CapabilityRequirement
from profiler.schema.capability import Level as Level

if TYPE_CHECKING:
    from profiler.profiles import HardwareProfile
    from profiler.scenarios import Scenario

DATA_FILE = "open_models.csv"

PURI_FIGURE = {
    "fold_per_year": 10.0,
    "statement": "the model size needed to achieve competitive LLM benchmarks has decreased by more than 10X over "
                 "the past year (benchmark results of over 5,000 models hosted on Hugging Face)",
    "source": "Puri, 'Small models, big threats', arXiv 2601.21365 (abstract), https://arxiv.org/abs/2601.21365",
}


class OpenModel(Strict):
    """One row of the capability data; empty cells are ``None`` (not published or not found)."""

    model: str = Field(min_length=1)
    hf_repo: str | None = None
    release_date: date
    params_total_b: float = Field(gt=0.05, le=100)
    params_active_b: float | None = Field(default=None, gt=0.01, le=100)
    params_active_basis: str | None = None
    moe: bool
    layers: int | None = Field(default=None, gt=0, le=200)
    hidden_size: int | None = Field(default=None, gt=0)
    ffn_size: int | None = Field(default=None, gt=0)
    shared_ffn_size: int | None = Field(default=None, gt=0)
    n_heads: int | None = Field(default=None, gt=0)
    kv_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0, le=1024)
    experts: int | None = Field(default=None, gt=1)
    experts_used: int | None = Field(default=None, gt=0)
    sliding_window: int | None = Field(default=None, gt=0)
    vocab: int | None = Field(default=None, gt=1000, le=1_000_000)
    tied_embeddings: bool | None = None
    licence: str = Field(min_length=1)
    meta_source: str = Field(min_length=10)
    shape_source: str | None = None
    vendor_mmlu: float | None = Field(default=None, ge=0, le=100)
    vendor_mmlu_pro: float | None = Field(default=None, ge=0, le=100)
    vendor_ifeval: float | None = Field(default=None, ge=0, le=100)
    vendor_source: str | None = None
    olb2_ifeval: float | None = Field(default=None, ge=0, le=100)
    olb2_mmlu_pro: float | None = Field(default=None, ge=0, le=100)
    olb2_bbh: float | None = Field(default=None, ge=0, le=100)
    olb2_source: str | None = None
    arena_elo: float | None = Field(default=None, ge=700, le=2000)
    arena_source: str | None = None
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}
        return data

    @field_validator("release_date")
    @classmethod
    def _date_range(cls, value: date) -> date:
        if not date(2023, 1, 1) <= value <= date.today():
            raise ValueError(f"release date {value} is outside 2023-01-01 .. today")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OpenModel:
        groups = {
            "shape_source": ("layers", "hidden_size", "ffn_size", "n_heads", "kv_heads", "head_dim", "experts",
                             "vocab"),
            "vendor_source": ("vendor_mmlu", "vendor_mmlu_pro", "vendor_ifeval"),
            "olb2_source": ("olb2_ifeval", "olb2_mmlu_pro", "olb2_bbh"),
            "arena_source": ("arena_elo",),
        }
        for source, fields in groups.items():
            if any(getattr(self, f) is not None for f in fields) and not getattr(self, source):
                raise ValueError(f"{', '.join(fields)} given without {source}")
        if self.params_active_b is not None:
            if self.params_active_b > self.params_total_b * 1.001:
                raise ValueError("params_active_b exceeds params_total_b")
            if not self.params_active_basis:
                raise ValueError("params_active_b given without params_active_basis")
        if (self.experts is None) != (self.experts_used is None):
            raise ValueError("give experts and experts_used together")
        if self.experts is not None and self.experts_used is not None and self.experts_used > self.experts:
            raise ValueError("experts_used exceeds experts")
        if self.experts is not None and not self.moe:
            raise ValueError("experts given but moe is false")
        if not self.moe and self.params_active_b is not None and abs(self.params_active_b - self.params_total_b) > 1e-6:
            raise ValueError("a dense model's active parameters equal its total")
        return self

    @property
    def total_params(self) -> float:
        """Total parameters (not billions)."""
        return self.params_total_b * 1e9

    @property
    def active_params(self) -> float | None:
        """Parameters used per token (equal to the total for dense models); ``None`` when not known."""
        return self.params_active_b * 1e9 if self.params_active_b is not None else None

    def score(self, benchmark: str) -> float | None:
        """The published score on ``benchmark`` (a column name), or ``None``."""
        value = getattr(self, benchmark)
        return float(value) if value is not None else None

    def score_source(self, benchmark: str) -> str | None:
        """Where the score on ``benchmark`` was published."""
        return getattr(self, benchmark.split("_")[0] + "_source")

    @property
    def has_shape(self) -> bool:
        """Whether the shape is complete enough to predict memory and speed (layers, KV heads, head dim, vocab)."""
        return None not in (self.layers, self.kv_heads, self.head_dim, self.vocab)

    def params_from_shape(self) -> float | None:
        """Parameters computed from the shape: embeddings (x2 unless tied) + layers x (attention + gated MLP over
        all experts + shared expert); ``None`` without hidden and FFN sizes. Norms and biases are left out."""
        if None in (self.layers, self.hidden_size, self.ffn_size, self.n_heads, self.kv_heads, self.head_dim,
                    self.vocab, self.tied_embeddings):
            return None
        h, hd = self.hidden_size or 0, self.head_dim or 0
        embeddings = (self.vocab or 0) * h * (1 if self.tied_embeddings else 2)
        attention = 2 * h * (self.n_heads or 0) * hd + 2 * h * (self.kv_heads or 0) * hd
        mlp = 3 * h * (self.ffn_size or 0) * (self.experts or 1) + 3 * h * (self.shared_ffn_size or 0)
        return float(embeddings + (self.layers or 0) * (attention + mlp))


class CapableSet(Strict):
    """The open models meeting a requirement as of a date, smallest first by total and by active parameters."""

    requirement: CapabilityRequirement
    as_of: date
    by_total: list[OpenModel]
    by_active: list[OpenModel]

    @property
    def smallest_total(self) -> OpenModel | None:
        """The capable model with the fewest total parameters (what memory must hold)."""
        return self.by_total[0] if self.by_total else None

    @property
    def smallest_active(self) -> OpenModel | None:
        """The capable model with the fewest active parameters (what each token must read)."""
        return self.by_active[0] if self.by_active else None

    @property
    def reference(self) -> OpenModel | None:
        """The model estimates use: the smallest by total parameters whose shape is known."""
        return next((m for m in self.by_total if m.has_shape), None)


@lru_cache(maxsize=1)
def _shipped_text() -> str:
    return (resources.files("profiler") / "data" / DATA_FILE).read_text(encoding="utf-8")


def parse_models(text: str, origin: str = DATA_FILE) -> list[OpenModel]:
    """Validate CSV text as capability data; a bad row is a ``ConfigError`` naming the row and the field."""
    rows: list[OpenModel] = []
    reader = csv.DictReader(io.StringIO(text))
    expected = set(OpenModel.model_fields)
    if reader.fieldnames is None or set(reader.fieldnames) != expected:
        got = set(reader.fieldnames or [])
        raise ConfigError(f"{origin}: columns differ from the schema (missing: {sorted(expected - got)}, "
                          f"unknown: {sorted(got - expected)})")
    for i, row in enumerate(reader, start=2):
        rows.append(validated(OpenModel, row, f"{origin} line {i} ({row.get('model')!r})"))
    names = [r.model for r in rows]
    if len(set(names)) != len(names):
        raise ConfigError(f"{origin}: duplicate model names {sorted({n for n in names if names.count(n) > 1})}")
    return rows


@lru_cache(maxsize=1)
def _shipped_models() -> tuple[OpenModel, ...]:
    return tuple(parse_models(_shipped_text()))


def load_models() -> list[OpenModel]:
    """The shipped capability data, validated (cached)."""
    return list(_shipped_models())


def find_model(name: str, models: Sequence[OpenModel] | None = None) -> OpenModel:
    """A row by its model name (case-insensitive)."""
    for m in models if models is not None else load_models():
        if m.model.lower() == name.lower():
            return m
    raise ConfigError(f"no model {name!r} in the capability data")


def requirement_for(scenario: Scenario) -> CapabilityRequirement:
    """The scenario's declared requirement; a scenario without one is a ``ConfigError``."""
    req = getattr(scenario, "capability", None)
    if req is None:
        raise ConfigError(f"scenario {scenario.name!r} declares no capability requirement (add a 'capability:' "
                          "block with a level or a benchmark and min_score)")
    return req  # type: ignore[no-any-return]


def _as_date(value: date | str | None) -> date:
    if value is None:
        return date.today()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def capable(requirement: CapabilityRequirement, as_of: date | str | None = None,
            models: Sequence[OpenModel] | None = None) -> CapableSet:
    """The models released by ``as_of`` (default today) with a published score meeting ``requirement``."""
    day = _as_date(as_of)
    bench, floor = requirement.benchmark or "", requirement.min_score or 0.0
    pool = [m for m in (models if models is not None else load_models())
            if m.release_date <= day and (s := m.score(bench)) is not None and s >= floor]
    by_total = sorted(pool, key=lambda m: (m.params_total_b, m.release_date, m.model))
    by_active = sorted((m for m in pool if m.params_active_b is not None),
                       key=lambda m: (m.params_active_b or 0.0, m.params_total_b, m.release_date, m.model))
    return CapableSet(requirement=requirement, as_of=day, by_total=by_total, by_active=by_active)


def capable_for(scenario: Scenario, as_of: date | str | None = None,
                models: Sequence[OpenModel] | None = None) -> CapableSet:
    """``capable`` for a scenario's declared requirement."""
    return capable(requirement_for(scenario), as_of, models)


def model_spec(model: OpenModel, quant: str = "Q4_K_M", context_length: int | None = None) -> ModelSpec:
    """A ``feasibility.ModelSpec`` with this row's shape at a llama.cpp quantization (weights from its bits per
    weight). MoE fields are filled where the spec model has them."""
    if not model.has_shape:
        raise ConfigError(f"{model.model}: the capability data has no shape for it (layers, kv heads, head dim, vocab)")
    fields: dict[str, Any] = dict(
        name=model.model, params=model.total_params, quant=quant, layers=model.layers,
        kv_heads=model.kv_heads, head_dim=model.head_dim, n_heads=model.n_heads, n_embd=model.hidden_size,
        n_ff=model.ffn_size, vocab=model.vocab,
    )
    if context_length is not None:
        fields["context_length"] = context_length
    moe = {"active_params": model.active_params, "experts": model.experts, "experts_used": model.experts_used,
           "sliding_window": model.sliding_window}
    fields.update({k: v for k, v in moe.items() if v is not None and k in ModelSpec.model_fields})
    return validated(ModelSpec, fields, model.model)


class CapableChoice(Strict):
    """The model a scenario's estimate uses and why."""

    scenario: str
    requirement: str
    as_of: date
    quant: str
    model: str | None
    params_total_b: float | None
    params_active_b: float | None
    score: float | None
    score_source: str | None
    smaller_without_shape: list[str] = Field(default_factory=list, description="capable, smaller, shape unknown")
    smallest_active: str | None = None
    note: str


def choose(scenario: Scenario, quant: str = "Q4_K_M", as_of: date | str | None = None,
           models: Sequence[OpenModel] | None = None) -> tuple[CapableChoice, OpenModel | None]:
    """The reference model of a scenario: its smallest capable model (by total parameters) with a known shape."""
    cs = capable_for(scenario, as_of, models)
    ref = cs.reference
    bench = cs.requirement.benchmark or ""
    smaller = [m.model for m in cs.by_total if ref is None or m.params_total_b < ref.params_total_b]
    if ref is None:
        note = "no open model in the capability data meets the requirement by this date" if not cs.by_total else \
            "capable models exist but none has a known shape"
    else:
        note = "smallest capable model by total parameters with a known shape"
    return CapableChoice(
        scenario=scenario.name, requirement=cs.requirement.describe(), as_of=cs.as_of, quant=quant.upper(),
        model=ref.model if ref else None, params_total_b=ref.params_total_b if ref else None,
        params_active_b=ref.params_active_b if ref else None, score=ref.score(bench) if ref else None,
        score_source=ref.score_source(bench) if ref else None, smaller_without_shape=smaller,
        smallest_active=cs.smallest_active.model if cs.smallest_active else None, note=note,
    ), ref


def estimate_capable(
    scenarios: Mapping[str, Scenario], profiles: Mapping[str, HardwareProfile] | None = None,
    quant: str = "Q4_K_M", assumptions: Assumptions | None = None, calibration: Calibration | None = None,
    as_of: date | str | None = None,
) -> list[tuple[CapableChoice, list[Estimate]]]:
    """Each scenario estimated with its smallest capable open model's shape at ``quant`` on every profile.

    The capability data does not record context lengths, so the spec holds at least the scenario's context."""
    bits_per_weight(quant)  # an unknown quantization is one error up front, not one per scenario
    out: list[tuple[CapableChoice, list[Estimate]]] = []
    for scenario in scenarios.values():
        choice, ref = choose(scenario, quant, as_of)
        if ref is None:
            out.append((choice, []))
            continue
        spec = model_spec(ref, quant, context_length=max(8192, scenario.context_high()))
        out.append((choice, feasibility.estimate(spec, profiles, {scenario.name: scenario}, assumptions,
                                                 calibration)))
    return out


# --- the trend ----------------------------------------------------------------------------------------------

_EPOCH = date(2023, 1, 1)
# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (standard table); 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _years(d: date) -> float:
    return (d - _EPOCH).days / 365.25


class FrontierStep(Strict):
    """A model that lowered the smallest parameter count reaching a level when it was released."""

    date: date
    model: str
    params_b: float
    score: float


class LevelTrend(Strict):
    """The smallest parameter count reaching one level over time and the level's own fitted rate."""

    level: Level
    by: Literal["total", "active"]
    steps: list[FrontierStep]
    fold_per_year: float | None = Field(description="10^(-slope of log10 params per year); None with < 2 steps")


class RateFit(Strict):
    """The pooled yearly rate of decline (one slope, an intercept per level) with its intervals."""

    by: Literal["total", "active"]
    fold_per_year: float | None
    bootstrap_low: float | None
    bootstrap_high: float | None
    regression_low: float | None
    regression_high: float | None
    n_steps: int
    n_levels: int
    n_boot: int
    method: str


class Extrapolation(Strict):
    """The smallest parameter count reaching a level on a future date, from the pooled rate (an extrapolation)."""

    level: str
    on: date
    params_b: float
    low_b: float
    high_b: float
    label: str = "extrapolation: current frontier x pooled fitted rate; not a measurement"


class Trend(Strict):
    """Frontier steps per level, the pooled rate with intervals, and Puri's published figure for comparison."""

    as_of: date
    levels: list[LevelTrend]
    rate: RateFit
    puri: dict[str, Any]
    data_source: str = f"profiler/data/{DATA_FILE}"

    def extrapolate(self, level: str, on: date | str) -> Extrapolation:
        """Where the level's frontier would be on ``on`` if it kept falling at the pooled rate (interval from the
        bootstrap interval of the rate)."""
        lt = next((t for t in self.levels if t.level.name == level), None)
        if lt is None or not lt.steps or self.rate.fold_per_year is None:
            raise ConfigError(f"no trend for level {level!r}")
        day = _as_date(on)
        last = lt.steps[-1]
        dt = max(_years(day) - _years(self.as_of), 0.0)
        rate, lo, hi = self.rate.fold_per_year, self.rate.bootstrap_low, self.rate.bootstrap_high
        return Extrapolation(level=level, on=day, params_b=last.params_b / rate ** dt,
                             low_b=last.params_b / (hi or rate) ** dt, high_b=last.params_b / (lo or rate) ** dt)


def frontier_steps(models: Iterable[OpenModel], level: Level, by: Literal["total", "active"] = "total",
                   as_of: date | None = None) -> list[FrontierStep]:
    """Models (in release order) that each set a new smallest parameter count reaching ``level``."""
    day = as_of or date.today()
    pool = []
    for m in models:
        s = m.score(level.benchmark)
        p = m.params_total_b if by == "total" else m.params_active_b
        if s is not None and s >= level.min_score and p is not None and m.release_date <= day:
            pool.append((m.release_date, p, m.model, s))
    steps: list[FrontierStep] = []
    for d, p, name, s in sorted(pool):
        if not steps or p < steps[-1].params_b:
            if steps and steps[-1].date == d:
                steps.pop()  # a smaller model the same day replaces the step
            steps.append(FrontierStep(date=d, model=name, params_b=p, score=s))
    return steps


def _slope(groups: Sequence[Sequence[FrontierStep]]) -> tuple[float, float, int] | None:
    """Pooled OLS slope of log10(params) on years with one intercept per group: (slope, sxx, residual dof)."""
    sxy = sxx = 0.0
    n = k = 0
    for steps in groups:
        if len(steps) < 2:
            continue
        t = np.array([_years(s.date) for s in steps])
        y = np.log10([s.params_b for s in steps])
        sxy += float(((t - t.mean()) * (y - y.mean())).sum())
        sxx += float(((t - t.mean()) ** 2).sum())
        n += len(steps)
        k += 1
    if k == 0 or sxx <= 0:
        return None
    return sxy / sxx, sxx, n - k - 1


def _ssr(groups: Sequence[Sequence[FrontierStep]], slope: float) -> float:
    total = 0.0
    for steps in groups:
        if len(steps) < 2:
            continue
        t = np.array([_years(s.date) for s in steps])
        y = np.log10([s.params_b for s in steps])
        total += float((((y - y.mean()) - slope * (t - t.mean())) ** 2).sum())
    return total


def trend(levels: Sequence[Level] | None = None, by: Literal["total", "active"] = "total",
          as_of: date | str | None = None, models: Sequence[OpenModel] | None = None,
          n_boot: int = 2000, seed: int = 0) -> Trend:
    """The smallest parameter count reaching each level over time, and the yearly rate of decline fitted to the
    frontier steps of all levels together (a common slope of log10 params per year, one intercept per level).

    Intervals (95%): a bootstrap over models (resample the rows, recompute every frontier, refit) and the
    ordinary-least-squares t interval of the pooled slope."""
    day = _as_date(as_of)
    rows = list(models if models is not None else load_models())
    lvls = list(levels if levels is not None else LEVELS.values())
    level_trends = []
    for lv in lvls:
        steps = frontier_steps(rows, lv, by, day)
        one = _slope([steps])
        level_trends.append(LevelTrend(level=lv, by=by, steps=steps,
                                       fold_per_year=10 ** -one[0] if one else None))
    groups = [t.steps for t in level_trends]
    fit = _slope(groups)
    rng = np.random.default_rng(seed)
    boots: list[float] = []
    for _ in range(n_boot if fit else 0):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        b = _slope([frontier_steps(sample, lv, by, day) for lv in lvls])
        if b is not None:
            boots.append(10 ** -b[0])
    reg_lo = reg_hi = None
    if fit and fit[2] > 0:
        se = math.sqrt(_ssr(groups, fit[0]) / fit[2] / fit[1])
        q = _T975[fit[2] - 1] if fit[2] <= len(_T975) else 1.96
        reg_lo, reg_hi = 10 ** -(fit[0] + q * se), 10 ** -(fit[0] - q * se)
    rate = RateFit(
        by=by, fold_per_year=10 ** -fit[0] if fit else None,
        bootstrap_low=float(np.percentile(boots, 2.5)) if boots else None,
        bootstrap_high=float(np.percentile(boots, 97.5)) if boots else None,
        regression_low=reg_lo, regression_high=reg_hi,
        n_steps=sum(len(g) for g in groups if len(g) >= 2), n_levels=sum(1 for g in groups if len(g) >= 2),
        n_boot=len(boots),
        method="OLS of log10(smallest params) on release year over the frontier steps of every level, one "
               "intercept per level; 95% intervals: bootstrap over models (percentile) and OLS t interval",
    )
    return Trend(as_of=day, levels=level_trends, rate=rate, puri=dict(PURI_FIGURE))
