"""Batched decode: the factors of a decode step of several sequences, fitted to public ``llama-batched-bench`` results.

Owns the public batched results file (``profiler/data/llamacpp-batched-public.csv``: a copy of the shared file with
the device facts and model shapes hfp needs; its header names every source and why some rows are left out), the
fit of the batched factors, and their leave-one-device-out (LODO) residuals. The step-time formula itself lives in
``model.t_decode_step``::

    t_step(B, ctx) = t0 + (max(M, C1)^p + C_B^p)^(1/p),   M = (W_read(B) + B*kv(ctx)) / BW_eff,
                     C1 = 2*P_active / F_eff,   C_B = (B-1)*2*P_active / F_batch

Single-sequence factors (``BW_eff``, ``t0``, the prefill FLOP rate ``F_eff``) come from ``public_model`` (at B = 1 the
step is exactly their roofline); this module adds three, fitted on the batched rows only:

- ``ratio`` per backend: ``F_batch = ratio * F_eff``, the FLOP rate of a decode step's matmuls with B columns as a
  share of prefill's (small-batch kernels reach far less than prefill's large tiles); shrunk toward the pooled
  ratio (a ridge prior of ``PRIOR_SD`` in log units) so a backend with few rows does not stray, and fitted only
  for a backend with rows from ``MIN_CHIPS`` chips (the others get the pooled ratio);
- ``overlap`` (pooled): the exponent ``p`` combining the first sequence's roofline time with the other sequences'
  compute (``1`` = they add, ``inf`` = max);
- ``spread`` (MoE rows only): routing concentration, the effective share of a layer's experts batched tokens pick
  from (``model.expected_experts``; 1 = uniform), fitted only where the training rows hold MoE models: pooled,
  and per backend for every backend with MoE rows (``spreads``). It is partly the backend's: llama.cpp's
  ``mul_mat_id`` kernels read each token's experts separately up to a batch size (mat-vec with ids) and each
  distinct expert once above it, and that size is 32 tokens on Metal (``mul_mm_id`` from 32) but at most 8 on
  CUDA (MMQ above ``get_mmvq_mmid_max_batch``); fitted within a backend on its other MoE models, the spread
  predicts a held-out model better than fitted on every chip (``moe_leave_one_model_out``,
  docs/validation-batched.md).

Backends with rows from fewer than ``MIN_CHIPS`` chips (one Ascend, one Vega iGPU) get the pooled factors and the
pooled LODO spread as their band, which is wide because it includes those chips' own held-out errors.

It must not read profiles, scenarios or run records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import ConfigDict

from profiler.feasibility.model import Device, ModelShape, Part, batched_decode_tok_s, combine
from profiler.feasibility.public_model import DeviceFacts, PublicModel, PublishedRow, public_model, read_rows
from profiler.resources import data_file

BATCHED_CSV = data_file("llamacpp-batched-public.csv")
POOLED = "pooled"
# Candidate exponents p (1 = the extra sequences' compute adds to the first's roofline time, inf = max). B = 1 does
# not depend on p (C_B = 0), so the single-sequence fit stays valid whatever is chosen.
OVERLAP_GRID = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, math.inf)
# Candidate routing spreads E_eff / E for MoE models (1 = uniform routing over all experts).
SPREAD_GRID = (1.0, 0.75, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15)
DEFAULT_SPREAD = 1.0
RATIO_GRID = np.exp(np.linspace(math.log(0.01), math.log(4.0), 121))
PRIOR_SD = 1.0  # log units: a backend's ratio is pulled toward the pooled one as if by one row this far off
MIN_CHIPS = 2  # a backend gets its own ratio only from rows of this many chips (one odd device is not a backend)
QUALITY_WEIGHT = {"primary": 1.0, "secondary": 0.5}
MIN_SIGMA = 0.05
# Before any fit (and where the file is unreadable): no batched slowdown is assumed beyond prefill's rate.
DEFAULT_BATCH_RATIO = 1.0
OVERLAP_P = math.inf


class BatchedRow(PublishedRow):
    """One ``llama-batched-bench`` line: device facts, model shape, PP/TG/B and the aggregate decode rate."""

    model_config = ConfigDict(extra="ignore")

    backend_key: str
    swa_period: int | None = None
    n_ubatch: int = 512  # llama-batched-bench's -ub (default 512)
    pp: int
    tg: int
    B: int
    s_tg_tok_s: float
    shared_prompt: str = "no"
    quality: str = "secondary"
    exclude: str | None = None
    source: str

    @property
    def used(self) -> bool:
        """Whether the fit and validation use this row (no exclusion reason, a decode rate, device facts)."""
        return not self.exclude and self.s_tg_tok_s > 0 and self.facts() is not None

    def facts(self) -> DeviceFacts | None:
        """The public model's device facts, or None without a bandwidth."""
        if not self.bandwidth_gbps or "+" in self.backend_key:
            return None
        return DeviceFacts(self.backend_key, self.bandwidth_gbps, self.fp16_tflops, self.cpu_cores)

    def shape(self) -> ModelShape:
        """The roofline shape (F16 KV cache, llama-batched-bench's default)."""
        spec = self.spec(self.sliding_window, self.swa_period or 1)
        return replace(ModelShape.of(spec.to_model_file()), quant=self.quant, swa_slack=self.n_ubatch)

    @property
    def mean_context(self) -> float:
        """Each sequence's mean depth while decoding: its prompt plus half its generated tokens."""
        return self.pp + self.tg / 2


