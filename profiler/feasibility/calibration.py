"""Local calibration: fit the roofline's ``t0``, ``eta_bw*BW`` and ``eta_f*F`` to a run record's points.

Owns the fit (least squares on log times of every decode and prefill point, so each point weighs by its
relative error), its residuals, and saving/loading the result as JSON. It must not run the engine: it reads a
``RunRecord`` that ``hfp run`` (``profiler.runner``) produced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from profiler.errors import ConfigError, RecordError
from profiler.feasibility.efficiency import Efficiency
from profiler.feasibility.model import Device, ModelShape, Part, t_decode_step, t_prefill
from profiler.models import cache_dir
from profiler.record import RunRecord

CALIBRATION_SCHEMA_VERSION = 1


class CalibrationPoint(BaseModel):
    """One measured figure, what the fitted model predicts for it, and the relative error."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["decode", "prefill"]
    prompt_tokens: int
    output_tokens: int
    parallel: int
    measured_s: float
    predicted_s: float
    rel_error: float


class Calibration(BaseModel):
    """The fitted constants of one host and backend, with the residuals of the fit."""

    model_config = ConfigDict(extra="forbid")

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

    def efficiency(self, min_sigma: float = 0.0) -> Efficiency | None:
        """The fit as efficiencies relative to the reference peaks, or None when no reference is known."""
        if self.eta_bw is None or self.eta_f is None:
            return None
        sigma = max(self.rel_rms, min_sigma)
        return Efficiency(
            backend=self.backend, eta_bw=self.eta_bw, eta_f=self.eta_f, t0_s=self.t0_s, sigma_bw=sigma,
            sigma_f=sigma, source_bw="calibration:local", source_f="calibration:local",
            n_rows_bw=self.n_decode, n_rows_f=self.n_prefill,
        )

    def save(self, path: Path | None = None) -> Path:
        """Write the calibration as JSON (``<cache>/calibration/<record id>.json`` by default)."""
        from profiler.files import write_atomic

        return write_atomic(Path(path) if path else default_path(self.record_id), self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        """Read a saved calibration."""
        from profiler.files import read_text

        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such calibration file")
        try:
            return cls.model_validate(json.loads(read_text(path)))
        except ValidationError as e:
            from profiler.config import describe_validation_error

            raise ConfigError(f"{path}: not a calibration file ({describe_validation_error(e)})") from None
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{path}: not a calibration file ({str(e).splitlines()[0]})") from e


def default_path(record_id: str) -> Path:
    """Where ``hfp calibrate`` stores a record's fit unless told otherwise."""
    return cache_dir() / "calibration" / f"{record_id}.json"


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
        from profiler.telemetry import nvml

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
    """The record's decode and prefill timings, one observation per measured point and phase."""
    obs: list[Observation] = []
    for p in record.points:
        pt = p.point
        agg = p.mean("decode_tok_s_aggregate")
        if agg is None and (per := p.mean("decode_tok_s_per_seq")):
            agg = per * pt.parallel
        if agg and agg > 0:
            obs.append(Observation(kind="decode", prompt_tokens=pt.prompt_tokens, output_tokens=pt.output_tokens,
                            parallel=pt.parallel, measured_s=pt.parallel / agg))
        pre = p.mean("prefill_tok_s")
        if pre and pre > 0:
            obs.append(Observation(kind="prefill", prompt_tokens=pt.prompt_tokens, output_tokens=pt.output_tokens,
                            parallel=pt.parallel, measured_s=pt.prompt_tokens * pt.parallel / pre))
    return obs


def predict_seconds(shape: ModelShape, device: Device, o: Observation, n_ubatch: int) -> float:
    """The performance model's time for one observation (a decode step at mid-output depth, or the prefill)."""
    parts = [Part(device, shape.weight_bytes, 1.0, 1.0)]
    if o.kind == "decode":
        return t_decode_step(shape, parts, o.parallel, o.prompt_tokens + o.output_tokens / 2)
    return t_prefill(shape, parts, o.prompt_tokens * o.parallel, n_ubatch)


def fit_device(data: list[tuple[ModelShape, int, Observation]], a0: float, f0: float,
               ) -> tuple[Device, list[CalibrationPoint], float]:
    """Fit one ``t0``, ``eta_bw*BW`` and ``eta_f*F`` to (shape, n_ubatch, observation) triples, minimising squared
    log errors from the starting bandwidth ``a0`` (bytes/s) and compute ``f0`` (FLOP/s).

    Returns the fitted device, the points with their residuals (in ``data``'s order) and the relative RMS error.
    Shared by the single-record fit here and the ladder fit (``feasibility/ladder.py``).
    """
    t0_cap = 0.9 * min(o.measured_s for _, _, o in data if o.kind == "decode")

    def device(x: np.ndarray) -> Device:
        return Device("fit", bandwidth_bps=math.exp(x[0]), flops=math.exp(x[1]),
                      t0_s=t0_cap / (1.0 + math.exp(-x[2])))

    def loss(x: np.ndarray) -> float:
        dev = device(x)
        return float(sum(math.log(predict_seconds(s, dev, o, ub) / o.measured_s) ** 2 for s, ub, o in data))

    x = nelder_mead(loss, np.array([math.log(a0), math.log(f0), -2.0]))
    x = nelder_mead(loss, x, step=0.1)  # restart from the optimum: Nelder-Mead can stall on a ridge
    dev = device(x)
    points = []
    for s, ub, o in data:
        pred = predict_seconds(s, dev, o, ub)
        points.append(CalibrationPoint(kind=o.kind, prompt_tokens=o.prompt_tokens, output_tokens=o.output_tokens,
                                       parallel=o.parallel, measured_s=o.measured_s, predicted_s=pred,
                                       rel_error=pred / o.measured_s - 1.0))
    rms = math.sqrt(sum(math.log(p.predicted_s / p.measured_s) ** 2 for p in points) / len(points))
    return dev, points, rms


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
    shape = ModelShape.of(record.model, settings.type_k, settings.type_v)
    backend = record_backend(record)
    n_ubatch = settings.n_ubatch
    a0 = max(shape.weight_bytes / min(o.measured_s for o in decode if o.parallel == min(d.parallel for d in decode)),
             1.0)
    prefill = [o for o in obs if o.kind == "prefill"]
    f0 = (float(np.median([o.prompt_tokens * o.parallel * 2 * shape.params / o.measured_s for o in prefill]))
          if prefill else max(o.parallel for o in decode) * 2 * shape.params / min(o.measured_s for o in decode))
    dev, points, rms = fit_device([(shape, n_ubatch, o) for o in obs], a0, f0)
    bw_ref, f_ref, ref_source = reference(record, backend)
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
        points=points, rel_rms=rms, n_decode=len(decode), n_prefill=len(prefill), notes=notes,
    )


def calibrate(record_path: Path | str, out: Path | str | None = None) -> tuple[Calibration, Path]:
    """Fit a saved run record and store the calibration (``--out`` or the cache dir); returns both."""
    record = RunRecord.load(record_path)
    result = fit(record)
    return result, result.save(Path(out) if out else None)
