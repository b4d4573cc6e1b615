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

from profiler import synth
from profiler.errors import ConfigError, HfpError
from profiler.feasibility.calibration import (
    BW_CAP,
    Calibration,
    CalibrationPoint,
    HostFingerprint,
    Observation,
    calibration_dir,
    fit_device,
    gbps,
    host_shape,
    observations,
    record_backend,
    reference,
)
from profiler.feasibility.model import ModelShape
from profiler.files import write_atomic
from profiler.models import inspect
from profiler.record import RunRecord, WorkloadPoint, load_document, new_id
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile
from profiler.schema.units import GiB

LADDER_SCHEMA_VERSION = 2
LADDER_SCHEMA_READ = (1, 2)  # version 2 only added fields with defaults: version 1 records still load


class Rung(Strict):
    """One size on the ladder: a preset, optionally with fewer layers (to keep a large MoE shape small)."""

    preset: str
    type: str = "Q4_K_M"
    n_layers: int | None = None
    n_vocab: int | None = None  # a smaller vocabulary (for a rung cut to a few layers, see DEFAULT_LADDER)

    @property
    def label(self) -> str:
        """``preset[/Nl][/vN]:type``."""
        return (f"{self.preset}{f'/{self.n_layers}l' if self.n_layers else ''}"
                f"{f'/v{self.n_vocab}' if self.n_vocab else ''}:{self.type}")

    @property
    def file_name(self) -> str:
        """Name of the rung's synthetic file (before type, seed and shape hash)."""
        return (f"ladder-{self.preset}{f'-{self.n_layers}l' if self.n_layers else ''}"
                f"{f'-v{self.n_vocab}' if self.n_vocab else ''}")

    def shape(self) -> synth.Shape:
        """The rung's shape."""
        return synth.with_overrides(synth.PRESETS[self.preset].shape, n_layers=self.n_layers, n_vocab=self.n_vocab)


# 1B, 1.5B, 3B and 8B dense, and Qwen3-30B-A3B's layer shape with 12 of its 48 layers (128 experts, 8 used)
# and a 32k vocabulary (~4.2 GiB): spans 0.8-4.6 GiB of weights, all in Q4_K (K-quant) kernels. The MoE rung's
# vocabulary is cut because with 12 layers its 151,936-token embedding and output matrices would be half of
# the parameters a token uses (a fifth in the real 48-layer model); at 32k they are a sixth, as in the dense
# rungs. Last, Qwen2.5-0.5B: its n_embd (896) is not a multiple of 256, so "Q4_K_M" is mostly Q5_0/Q8_0 there
# (as in llama.cpp's own files), weights a CPU does not repack and runs through llamafile's tinyBLAS once a step
# has two or more tokens; that rung's batched points fit the tinyBLAS pass (``calibration.fit_device``) and no
# other term. Sized for about 6 minutes on an idle 2-core machine with the files built (docs/validation-local.md).
DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung(preset="llama-3.2-1b"), Rung(preset="qwen2.5-1.5b"), Rung(preset="llama-3.2-3b"),
    Rung(preset="llama-3.1-8b"), Rung(preset="qwen3-30b-a3b", n_layers=12, n_vocab=32768),
    Rung(preset="qwen2.5-0.5b"),
)
QUICK_LADDER: tuple[Rung, ...] = (Rung(preset="llama-3.2-1b"), Rung(preset="qwen2.5-1.5b"),
                                  Rung(preset="qwen3-30b-a3b", n_layers=4, n_vocab=32768))
