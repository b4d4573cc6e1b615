"""The public performance model: a few efficiency factors fitted to public llama.cpp results.

Owns the public results file (``profiler/data/llamacpp-public.csv``, a copy of the shared calibration file; its
header explains the columns and every row names its source), the fit of the factors below to it, the
leave-one-device-out (LODO) residuals, and the uncertainty per backend derived from those residuals. It turns
declared device facts (backend, peak bandwidth, FP16 FLOPS if known, cores) and a model shape into an effective
bandwidth, an effective FLOP rate and a fixed time per decode step (a ``model.Device``). It must not read
profiles, run records or scenarios.

Decode (single sequence, memory-bound), for a model with ``L`` layers reading ``D`` bytes per token::

    t_token = L * tau_b + D * rho^is_moe / BW_eff
    1 / BW_eff = 1 / (eta_b * BW) + 1 / S_b   [+ 1 / (kappa * cores) on CPUs]

- ``eta_b`` bandwidth efficiency and ``tau_b`` fixed time per layer (kernel launches, synchronisation) per
  backend; separated by devices measured with several model sizes (8B and 70B on the same GPU);
- ``S_b``: a ceiling on the effective bandwidth of the backend's kernels (the achieved share falls as the peak
  approaches it: HBM data-centre GPUs and Ultra chips reach less of their peak than 400-1000 GB/s cards). It
  replaces v1's power law ``(BW / 400 GB/s)^-alpha``: with the ceiling, a fitted ``alpha`` came out slightly
  negative and LODO was no better (decode median 9.4% vs 9.7%), so it is gone;
- ``rho``: a mixture-of-experts token reads ``rho`` times the active bytes its shape implies (``D`` counts the
  shared tensors plus ``k/E`` of the experts at the file's mean bits per weight): indexed expert matmuls
  (``mul_mat_id``, small per-expert matrices) reach less bandwidth, and gpt-oss keeps its attention and
  embeddings at higher precision than its MXFP4 experts. Fitted on every MoE row (gpt-oss 20B and 120B on
  CUDA, ROCm and Metal; ridge prior: 1, no extra read, log sd 1); v1's extra per-layer MoE time instead fitted
  worse (LODO MoE decode median 14.7% vs 9.3%) and would grow with depth for many-layer MoE models;
- ``kappa``: bytes per second one CPU core can stream (the few-core limit of CPU decode; v3 fitted it with a
  wide prior at 12.8 GB/s, carried by a row whose cores were misread (8 for the 4 its source used): a 2-core
  host was capped at 25 GB/s. Now a prior of 20 GB/s per core, log sd 0.35 -- modern cores stream 20-40 GB/s
  each; the public CPU rows alone fit 22 -- which still explains a 24-core EPYC reaching a third of its peak).

The fit also carries one offset per publication (``source_key``: one build, harness and flash-attention
setting; ridge prior ``PRIOR_SD["source"]``), so the factors compare devices within a publication and are not
dragged by one old build; predictions use none (the average publication). No quantization-type factor: fitted
ones came out within 1.5% of 1 (Q4_0, MXFP4 vs the K-quants) and ``hfp estimate --weights-bytes`` does not say
the type.

Prefill (compute-bound) is a log-linear model of the FLOP rate achieved, ``2 * P_active * pp_tok_s``:

- GPU: ``log F_eff = c_b + beta_B log BW [+ beta_F log(F / BW / 150 FLOP/B)]`` -- bandwidth stands in for the
  size of the chip; a declared FP16 figure ``F`` (dense, tensor/matrix units where the vendor lists them)
  corrects it by the chip's compute per byte, relative to a typical 150 FLOP/B. The results file declares
  ``F`` for every NVIDIA, AMD and Apple row in one convention (its header): it is what separates GPU
  generations at equal bandwidth (Ada/Blackwell vs Ampere, M3 vs M1, RDNA4 vs RDNA1; LODO prefill median 21.2%
  with the figures filled in vs 26.9% when most rows had none). A device without ``F`` gets its backend's
  median compute per byte (``log_f_typical``; LODO with every held-out device's ``F`` hidden: 26.6%). (v1 had
  separate intercepts and slopes for GPUs with and without ``F``: seven more factors, and a worse LODO);
- CPU with a declared compute figure ``T`` (``fp16_tflops`` of a CPU row, ``cpu.tflops`` of a profile: the peak
  vector FP32 rate of the cores used, or an SGEMM measured by ``hfp hardware``): ``log F_eff = c_T + log T``;
  llama.cpp's int8 dot products gain on FP32 about what quantisation and threading lose (prior ``c_T = 0``; the
  public rows fit about 0.75 x T);
- CPU without ``T``: ``log F_eff = c_cpu + beta_C log cores``, ``beta_C`` held near 1 (linear in cores; v3's
  free fit of 1.5 on a few many-core rows gave a 2-core host 43 GFLOP/s);
- a mixture-of-experts factor (small per-expert matmuls in a ubatch).

Backend terms are shrunk toward their pooled value (a ridge prior), which is also what a backend absent from
the data gets. Rows weigh by quality (primary 1, secondary 0.5, shaky 0.3). Factors are refit from the file
when it changes (cached as JSON under the user cache dir, keyed by ``fit_key``: FIT_VERSION, the file and the
code the fit depends on -- this module, ``model.py``, ``spec.py`` -- so a changed fit never serves old factors).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from profiler.errors import ConfigError
from profiler.feasibility.model import Device, ModelShape, Part, t_decode_step, t_prefill
from profiler.feasibility.spec import PublishedShape
from profiler.files import cache_dir
from profiler.resources import data_file
from profiler.schema.base import Strict

R = TypeVar("R", bound=BaseModel)

PUBLIC_CSV = data_file("llamacpp-public.csv")  # package data (importlib.resources)
FIT_VERSION = 4  # bump when the model's form changes: cached fits are then ignored (part of the cache key)
BACKENDS = ("cuda", "rocm", "metal", "vulkan", "sycl", "cpu")
QUALITY_WEIGHT = {"primary": 1.0, "secondary": 0.5, "shaky": 0.3}
BW_REF_GBPS = 400.0
N_UBATCH = 512  # llama-bench's default ubatch
# prior (ridge) widths, in log units: how far a backend's factor may stray from the pooled one on little data
PRIOR_SD = {"eta": 1.0, "tau": 1.0, "moe": 1.0, "kappa": 0.35, "ceiling": 3.0, "source": 0.3,
            "intercept": 1.0, "pp_moe": 3.0, "cpu": 3.0, "cpu_cores": 0.3, "cpu_tflops": 1.0}
# bytes/s one core streams in llama.cpp's decode: modern cores stream 20-40 GB/s each; the public CPU rows alone
# fit 22 GB/s (weak prior) and LODO prefers the low end (decode median 9.5% at 20, 9.9% at 22, 10.4% at 30)
KAPPA_PRIOR_BPS = 20e9
SIGMA_PRIOR_ROWS = 3.0  # a backend's band shrinks toward the pooled residual spread as if by this many rows
MIN_SIGMA = 0.05
F_PER_BYTE_REF = 150.0  # FLOP per byte: a typical GPU's declared FP16 FLOPS over its bandwidth (4090: 164)
CEILING_PRIOR_GBPS = 5000.0  # weak prior centre of the bandwidth ceiling S (log sd PRIOR_SD["ceiling"])
Z90 = 1.6449
# Huber loss on log errors: rows further off than this (from other builds, odd harnesses) weigh less
HUBER_LOG = 0.25  # decode only: prefill's scatter is wide enough that Huber weights lose information


# --- the public rows -----------------------------------------------------------------------------------------


class PublishedRow(PublishedShape):
    """A row of a public results file (single-sequence here, batched in ``batched.py``): the device as published
    (bandwidth, FP16 rate, cores) and the model's shape."""

    device: str
    bandwidth_gbps: float | None = Field(default=None, description="the device's published memory bandwidth")
    fp16_tflops: float | None = Field(default=None, description="published dense FP16 TFLOPS")
    cpu_cores: int | None = None

    @property
    def device_key(self) -> str:
        """The chip, for leave-one-device-out: vendor words, memory sizes, variants (PCIe/SXM, Max-Q), CPU vs
        iGPU of one SoC and parenthesised details are dropped, so every row of one chip is held out together."""
        return device_key(self.device)


