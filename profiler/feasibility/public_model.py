"""The public performance model: a few efficiency factors fitted to public llama.cpp results.

Owns the public results file (``profiler/data/llamacpp-public.csv``, a copy of the shared calibration file; its
header explains the columns and every row names its source), the fit of the factors below to it, the
leave-one-device-out (LODO) residuals, and the uncertainty per backend derived from those residuals. It turns
declared device facts (backend, peak bandwidth, FP16 FLOPS if known, cores) and a model shape into an effective
bandwidth, an effective FLOP rate and a fixed time per decode step (a ``model.Device``). It must not read
profiles, run records or scenarios.

Decode (single sequence, memory-bound), for a model with ``L`` layers reading ``D`` bytes per token::

    t_token = L * tau_b * (1 + mu * is_moe) + D / (eta_b * BW * (BW / 400 GB/s)^-alpha * q_quant)
              [+ D / (kappa * cores) on CPUs]

- ``eta_b`` bandwidth efficiency and ``tau_b`` fixed time per layer (kernel launches, synchronisation) per
  backend; separated by devices measured with several model sizes (8B and 70B on the same GPU);
- ``alpha``: devices with more bandwidth reach a smaller share of it (one exponent for all backends);
- ``mu``: extra fixed time of a mixture-of-experts layer (routing, more and smaller kernels);
- ``q_quant``: quantization-type factors relative to the K-quants (Q4_0, MXFP4);
- ``kappa``: bytes per second one CPU core can stream (the few-core limit of CPU decode).

Prefill (compute-bound) is a log-linear model of the FLOP rate achieved, ``2 * P_active * pp_tok_s``:

- GPU with declared FP16 FLOPS ``F``: ``log F_eff = a_b + beta_F log F + beta_FB log BW``;
- GPU without it (blank ``fp16_tflops``: older GPUs without fast FP16 and any source that gave none):
  ``log F_eff = c_b + beta_B log BW`` -- bandwidth stands in for the size of the chip;
- CPU: ``log F_eff = c_cpu + beta_C log cores`` (llama.cpp's CPU matmuls scale with cores, not bandwidth);
- a mixture-of-experts factor (small per-expert matmuls in a ubatch).

Backend terms are shrunk toward their pooled value (a ridge prior), which is also what a backend absent from
the data gets. Rows weigh by quality (primary 1, secondary 0.5, shaky 0.3). Factors are refit from the file
when it changes (cached as JSON under the user cache dir, keyed by the hash of the file and of this module).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from profiler.errors import ConfigError
from profiler.feasibility.model import Device, ModelShape, Part, t_decode_step, t_prefill
from profiler.feasibility.spec import ModelSpec
from profiler.resources import data_file

PUBLIC_CSV = data_file("llamacpp-public.csv")  # package data (importlib.resources)
FIT_VERSION = 1  # bump when the model's form changes: cached fits are then ignored
BACKENDS = ("cuda", "rocm", "metal", "vulkan", "sycl", "cpu")
QUALITY_WEIGHT = {"primary": 1.0, "secondary": 0.5, "shaky": 0.3}
QUANT_FACTORS = ("Q4_0", "MXFP4")  # fitted relative to the K-quants; other types get 1
BW_REF_GBPS = 400.0
N_UBATCH = 512  # llama-bench's default ubatch
# prior (ridge) widths, in log units: how far a backend's factor may stray from the pooled one on little data
PRIOR_SD = {"eta": 1.0, "tau": 1.0, "alpha": 10.0, "moe": 3.0, "kappa": 3.0, "quant": 0.2, "intercept": 1.0,
            "pp_moe": 3.0, "cpu": 3.0, "cpu_cores": 3.0}
SIGMA_PRIOR_ROWS = 3.0  # a backend's band shrinks toward the pooled residual spread as if by this many rows
MIN_SIGMA = 0.05
# Huber loss on log errors: rows further off than this (from other builds, odd harnesses) weigh less
HUBER_LOG = 0.25  # decode only: prefill's scatter is wide enough that Huber weights lose information


# --- the public rows -----------------------------------------------------------------------------------------


class PublicResult(BaseModel):
    """One row of the public results file: a device, a model shape, its llama-bench rates, quality, source."""

    model_config = ConfigDict(extra="forbid")

    device: str
    backend: str
    gpu_layers: int | None = None
    bandwidth_gbps: float | None = None
    fp16_tflops: float | None = None
    cpu_cores: int | None = None
    mem_gb: float | None = None
    model: str
    quant: str
    params: float
    active_params: float | None = None
    weight_bytes: float
    layers: int
    kv_heads: int
    head_dim: int
    experts: int | None = None
    experts_used: int | None = None
    sliding_window: int | None = None
    pp_tokens: int | None = None
    pp_tok_s: float | None = None
    tg_tokens: int | None = None
    tg_tok_s: float | None = None
    quality: str = "primary"
    source: str

    @property
    def device_key(self) -> str:
        """The chip, for leave-one-device-out: vendor words, memory sizes, variants (PCIe/SXM, Max-Q), CPU vs
        iGPU of one SoC and parenthesised details are dropped, so every row of one chip is held out together."""
        return device_key(self.device)

    @property
    def is_moe(self) -> bool:
        """A mixture-of-experts model (fewer active than total parameters)."""
        return self.active_params is not None and self.active_params < self.params

    def spec(self) -> ModelSpec:
        """The row's model as a spec (weights bytes as published, same bits per weight for every tensor)."""
        moe = self.is_moe
        return ModelSpec(
            name=self.model, params=self.params, weights_bytes=self.weight_bytes, layers=self.layers,
            kv_heads=self.kv_heads, head_dim=self.head_dim, active_params=self.active_params if moe else None,
            experts=self.experts if moe and self.experts_used else None,
            experts_used=self.experts_used if moe and self.experts else None,
        )

    def shape(self) -> ModelShape:
        """The roofline shape of the row's model (F16 KV cache, llama-bench's default)."""
        return dataclasses.replace(ModelShape.of(self.spec().to_model_file()), quant=self.quant)

    def facts(self) -> DeviceFacts | None:
        """The device facts the model needs, or None when the row lacks them (no bandwidth, no FP16, no cores)."""
        if self.bandwidth_gbps is None and not (self.backend == "cpu" and self.cpu_cores):
            return None
        return DeviceFacts(self.backend, self.bandwidth_gbps or 0.0, self.fp16_tflops, self.cpu_cores)


