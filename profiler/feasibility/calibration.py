"""Local calibration: fit the roofline's ``t0``, ``eta_bw*BW`` and ``eta_f*F`` to a run record's points.

Owns the fit (least squares on log times of every decode and prefill point, so each point weighs by its
relative error), its residuals, and saving/loading the result as JSON. It must not run the engine: it reads a
``RunRecord`` that ``hfp run`` (``profiler.runner``) produced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from profiler import memory
from profiler.errors import ConfigError, RecordError
from profiler.feasibility.batched import batched_factors
from profiler.feasibility.efficiency import Efficiency
from profiler.feasibility.model import Device, ModelShape, Part, t_decode_step, t_prefill
from profiler.feasibility.public_model import moe_flop_share
from profiler.files import cache_dir, write_atomic
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord, load_document
from profiler.schema.base import Strict
from profiler.schema.host import HostProfile
from profiler.schema.model import ModelFile
from profiler.telemetry import nvml

CALIBRATION_SCHEMA_VERSION = 1


class CalibrationPoint(Strict):
    """One measured figure, what the fitted model predicts for it, and the relative error."""

    kind: Literal["decode", "prefill"]
    prompt_tokens: int
    output_tokens: int
    parallel: int
    measured_s: float
    predicted_s: float
    rel_error: float


class HostFingerprint(Strict):
    """What identifies the machine a calibration was measured on, and a profile saved from it by ``hfp hardware
    --save`` (``hardware.to_profile`` writes the same host name, CPU model, core count, RAM and GPU)."""

    hostname: str
    cpu_model: str
    physical_cores: int
    ram_gb: float
    gpu: str | None = None

    @classmethod
    def of(cls, host: HostProfile) -> HostFingerprint:
        """The fingerprint of a measured host."""
        return cls(hostname=host.hostname, cpu_model=host.cpu_model, physical_cores=host.physical_cores,
                   ram_gb=round(host.ram_total_bytes / 1e9, 2), gpu=host.gpus[0].name if host.gpus else None)

    def matches(self, profile: HardwareProfile) -> bool:
        """Whether ``profile`` describes this host: saved by ``hfp hardware --save`` here (its source names the
        host) with the same CPU model, cores, RAM (within 1 GB) and GPU."""
        cpu = profile.cpu
        return (
            f"hfp hardware on {self.hostname}" in profile.sources and cpu.model == self.cpu_model
            and cpu.cores == self.physical_cores and cpu.ram_gb is not None and abs(cpu.ram_gb - self.ram_gb) < 1.0
            and (profile.gpu.model if profile.gpu else None) == self.gpu
        )


class Calibration(Strict):
    """The fitted constants of one host and backend, with the residuals of the fit."""

    schema_version: int = CALIBRATION_SCHEMA_VERSION
    record_id: str
    host: str
    model: str
    backend: str
    t0_s: float
    bandwidth_eff_gbps: float  # eta_bw * BW
    flops_eff_tflops: float  # eta_f * F
    reference_bandwidth_gbps: float | None = None
    reference_tflops: float | None = None
    reference_source: str
    eta_bw: float | None = None
    eta_f: float | None = None
    points: list[CalibrationPoint]
    rel_rms: float  # root mean square of log residuals
    n_decode: int
    n_prefill: int
    notes: list[str] = []
    source: str = "calibration:local"
    fingerprint: HostFingerprint | None = None  # set by the ladder: `hfp estimate` applies it to this host
    eta_batch: float | None = None  # batched-decode FLOP rate / eta_f*F, fitted from parallel > 1 decode points
    eta_batch_curve: list[tuple[int, float]] = []  # the same ratio fitted per parallel level (a ladder), (B, ratio)
    tinyblas_gbps: float | None = None  # rate of the tinyBLAS pass at B >= 2 (a ladder with such a rung)
    tinyblas_token_gbps: float | None = None  # and of its further pass per token after the first
    tau_layer_s: float | None = None  # ladder: fixed step time per layer (t0_s is then that of 32 layers)

    def efficiency(self, min_sigma: float = 0.0) -> Efficiency | None:
        """The fit as efficiencies relative to the reference peaks, or None when no reference is known."""
        if self.eta_bw is None or self.eta_f is None:
            return None
        sigma = max(self.rel_rms, min_sigma)
        return Efficiency(
            backend=self.backend, eta_bw=self.eta_bw, eta_f=self.eta_f, t0_s=self.t0_s, sigma_bw=sigma,
            sigma_f=sigma, source_bw=self.source, source_f=self.source,
            n_rows_bw=self.n_decode, n_rows_f=self.n_prefill, eta_batch=self.eta_batch, tau_layer_s=self.tau_layer_s,
            eta_batch_curve=self.eta_batch_curve, tinyblas_gbps=self.tinyblas_gbps,
            tinyblas_token_gbps=self.tinyblas_token_gbps,
        )

    def device_for(self, shape: ModelShape) -> Device:
        """The fitted processor as the performance model sees it for ``shape``, as ``hfp estimate`` builds it on
        the host's profile (``target.Processor``): a ladder's ``t0`` per layer times the shape's layers, its
        batched ratio (curve) or the public one."""
        t0 = self.tau_layer_s * shape.n_layers if self.tau_layer_s else self.t0_s
        ratio = self.eta_batch if self.eta_batch is not None else batched_factors(self.backend).ratio
        device = fitted_device(self.bandwidth_eff_gbps * 1e9, self.flops_eff_tflops * 1e12, t0, ratio,
                               self.backend)
        return for_shape(with_local_batched(device, self), shape)

    def rebased(self, profile: HardwareProfile) -> Calibration:
        """This fit with its efficiencies taken relative to ``profile``'s declared CPU bandwidth and TFLOPS, so
        the profile's processor gets exactly the fitted rates: for a profile of the host the fit was measured on
        (whose bandwidth was measured at another moment, and differs a little), not a rescaled copy of them."""
        cpu = profile.cpu
        if self.backend != "cpu" or not cpu.ram_bandwidth_gbps or not cpu.tflops:
            return self
        return self.model_copy(update={
            "eta_bw": self.bandwidth_eff_gbps / cpu.ram_bandwidth_gbps, "eta_f": self.flops_eff_tflops / cpu.tflops,
            "reference_bandwidth_gbps": cpu.ram_bandwidth_gbps, "reference_tflops": cpu.tflops,
            "reference_source": f"profile {profile.name}"})

    def save(self, path: Path | None = None) -> Path:
        """Write the calibration as JSON (``<cache>/calibration/<record id>.json`` by default)."""
        return write_atomic(Path(path) if path else default_path(self.record_id), self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        """Read a saved calibration (``profiler.record``'s load path: one ``ConfigError`` naming the file)."""
        return load_document(cls, path, "calibration file", CALIBRATION_SCHEMA_VERSION, ConfigError,
                             missing="no such calibration file")


def calibration_for(profile: HardwareProfile) -> Calibration | None:
    """The newest ladder calibration (``hfp calibrate --ladder``) measured on the host ``profile`` describes,
    rebased to the profile's declared peaks (``Calibration.rebased``), or None: a profile counts as that host
    when ``HostFingerprint.matches`` it (saved there by ``hfp hardware --save``)."""
    if not profile.sources or profile.measured is None:
        return None
    folder = calibration_dir()
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        return None
    for cal in _ladder_calibrations(str(folder), stamp):
        if cal.fingerprint is not None and cal.fingerprint.matches(profile):
            return cal.rebased(profile)
    return None


@lru_cache(maxsize=4)
def _ladder_calibrations(folder: str, stamp: int) -> tuple[Calibration, ...]:
    """Saved ladder calibrations in ``folder``, newest first (``stamp``: the folder's mtime, for the cache)."""
    found = []
    for path in sorted(Path(folder).glob("*-ladder.json"), reverse=True):
        try:
            found.append(Calibration.load(path))
        except ConfigError:
            continue
    return tuple(found)


def calibration_dir() -> Path:
    """Where ``hfp calibrate`` (and ``--ladder``) store their fits unless told otherwise."""
    return cache_dir() / "calibration"


def default_path(record_id: str) -> Path:
    """Where ``hfp calibrate`` stores a record's fit unless told otherwise."""
    return calibration_dir() / f"{record_id}.json"


def record_backend(record: RunRecord) -> str:
    """The backend a record was measured on: ``cuda`` when layers were offloaded to an NVIDIA GPU, else ``cpu``."""
    return "cuda" if record.settings.n_gpu_layers > 0 and record.host.gpus else "cpu"


def reference(record: RunRecord, backend: str) -> tuple[float | None, float | None, str]:
    """Peak bandwidth (GB/s) and TFLOPS the efficiencies are relative to, and where they come from."""
    host = record.host
    if backend == "cpu":
        tflops = host.cpu_gflops / 1000 if host.cpu_gflops else None
        return host.memory_bandwidth_gbps, tflops, f"host {host.memory_bandwidth_source} / {host.cpu_gflops_source}"
    try:
        name = host.gpus[0].name
        return nvml.spec_bandwidth_gbps(name), nvml.spec_fp16_tflops(name), f"spec table for {name}"
    except (ImportError, AttributeError, IndexError):
        return None, None, "no spec known for this GPU"


def nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float = 0.5, iters: int = 600) -> np.ndarray:
    """A small deterministic Nelder-Mead minimiser (no SciPy dependency)."""
    n = len(x0)
    simplex = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iters):
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < 1e-12:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0] + 0.5 * (s - simplex[0]) for s in simplex]
                values = [f(s) for s in simplex]
    return simplex[int(np.argmin(values))]