class PublicResult(PublishedRow):
    """One row of the public results file: a device, a model shape, its llama-bench rates, quality, source."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    gpu_layers: int | None = None
    mem_gb: float | None = None
    pp_tokens: int | None = None
    pp_tok_s: float | None = Field(default=None, description="llama-bench pp: prompt tokens/s at pp_tokens")
    tg_tokens: int | None = None
    tg_tok_s: float | None = Field(default=None, description="llama-bench tg: decode tokens/s over tg_tokens")
    quality: str = "primary"
    source: str

    def shape(self) -> ModelShape:
        """The roofline shape of the row's model (F16 KV cache, llama-bench's default): exactly the shape
        ``hfp estimate`` builds from the same ``--params``/``--active-params``/``--weights-bytes``/... flags."""
        return ModelShape.of(self.spec().to_model_file())

    def facts(self) -> DeviceFacts | None:
        """The device facts the model needs, or None when the row lacks them (no bandwidth, no FP16, no cores)."""
        if self.bandwidth_gbps is None and not (self.backend == "cpu" and self.cpu_cores):
            return None
        return DeviceFacts(self.backend, self.bandwidth_gbps or 0.0, self.fp16_tflops, self.cpu_cores)


_DROP = re.compile(r"\b(nvidia|geforce|amd|radeon|intel|apple|core ultra \d|pcie|sxm|hbm3|max-q|workstation|"
                   r"edition|igpu|cpu|arc \d+v|mac mini|compute module|\d+gb)\b")


def device_key(name: str) -> str:
    """A canonical chip name (see ``PublishedRow.device_key``)."""
    s = name.lower().split("(")[0].replace("raspberry pi cm5", "raspberry pi 5")
    return " ".join(_DROP.sub(" ", s).split())


def read_rows(path: Path, cls: type[R], noun: str, ints: Iterable[str] = ()) -> list[R]:
    """The rows of a public results CSV as ``cls`` (``#`` lines are comments; blank cells are unreported; the
    ``ints`` columns may be written as floats, ``8.0``). A missing file or an invalid row is one ConfigError."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        raise ConfigError(f"{path}: {noun} not found") from None
    rows = []
    for i, raw in enumerate(csv.DictReader(lines), start=1):
        data: dict[str, object] = {k: (v.strip() if v and v.strip() else None) for k, v in raw.items()}
        for key in ints:
            if data.get(key) is not None:
                data[key] = int(float(str(data[key])))
        try:
            rows.append(cls.model_validate(data))
        except ValueError as e:
            raise ConfigError(f"{path}: row {i}: {e}") from e
    return rows