_DROP = re.compile(r"\b(nvidia|geforce|amd|radeon|intel|apple|core ultra \d|pcie|sxm|hbm3|max-q|workstation|"
                   r"edition|igpu|cpu|arc \d+v|mac mini|compute module|\d+gb)\b")


def device_key(name: str) -> str:
    """A canonical chip name (see ``PublicResult.device_key``)."""
    s = name.lower().split("(")[0].replace("raspberry pi cm5", "raspberry pi 5")
    return " ".join(_DROP.sub(" ", s).split())


def load_public(path: Path = PUBLIC_CSV) -> list[PublicResult]:
    """Read the public results file (``#`` lines are comments; blank cells are unreported)."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        raise ConfigError(f"{path}: public calibration file not found") from None
    rows = []
    for i, raw in enumerate(csv.DictReader(lines), start=1):
        data: dict[str, object] = {k: (v.strip() if v and v.strip() else None) for k, v in raw.items()}
        for key in ("gpu_layers", "cpu_cores", "layers", "kv_heads", "head_dim", "experts", "experts_used",
                    "sliding_window", "pp_tokens", "tg_tokens"):
            if data.get(key) is not None:
                data[key] = int(float(str(data[key])))
        try:
            rows.append(PublicResult.model_validate(data))
        except ValueError as e:
            raise ConfigError(f"{path}: row {i}: {e}") from e
    return rows


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


def quant_class(quant: str) -> str:
    """The quantization family a factor is fitted for: ``Q4_0``, ``MXFP4`` or ``other`` (K-quants and the rest)."""
    q = quant.upper()
    if "MXFP4" in q:
        return "MXFP4"
    if q.startswith("Q4_0"):
        return "Q4_0"
    return "other"


class DecodeFactors(BaseModel):
    """Fitted decode factors (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    eta: dict[str, float]  # per backend, at BW_REF_GBPS
    tau_layer_s: dict[str, float]  # per backend
    eta_pooled: float
    tau_layer_pooled_s: float
    alpha: float
    moe_overhead: float  # mu
    kappa_core_bps: float
    quant: dict[str, float]


class PrefillFactors(BaseModel):
    """Fitted prefill factors: log-linear coefficients of the achieved FLOP rate (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    intercept_f: dict[str, float]  # per backend, FP16 declared
    intercept_b: dict[str, float]  # per backend, bandwidth only
    pooled_f: float
    pooled_b: float
    slope_f: float
    slope_fb: float
    slope_b: float
    cpu_intercept: float
    cpu_slope: float
    cpu_flop_per_byte: float = 1.0  # CPU without a core count: median achieved FLOP/s per B/s of bandwidth
    moe: float  # log factor


class Residual(BaseModel):
    """One leave-one-device-out prediction of a public row."""

    model_config = ConfigDict(extra="forbid")

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


class PublicModel(BaseModel):
    """The fitted public model: factors, per-backend uncertainty (log sd from LODO residuals), provenance."""

    model_config = ConfigDict(extra="forbid")

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
        """Effective bandwidth (bytes/s) of decode for this model's quantization on this device."""
        d = self.decode
        eta = d.eta.get(dev.backend, d.eta_pooled)
        if dev.bandwidth_gbps <= 0:  # unknown bandwidth: only a CPU's per-core limit is known
            return d.kappa_core_bps * dev.cores if dev.backend == "cpu" and dev.cores else 1.0
        bw = dev.bandwidth_gbps * 1e9 * eta * (dev.bandwidth_gbps / BW_REF_GBPS) ** (-d.alpha)
        bw *= d.quant.get(quant_class(shape.quant), 1.0)
        if dev.backend == "cpu" and dev.cores:  # serial sum of the memory time and the per-core streaming time
            bw = 1.0 / (1.0 / bw + 1.0 / (d.kappa_core_bps * dev.cores))
        return bw

    def t0_s(self, dev: DeviceFacts, shape: ModelShape) -> float:
        """Fixed time per decode step: per-layer cost of the backend, more for mixture-of-experts layers."""
        d = self.decode
        tau = d.tau_layer_s.get(dev.backend, d.tau_layer_pooled_s)
        return shape.n_layers * tau * (1.0 + (d.moe_overhead if shape.is_moe else 0.0))

    def flops(self, dev: DeviceFacts, shape: ModelShape) -> float:
        """Effective FLOP rate of prefill (FLOP/s) on this device for this model."""
        p = self.prefill
        if dev.backend == "cpu" and dev.cores:
            y = p.cpu_intercept + p.cpu_slope * math.log(dev.cores)
        elif dev.backend == "cpu":  # cores unknown: the CPU rows' achieved FLOP per byte of bandwidth
            y = math.log(p.cpu_flop_per_byte * max(dev.bandwidth_gbps, 1e-3) * 1e9)
        elif dev.fp16_tflops:
            y = (p.intercept_f.get(dev.backend, p.pooled_f) + p.slope_f * math.log(dev.fp16_tflops * 1e12)
                 + p.slope_fb * math.log(max(dev.bandwidth_gbps, 1e-3) * 1e9))
        else:
            y = p.intercept_b.get(dev.backend, p.pooled_b) + p.slope_b * math.log(max(dev.bandwidth_gbps, 1e-3) * 1e9)
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
    parts = [Part(dev, shape.weight_bytes, 1.0, 1.0)]
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
    quant: np.ndarray  # index into QUANT_FACTORS, -1 for others
    cores: np.ndarray  # 0 unknown
    t_obs: np.ndarray
    weight: np.ndarray


def _decode_data(rows: Sequence[PublicResult]) -> _DecodeData:
    use = [r for r in rows if r.tg_tok_s and r.bandwidth_gbps and r.backend in BACKENDS]
    reads = []
    for r in use:
        s = r.shape()
        reads.append(float(s.weights_read(1.0)) + float(s.kv_read_bytes((r.tg_tokens or 128) / 2)))
    return _DecodeData(
        backend=np.array([BACKENDS.index(r.backend) for r in use], dtype=int),
        bw=np.array([r.bandwidth_gbps for r in use], dtype=float), read=np.array(reads),
        layers=np.array([r.layers for r in use], dtype=float), moe=np.array([float(r.is_moe) for r in use]),
        quant=np.array([QUANT_FACTORS.index(c) if (c := quant_class(r.quant)) in QUANT_FACTORS else -1
                        for r in use], dtype=int),
        cores=np.array([float(r.cpu_cores or 0) if r.backend == "cpu" else 0.0 for r in use]),
        t_obs=np.array([1.0 / (r.tg_tok_s or 1.0) for r in use]),
        weight=np.array([QUALITY_WEIGHT.get(r.quality, 0.3) for r in use]),
    )


_NB, _NQ = len(BACKENDS), len(QUANT_FACTORS)


def _decode_times(x: np.ndarray, d: _DecodeData) -> np.ndarray:
    eta = np.exp(x[d.backend])
    tau = np.exp(x[_NB + d.backend])
    alpha, mu, kappa = x[2 * _NB + 2], math.exp(x[2 * _NB + 3]), math.exp(x[2 * _NB + 4])
    qf = np.where(d.quant >= 0, np.exp(x[2 * _NB + 5 + np.maximum(d.quant, 0)]), 1.0)
    bw = d.bw * 1e9 * eta * (d.bw / BW_REF_GBPS) ** (-alpha) * qf
    bw = np.where(d.cores > 0, 1.0 / (1.0 / bw + 1.0 / (kappa * np.maximum(d.cores, 1))), bw)
    return d.layers * tau * (1.0 + mu * d.moe) + d.read / bw  # type: ignore[no-any-return]


def _huber(r: np.ndarray) -> np.ndarray:
    """Residuals whose squares are the Huber loss (quadratic up to ``HUBER_LOG``, linear beyond)."""
    a = np.abs(r)
    big = np.sqrt(np.maximum(2 * HUBER_LOG * a - HUBER_LOG ** 2, 0.0))
    return np.where(a <= HUBER_LOG, r, np.sign(r) * big)  # type: ignore[no-any-return]


def fit_decode(rows: Sequence[PublicResult]) -> DecodeFactors:
    """Fit the decode factors to the rows' tg rates (weighted least squares on log times, ridge priors)."""
    d = _decode_data(rows)
    sd = PRIOR_SD
    present = set(d.backend.tolist())

    def residuals(x: np.ndarray) -> np.ndarray:
        res = [np.sqrt(d.weight) * _huber(np.log(_decode_times(x, d)) - np.log(d.t_obs))]
        eta_pool, tau_pool = x[2 * _NB], x[2 * _NB + 1]
        prior = [(x[:_NB] - eta_pool) / sd["eta"], (x[_NB:2 * _NB] - tau_pool) / sd["tau"],
                 np.array([x[2 * _NB + 2] / sd["alpha"], x[2 * _NB + 3] / sd["moe"],
                           (x[2 * _NB + 4] - math.log(10e9)) / sd["kappa"]]), x[2 * _NB + 5:] / sd["quant"]]
        return np.concatenate(res + prior)

    x0 = np.concatenate([np.full(_NB, math.log(0.7)), np.full(_NB, math.log(5e-5)),
                         [math.log(0.7), math.log(5e-5), 0.0, 0.0, math.log(10e9)], np.zeros(_NQ)])
    x = _levenberg_marquardt(residuals, x0)
    eta = {b: float(math.exp(x[i])) for i, b in enumerate(BACKENDS) if i in present}
    tau = {b: float(math.exp(x[_NB + i])) for i, b in enumerate(BACKENDS) if i in present}
    return DecodeFactors(
        eta=eta, tau_layer_s=tau, eta_pooled=float(math.exp(x[2 * _NB])),
        tau_layer_pooled_s=float(math.exp(x[2 * _NB + 1])), alpha=float(x[2 * _NB + 2]),
        moe_overhead=float(math.exp(x[2 * _NB + 3])), kappa_core_bps=float(math.exp(x[2 * _NB + 4])),
        quant={q: float(math.exp(x[2 * _NB + 5 + i])) for i, q in enumerate(QUANT_FACTORS)},
    )


def _prefill_features(row: PublicResult) -> dict[str, float] | None:
    """The regression features of a row's achieved FLOP rate, or None when the row cannot be used."""
    f: dict[str, float] = {"moe": float(row.is_moe)}
    if row.backend == "cpu" and row.cpu_cores:
        f.update(cpu=1.0, log_cores=math.log(row.cpu_cores))
    elif row.fp16_tflops and row.bandwidth_gbps:
        f.update({f"F_{row.backend}": 1.0, "log_f": math.log(row.fp16_tflops * 1e12),
                  "log_fb": math.log(row.bandwidth_gbps * 1e9)})
    elif row.bandwidth_gbps:
        f.update({f"B_{row.backend}": 1.0, "log_b": math.log(row.bandwidth_gbps * 1e9)})
    else:
        return None
    return f


def fit_prefill(rows: Sequence[PublicResult]) -> PrefillFactors:
    """Fit the prefill coefficients (weighted ridge least squares on log FLOP rates)."""
    use = [(r, f) for r in rows if r.pp_tok_s and r.backend in BACKENDS and (f := _prefill_features(r))]
    names = ([f"F_{b}" for b in BACKENDS] + [f"B_{b}" for b in BACKENDS]
             + ["mu_f", "mu_b", "log_f", "log_fb", "log_b", "cpu", "log_cores", "moe"])
    idx = {n: i for i, n in enumerate(names)}
    x_rows, y, w = [], [], []
    for r, f in use:
        v = np.zeros(len(names))
        for k, val in f.items():
            v[idx[k]] = val
        x_rows.append(v)
        y.append(math.log((r.pp_tok_s or 1.0) * 2.0 * (r.active_params if r.is_moe and r.active_params else r.params)))
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
        prior({f"F_{b}": s, "mu_f": -s}, 0.0)
        prior({f"B_{b}": s, "mu_b": -s}, 0.0)
    prior({"moe": 1.0 / PRIOR_SD["pp_moe"]}, 0.0)
    c = 1.0 / PRIOR_SD["cpu"]  # weak: about 50 GFLOPS per core
    prior({"cpu": c}, c * math.log(50e9))
    # weak prior toward linear in cores: the data prefer about cores^1.5 (larger CPUs in them also have wider
    # SIMD per core), and leave-one-device-out confirms it (CPU prefill median 31% vs 44% when forced linear)
    cc = 1.0 / PRIOR_SD["cpu_cores"]
    prior({"log_cores": cc}, cc * 1.0)
    for k in ("log_f", "log_fb", "log_b"):  # keep slopes defined when a path has no rows
        prior({k: 0.01}, 0.01 * (1.0 if k != "log_fb" else 0.0))
    prior({"mu_f": 0.01}, 0.01 * 0.0)
    prior({"mu_b": 0.01}, 0.01 * 0.0)
    xr, yr, wq = np.array(x_rows), np.array(y), np.array(w)
    beta = np.linalg.lstsq(np.vstack([xr * wq[:, None], np.array(prior_x)]), np.concatenate([yr * wq, prior_y]),
                           rcond=None)[0]
    present_f = {r.backend for r, f in use if f"F_{r.backend}" in f}
    present_b = {r.backend for r, f in use if f"B_{r.backend}" in f}
    return PrefillFactors(
        intercept_f={b: float(beta[idx[f"F_{b}"]]) for b in BACKENDS if b in present_f},
        intercept_b={b: float(beta[idx[f"B_{b}"]]) for b in BACKENDS if b in present_b},
        pooled_f=float(beta[idx["mu_f"]]), pooled_b=float(beta[idx["mu_b"]]), slope_f=float(beta[idx["log_f"]]),
        slope_fb=float(beta[idx["log_fb"]]), slope_b=float(beta[idx["log_b"]]), cpu_intercept=float(beta[idx["cpu"]]),
        cpu_slope=float(beta[idx["log_cores"]]), moe=float(beta[idx["moe"]]),
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


def sigmas(residuals: Iterable[Residual], kind: str) -> tuple[dict[str, float], float]:
    """Per-backend relative error (RMS of log residuals, shrunk toward the pooled spread as if by
    ``SIGMA_PRIOR_ROWS`` rows) and the pooled one, from LODO residuals of one kind."""
    res = [r for r in residuals if r.kind == kind]
    if not res:
        return {}, 0.3
    errors = np.array([abs(r.log_error) for r in res])
    # the pooled spread: RMS, or the 90th percentile over 1.645 where the tails are heavier than a normal's
    pooled_ss = max(float(np.mean(errors ** 2)), (float(np.quantile(errors, 0.9)) / 1.6449) ** 2)
    per: dict[str, float] = {}
    for b in BACKENDS:
        mine = [r.log_error ** 2 for r in res if r.backend == b]
        if mine:
            per[b] = max(math.sqrt((sum(mine) + SIGMA_PRIOR_ROWS * pooled_ss) / (len(mine) + SIGMA_PRIOR_ROWS)),
                         MIN_SIGMA)
    return per, max(math.sqrt(pooled_ss), MIN_SIGMA)


def fit(rows: Sequence[PublicResult]) -> PublicModel:
    """Factors fitted on all rows, with per-backend uncertainty from leave-one-device-out residuals."""
    model = fit_factors(rows)
    res = leave_one_device_out(rows)
    sd_dec, pool_dec = sigmas(res, "decode")
    sd_pre, pool_pre = sigmas(res, "prefill")
    return model.model_copy(update=dict(sigma_decode=sd_dec, sigma_decode_pooled=pool_dec, sigma_prefill=sd_pre,
                                        sigma_prefill_pooled=pool_pre, residuals=res))


def _cache_file(sha: str) -> Path:
    from profiler.models import cache_dir

    return cache_dir() / "public-model" / f"v{FIT_VERSION}-{sha[:16]}.json"


@lru_cache(maxsize=4)
def _cached_model(path: Path) -> PublicModel:
    # keyed by the data and by this module's code, so an edited fit never reuses a stale cache
    sha = (hashlib.sha256(Path(path).read_bytes() + Path(__file__).read_bytes()).hexdigest()
           if Path(path).exists() else "")
    cache = _cache_file(sha) if sha else None
    if cache is not None and cache.exists():
        try:
            model = PublicModel.model_validate(json.loads(cache.read_text()))
            if model.fit_version == FIT_VERSION and model.data_sha256 == sha:
                return model
        except (ValueError, OSError):
            pass
    model = fit(public_rows(path)).model_copy(update={"data_sha256": sha})
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(model.model_dump_json())
            tmp.replace(cache)
        except OSError:
            pass
    return model


def public_model(path: Path = PUBLIC_CSV) -> PublicModel:
    """The model fitted to the public results file (cached per process and on disk by the file's hash)."""
    return _cached_model(Path(path))