class Observation(BaseModel):
    """One measured phase of one point: decode step time or prefill time, in seconds."""

    kind: Literal["decode", "prefill"]
    prompt_tokens: int
    output_tokens: int
    parallel: int
    measured_s: float


def observations(record: RunRecord) -> list[Observation]:
    """The record's decode and prefill timings, one observation per measured point and phase.

    A decode step is the median gap between steps (``itl_p50_s``) of the fastest repetition, a prefill the
    fastest repetition's: on a shared machine other work only ever adds time, and a median step ignores the
    few steps it lands on. Records without step gaps fall back to the mean rate.
    """
    obs: list[Observation] = []
    for p in record.points:
        pt = p.point
        steps = [r.itl_p50_s for r in p.repetitions if r.itl_p50_s and r.itl_p50_s > 0]
        agg = p.mean("decode_tok_s_aggregate")
        if agg is None and (per := p.mean("decode_tok_s_per_seq")):
            agg = per * pt.parallel
        step_s = min(steps) if steps and pt.output_tokens > 2 else (pt.parallel / agg if agg and agg > 0 else None)
        if step_s:
            obs.append(Observation(kind="decode", prompt_tokens=pt.prompt_tokens, output_tokens=pt.output_tokens,
                                   parallel=pt.parallel, measured_s=step_s))
        rates = [r.prefill_tok_s for r in p.repetitions if r.prefill_tok_s and r.prefill_tok_s > 0]
        pre = max(rates) if rates else p.mean("prefill_tok_s")
        if pre and pre > 0:
            obs.append(Observation(kind="prefill", prompt_tokens=pt.prompt_tokens, output_tokens=pt.output_tokens,
                                   parallel=pt.parallel, measured_s=pt.prompt_tokens * pt.parallel / pre))
    return obs