def load_public(path: Path = PUBLIC_CSV) -> list[PublicResult]:
    """Read the public results file (``#`` lines are comments; blank cells are unreported)."""
    return read_rows(path, PublicResult, "public calibration file",
                     ints=("gpu_layers", "cpu_cores", "layers", "kv_heads", "head_dim", "experts", "experts_used",
                           "sliding_window", "pp_tokens", "tg_tokens"))


@lru_cache(maxsize=4)
def _cached_public(path: Path) -> tuple[PublicResult, ...]:
    return tuple(load_public(path))


def public_rows(path: Path = PUBLIC_CSV) -> list[PublicResult]:
    """The public results, read once per process."""
    return list(_cached_public(Path(path)))


# --- device facts and the fitted factors ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceFacts:
    """What the public model needs to know about one processor: its llama.cpp backend, peak bandwidth (GB/s) of
    the memory the model sits in, dense FP16 TFLOPS (None when not declared) and CPU cores (None: unknown)."""

    backend: str
    bandwidth_gbps: float
    fp16_tflops: float | None = None
    cores: int | None = None


class DecodeFactors(Strict):
    """Fitted decode factors (see the module docstring)."""

    eta: dict[str, float]  # per backend, before the ceiling
    tau_layer_s: dict[str, float]  # per backend
    eta_pooled: float
    tau_layer_pooled_s: float
    moe_read: float  # rho: a MoE token reads rho x the active bytes the shape implies
    kappa_core_bps: float
    ceiling_gbps: dict[str, float]  # S per backend
    ceiling_pooled_gbps: float
    source_offsets: dict[str, float] = Field(default_factory=dict)  # log time, fit only (never in predictions)


class PrefillFactors(Strict):
    """Fitted prefill factors: log-linear coefficients of the achieved FLOP rate (see the module docstring)."""

    intercept_b: dict[str, float]  # per backend
    pooled_b: float
    slope_b: float  # on log BW
    slope_f: float  # on log(F / BW / F_PER_BYTE_REF), where FP16 is declared
    cpu_intercept: float
    cpu_slope: float
    cpu_tflops: float = 0.0  # log of achieved FLOP/s over a CPU's declared TFLOPS (used when declared)
    cpu_flop_per_byte: float = 1.0  # CPU without a core count: median achieved FLOP/s per B/s of bandwidth
    # a GPU without a declared FP16 figure: its backend's median log(F / BW / F_PER_BYTE_REF) over the fit rows
    log_f_typical: dict[str, float] = Field(default_factory=dict)
    log_f_typical_pooled: float = 0.0
    moe: float  # log factor


class Residual(Strict):
    """One leave-one-device-out prediction of a public row."""

    row: int  # index in the public rows
    kind: str  # decode | prefill
    backend: str
    moe: bool
    quality: str
    published: float
    predicted: float

    @property
    def log_error(self) -> float:
        """log(predicted / published)."""
        return math.log(self.predicted / self.published)


