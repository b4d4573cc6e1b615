"""Local calibration across sizes: a ladder of synthetic models measured on this host, one roofline fit for all.

A single small model is dominated by per-step overhead and cannot separate ``t0`` from bandwidth or tell how
prefill scales; a ladder of shapes (0.5B to 8B and a mixture-of-experts one, written by ``profiler.synth`` with
random weights) spans the weight bytes and FLOPs the predictions need. This module owns the default ladder, the
choice of rungs that fit this machine, the joint fit of ``t0``, ``eta_bw*BW`` and ``eta_f*F`` over every rung's
decode and prefill points (the same roofline and loss as ``calibration.fit``, with residuals per point), the
leave-one-size-out fits ``benchmarks/validate_local.py`` prints, and the ``LadderResult`` record.

It does not run llama.cpp itself: the caller passes a ``measure`` function (``runner.measure``), so the
prediction layer never imports the measurement layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil
from pydantic import BaseModel, ConfigDict

from profiler import synth
from profiler.errors import ConfigError
from profiler.feasibility.calibration import (
    Calibration,
    CalibrationPoint,
    Observation,
    fit_device,
    observations,
    record_backend,
    reference,
)
from profiler.feasibility.model import ModelShape
from profiler.models import ModelFile, cache_dir
from profiler.record import RunRecord, WorkloadPoint

LADDER_SCHEMA_VERSION = 1


class Rung(BaseModel):
    """One size on the ladder: a preset, optionally with fewer layers (to keep a large MoE shape small)."""

    model_config = ConfigDict(extra="forbid")

    preset: str
    type: str = "Q4_K_M"
    n_layers: int | None = None

    @property
    def label(self) -> str:
        """``preset[/Nl]:type``."""
        return f"{self.preset}{f'/{self.n_layers}l' if self.n_layers else ''}:{self.type}"

    def shape(self) -> synth.Shape:
        """The rung's shape."""
        base = synth.PRESETS[self.preset].shape
        return synth.with_overrides(base, n_layers=self.n_layers) if self.n_layers else base


# 0.5B, 1.5B, 3B and 8B dense, and Qwen3-30B-A3B's layer shape with 12 of its 48 layers (128 experts, 8 used,
# ~4.6 GiB): spans 0.4-4.6 GiB of weights. Sized for 10 minutes on an unloaded 2-core machine (not yet
# verified: the only full run so far, on a 2-core VM shared with other jobs at load 8-12, took 17.6 minutes).
DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung(preset="qwen2.5-0.5b"), Rung(preset="qwen2.5-1.5b"), Rung(preset="llama-3.2-3b"),
    Rung(preset="llama-3.1-8b"), Rung(preset="qwen3-30b-a3b", n_layers=12),
)
QUICK_LADDER: tuple[Rung, ...] = (Rung(preset="qwen2.5-0.5b"), Rung(preset="qwen2.5-1.5b"),
                                  Rung(preset="qwen3-30b-a3b", n_layers=4))
RAM_SHARE = 0.6  # a rung's weights (mapped + a repacked copy) must stay under this share of available RAM


class LadderRung(BaseModel):
    """One measured rung."""

    model_config = ConfigDict(extra="forbid")

    rung: str
    file: str
    params: int
    weight_bytes: int
    synthetic: bool = True
    write_s: float | None = None  # None when the file was reused
    measure_s: float
    record_path: str | None = None


class LadderPoint(BaseModel):
    """A calibration point with the rung it was measured on."""

    model_config = ConfigDict(extra="forbid")

    rung: str
    point: CalibrationPoint