def bytes_per_s(gbps: float | None) -> float | None:
    """GB/s to bytes/s, None kept."""
    return gbps * 1e9 if gbps else None


def gbps(bps: float | None) -> float | None:
    """Bytes/s to GB/s, None kept."""
    return bps / 1e9 if bps else None


def for_shape(device: Device, shape: ModelShape) -> Device:
    """A locally fitted device as it runs ``shape``: a mixture-of-experts model at the public MoE FLOP share
    (``public_model.moe_flop_share``; one MoE rung cannot fit its own, nor be held out with it)."""
    return device.with_flop_share(moe_flop_share()) if shape.is_moe else device


def with_local_batched(device: Device, fit: Calibration | Efficiency) -> Device:
    """``device`` with a local fit's batched curve and tinyBLAS rates (GB/s in the fit, bytes/s on the device)."""
    return replace(device, batch_curve=tuple((b, r) for b, r in fit.eta_batch_curve),
                   tinyblas_bps=bytes_per_s(fit.tinyblas_gbps), tinyblas_token_bps=bytes_per_s(fit.tinyblas_token_gbps))


def cpu_shape(model: ModelFile, type_k: str, type_v: str, features: memory.CpuFeatures | None) -> ModelShape:
    """The model's roofline shape at these KV cache types, with the weight bytes a CPU with ``features`` runs
    through tinyBLAS once a step has two or more tokens (``memory.tinyblas_bytes``; 0 without the file)."""
    return replace(ModelShape.of(model, type_k, type_v), tinyblas_bytes=float(memory.tinyblas_bytes(model, features)))