class PublicModel(Strict):
    """The fitted public model: factors, per-backend uncertainty (log sd from LODO residuals), provenance."""

    fit_version: int = FIT_VERSION
    data_sha256: str = ""
    decode: DecodeFactors
    prefill: PrefillFactors
    sigma_decode: dict[str, float] = Field(default_factory=dict)
    sigma_prefill: dict[str, float] = Field(default_factory=dict)
    sigma_decode_pooled: float = 0.2
    sigma_prefill_pooled: float = 0.4
    n_rows_decode: dict[str, int] = Field(default_factory=dict)
    n_rows_prefill: dict[str, int] = Field(default_factory=dict)
    residuals: list[Residual] = Field(default_factory=list)

    # -- predictions ------------------------------------------------------------------------------------------

    def bandwidth_bps(self, dev: DeviceFacts, shape: ModelShape) -> float:
        """Effective bandwidth (bytes/s) of decode on this device (the same for every quantization type)."""
        d = self.decode
        if dev.bandwidth_gbps <= 0:  # unknown bandwidth: only a CPU's per-core limit is known
            return d.kappa_core_bps * dev.cores if dev.backend == "cpu" and dev.cores else 1.0
        eta = d.eta.get(dev.backend, d.eta_pooled)
        ceiling = d.ceiling_gbps.get(dev.backend, d.ceiling_pooled_gbps) * 1e9
        # the memory time of a byte: at the peak's share, plus the ceiling's
        inverse = 1.0 / (dev.bandwidth_gbps * 1e9 * eta) + 1.0 / ceiling
        if dev.backend == "cpu" and dev.cores:  # plus the per-core streaming time
            inverse += 1.0 / (d.kappa_core_bps * dev.cores)
        return 1.0 / inverse / (d.moe_read if shape.is_moe else 1.0)

    def t0_s(self, dev: DeviceFacts, shape: ModelShape) -> float:
        """Fixed time per decode step: the backend's per-layer cost (kernel launches, synchronisation)."""
        d = self.decode
        return shape.n_layers * d.tau_layer_s.get(dev.backend, d.tau_layer_pooled_s)

    def flops(self, dev: DeviceFacts, shape: ModelShape) -> float:
        """Effective FLOP rate of prefill (FLOP/s) on this device for this model."""
        p = self.prefill
        if dev.backend == "cpu" and dev.fp16_tflops:
            y = p.cpu_tflops + math.log(dev.fp16_tflops * 1e12)
        elif dev.backend == "cpu" and dev.cores:
            y = p.cpu_intercept + p.cpu_slope * math.log(dev.cores)
        elif dev.backend == "cpu":  # cores unknown: the CPU rows' achieved FLOP per byte of bandwidth
            y = math.log(p.cpu_flop_per_byte * max(dev.bandwidth_gbps, 1e-3) * 1e9)
        else:
            bw = max(dev.bandwidth_gbps, 1e-3) * 1e9
            y = p.intercept_b.get(dev.backend, p.pooled_b) + p.slope_b * math.log(bw)
            log_f = (_flop_ratio(dev.fp16_tflops, bw) if dev.fp16_tflops
                     else p.log_f_typical.get(dev.backend, p.log_f_typical_pooled))
            y += p.slope_f * log_f
        return math.exp(y + (p.moe if shape.is_moe else 0.0))

    def device(self, dev: DeviceFacts, shape: ModelShape, name: str | None = None) -> Device:
        """The roofline ``Device`` of these facts for this model."""
        return Device(name or dev.backend, self.bandwidth_bps(dev, shape), self.flops(dev, shape),
                      self.t0_s(dev, shape))

    def sigma(self, backend: str, kind: str) -> float:
        """Relative error (log sd) of this backend's decode or prefill predictions, from LODO residuals."""
        if kind == "decode":
            return self.sigma_decode.get(backend, self.sigma_decode_pooled)
        return self.sigma_prefill.get(backend, self.sigma_prefill_pooled)

    def has_backend(self, backend: str, kind: str = "decode") -> bool:
        """Whether the public rows include this backend (else pooled factors apply)."""
        counts = self.n_rows_decode if kind == "decode" else self.n_rows_prefill
        return counts.get(backend, 0) > 0


def predict_row(model: PublicModel, row: PublicResult) -> tuple[float | None, float | None]:
    """llama-bench's tg (decode tok/s from an empty context) and pp (prompt tok/s) for a row, through the same
    roofline functions ``hfp estimate`` uses."""
    facts = row.facts()
    if facts is None:
        return None, None
    shape = row.shape()
    dev = model.device(facts, shape)
    parts = [Part(dev, shape.streamed_bytes, 1.0, 1.0)]
    tg = pp = None
    if facts.bandwidth_gbps > 0:
        tg = 1.0 / float(t_decode_step(shape, parts, 1, (row.tg_tokens or 128) / 2))
    n = float(row.pp_tokens or 512)
    pp = n / float(t_prefill(shape, parts, n, N_UBATCH))
    return tg, pp


# --- fitting -------------------------------------------------------------------------------------------------


def _levenberg_marquardt(fun: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, iters: int = 300) -> np.ndarray:
    """Minimise ``sum(fun(x)**2)`` (small, deterministic; numerical Jacobian; no SciPy dependency)."""
    x = np.asarray(x0, dtype=float).copy()
    r = fun(x)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(iters):
        jac = np.empty((r.size, x.size))
        for j in range(x.size):
            xp = x.copy()
            xp[j] += 1e-6
            jac[:, j] = (fun(xp) - r) / 1e-6
        a, g = jac.T @ jac, jac.T @ r
        while True:
            step = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-9), -g)
            rn = fun(x + step)
            cn = float(rn @ rn)
            if math.isfinite(cn) and cn < cost:
                converged = cost - cn < 1e-10 * max(cost, 1e-12)
                x, r, cost, lam = x + step, rn, cn, max(lam / 3, 1e-9)
                break
            lam *= 4
            if lam > 1e10:
                return x
        if converged:
            break
    return x