def load_batched(path: Path = BATCHED_CSV) -> list[BatchedRow]:
    """Read the public batched results (``#`` lines are comments; blank cells are unreported)."""
    return read_rows(path, BatchedRow, "public batched results file")


@dataclass(frozen=True)
class BatchedFactors:
    """The batched-decode factors of one backend: compute-rate ratio to prefill, overlap exponent, spread."""

    backend: str
    ratio: float
    overlap: float
    sigma: float
    n_rows: int
    source: str
    spread: float = DEFAULT_SPREAD

    def device(self, base: Device) -> Device:
        """``base`` (a single-sequence device) with this backend's batched compute rate, overlap and MoE spread."""
        return replace(base, batch_flops=base.flops * self.ratio, overlap=self.overlap, expert_spread=self.spread)


@dataclass(frozen=True)
class BatchedModel:
    """Fitted batched factors per backend plus pooled ones."""

    ratio: dict[str, float]
    ratio_pooled: float
    overlap: float
    sigma: dict[str, float]
    sigma_pooled: float
    n_rows: dict[str, int]
    spread: float = DEFAULT_SPREAD
    spreads: dict[str, float] = field(default_factory=dict)  # per backend with public MoE rows

    def factors(self, backend: str) -> BatchedFactors:
        """The factors for ``backend`` (pooled where the public rows have none of it)."""
        mine = backend in self.ratio
        return BatchedFactors(
            backend, self.ratio.get(backend, self.ratio_pooled), self.overlap,
            self.sigma.get(backend, self.sigma_pooled), self.n_rows.get(backend, 0),
            f"public-batched-{backend if mine else POOLED}", self.spreads.get(backend, self.spread),
        )


@dataclass(frozen=True)
class _Prepared:
    """A row's parts that do not depend on the batched factors: fixed time, memory time at each MoE spread, the
    single-stream compute time and the other sequences' compute time at ratio 1 (the prefill FLOP rate)."""

    row: BatchedRow
    t0_s: float
    memory_s: dict[float, float]  # by spread
    single_s: float
    extra_s: float


def _prepare(row: BatchedRow, public: PublicModel) -> _Prepared:
    facts = row.facts()
    assert facts is not None
    shape = row.shape()
    dev = public.device(facts, shape)
    kv = float(shape.kv_read_bytes(row.mean_context))
    memory = {s: (shape.weights_read(row.B, s) + row.B * kv) / dev.bandwidth_bps for s in SPREAD_GRID}
    flop = 2.0 * shape.flop_params / dev.flops
    return _Prepared(row, dev.t0_s, memory, flop, (row.B - 1) * flop)