def host_shape(record: RunRecord) -> ModelShape:
    """The record's model as the roofline sees it on the host that measured it (``cpu_shape`` with the features
    of that host's llama.cpp build)."""
    features = memory.host_cpu_features(record.host.backends.system_info, record.settings.extra_bufts)
    return cpu_shape(record.model, record.settings.type_k, record.settings.type_v, features)


def predict_seconds(shape: ModelShape, device: Device, o: Observation, n_ubatch: int) -> float:
    """The performance model's time for one observation (a decode step at mid-output depth, or the prefill)."""
    parts = [Part(device, shape.streamed_bytes, 1.0, 1.0)]
    if o.kind == "decode":
        return float(t_decode_step(shape, parts, o.parallel, o.prompt_tokens + o.output_tokens / 2))
    return float(t_prefill(shape, parts, o.prompt_tokens * o.parallel, n_ubatch, n_seq=o.parallel))


def fitted_device(bandwidth_bps: float, flops: float, t0_s: float, eta_batch: float, backend: str) -> Device:
    """The device a calibration describes, built as ``target.Processor.device`` builds it for the same host: the
    batched-decode FLOP rate is ``eta_batch`` times the prefill rate, with the backend's public overlap. Its MoE
    routing stays uniform (spread 1): a ladder's synthetic router has random weights, and fitting its rung with
    the public spread (real routers, which ``hfp estimate`` applies to real models) made leave-one-size-out
    batched decode no better (10% -> 11%, 10% -> 12%, 12% -> 11% on three ladders, docs/performance-model.md)."""
    return Device("fit", bandwidth_bps=bandwidth_bps, flops=flops, t0_s=t0_s, batch_flops=eta_batch * flops,
                  overlap=batched_factors(backend).overlap)


# the batched compute ratio stays within the public fit's grid (batched.RATIO_GRID): where a few noisy small-B
# points leave it unidentified (the step barely grows), it must not run off
ETA_BATCH_RANGE = (0.01, 4.0)
EXP_LIMIT = 600.0  # log-parameters of the fit are clipped here (exp(709) overflows a float)
BW_CAP = 3.0  # a fitted effective bandwidth above this multiple of the host's measured one is not physical


def _eta_batch(x: np.ndarray) -> float:
    return float(np.clip(math.exp(min(x[3], EXP_LIMIT)), *ETA_BATCH_RANGE))


def _batched_decode(o: Observation) -> bool:
    return o.kind == "decode" and o.parallel > 1