@dataclass(frozen=True)
class _DecodeData:
    backend: np.ndarray  # index into BACKENDS
    bw: np.ndarray  # GB/s
    read: np.ndarray  # bytes per token (weights read + KV at the mean context)
    layers: np.ndarray
    moe: np.ndarray
    cores: np.ndarray  # 0 unknown
    t_obs: np.ndarray
    weight: np.ndarray
    source: np.ndarray  # index into the publications (``source_key``) of these rows
    sources: tuple[str, ...]


def source_key(source: str) -> str:
    """The publication a row comes from (roughly one build, harness and flash-attention setting): the source
    text before any parenthesis or semicolon, lower-cased (PR #4766's comments are one publication)."""
    return " ".join(source.split("(")[0].split(";")[0].lower().split())[:40]


def _decode_data(rows: Sequence[PublicResult]) -> _DecodeData:
    use = [r for r in rows if r.tg_tok_s and r.bandwidth_gbps and r.backend in BACKENDS]
    reads = []
    for r in use:
        s = r.shape()
        reads.append(float(s.weights_read(1.0)) + float(s.kv_read_bytes((r.tg_tokens or 128) / 2)))
    sources = tuple(sorted({source_key(r.source) for r in use}))
    return _DecodeData(
        backend=np.array([BACKENDS.index(r.backend) for r in use], dtype=int),
        bw=np.array([r.bandwidth_gbps for r in use], dtype=float), read=np.array(reads),
        layers=np.array([r.layers for r in use], dtype=float), moe=np.array([float(r.is_moe) for r in use]),
        cores=np.array([float(r.cpu_cores or 0) if r.backend == "cpu" else 0.0 for r in use]),
        t_obs=np.array([1.0 / (r.tg_tok_s or 1.0) for r in use]),
        weight=np.array([QUALITY_WEIGHT.get(r.quality, 0.3) for r in use]),
        source=np.array([sources.index(source_key(r.source)) for r in use], dtype=int), sources=sources,
    )


_NB = len(BACKENDS)


def _layout() -> dict[str, slice]:
    """Where each decode factor sits in the fit's parameter vector (all logs); the publications' offsets
    follow."""
    sizes = [("eta", _NB), ("tau", _NB), ("ceil", _NB), ("eta_pool", 1), ("tau_pool", 1), ("ceil_pool", 1),
             ("moe", 1), ("kappa", 1)]
    out, i = {}, 0
    for name, n in sizes:
        out[name] = slice(i, i + n)
        i += n
    return out


_L = _layout()
_NX = max(sl.stop for sl in _L.values())


def _decode_times(x: np.ndarray, d: _DecodeData) -> np.ndarray:
    """Predicted seconds per token of the rows for factors ``x`` (the module docstring's decode formula)."""
    eta, tau = np.exp(x[_L["eta"]][d.backend]), np.exp(x[_L["tau"]][d.backend])
    inv_ceiling = 1.0 / (np.exp(x[_L["ceil"]][d.backend]) * 1e9)
    moe, kappa = math.exp(x[_L["moe"]][0]), math.exp(x[_L["kappa"]][0])
    inverse = 1.0 / (d.bw * 1e9 * eta) + inv_ceiling
    inverse = inverse + np.where(d.cores > 0, 1.0 / (kappa * np.maximum(d.cores, 1)), 0.0)
    return d.layers * tau + d.read * np.where(d.moe > 0, moe, 1.0) * inverse  # type: ignore[no-any-return]


def _huber(r: np.ndarray) -> np.ndarray:
    """Residuals whose squares are the Huber loss (quadratic up to ``HUBER_LOG``, linear beyond)."""
    a = np.abs(r)
    big = np.sqrt(np.maximum(2 * HUBER_LOG * a - HUBER_LOG ** 2, 0.0))
    return np.where(a <= HUBER_LOG, r, np.sign(r) * big)  # type: ignore[no-any-return]


