"""Campaign feasibility: for each (scenario, profile), the best configuration, throughput, wall time, devices,
energy, cost and a verdict, with a Monte Carlo uncertainty band.

Owns ``Estimate`` (a stable, documented schema that reports render) and ``estimate()``. It must not measure,
print, or hold figures that are neither computed from declared specs nor from measurements: every predicted
figure carries a source label, and every assumption lives in ``Assumptions``.
"""

from __future__ import annotations

import math
import statistics
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from profiler import memory
from profiler import profiles as profiles_mod
from profiler import scenarios as scenarios_mod
from profiler.errors import HfpError
from profiler.feasibility.assumptions import Assumptions
from profiler.feasibility.calibration import Calibration, cpu_shape, fit
from profiler.feasibility.model import ModelShape, Part, batched_decode_tok_s, t_decode_step, t_prefill
from profiler.feasibility.placement import GB, Candidate, best_placement, limits
from profiler.feasibility.public_model import PublicModel, public_model
from profiler.feasibility.spec import ModelSpec
from profiler.feasibility.target import Target
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord
from profiler.scenarios import Scenario
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile

VerdictKind = Literal["feasible", "needs_devices", "does_not_fit", "too_slow"]


class Band(Strict):
    """A central interval of a predicted figure (``level`` = 0.9 means 5th to 95th percentile)."""

    low: float
    high: float
    level: float


class Estimate(Strict):
    """One (scenario, profile, model) prediction. Field names are stable; see docs/performance-model.md."""

    # what was estimated
    scenario: str
    scenario_title: str
    category: str
    mode: Literal["bulk", "interactive"]
    items: int
    deadline_s: float
    profile: str
    profile_name: str
    tier: str
    model: str
    model_source: Literal["gguf", "record", "spec"]
    model_params: int
    model_weights_bytes: int
    # memory fit and configuration
    fits: bool
    placement: Literal["full_offload", "partial_offload", "cpu"] | None = None
    n_gpu_layers: int | None = None
    parallel: int | None = None
    n_ctx: int | None = None
    ram_bytes: int | None = None
    vram_bytes: int | None = None
    configuration: str
    backend: str | None = None
    # performance (per device)
    decode_tok_s: float | None = Field(default=None, description="single stream, at the scenario's mean context")
    batched_decode_tok_s: float | None = Field(default=None, description="aggregate at the chosen parallel count")
    prefill_tok_s: float | None = None
    time_per_item_s: float | None = Field(default=None, description="mean time to finish one item (reply latency)")
    latency_quantile_s: float | None = Field(default=None, description="item time at assumptions.latency_quantile")
    latency_limit_s: float | None = None
    items_per_hour: float | None = Field(default=None, description="sustained, one device, after utilisation")
    # campaign
    wall_time_s: float | None = Field(default=None, description="the whole campaign on one device")
    devices_needed: int | None = None
    campaign_time_s: float | None = Field(default=None, description="wall time on devices_needed devices")
    energy_kwh: float | None = None
    electricity_usd: float | None = None
    price_usd: float
    hardware_usd: float | None = None
    verdict: str
    verdict_kind: VerdictKind
    reason: str
    # uncertainty (Monte Carlo over items' token counts x calibration error)
    relative_error: float | None = Field(default=None, description="model's relative error (log sd) for decode")
    decode_tok_s_band: Band | None = None
    time_per_item_s_band: Band | None = None
    wall_time_s_band: Band | None = Field(default=None, description="from items' token counts x calibration error")
    devices_needed_band: Band | None = None
    energy_kwh_band: Band | None = None
    # provenance
    decode_source: str | None = None
    batched_source: str | None = Field(default=None, description="batched factors: public-batched-<b>, calibration")
    prefill_source: str | None = None
    energy_source: str
    price_source: str
    out_of_scope: list[str] = []


# --- inputs --------------------------------------------------------------------------------------------------

ModelInput = RunRecord | ModelFile | ModelSpec


def _model_of(source: ModelInput) -> tuple[ModelFile, Literal["gguf", "record", "spec"], RunRecord | None]:
    if isinstance(source, RunRecord):
        return source.model, "record", source
    if isinstance(source, ModelSpec):
        return source.to_model_file(), "spec", None
    return source, ("spec" if source.architecture == "spec" else "gguf"), None