# parallel 1 measures single-stream decode (prompt 64, 16 steps: the median step is robust) and prefill; the
# batched levels decode 8 steps from 8-token prompts: enough for the batched compute rate, and their prefills
# (8 x B tokens) add prefill points of other lengths at little cost. Every power of two to 16: on a CPU the
# batched step switches kernels with B (one gemv pass per sequence below 4, the repacked gemm on whole groups of
# 4 from there, tinyBLAS for tensors that are not repacked), so the batched ratio is fitted per level
# (``calibration.fit_device``: a curve over B) after the single-stream terms, which these points do not move.
DEFAULT_PARALLEL: tuple[int, ...] = (1, 2, 4, 8, 16)
# Three repetitions per point: two idle runs 25 minutes apart with one repetition differed by 15-30% on the same
# rung's single-stream decode (a shared VM); the fit takes each point's median step and fastest prefill.
REPETITIONS = 3
PROMPT_TOKENS, OUTPUT_TOKENS = 64, 16
BATCH_PROMPT_TOKENS, BATCH_OUTPUT_TOKENS = 8, 8
RAM_SHARE = 0.6  # a rung's weights (mapped + a repacked copy) must stay under this share of available RAM


class LadderRung(Strict):
    """One measured rung."""

    rung: str
    file: str
    params: int
    weight_bytes: int
    synthetic: bool = True
    write_s: float | None = None  # None when the file was reused
    measure_s: float
    record_path: str | None = None
    model: ModelFile | None = None  # the rung's GGUF as described (so a ladder record is self-contained)


class LadderPoint(Strict):
    """A calibration point with the rung it was measured on."""

    rung: str
    point: CalibrationPoint


class LadderResult(Strict):
    """A ladder calibration: the rungs, the joint fit with per-point residuals, and how long it took."""

    schema_version: int = LADDER_SCHEMA_VERSION
    id: str
    host: str
    fingerprint: HostFingerprint | None = None
    started: str
    duration_s: float  # the whole ladder: building files on first use plus measuring
    build_s: float = 0.0  # writing synthetic files (0 when every file was reused)
    measure_s: float = 0.0  # loading and measuring every rung
    prompt_tokens: int
    output_tokens: int
    batch_prompt_tokens: int = BATCH_PROMPT_TOKENS
    batch_output_tokens: int = BATCH_OUTPUT_TOKENS
    repetitions: int = 1
    parallel: list[int]
    rungs: list[LadderRung]
    skipped: list[str] = []
    calibration: Calibration
    points: list[LadderPoint]
    label: str = synth.SYNTH_LABEL

    def save(self, path: Path | None = None) -> Path:
        """Write the ladder record (``<cache>/calibration/<id>.ladder.json``) and its calibration beside it."""
        target = Path(path) if path else calibration_dir() / f"{self.id}.ladder.json"
        self.calibration.save(calibration_path(target))
        return write_atomic(target, self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path | str) -> LadderResult:
        """Read a saved ladder record (``profiler.record``'s load path: one ``ConfigError`` naming the file)."""
        return load_document(cls, path, "ladder record", LADDER_SCHEMA_READ, ConfigError,
                             missing="no such ladder record")


def calibration_path(record: Path) -> Path:
    """The calibration file ``LadderResult.save`` writes beside a ladder record (``<id>.json``)."""
    return record.with_name(record.name.replace(".ladder.json", "") + ".json")


def newest_record(host: str | None = None, folder: Path | None = None) -> Path | None:
    """The newest readable ladder record (by its start time), of ``host`` when given; None when there is none."""
    found: list[tuple[str, Path]] = []
    for path in (folder or calibration_dir()).glob("*.ladder.json"):
        try:
            result = LadderResult.load(path)
        except HfpError:
            continue
        if host is None or result.host == host:
            found.append((result.started, path))
    return max(found)[1] if found else None


def fitting_rungs(rungs: tuple[Rung, ...] | list[Rung], ram_available: int | None = None
                  ) -> tuple[list[Rung], list[str]]:
    """The rungs this machine can hold (weights plus a repacked copy under ``RAM_SHARE`` of free RAM)."""
    ram = psutil.virtual_memory().available if ram_available is None else ram_available
    keep, skipped = [], []
    for r in rungs:
        size = synth.planned_bytes(synth.tensor_plan(r.shape(), r.type))
        if 2 * size > RAM_SHARE * ram:
            skipped.append(f"{r.label}: {2 * size / GiB:.1f} GiB with a repacked copy > "
                           f"{RAM_SHARE:.0%} of {ram / GiB:.1f} GiB available")
        else:
            keep.append(r)
    return keep, skipped