def _decode_prior(x: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Ridge priors (in log units): backend factors toward the pooled ones, weak centres for the rest."""
    sd = PRIOR_SD
    return [(x[_L["eta"]] - x[_L["eta_pool"]]) / sd["eta"], (x[_L["tau"]] - x[_L["tau_pool"]]) / sd["tau"],
            (x[_L["ceil"]] - x[_L["ceil_pool"]]) / sd["ceiling"],
            (x[_L["ceil_pool"]] - math.log(CEILING_PRIOR_GBPS)) / sd["ceiling"],
            x[_L["moe"]] / sd["moe"], (x[_L["kappa"]] - math.log(KAPPA_PRIOR_BPS)) / sd["kappa"],
            offsets / sd["source"]]


def _decode_start(n_sources: int) -> np.ndarray:
    x0 = np.zeros(_NX + n_sources)
    x0[_L["eta"]], x0[_L["eta_pool"]] = math.log(0.7), math.log(0.7)
    x0[_L["tau"]], x0[_L["tau_pool"]] = math.log(5e-5), math.log(5e-5)
    x0[_L["ceil"]], x0[_L["ceil_pool"]] = math.log(CEILING_PRIOR_GBPS), math.log(CEILING_PRIOR_GBPS)
    x0[_L["kappa"]] = math.log(KAPPA_PRIOR_BPS)
    return x0


def fit_decode(rows: Sequence[PublicResult]) -> DecodeFactors:
    """Fit the decode factors to the rows' tg rates (weighted Huber least squares on log times, one offset per
    publication, ridge priors)."""
    d = _decode_data(rows)
    present = set(d.backend.tolist())

    def residuals(xx: np.ndarray) -> np.ndarray:
        x, offsets = xx[:_NX], xx[_NX:]
        log_err = np.log(_decode_times(x, d)) + offsets[d.source] - np.log(d.t_obs)
        return np.concatenate([np.sqrt(d.weight) * _huber(log_err), *_decode_prior(x, offsets)])

    xx = _levenberg_marquardt(residuals, _decode_start(len(d.sources)))
    x = xx[:_NX]

    def per_backend(name: str) -> dict[str, float]:
        return {b: float(math.exp(x[_L[name]][i])) for i, b in enumerate(BACKENDS) if i in present}

    return DecodeFactors(
        eta=per_backend("eta"), tau_layer_s=per_backend("tau"), eta_pooled=float(math.exp(x[_L["eta_pool"]][0])),
        tau_layer_pooled_s=float(math.exp(x[_L["tau_pool"]][0])),
        moe_read=float(math.exp(x[_L["moe"]][0])), kappa_core_bps=float(math.exp(x[_L["kappa"]][0])),
        ceiling_gbps=per_backend("ceil"), ceiling_pooled_gbps=float(math.exp(x[_L["ceil_pool"]][0])),
        source_offsets={k: float(v) for k, v in zip(d.sources, xx[_NX:], strict=True)},
    )


def _flop_ratio(fp16_tflops: float, bw_bps: float) -> float:
    """log of a GPU's declared FP16 FLOP per byte of bandwidth, relative to ``F_PER_BYTE_REF``."""
    return math.log(fp16_tflops * 1e12 / bw_bps / F_PER_BYTE_REF)


def _prefill_features(row: PublicResult) -> dict[str, float] | None:
    """The regression features of a row's achieved FLOP rate, or None when the row cannot be used."""
    f: dict[str, float] = {"moe": float(row.is_moe)}
    if row.backend == "cpu" and row.fp16_tflops:  # declared CPU compute: achieved = factor x declared
        f.update(cpu_t=1.0, offset=math.log(row.fp16_tflops * 1e12))
    elif row.backend == "cpu" and row.cpu_cores:
        f.update(cpu=1.0, log_cores=math.log(row.cpu_cores))
    elif row.bandwidth_gbps:
        f.update({f"B_{row.backend}": 1.0, "log_b": math.log(row.bandwidth_gbps * 1e9)})
        if row.fp16_tflops:
            f["log_f"] = _flop_ratio(row.fp16_tflops, row.bandwidth_gbps * 1e9)
    else:
        return None
    return f


def _typical_log_f(rows: Sequence[PublicResult]) -> tuple[dict[str, float], float]:
    """Per GPU backend, the median declared compute per byte (``_flop_ratio``) of its rows, and the pooled median:
    what a GPU without a declared FP16 figure is assumed to have (declared: CUDA rows ~160 FLOP/B, Metal ~35)."""
    ratios: dict[str, list[float]] = {}
    for r in rows:
        if r.backend != "cpu" and r.backend in BACKENDS and r.fp16_tflops and r.bandwidth_gbps:
            ratios.setdefault(r.backend, []).append(_flop_ratio(r.fp16_tflops, r.bandwidth_gbps * 1e9))
    every = [v for vs in ratios.values() for v in vs]
    return ({b: float(np.median(vs)) for b, vs in ratios.items()}, float(np.median(every)) if every else 0.0)