def _slug(text: str) -> str:
    return "-".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def keyed_profiles(
    profiles: Mapping[str, HardwareProfile] | Sequence[HardwareProfile] | None,
) -> dict[str, HardwareProfile]:
    """Profiles by key: as given, every declared one for None, or keyed by a slug of their names (a list)."""
    if profiles is None:
        return profiles_mod.load_all()
    if isinstance(profiles, Mapping):
        return dict(profiles)
    return {_slug(p.name): p for p in profiles}


def _keyed_scenarios(scenarios: Mapping[str, Scenario] | Sequence[Scenario] | None) -> dict[str, Scenario]:
    if scenarios is None:
        return scenarios_mod.load_all()
    if isinstance(scenarios, Mapping):
        return dict(scenarios)
    return {s.name: s for s in scenarios}


# --- Monte Carlo draws of items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Draws:
    prompt: np.ndarray  # new prompt tokens
    output: np.ndarray
    ctx_start: np.ndarray  # context when decoding of the item starts
    prefill_tokens: np.ndarray  # tokens one item needs prefilled
    z_item: np.ndarray  # standard normals for per-item calibration error
    z_campaign: np.ndarray  # standard normals for the campaign's systematic error
    z_sum: np.ndarray  # standard normals for the sum over items


def _rng(assumptions: Assumptions, scenario: Scenario, profile_key: str) -> np.random.Generator:
    keys = [assumptions.seed, zlib.crc32(scenario.name.encode()), zlib.crc32(profile_key.encode())]
    return np.random.default_rng(keys)


def _draw(scenario: Scenario, rng: np.random.Generator, n: int, ctx_cap: int) -> _Draws:
    p = scenario.prompt_tokens.sample(rng, n).astype(float)
    o = scenario.output_tokens.sample(rng, n).astype(float)
    turns = scenario.turns
    turn = rng.integers(1, turns + 1, n).astype(float)
    # history before this turn: (turn-1) earlier messages and replies, at their mean lengths
    history = scenario.system_tokens + (turn - 1) * (scenario.prompt_tokens.mean + scenario.output_tokens.mean)
    # a context longer than the model's trained length is truncated (oldest turns dropped)
    ctx_start = np.minimum(history + p, np.maximum(ctx_cap - o, 1))
    reuse = scenario.interactive.reuse_context if scenario.interactive else False
    if scenario.mode == "interactive" and reuse:
        prefill = p + np.where(turn == 1, scenario.system_tokens, 0.0)
    else:
        prefill = ctx_start
    return _Draws(p, o, ctx_start, prefill, rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n))


# --- performance of one candidate --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Perf:
    candidate: Candidate
    parts: list[Part]
    item_s: np.ndarray  # time to finish each drawn item at the candidate's parallel count
    prefill_s: np.ndarray
    decode_s: np.ndarray

    @property
    def mean_item_s(self) -> float:
        return float(self.item_s.mean())

    def throughput(self, utilisation: float) -> float:
        """Items per second, one device."""
        return self.candidate.parallel / self.mean_item_s * utilisation

    def latency_q(self, q: float) -> float:
        return float(np.quantile(self.item_s, q))


def _perf(shape: ModelShape, target: Target, cand: Candidate, draws: _Draws, scenario: Scenario,
          assumptions: Assumptions) -> _Perf:
    parts = target.parts(shape, cand)
    b = cand.parallel
    if scenario.mode == "bulk":  # a batch of b items is prefilled together, then decoded in lockstep
        prefill = t_prefill(shape, parts, draws.prefill_tokens * b, assumptions.n_ubatch, n_seq=b)
    else:  # a reply's own new tokens, while the other conversations keep decoding
        prefill = t_prefill(shape, parts, draws.prefill_tokens, assumptions.n_ubatch)
    decode = draws.output * t_decode_step(shape, parts, b, draws.ctx_start + draws.output / 2)
    return _Perf(cand, parts, prefill + decode, prefill, decode)