def parse_rungs(text: str) -> list[Rung]:
    """``preset[/Nl][/vN][:TYPE],...`` -> rungs."""
    rungs = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name, _, ftype = item.partition(":")
        preset, *cuts = name.split("/")
        preset = preset.lower()
        if preset not in synth.PRESETS:
            raise ConfigError(f"ladder: no preset {preset!r}; `hfp synth --list` shows them")
        ftype = (ftype or "Q4_K_M").upper()
        if ftype not in synth.SYNTH_TYPES:
            raise ConfigError(f"ladder: type {ftype!r} is not offered ({', '.join(synth.SYNTH_TYPES)})")
        found: dict[str, int] = {}
        for cut in cuts:
            key, digits = ("n_vocab", cut[1:]) if cut.startswith("v") else ("n_layers", cut.removesuffix("l"))
            if not (digits.isascii() and digits.isdigit()) or int(digits) < 1 or key in found:
                raise ConfigError(f"ladder: {item!r}: layers are written /12l and a vocabulary /v32768")
            found[key] = int(digits)
        if found.get("n_vocab", 1024) < 1024:
            raise ConfigError(f"ladder: {item!r}: a vocabulary of at least 1024 tokens (the tokenizer is cut to it)")
        rung = Rung(preset=preset, type=ftype, **found)
        rung.shape()  # a cut the shape cannot take (a vocabulary of 3 tokens ...) is refused here, in one line
        rungs.append(rung)
    if not rungs:
        raise ConfigError("ladder: no rungs given")
    return rungs


Measure = Callable[[ModelFile, list[WorkloadPoint]], tuple[RunRecord, Path | None]]


def ladder_points(parallel: tuple[int, ...] | list[int], prompt_tokens: int = PROMPT_TOKENS,
                  output_tokens: int = OUTPUT_TOKENS) -> list[WorkloadPoint]:
    """The points measured on every rung: parallel 1 at ``prompt_tokens`` + ``output_tokens``, each higher
    level at ``BATCH_PROMPT_TOKENS`` + ``BATCH_OUTPUT_TOKENS`` (short: a batched step costs B tokens of compute)."""
    return [WorkloadPoint(prompt_tokens=prompt_tokens, output_tokens=output_tokens, parallel=p) if p == 1 else
            WorkloadPoint(prompt_tokens=BATCH_PROMPT_TOKENS, output_tokens=BATCH_OUTPUT_TOKENS, parallel=p)
            for p in sorted(set(parallel))]


def run_ladder(rungs: list[Rung], measure: Measure, prompt_tokens: int = PROMPT_TOKENS,
               output_tokens: int = OUTPUT_TOKENS, parallel: tuple[int, ...] = DEFAULT_PARALLEL,
               skipped: list[str] | None = None, progress: Callable[[str], None] | None = None,
               repetitions: int = REPETITIONS) -> LadderResult:
    """Build (or reuse) each rung, measure it with ``measure`` and fit one calibration to every point."""
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    points = ladder_points(parallel, prompt_tokens, output_tokens)
    records: list[tuple[str, RunRecord]] = []
    measured: list[LadderRung] = []
    build_s = 0.0
    for r in rungs:
        if progress:
            progress(f"preparing {r.label}")
        t_build = time.perf_counter()
        cut = r.n_layers or r.n_vocab
        built = synth.build(r.shape(), r.type, name=r.file_name, preset=None if cut else r.preset,
                            source=synth.PRESETS[r.preset].source)
        model = inspect(built.path, with_hash=False)
        build_s += time.perf_counter() - t_build
        if progress:  # say whether the file was written now or reused from the cache (its path, for the curious)
            progress(f"{'reused' if built.reused else 'wrote'} {built.path}")
            progress(f"measuring {r.label}")
        t0 = time.perf_counter()
        record, path = measure(model, points)
        records.append((r.label, record))
        measured.append(LadderRung(rung=r.label, file=str(built.path), params=model.params,
                                   weight_bytes=model.tensor_bytes, write_s=None if built.reused
                                   else built.manifest.write_s, measure_s=round(time.perf_counter() - t0, 1),
                                   record_path=str(path) if path else None, model=model))
    calibration, fitted = fit_records(records)
    ident = new_id(None, "ladder", at=started)
    duration = round(time.perf_counter() - t_start, 1)
    calibration = calibration.model_copy(update={
        "record_id": ident, "notes": calibration.notes + [f"ladder took {duration:.0f} s ({build_s:.0f} s building)"]})
    return LadderResult(
        id=ident, host=records[0][1].host.hostname, fingerprint=calibration.fingerprint,
        started=started.isoformat(timespec="seconds"), duration_s=duration, build_s=round(build_s, 1),
        measure_s=round(sum(m.measure_s for m in measured), 1), prompt_tokens=prompt_tokens,
        output_tokens=output_tokens, repetitions=repetitions, parallel=sorted(set(parallel)), rungs=measured,
        skipped=skipped or [], calibration=calibration, points=fitted,
    )