def fit_prefill(rows: Sequence[PublicResult]) -> PrefillFactors:
    """Fit the prefill coefficients (weighted ridge least squares on log FLOP rates)."""
    use = [(r, f) for r in rows if r.pp_tok_s and r.backend in BACKENDS and (f := _prefill_features(r))]
    typical, typical_pooled = _typical_log_f(rows)
    for r, f in use:  # a GPU row without a declared FP16 figure: its backend's typical compute per byte
        if f"B_{r.backend}" in f and "log_f" not in f:
            f["log_f"] = typical.get(r.backend, typical_pooled)
    names = [f"B_{b}" for b in BACKENDS] + ["mu_b", "log_f", "log_b", "cpu", "log_cores", "cpu_t", "moe"]
    idx = {n: i for i, n in enumerate(names)}
    x_rows, y, w = [], [], []
    for r, f in use:
        v = np.zeros(len(names))
        for k, val in f.items():
            if k != "offset":
                v[idx[k]] = val
        x_rows.append(v)
        achieved = (r.pp_tok_s or 1.0) * 2.0 * (r.active_params if r.is_moe and r.active_params else r.params)
        y.append(math.log(achieved) - f.get("offset", 0.0))
        w.append(math.sqrt(QUALITY_WEIGHT.get(r.quality, 0.3)))
    prior_x, prior_y = [], []

    def prior(weights: dict[str, float], target: float) -> None:
        v = np.zeros(len(names))
        for k, val in weights.items():
            v[idx[k]] = val
        prior_x.append(v)
        prior_y.append(target)

    s = 1.0 / PRIOR_SD["intercept"]
    for b in BACKENDS:  # backend intercepts toward the pooled one (exactly the pooled one with no rows)
        prior({f"B_{b}": s, "mu_b": -s}, 0.0)
    prior({"moe": 1.0 / PRIOR_SD["pp_moe"]}, 0.0)
    c = 1.0 / PRIOR_SD["cpu"]  # weak: about 50 GFLOPS per core
    prior({"cpu": c}, c * math.log(50e9))
    # prior toward linear in cores (a CPU's matmul throughput is its cores' sum): the few core-only rows mix
    # many-core server parts (wide SIMD) with small Arm boards and would otherwise fit a superlinear cores^1.5
    # that a 2-core host extrapolates badly (43 GFLOP/s predicted for a 2-core Zen4 measuring ~470)
    cc = 1.0 / PRIOR_SD["cpu_cores"]
    prior({"log_cores": cc}, cc * 1.0)
    # achieved over declared CPU TFLOPS (peak vector FP32 or a measured SGEMM): llama.cpp's int8 dot products
    # gain on FP32 about what quantisation and threading lose, so the prior centre is 1
    prior({"cpu_t": 1.0 / PRIOR_SD["cpu_tflops"]}, 0.0)
    prior({"log_b": 0.01}, 0.01)  # keep the slopes and the pooled intercept defined on any subset of rows
    prior({"log_f": 0.01}, 0.0)
    prior({"mu_b": 0.01}, 0.0)
    xr, yr, wq = np.array(x_rows), np.array(y), np.array(w)
    beta = np.linalg.lstsq(np.vstack([xr * wq[:, None], np.array(prior_x)]), np.concatenate([yr * wq, prior_y]),
                           rcond=None)[0]
    present_b = {r.backend for r, f in use if f"B_{r.backend}" in f}
    return PrefillFactors(
        intercept_b={b: float(beta[idx[f"B_{b}"]]) for b in BACKENDS if b in present_b},
        pooled_b=float(beta[idx["mu_b"]]), slope_f=float(beta[idx["log_f"]]), slope_b=float(beta[idx["log_b"]]),
        cpu_intercept=float(beta[idx["cpu"]]),
        cpu_slope=float(beta[idx["log_cores"]]), moe=float(beta[idx["moe"]]), cpu_tflops=float(beta[idx["cpu_t"]]),
        log_f_typical=typical, log_f_typical_pooled=typical_pooled,
        cpu_flop_per_byte=float(np.median(per_byte)) if (per_byte := [
            (r.pp_tok_s or 0) * 2 * r.params / (r.bandwidth_gbps * 1e9) for r in rows
            if r.backend == "cpu" and r.pp_tok_s and r.bandwidth_gbps and not r.is_moe]) else 1.0,
    )


def fit_factors(rows: Sequence[PublicResult]) -> PublicModel:
    """The public model's factors fitted to ``rows`` (no uncertainty yet; ``fit`` adds it)."""
    rows = list(rows)
    dec = [r for r in rows if r.tg_tok_s and r.bandwidth_gbps]
    pre = [r for r in rows if r.pp_tok_s and _prefill_features(r)]
    return PublicModel(
        decode=fit_decode(rows), prefill=fit_prefill(rows),
        n_rows_decode={b: n for b in BACKENDS if (n := sum(r.backend == b for r in dec))},
        n_rows_prefill={b: n for b in BACKENDS if (n := sum(r.backend == b for r in pre))},
    )


def leave_one_device_out(rows: Sequence[PublicResult],
                         on_fit: Callable[[str, PublicModel], None] | None = None) -> list[Residual]:
    """Predict every row with factors refit without any row of its device (``device_key``); ``on_fit`` sees
    each refit (the held-out device's key and the factors)."""
    rows = list(rows)
    out: list[Residual] = []
    for key in sorted({r.device_key for r in rows}):
        held = [i for i, r in enumerate(rows) if r.device_key == key]
        model = fit_factors([r for r in rows if r.device_key != key])
        if on_fit is not None:
            on_fit(key, model)
        for i in held:
            r = rows[i]
            tg, pp = predict_row(model, r)
            if tg and r.tg_tok_s:
                out.append(Residual(row=i, kind="decode", backend=r.backend, moe=r.is_moe, quality=r.quality,
                                    published=r.tg_tok_s, predicted=tg))
            if pp and r.pp_tok_s and _prefill_features(r):
                out.append(Residual(row=i, kind="prefill", backend=r.backend, moe=r.is_moe, quality=r.quality,
                                    published=r.pp_tok_s, predicted=pp))
    return out