def _parallel_levels(scenario: Scenario, assumptions: Assumptions) -> list[int]:
    if assumptions.parallel:  # fixed concurrency (hfp estimate --parallel B)
        return [assumptions.parallel]
    cap = assumptions.max_parallel
    if scenario.max_parallel:
        cap = min(cap, scenario.max_parallel)
    if scenario.interactive:
        cap = min(cap, scenario.interactive.concurrency)
    levels = {1, cap}
    b = 2
    while b < cap:
        levels.add(b)
        b *= 2
    return sorted(levels)


def _z(level: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + level / 2)


def _band(values: np.ndarray, level: float) -> Band:
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Band(low=float(lo), high=float(hi), level=level)


def _no_fit_reason(model: ModelFile, profile: HardwareProfile, plan: memory.MemoryPlan, a: Assumptions) -> str:
    ram, vram = limits(profile, a)
    have = ", ".join(([f"{ram / GB:.1f} GB RAM"] if ram is not None else [])
                     + ([f"{vram / GB:.1f} GB GPU memory"] if vram is not None else [])) or "not declared"
    seqs = f"{a.parallel} sequences" if a.parallel and a.parallel > 1 else "1 sequence"
    return (f"does not fit even at {seqs}: weights {model.tensor_bytes / GB:.2f} GB + KV cache "
            f"{plan.kv_cache_bytes / GB:.2f} GB at n_ctx {plan.n_ctx} + buffers; available after reserves: {have}")


def _shape(model: ModelFile, a: Assumptions, profile: HardwareProfile) -> ModelShape:
    """The roofline shape at the assumed KV types; sliding-window caches hold window + n_ubatch cells; with the
    model's file here, the bytes the profile's CPU would run through tinyBLAS at B >= 2 (used only where a local
    ladder calibration fitted that pass)."""
    shape = cpu_shape(model, a.type_k, a.type_v, memory.CpuFeatures.guess(profile.cpu.model))
    return replace(shape, swa_slack=a.n_ubatch)


def _context(model: ModelFile, scenario: Scenario) -> int:
    """Context one sequence must hold: the scenario's longest, capped at the model's trained length."""
    return min(scenario.context_high(), max(model.n_ctx_train, 1) if model.n_ctx_train else 10**9)


def _base_fields(model: ModelFile, model_source: str, scenario: Scenario, profile_key: str,
                 profile: HardwareProfile) -> dict[str, Any]:
    return dict(
        scenario=scenario.name, scenario_title=scenario.title, category=scenario.category, mode=scenario.mode,
        items=scenario.items, deadline_s=scenario.deadline_s, profile=profile_key, profile_name=profile.name,
        tier=profile.tier, model=model.label, model_source=model_source, model_params=model.params,
        model_weights_bytes=model.tensor_bytes, price_usd=profile.price_usd, price_source="declared:profile",
        latency_limit_s=scenario.interactive.latency_limit_s if scenario.interactive else None,
        out_of_scope=scenario.out_of_scope,
        energy_source=("predicted:declared-power x predicted-time" if profile.power
                       else "none: the profile declares no power"),
    )


def _candidates(model: ModelFile, profile: HardwareProfile, ctx_seq: int, levels: Sequence[int],
                a: Assumptions) -> tuple[list[Candidate], memory.MemoryPlan | None]:
    """The best placement at each parallel level that fits, and the first level's failure if any did not."""
    found: list[Candidate] = []
    failure: memory.MemoryPlan | None = None
    for b in levels:
        c = best_placement(model, profile, ctx_seq, b, a)
        if isinstance(c, Candidate):
            found.append(c)
        elif failure is None:
            failure = c
    return found, failure


def _choose(perfs: list[_Perf], scenario: Scenario, a: Assumptions) -> tuple[_Perf, bool]:
    """The plan: most items per second among those meeting the latency limit (ties: fewer sequences, then the
    placement found first); the first candidate, flagged too slow, when none meets it."""
    limit = scenario.interactive.latency_limit_s if scenario.interactive else None
    meeting = [p for p in perfs if limit is None or p.latency_q(a.latency_quantile) <= limit]
    pool = meeting or perfs[:1]
    best = max(pool, key=lambda p: (round(p.throughput(a.utilisation), 9), -p.candidate.parallel))
    return best, not meeting