def fit_records(records: list[tuple[str, RunRecord]]) -> tuple[Calibration, list[LadderPoint]]:
    """One ``t0``, ``eta_bw*BW``, ``eta_f*F`` and batched ratio ``eta_batch`` for every decode and prefill point
    of several records (one host, one backend), minimising squared log errors as ``calibration.fit`` does."""
    if not records:
        raise ConfigError("ladder: nothing measured")
    data: list[tuple[str, ModelShape, int, Observation]] = []
    for label, rec in records:
        shape = host_shape(rec)
        data += [(label, shape, rec.settings.n_ubatch, o) for o in observations(rec)]
    decode = [d for d in data if d[3].kind == "decode"]
    if not decode:
        raise ConfigError("ladder: no decode measurements to fit")
    a0 = float(np.median([d[1].weight_bytes / d[3].measured_s for d in decode if d[3].parallel == 1] or [1e9]))
    prefill = [d for d in data if d[3].kind == "prefill"]
    f0 = float(np.median([d[3].prompt_tokens * d[3].parallel * 2 * d[1].flop_params / d[3].measured_s
                          for d in prefill] or [1e11]))
    first = records[0][1]
    backend = record_backend(first)
    bw_ref, f_ref, ref_source = reference(first, backend)
    dev, fitted, rms, eta_batch = fit_device([(s, ub, o) for _, s, ub, o in data], a0, f0, backend,
                                             BW_CAP * bw_ref * 1e9 if bw_ref else None, per_layer=True)
    points = [LadderPoint(rung=label, point=p) for (label, _, _, _), p in zip(data, fitted)]
    calibration = Calibration(
        record_id="ladder", host=first.host.hostname, model="ladder: " + ", ".join(label for label, _ in records),
        backend=backend, t0_s=32 * dev.t0_s, tau_layer_s=dev.t0_s, bandwidth_eff_gbps=dev.bandwidth_bps / 1e9,
        flops_eff_tflops=dev.flops / 1e12,
        reference_bandwidth_gbps=bw_ref, reference_tflops=f_ref, reference_source=ref_source,
        eta_bw=dev.bandwidth_bps / (bw_ref * 1e9) if bw_ref else None,
        eta_f=dev.flops / (f_ref * 1e12) if f_ref else None, eta_batch=eta_batch,
        eta_batch_curve=list(dev.batch_curve),
        tinyblas_gbps=gbps(dev.tinyblas_bps), tinyblas_token_gbps=gbps(dev.tinyblas_token_bps),
        points=[p.point for p in points], rel_rms=rms, n_decode=len(decode), n_prefill=len(prefill),
        notes=[f"ladder of {len(records)} synthetic models ({synth.SYNTH_LABEL})"],
        source="calibration:local-ladder", fingerprint=HostFingerprint.of(first.host),
    )
    return calibration, points


def leave_one_out(records: list[tuple[str, RunRecord]]) -> dict[str, Calibration]:
    """For each rung, the fit of all the other rungs (for validating predictions of an unseen size)."""
    return {label: fit_records([r for r in records if r[0] != label])[0] for label, _ in records}