def _rates(prep: Sequence[_Prepared], ratio: float, p: float, spread: float = DEFAULT_SPREAD) -> np.ndarray:
    t0 = np.array([x.t0_s for x in prep])
    memory = np.array([x.memory_s[spread] for x in prep])
    c = np.array([x.extra_s for x in prep]) / ratio
    b = np.array([x.row.B for x in prep], dtype=float)
    return b / (t0 + combine(memory, np.array([x.single_s for x in prep]), c, p))  # type: ignore[no-any-return]


def predict(row: BatchedRow, ratio: float, p: float, public: PublicModel, spread: float = DEFAULT_SPREAD) -> float:
    """Aggregate decode tok/s of a row with the given batched factors (through ``model.t_decode_step``)."""
    facts = row.facts()
    assert facts is not None
    shape = row.shape()
    base = public.device(facts, shape)
    dev = replace(base, batch_flops=base.flops * ratio, overlap=p, expert_spread=spread)
    return batched_decode_tok_s(shape, [Part(dev, shape.streamed_bytes, 1.0, 1.0)], row.B, row.mean_context)


def _loss(prep: Sequence[_Prepared], ratio: float, p: float, spread: float = DEFAULT_SPREAD) -> float:
    err = np.log(_rates(prep, ratio, p, spread) / np.array([x.row.s_tg_tok_s for x in prep]))
    w = np.array([QUALITY_WEIGHT.get(x.row.quality, 0.5) for x in prep])
    return float(np.dot(w, np.square(err)))


def _penalised_loss(prep: Sequence[_Prepared], ratio: float, p: float, prior: float | None,
                    spread: float = DEFAULT_SPREAD) -> float:
    """``_loss`` plus the ridge pull of ``ratio`` toward ``prior`` (none without one)."""
    penalty = 0.0 if prior is None else (math.log(ratio / prior) / PRIOR_SD) ** 2
    return _loss(prep, ratio, p, spread) + penalty


def _best_ratio(prep: Sequence[_Prepared], p: float, prior: float | None, spread: float = DEFAULT_SPREAD) -> float:
    return float(min(RATIO_GRID, key=lambda r: _penalised_loss(prep, r, p, prior, spread)))


def fit(rows: Sequence[BatchedRow], public: PublicModel | None = None) -> BatchedModel:
    """Fit the pooled overlap and ratio on all used rows, then each backend's ratio shrunk toward the pooled one."""
    pub = public or public_model()
    return _fit([_prepare(r, pub) for r in rows if r.used])


def _fit(used: Sequence[_Prepared]) -> BatchedModel:
    if not used:
        return BatchedModel({}, DEFAULT_BATCH_RATIO, OVERLAP_P, {}, 0.25, {})
    grid = SPREAD_GRID if any(x.row.is_moe for x in used) else (DEFAULT_SPREAD,)
    fits = [(p, s, _best_ratio(used, p, None, s)) for p in OVERLAP_GRID for s in grid]
    p, spread, pooled = min(fits, key=lambda f: _loss(used, f[2], f[0], f[1]))
    ratio: dict[str, float] = {}
    counts: dict[str, int] = {}
    spreads: dict[str, float] = {}
    for b in sorted({x.row.backend_key for x in used}):
        mine = [x for x in used if x.row.backend_key == b]
        has_moe = any(x.row.is_moe for x in mine)
        if len({x.row.device_key for x in mine}) >= MIN_CHIPS:  # own ratio, jointly with its own spread
            ratio[b], s_b = min(((_best_ratio(mine, p, pooled, s), s) for s in (grid if has_moe else (spread,))),
                                key=lambda f: _penalised_loss(mine, f[0], p, pooled, f[1]))
            counts[b] = len(mine)
            if has_moe:
                spreads[b] = s_b
        elif has_moe:  # one chip: the pooled ratio, and the spread its MoE rows fit with it
            spreads[b] = _best_spread([x for x in mine if x.row.is_moe], pooled, p)
    return BatchedModel(ratio, pooled, p, {}, 0.25, counts, spread, spreads)