@dataclass(frozen=True)
class _Rates:
    single: float  # one sequence, its own best placement, at the mean context
    batched: float  # aggregate at the plan's parallel count
    prefill: float


def _rates(model: ModelFile, shape: ModelShape, profile: HardwareProfile, target: Target, best: _Perf,
           draws: _Draws, scenario: Scenario, ctx_seq: int, a: Assumptions) -> _Rates:
    cand, parts, b = best.candidate, best.parts, best.candidate.parallel
    mean_ctx = min(scenario.mean_context(), ctx_seq)
    # single stream: the best placement for one sequence, which may hold more layers on the GPU than ``cand``
    solo = best_placement(model, profile, ctx_seq, 1, a)
    solo_parts = target.parts(shape, solo) if isinstance(solo, Candidate) else parts
    single = 1.0 / float(t_decode_step(shape, solo_parts, 1, mean_ctx))
    n_pre = float(np.mean(draws.prefill_tokens)) * (b if scenario.mode == "bulk" else 1)
    prefill = n_pre / float(t_prefill(shape, parts, n_pre, a.n_ubatch))
    assert cand.parallel == b
    return _Rates(single, batched_decode_tok_s(shape, parts, b, mean_ctx), prefill)


def _campaign_fields(best: _Perf, draws: _Draws, scenario: Scenario, profile: HardwareProfile, target: Target,
                     rates: _Rates, a: Assumptions) -> tuple[dict[str, Any], float, int]:
    """Throughput, wall time, devices, energy and their Monte Carlo bands; returns (fields, wall, devices)."""
    cand, b = best.candidate, best.candidate.parallel
    sigma_bw, sigma_f = target.sigmas(cand)
    sigma_bw, sigma_f = max(sigma_bw, a.min_relative_error), max(sigma_f, a.min_relative_error)
    sigma_dec = max(sigma_bw, target.batch_sigma(cand)) if b > 1 else sigma_bw
    throughput = best.throughput(a.utilisation)  # items/s, one device
    wall = scenario.items / throughput
    # Monte Carlo: per-item variation (summed over the campaign) x the model's systematic error
    pre_share = float(best.prefill_s.mean() / best.item_s.mean())
    sigma = pre_share * sigma_f + (1 - pre_share) * sigma_dec
    n = scenario.items
    mu, sd = float(best.item_s.mean()), float(best.item_s.std())
    totals = (n * mu + math.sqrt(n) * sd * draws.z_sum) / (b * a.utilisation) * np.exp(sigma * draws.z_campaign)
    item_draws = best.item_s * np.exp(sigma * draws.z_item)
    deadline = scenario.deadline_s

    def devices_for(wall_s: float | np.ndarray) -> np.ndarray:
        need = np.ceil(np.asarray(wall_s) / deadline)
        if scenario.interactive:
            need = np.maximum(need, math.ceil(scenario.interactive.concurrency / b))
        return np.maximum(need, 1)

    power = profile.power

    def energy_for(wall_s: np.ndarray, devices: np.ndarray) -> np.ndarray:
        assert power is not None
        idle_j = 0.0
        if scenario.mode == "interactive" and a.idle_energy_interactive:
            idle_j = np.maximum(devices * deadline - wall_s, 0.0) * power.idle_w
        return (wall_s * power.load_w + idle_j) / 3.6e6

    devices = int(devices_for(wall))
    dev_draws = devices_for(totals)
    z = _z(a.band_level)
    decode_src, prefill_src = target.labels(cand)
    fields: dict[str, Any] = dict(
        time_per_item_s=best.mean_item_s, latency_quantile_s=best.latency_q(a.latency_quantile),
        items_per_hour=throughput * 3600, wall_time_s=wall, relative_error=sigma_bw,
        decode_tok_s_band=Band(low=rates.single * math.exp(-z * sigma_bw), high=rates.single * math.exp(z * sigma_bw),
                               level=a.band_level),
        time_per_item_s_band=_band(item_draws, a.band_level), wall_time_s_band=_band(totals, a.band_level),
        devices_needed_band=_band(dev_draws, a.band_level),
        energy_kwh_band=_band(energy_for(totals, dev_draws), a.band_level) if power else None,
        decode_source=decode_src, prefill_source=prefill_src, batched_source=target.batch_source(cand),
        energy_kwh=float(energy_for(np.asarray(wall), np.asarray(devices))) if power else None,
    )
    return fields, wall, devices