def fit_device(data: list[tuple[ModelShape, int, Observation]], a0: float, f0: float, backend: str = "cpu",
               bw_cap: float | None = None, per_layer: bool = False,
               ) -> tuple[Device, list[CalibrationPoint], float, float | None]:
    """Fit ``t0``, ``eta_bw*BW``, ``eta_f*F`` and, when some decode points batch several sequences, the
    batched-decode compute ratio ``eta_batch`` (``Efficiency.eta_batch``) to (shape, n_ubatch, observation)
    triples, minimising squared log errors from the starting bandwidth ``a0`` (bytes/s) and compute ``f0``.

    Returns the fitted device (with the per-level batched curve and the tinyBLAS rates when the points allow
    them, ``_fit_batched``), the points with their residuals (in ``data``'s order), the relative RMS error and
    the fitted ``eta_batch`` (None when no point had parallel > 1: the public ratio is used and kept).
    ``per_layer`` (several sizes): ``t0`` is a time per layer (``Efficiency.tau_layer_s``), the returned
    device's ``t0_s`` is that time, and each shape's step pays it times its layers.
    ``bw_cap`` (bytes/s) bounds the bandwidth softly: single-stream decode of dense models of one type reads
    bytes in proportion to its FLOPs, so without batched points (or with timings distorted by other work)
    memory and compute explain it equally well, and the bandwidth could run off to infinity.
    Shared by the single-record fit here and the ladder fit (``feasibility/ladder.py``).
    """
    layers = {id(s): (s.n_layers if per_layer else 1) for s, _, _ in data}
    t0_cap = 0.9 * min(o.measured_s / layers[id(s)] for s, _, o in data if o.kind == "decode")
    batched = any(_batched_decode(o) for _, _, o in data)
    public_ratio = batched_factors(backend).ratio

    def device(x: np.ndarray) -> Device:
        x = np.clip(x, -EXP_LIMIT, EXP_LIMIT)  # a simplex step far off (noisy timings) must not overflow exp
        ratio = _eta_batch(x) if batched else public_ratio
        return fitted_device(math.exp(x[0]), math.exp(x[1]), t0_cap / (1.0 + math.exp(-x[2])), ratio, backend)

    def seconds(s: ModelShape, dev: Device, o: Observation, ub: int) -> float:
        return predict_seconds(s, for_shape(replace(dev, t0_s=dev.t0_s * layers[id(s)]), s), o, ub)

    def loss(x: np.ndarray, rows: list[tuple[ModelShape, int, Observation]]) -> float:
        dev = device(x)
        excess = max(0.0, x[0] - math.log(bw_cap)) if bw_cap else 0.0
        return float(sum(math.log(seconds(s, dev, o, ub) / o.measured_s) ** 2 for s, ub, o in rows)
                     + 10.0 * excess ** 2)

    # Two stages: t0, bandwidth and prefill compute from the single-stream decode and the prefill points; then
    # the batched ratio alone from the batched decode points. A joint fit let the batched points (whose CPU
    # kernels change with B, docs/performance-model.md) pull the single-stream terms off their own data.
    # The single-stream stage leaves out shapes whose weights are mostly in tinyBLAS types (Q5_0/Q8_0 fallbacks,
    # other gemv kernels than the Q4_K the rest fit; they would pull t0, bandwidth and prefill off): their batched
    # points fit the tinyBLAS pass only.
    single = [d for d in data if not _batched_decode(d[2]) and not _uses_tinyblas(d[0])]
    single = single or [d for d in data if not _batched_decode(d[2])]
    start = np.array([math.log(a0), math.log(f0), -2.0] + ([math.log(public_ratio)] if batched else []))
    x = nelder_mead(lambda v: loss(np.concatenate([v, start[3:]]), single), start[:3])
    x = nelder_mead(lambda v: loss(np.concatenate([v, start[3:]]), single), x, step=0.1)  # Nelder-Mead can stall
    x = np.concatenate([x, start[3:]])
    dev = device(x)
    if batched:
        x, dev = _fit_batched(x, [d for d in data if _batched_decode(d[2])], loss, seconds, device)
    points = []
    for s, ub, o in data:
        pred = seconds(s, dev, o, ub)
        points.append(CalibrationPoint(kind=o.kind, prompt_tokens=o.prompt_tokens, output_tokens=o.output_tokens,
                                       parallel=o.parallel, measured_s=o.measured_s, predicted_s=pred,
                                       rel_error=pred / o.measured_s - 1.0))
    rms = math.sqrt(sum(math.log(p.predicted_s / p.measured_s) ** 2 for p in points) / len(points))
    return dev, points, rms, (_eta_batch(x) if batched else None)