def _best_spread(moe: Sequence[_Prepared], ratio: float, p: float) -> float:
    """The routing spread that fits ``moe`` (MoE rows) best at the given compute ratio and overlap."""
    return min(SPREAD_GRID, key=lambda s: _loss(moe, ratio, p, s))


@dataclass(frozen=True)
class BatchedResidual:
    """A held-out prediction: the row, predicted and measured aggregate decode."""

    row: BatchedRow
    predicted: float

    @property
    def rel_error(self) -> float:
        """Signed relative error, predicted / measured - 1."""
        return self.predicted / self.row.s_tg_tok_s - 1.0


def leave_one_device_out(rows: Sequence[BatchedRow], public: PublicModel | None = None) -> list[BatchedResidual]:
    """Each chip's used rows predicted from a fit to every other chip's rows."""
    pub = public or public_model()
    used = [_prepare(r, pub) for r in rows if r.used]
    out: list[BatchedResidual] = []
    for g in sorted({x.row.device_key for x in used}):
        model = _fit([x for x in used if x.row.device_key != g])
        for x in (x for x in used if x.row.device_key == g):
            f = model.factors(x.row.backend_key)
            out.append(BatchedResidual(x.row, float(_rates([x], f.ratio, f.overlap, f.spread)[0])))
    return out


def moe_leave_one_model_out(rows: Sequence[BatchedRow], public: PublicModel | None = None,
                            same_backend: bool = True) -> list[BatchedResidual]:
    """Each MoE row predicted with device factors fitted without its chip (as in ``leave_one_device_out``) and the
    routing spread fitted on the OTHER MoE models only (with those device factors), on the same backend where it
    has such rows (as the full fit's per-backend ``spreads``), else on any chip (``same_backend`` False: always
    any chip). Strict LODO fits it on the other chips' MoE rows instead; with one chip per backend that tests the
    pooled spread, which the two chips' kernels pull apart."""
    pub = public or public_model()
    used = [_prepare(r, pub) for r in rows if r.used]
    out: list[BatchedResidual] = []
    for g in sorted({x.row.device_key for x in used if x.row.is_moe}):
        model = _fit([x for x in used if x.row.device_key != g])
        for x in (x for x in used if x.row.device_key == g and x.row.is_moe):
            f = model.factors(x.row.backend_key)
            others = [y for y in used if y.row.is_moe and y.row.model != x.row.model]
            mine = [y for y in others if y.row.backend_key == x.row.backend_key]
            others = mine if mine and same_backend else others
            spread = _best_spread(others, f.ratio, f.overlap) if others else f.spread
            out.append(BatchedResidual(x.row, float(_rates([x], f.ratio, f.overlap, spread)[0])))
    return out


def with_sigmas(model: BatchedModel, residuals: Sequence[BatchedResidual]) -> BatchedModel:
    """``model`` with per-backend and pooled spreads (log sd of LODO errors, floored at ``MIN_SIGMA``)."""
    def sd(errs: list[float]) -> float:
        return max(MIN_SIGMA, float(np.sqrt(np.mean(np.square(errs))))) if errs else model.sigma_pooled

    logs = {b: [math.log(r.predicted / r.row.s_tg_tok_s) for r in residuals if r.row.backend_key == b]
            for b in model.ratio}
    pooled = sd([math.log(r.predicted / r.row.s_tg_tok_s) for r in residuals])
    return replace(model, sigma={b: sd(e) for b, e in logs.items() if e}, sigma_pooled=pooled)


@lru_cache(maxsize=2)
def batched_model(path: Path = BATCHED_CSV) -> BatchedModel:
    """The batched factors fitted to the shipped public rows (once per process), with their LODO spreads."""
    rows = load_batched(path)
    pub = public_model()
    return with_sigmas(fit(rows, pub), leave_one_device_out(rows, pub))


def batched_factors(backend: str) -> BatchedFactors:
    """The public batched factors that apply to ``backend``."""
    return batched_model().factors(backend)