def _verdict(scenario: Scenario, best: _Perf, wall: float, devices: int, too_slow: bool,
             a: Assumptions) -> dict[str, Any]:
    b = best.candidate.parallel
    if too_slow:
        q = best.latency_q(a.latency_quantile)
        limit = scenario.interactive.latency_limit_s if scenario.interactive else None
        who = "one conversation" if b == 1 else f"{b} conversations"
        return dict(devices_needed_band=None, energy_kwh_band=None, energy_kwh=None, verdict="too slow",
                    verdict_kind="too_slow",
                    reason=(f"even {who} per device takes {q:.1f} s per reply at the {a.latency_quantile:.0%} "
                            f"quantile, over the {limit:g} s limit; more devices do not help"))
    kind: VerdictKind = "feasible" if devices == 1 else "needs_devices"
    reason = (f"{scenario.items:,} {scenario.item_unit}s take {wall / 3600:,.1f} h on one device "
              f"(deadline {scenario.deadline_hours:g} h)")
    if scenario.interactive and devices > math.ceil(wall / scenario.deadline_s):
        reason += f"; {scenario.interactive.concurrency} concurrent replies need {devices} devices at {b} each"
    return dict(devices_needed=devices, campaign_time_s=wall / devices, verdict_kind=kind, reason=reason,
                verdict="feasible" if devices == 1 else f"needs {devices} devices")


def estimate_one(
    model: ModelFile, model_source: Literal["gguf", "record", "spec"], scenario: Scenario, profile_key: str,
    profile: HardwareProfile, assumptions: Assumptions, target: Target,
) -> Estimate:
    """The estimate for one (scenario, profile) pair; see ``estimate`` for the list form."""
    a = assumptions
    shape = _shape(model, a, profile)
    ctx_seq = _context(model, scenario)
    base = _base_fields(model, model_source, scenario, profile_key, profile)
    candidates, failure = _candidates(model, profile, ctx_seq, _parallel_levels(scenario, a), a)
    if not candidates:
        assert failure is not None
        return Estimate(**base, fits=False, configuration="none", verdict="does not fit",
                        verdict_kind="does_not_fit", reason=_no_fit_reason(model, profile, failure, a))
    draws = _draw(scenario, _rng(a, scenario, profile_key), a.mc_samples, ctx_seq)
    best, too_slow = _choose([_perf(shape, target, c, draws, scenario, a) for c in candidates], scenario, a)
    cand = best.candidate
    rates = _rates(model, shape, profile, target, best, draws, scenario, ctx_seq, a)
    fields, wall, devices = _campaign_fields(best, draws, scenario, profile, target, rates, a)
    fields.update(
        fits=True, placement=cand.placement, n_gpu_layers=cand.n_gpu_layers, parallel=cand.parallel,
        n_ctx=cand.n_ctx, ram_bytes=cand.plan.ram_bytes, vram_bytes=cand.plan.vram_bytes,
        configuration=cand.describe(model.n_layers), backend=target.backend(cand), decode_tok_s=rates.single,
        batched_decode_tok_s=rates.batched, prefill_tok_s=rates.prefill,
    )
    fields.update(_verdict(scenario, best, wall, devices, too_slow, a))
    if not too_slow:
        energy = fields["energy_kwh"]
        fields.update(electricity_usd=energy * a.electricity_usd_per_kwh if energy is not None else None,
                      hardware_usd=devices * profile.price_usd)
    return Estimate(**base, **fields)