def _spread_ss(errors: np.ndarray) -> float:
    """Squared spread of absolute log errors: their mean square, or (90th percentile / 1.645)^2 where the
    tails are heavier than a normal's (so a 90% band covers 90% of them either way)."""
    return max(float(np.mean(errors ** 2)), (float(np.quantile(errors, 0.9)) / Z90) ** 2)


def sigmas(residuals: Iterable[Residual], kind: str) -> tuple[dict[str, float], float]:
    """Per-backend relative error (log sd) of a NEW device's prediction, and the pooled one, from LODO residuals
    of one kind: the backend's spread (``_spread_ss``) shrunk toward the pooled spread as if by
    ``SIGMA_PRIOR_ROWS`` rows, times ``sqrt(1 + 1/n)`` (a prediction interval: the spread is itself estimated
    from ``n`` rows)."""
    res = [r for r in residuals if r.kind == kind]
    if not res:
        return {}, 0.3
    errors = np.array([abs(r.log_error) for r in res])
    pooled_ss = _spread_ss(errors)
    per: dict[str, float] = {}
    for b in BACKENDS:
        mine = np.array([abs(r.log_error) for r in res if r.backend == b])
        if mine.size:
            n = mine.size + SIGMA_PRIOR_ROWS
            ss = (mine.size * _spread_ss(mine) + SIGMA_PRIOR_ROWS * pooled_ss) / n
            per[b] = max(math.sqrt(ss * (1.0 + 1.0 / n)), MIN_SIGMA)
    return per, max(math.sqrt(pooled_ss * (1.0 + 1.0 / errors.size)), MIN_SIGMA)


def fit(rows: Sequence[PublicResult]) -> PublicModel:
    """Factors fitted on all rows, with per-backend uncertainty from leave-one-device-out residuals."""
    model = fit_factors(rows)
    res = leave_one_device_out(rows)
    sd_dec, pool_dec = sigmas(res, "decode")
    sd_pre, pool_pre = sigmas(res, "prefill")
    return model.model_copy(update=dict(sigma_decode=sd_dec, sigma_decode_pooled=pool_dec, sigma_prefill=sd_pre,
                                        sigma_prefill_pooled=pool_pre, residuals=res))


# the code a fit depends on: this module, the roofline and the spec -> shape conversion (a change to any of them
# must never be served an old cached fit)
_FIT_CODE = (Path(__file__), Path(__file__).with_name("model.py"), Path(__file__).with_name("spec.py"))


def fit_key(path: Path) -> str:
    """The cache key of the fit of the results file ``path``: the hash of FIT_VERSION, the file and the code
    the fit depends on (``_FIT_CODE``); empty when the file does not exist."""
    if not Path(path).exists():
        return ""
    h = hashlib.sha256(f"fit-version {FIT_VERSION}\n".encode())
    for f in (Path(path), *_FIT_CODE):
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def _cache_file(sha: str) -> Path:
    return cache_dir() / "public-model" / f"v{FIT_VERSION}-{sha[:16]}.json"


def _read_cache(cache: Path, sha: str) -> PublicModel | None:
    try:
        model = PublicModel.model_validate(json.loads(cache.read_text()))
    except (ValueError, OSError):
        return None
    return model if model.fit_version == FIT_VERSION and model.data_sha256 == sha else None


def _write_cache(cache: Path, model: PublicModel) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(model.model_dump_json())
        tmp.replace(cache)
    except OSError:
        pass


@lru_cache(maxsize=4)
def _cached_model(path: Path) -> PublicModel:
    sha = fit_key(path)
    cache = _cache_file(sha) if sha else None
    if cache is not None and cache.exists() and (model := _read_cache(cache, sha)) is not None:
        return model
    model = fit(public_rows(path)).model_copy(update={"data_sha256": sha})
    if cache is not None:
        _write_cache(cache, model)
    return model


def public_model(path: Path = PUBLIC_CSV) -> PublicModel:
    """The model fitted to the public results file (cached per process and on disk by the file's hash)."""
    return _cached_model(Path(path))


def moe_flop_share() -> float:
    """A mixture-of-experts model's FLOP rate as a share of a dense model's on the same device (its indexed
    ``mul_mat_id`` matmuls over small per-expert matrices), fitted on the public prefill rows; a local
    calibration, fitted on dense and MoE rungs alike, applies it too."""
    return math.exp(public_model().prefill.moe)