class LadderResult(BaseModel):
    """A ladder calibration: the rungs, the joint fit with per-point residuals, and how long it took."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = LADDER_SCHEMA_VERSION
    id: str
    host: str
    started: str
    duration_s: float
    prompt_tokens: int
    output_tokens: int
    parallel: list[int]
    rungs: list[LadderRung]
    skipped: list[str] = []
    calibration: Calibration
    points: list[LadderPoint]
    label: str = synth.SYNTH_LABEL

    def save(self, path: Path | None = None) -> Path:
        """Write the ladder record (``<cache>/calibration/<id>.ladder.json``) and its calibration beside it."""
        from profiler.files import write_atomic

        target = Path(path) if path else cache_dir() / "calibration" / f"{self.id}.ladder.json"
        self.calibration.save(target.with_name(target.name.replace(".ladder.json", "") + ".json"))
        return write_atomic(target, self.model_dump_json(indent=1))


def fitting_rungs(rungs: tuple[Rung, ...] | list[Rung], ram_available: int | None = None
                  ) -> tuple[list[Rung], list[str]]:
    """The rungs this machine can hold (weights plus a repacked copy under ``RAM_SHARE`` of free RAM)."""
    ram = psutil.virtual_memory().available if ram_available is None else ram_available
    keep, skipped = [], []
    for r in rungs:
        size = synth.planned_bytes(synth.tensor_plan(r.shape(), r.type))
        if 2 * size > RAM_SHARE * ram:
            skipped.append(f"{r.label}: {2 * size / synth.GiB:.1f} GiB with a repacked copy > "
                           f"{RAM_SHARE:.0%} of {ram / synth.GiB:.1f} GiB available")
        else:
            keep.append(r)
    return keep, skipped


def parse_rungs(text: str) -> list[Rung]:
    """``preset[/Nl][:TYPE],...`` -> rungs."""
    rungs = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name, _, ftype = item.partition(":")
        preset, _, layers = name.partition("/")
        preset = preset.lower()
        if preset not in synth.PRESETS:
            raise ConfigError(f"ladder: no preset {preset!r}; `hfp synth --list` shows them")
        ftype = (ftype or "Q4_K_M").upper()
        if ftype not in synth.SYNTH_TYPES:
            raise ConfigError(f"ladder: type {ftype!r} is not offered ({', '.join(synth.SYNTH_TYPES)})")
        n = None
        if layers:
            try:
                n = int(layers.rstrip("l"))
            except ValueError:
                raise ConfigError(f"ladder: {item!r}: layers are written /12l") from None
            if n < 1:
                raise ConfigError(f"ladder: {item!r}: at least one layer")
        rungs.append(Rung(preset=preset, type=ftype, n_layers=n))
    if not rungs:
        raise ConfigError("ladder: no rungs given")
    return rungs


Measure = Callable[[ModelFile, list[WorkloadPoint]], tuple[RunRecord, Path | None]]


def run_ladder(rungs: list[Rung], measure: Measure, prompt_tokens: int = 64, output_tokens: int = 16,
               parallel: tuple[int, ...] = (1, 4), skipped: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> LadderResult:
    """Build (or reuse) each rung, measure it with ``measure`` and fit one calibration to every point."""
    from profiler.models import inspect

    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    points = [WorkloadPoint(prompt_tokens=prompt_tokens, output_tokens=output_tokens, parallel=p) for p in parallel]
    records: list[tuple[str, RunRecord]] = []
    measured: list[LadderRung] = []
    for r in rungs:
        if progress:
            progress(f"writing {r.label}")
        built = synth.build(r.shape(), r.type, name=f"ladder-{r.preset}" + (f"-{r.n_layers}l" if r.n_layers else ""),
                            preset=None if r.n_layers else r.preset, source=synth.PRESETS[r.preset].source)
        model = inspect(built.path, with_hash=False)
        if progress:
            progress(f"measuring {r.label}")
        t0 = time.perf_counter()
        record, path = measure(model, points)
        records.append((r.label, record))
        measured.append(LadderRung(rung=r.label, file=str(built.path), params=model.params,
                                   weight_bytes=model.tensor_bytes, write_s=None if built.reused
                                   else built.manifest.write_s, measure_s=round(time.perf_counter() - t0, 1),
                                   record_path=str(path) if path else None))
    calibration, ladder_points = fit_records(records)
    ident = started.strftime("%Y%m%dT%H%M%SZ") + "-ladder"
    calibration = calibration.model_copy(update={"record_id": ident})
    return LadderResult(
        id=ident, host=records[0][1].host.hostname, started=started.isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - t_start, 1), prompt_tokens=prompt_tokens,
        output_tokens=output_tokens, parallel=list(parallel), rungs=measured, skipped=skipped or [],
        calibration=calibration, points=ladder_points,
    )


def fit_records(records: list[tuple[str, RunRecord]]) -> tuple[Calibration, list[LadderPoint]]:
    """One ``t0``, ``eta_bw*BW``, ``eta_f*F`` for every decode and prefill point of several records (one host,
    one backend), minimising squared log errors as ``calibration.fit`` does."""
    if not records:
        raise ConfigError("ladder: nothing measured")
    data: list[tuple[str, ModelShape, int, Observation]] = []
    for label, rec in records:
        shape = ModelShape.of(rec.model, rec.settings.type_k, rec.settings.type_v)
        data += [(label, shape, rec.settings.n_ubatch, o) for o in observations(rec)]
    decode = [d for d in data if d[3].kind == "decode"]
    if not decode:
        raise ConfigError("ladder: no decode measurements to fit")
    a0 = float(np.median([d[1].weight_bytes / d[3].measured_s for d in decode if d[3].parallel == 1] or [1e9]))
    prefill = [d for d in data if d[3].kind == "prefill"]
    f0 = float(np.median([d[3].prompt_tokens * d[3].parallel * 2 * d[1].flop_params / d[3].measured_s
                          for d in prefill] or [1e11]))
    dev, fitted, rms = fit_device([(s, ub, o) for _, s, ub, o in data], a0, f0)
    points = [LadderPoint(rung=label, point=p) for (label, _, _, _), p in zip(data, fitted)]
    first = records[0][1]
    backend = record_backend(first)
    bw_ref, f_ref, ref_source = reference(first, backend)
    calibration = Calibration(
        record_id="ladder", host=first.host.hostname, model="ladder: " + ", ".join(label for label, _ in records),
        backend=backend, t0_s=dev.t0_s, bandwidth_eff_gbps=dev.bandwidth_bps / 1e9, flops_eff_tflops=dev.flops / 1e12,
        reference_bandwidth_gbps=bw_ref, reference_tflops=f_ref, reference_source=ref_source,
        eta_bw=dev.bandwidth_bps / (bw_ref * 1e9) if bw_ref else None,
        eta_f=dev.flops / (f_ref * 1e12) if f_ref else None,
        points=[p.point for p in points], rel_rms=rms, n_decode=len(decode), n_prefill=len(prefill),
        notes=[f"ladder of {len(records)} synthetic models ({synth.SYNTH_LABEL})"],
        source="calibration:local-ladder",
    )
    return calibration, points


def leave_one_out(records: list[tuple[str, RunRecord]]) -> dict[str, Calibration]:
    """For each rung, the fit of all the other rungs (for validating predictions of an unseen size)."""
    return {label: fit_records([r for r in records if r[0] != label])[0] for label, _ in records}