def estimate(
    record_or_model: ModelInput,
    profiles: Mapping[str, HardwareProfile] | Sequence[HardwareProfile] | None = None,
    scenarios: Mapping[str, Scenario] | Sequence[Scenario] | None = None,
    assumptions: Assumptions | None = None,
    calibration: Calibration | None = None,
    public: PublicModel | None = None,
) -> list[Estimate]:
    """Estimate every (scenario, profile) pair for a model given as a run record, a ``ModelFile`` or a spec.

    A run record is also calibrated (``calibration.fit``) unless ``calibration`` is given, and its fit replaces
    the public efficiency factors on profiles of the same backend. ``None`` profiles/scenarios mean all shipped.
    Results are deterministic: the Monte Carlo seed is derived from ``assumptions.seed`` and the pair's names.
    """
    a = assumptions or Assumptions()
    model, source, record = _model_of(record_or_model)
    if calibration is None and record is not None and record.points:
        try:
            calibration = fit(record)
        except HfpError:
            calibration = None
    pub = public if public is not None else public_model()
    by_key = keyed_profiles(profiles)
    keyed_scenarios = _keyed_scenarios(scenarios)
    targets = {k: Target.of(p, calibration, pub, a.min_relative_error) for k, p in by_key.items()}
    return [
        estimate_one(model, source, s, pk, p, a, targets[pk])
        for s in keyed_scenarios.values()
        for pk, p in by_key.items()
    ]


# --- the concurrency curve (for reports) ---------------------------------------------------------------------


class CurvePoint(Strict):
    """Predicted decode at one parallel count: aggregate and per-sequence tok/s, the aggregate's band, and
    whether that many sequences fit in memory (points past the limit are still predicted, for the plot)."""

    batch: int
    aggregate_tok_s: float
    per_sequence_tok_s: float
    low: float
    high: float
    fits: bool
    placement: str = Field(description="the placement at this B (more sequences may push layers off the GPU)")


class ConcurrencyCurve(Strict):
    """Aggregate decode vs parallel sequences for one (model, scenario, profile), and the B the plan uses."""

    profile: str
    tier: str
    scenario: str
    planned_parallel: int | None
    source: str
    context: float
    points: list[CurvePoint]


def concurrency_curve(
    model: ModelInput, scenario: Scenario, profile: HardwareProfile, profile_key: str | None = None,
    assumptions: Assumptions | None = None, calibration: Calibration | None = None,
    public: PublicModel | None = None, levels: Sequence[int] | None = None,
) -> ConcurrencyCurve:
    """Aggregate decode tok/s at each parallel count (default 1, 2, 4 ... max_parallel) at the scenario's mean
    context, each at the best placement that fits that many sequences (else the 1-sequence placement), with a
    band at ``assumptions.band_level`` and the parallel count the campaign plan picks (None: nothing fits)."""
    a = assumptions or Assumptions()
    mf, source, _ = _model_of(model)
    key = profile_key or _slug(profile.name)
    target = Target.of(profile, calibration, public if public is not None else public_model(), a.min_relative_error)
    plan = estimate_one(mf, source, scenario, key, profile, a, target)
    shape = _shape(mf, a, profile)
    ctx_seq = _context(mf, scenario)
    ctx = min(scenario.mean_context(), ctx_seq)
    bs = list(levels) if levels else _parallel_levels(scenario, a.model_copy(update={"parallel": None}))
    fallback = best_placement(mf, profile, ctx_seq, 1, a)
    z = _z(a.band_level)
    points: list[CurvePoint] = []
    sources: list[str] = []
    for b in bs:
        c = best_placement(mf, profile, ctx_seq, b, a)
        fits = isinstance(c, Candidate)
        cand = c if isinstance(c, Candidate) else fallback
        if not isinstance(cand, Candidate):  # not even one sequence fits: the curve has nothing to show
            break
        agg = batched_decode_tok_s(shape, target.parts(shape, cand), b, ctx)
        sigma = max(max(target.sigmas(cand)[0], a.min_relative_error), target.batch_sigma(cand) if b > 1 else 0.0)
        points.append(CurvePoint(batch=b, aggregate_tok_s=agg, per_sequence_tok_s=agg / b,
                                 low=agg * math.exp(-z * sigma), high=agg * math.exp(z * sigma), fits=fits,
                                 placement=cand.describe(mf.n_layers)))
        sources.append(target.batch_source(cand))
    return ConcurrencyCurve(
        profile=key, tier=profile.tier, scenario=scenario.name, planned_parallel=plan.parallel if plan.fits else None,
        source="predicted:roofline+" + "+".join(dict.fromkeys(sources or ["none"])), context=ctx, points=points,
    )