Rows = list[tuple[ModelShape, int, Observation]]
TINYBLAS_SHARE = 0.05  # shapes with more of their streamed bytes in tinyBLAS tensors fit the tinyBLAS pass


def _uses_tinyblas(shape: ModelShape) -> bool:
    return shape.tinyblas_bytes > TINYBLAS_SHARE * shape.streamed_bytes


def _fit_batched(x: np.ndarray, rows: Rows, loss: Callable[[np.ndarray, Rows], float],
                 seconds: Callable[[ModelShape, Device, Observation, int], float],
                 device: Callable[[np.ndarray], Device]) -> tuple[np.ndarray, Device]:
    """Stage two of ``fit_device``: the batched ratio (one, and one per level) from the shapes whose weights stay
    in gemv/gemm kernels, then the rate of the extra tinyBLAS pass (``Device.tinyblas_bps``) from the others,
    with that curve; returns the parameters and the device."""
    tiny = [r for r in rows if _uses_tinyblas(r[0])]
    plain = [r for r in rows if not _uses_tinyblas(r[0])]
    if not plain:  # nothing to measure the tinyBLAS pass against: one curve for all
        plain, tiny = rows, []
    x = x.copy()
    x[3] = nelder_mead(lambda v: loss(np.concatenate([x[:3], v]), plain), x[3:])[0]
    curve = _batch_curve(plain, lambda v, some: loss(np.concatenate([x[:3], v]), some), x[3:])
    dev = replace(device(x), batch_curve=curve)
    if not tiny:
        return x, dev

    def with_tiny(v: np.ndarray) -> Device:
        pass_bps, token_bps = np.exp(np.minimum(v, EXP_LIMIT))
        return replace(dev, tinyblas_bps=float(pass_bps), tinyblas_token_bps=float(token_bps))

    def tiny_loss(v: np.ndarray) -> float:
        d = with_tiny(v)
        return float(sum(math.log(seconds(s, d, o, ub) / o.measured_s) ** 2 for s, ub, o in tiny))

    start = np.full(2, math.log(dev.bandwidth_bps))
    return x, with_tiny(nelder_mead(tiny_loss, start))


def _batch_curve(rows: Rows, loss: Callable[[np.ndarray, Rows], float],
                 start: np.ndarray) -> tuple[tuple[int, float], ...]:
    """The batched ratio fitted at each parallel level (``loss`` of the log-ratio on some rows), as an isotonic
    (non-decreasing in B) regression: adjacent levels that violate it are pooled and fitted as one (pool adjacent
    violators), so the aggregate rate never falls as sequences are added, and at most in proportion to B. Empty
    with fewer than two levels (one ratio says it all)."""
    levels = sorted({o.parallel for _, _, o in rows})
    if len(levels) < 2:
        return ()
    blocks: list[tuple[list[int], float]] = []
    for b in levels:
        block = ([b], _level_ratio([r for r in rows if r[2].parallel == b], loss, start))
        while blocks and block[1] < blocks[-1][1]:
            pooled = blocks.pop()[0] + block[0]
            block = (pooled, _level_ratio([r for r in rows if r[2].parallel in pooled], loss, start))
        blocks.append(block)
    curve = [(b, ratio) for members, ratio in blocks for b in members]
    # nor may it grow faster than B: adding a token never makes the step's compute shorter (per-sequence decode
    # never speeds up as B grows; log-B interpolation between levels keeps that)
    for i in range(1, len(curve)):
        (b0, r0), (b1, r1) = curve[i - 1], curve[i]
        curve[i] = (b1, min(r1, r0 * b1 / b0))
    return tuple(curve)


def _level_ratio(rows: Rows, loss: Callable[[np.ndarray, Rows], float], start: np.ndarray) -> float:
    """The batched ratio that fits ``rows`` best (``loss`` of its log), within ``ETA_BATCH_RANGE``."""
    return _eta_batch(np.concatenate([np.zeros(3), nelder_mead(lambda v: loss(v, rows), start)]))


def fit(record: RunRecord) -> Calibration:
    """Fit ``t0``, ``eta_bw*BW`` and ``eta_f*F`` to the record's decode and prefill points."""
    settings = record.settings
    if 0 < settings.n_gpu_layers <= record.model.n_layers and record.host.gpus:
        raise ConfigError(
            f"record {record.id} used partial offload (n_gpu_layers={settings.n_gpu_layers} of "
            f"{record.model.n_layers}); calibrate from a CPU-only or fully offloaded run"
        )
    obs = observations(record)
    decode = [o for o in obs if o.kind == "decode"]
    if not decode:
        raise RecordError(f"record {record.id} has no decode measurements to calibrate from; run `hfp run` first")
    shape = host_shape(record)
    backend = record_backend(record)
    n_ubatch = settings.n_ubatch
    a0 = max(shape.weight_bytes / min(o.measured_s for o in decode if o.parallel == min(d.parallel for d in decode)),
             1.0)
    prefill = [o for o in obs if o.kind == "prefill"]
    f0 = (float(np.median([o.prompt_tokens * o.parallel * 2 * shape.params / o.measured_s for o in prefill]))
          if prefill else max(o.parallel for o in decode) * 2 * shape.params / min(o.measured_s for o in decode))
    bw_ref, f_ref, ref_source = reference(record, backend)
    dev, points, rms, eta_batch = fit_device([(shape, n_ubatch, o) for o in obs], a0, f0, backend,
                                             BW_CAP * bw_ref * 1e9 if bw_ref else None)
    notes = []
    if len({o.parallel for o in decode}) < 3:
        notes.append("fewer than three parallel levels: t0 and bandwidth are poorly separated")
    if not prefill:
        notes.append("no prefill measurements: eta_f*F comes from decode points alone")
    return Calibration(
        record_id=record.id, host=record.host.hostname, model=record.model.label, backend=backend,
        t0_s=dev.t0_s, bandwidth_eff_gbps=dev.bandwidth_bps / 1e9, flops_eff_tflops=dev.flops / 1e12,
        reference_bandwidth_gbps=bw_ref, reference_tflops=f_ref, reference_source=ref_source,
        eta_bw=dev.bandwidth_bps / (bw_ref * 1e9) if bw_ref else None,
        eta_f=dev.flops / (f_ref * 1e12) if f_ref else None,
        points=points, rel_rms=rms, n_decode=len(decode), n_prefill=len(prefill), notes=notes, eta_batch=eta_batch,
        eta_batch_curve=list(dev.batch_curve),
        tinyblas_gbps=gbps(dev.tinyblas_bps), tinyblas_token_gbps=gbps(dev.tinyblas_token_bps),
    )


def calibrate(record_path: Path | str, out: Path | str | None = None) -> tuple[Calibration, Path]:
    """Fit a saved run record and store the calibration (``--out`` or the cache dir); returns both."""
    record = RunRecord.load(record_path)
    result = fit(record)
    return result, result.save(Path(out) if out else None)
