"""Sweeps: the ``hfp run`` measurements repeated over a quantization ladder and/or KV cache types.

Owns choosing the (weight level, KV cache type) configurations, calling ``profiler.runner.measure`` once per
configuration with one host description, and the ``SweepRecord`` that holds one ``RunRecord`` per
configuration (save/load under ``reports/runs/``). It must not measure anything itself, quantize (that is
``profiler.quantize``) or format output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from profiler import hardware, runner
from profiler.errors import ConfigError, signal_name
from profiler.models import inspect
from profiler.quantize import Ladder, LevelFile
from profiler.record import KindedDocument, RunRecord, Settings, WorkloadPoint, new_id, now_iso
from profiler.schema.base import Strict
from profiler.schema.host import HostProfile
from profiler.schema.model import ModelFile
from profiler.schema.units import parse_kv_types

SWEEP_SCHEMA_VERSION = 1


class SweepEntry(Strict):
    """One configuration of a sweep and its full run record."""

    level: str
    kv_type: str
    axis: Literal["weights", "kv", "grid"]
    bits_per_weight: float
    requantized: bool = False
    record_path: str | None = None
    record: RunRecord


class SweepRecord(KindedDocument):
    """One ``hfp sweep``: the same workload points measured at every configuration."""

    schema_version: int = SWEEP_SCHEMA_VERSION
    kind: Literal["sweep"] = "sweep"
    ladder_source: str | None = None
    ladder_dir: str | None = None
    warnings: list[str] = []
    points: list[WorkloadPoint]
    settings: Settings  # the base settings; each entry's record holds its own (KV type set per entry)
    complete: bool = True
    interrupted: str | None = None
    entries: list[SweepEntry] = []


def plan(
    levels: list[LevelFile], kv_types: list[str], grid: bool = False
) -> list[tuple[LevelFile, str, Literal["weights", "kv", "grid"]]]:
    """(level, KV type, axis) to measure: every level at the first KV type, then every other KV type at the
    first level (the ladder's highest precision); ``grid`` measures every combination."""
    kvs = parse_kv_types(kv_types)
    if not levels:
        raise ConfigError("no weight levels to measure")
    if grid:
        return [(lvl, kv, "grid") for lvl in levels for kv in kvs]
    out: list[tuple[LevelFile, str, Literal["weights", "kv", "grid"]]] = [(lvl, kvs[0], "weights") for lvl in levels]
    return out + [(levels[0], kv, "kv") for kv in kvs[1:]]


def _tagged(progress: Callable[[str], None] | None, tag: str) -> Callable[[str], None] | None:
    if progress is None:
        return None
    report = progress
    return lambda msg: report(f"{tag}: {msg}")


def _entry(lvl: LevelFile, kv: str, axis: Literal["weights", "kv", "grid"], model: ModelFile, path: Path,
           run: RunRecord) -> SweepEntry:
    return SweepEntry(level=lvl.level, kv_type=kv, axis=axis, requantized=lvl.requantized, record_path=str(path),
                      bits_per_weight=round(model.bits_per_weight, 3), record=run)


def sweep(
    levels: list[LevelFile],
    kv_types: list[str],
    points: list[WorkloadPoint],
    settings: Settings,
    options: runner.RunOptions | None = None,
    progress: Callable[[str], None] | None = None,
    ladder: Ladder | None = None,
    grid: bool = False,
    host: HostProfile | None = None,
    record_path: Path | None = None,
) -> SweepRecord:
    """Measure ``points`` at every (level, KV type) configuration and return the sweep, saved as it grows.

    The sweep is written to ``record_path`` (default ``reports/runs/<id>.json``) and each configuration's own
    run record beside it, in a folder of the same name (``<id>/<level>-kv-<type>.json``), so ``hfp report``
    and ``hfp compare`` can read any of them. Ctrl-C keeps the finished configurations, marked incomplete.
    """
    configs = plan(levels, kv_types, grid)
    base = options or runner.RunOptions()
    host = host or hardware.detect(measure=True)
    record = SweepRecord(
        id=new_id(levels[0].path, "sweep"), created_at=now_iso(), ladder_source=ladder.source.path if ladder else None,
        ladder_dir=ladder.directory if ladder else None, warnings=sorted(set(ladder.warnings)) if ladder else [],
        points=points, settings=settings, complete=False,
    )
    path = Path(record_path) if record_path else record.save()  # claims reports/runs/<id>.json exclusively
    folder = path.with_suffix("")
    try:
        for lvl, kv, axis in configs:
            model = inspect(lvl.path)
            run_path = folder / f"{lvl.level}-kv-{kv}.json"
            run = runner.measure(
                model, points, settings.model_copy(update={"type_k": kv, "type_v": kv}),
                _tagged(progress, f"{lvl.level} kv={kv}"),
                base.model_copy(update={"record_path": str(run_path)}), host,
            )
            record.entries.append(_entry(lvl, kv, axis, model, run_path, run))
            record.save(path)
        record.complete = True
    except runner.RunInterrupted as e:
        record.interrupted = f"{e.signame} during {e.record.model.label}; {len(record.entries)} of " \
            f"{len(configs)} configurations finished"
        if e.record.points:  # keep the interrupted configuration's finished points too (its record is incomplete)
            record.entries.append(_entry(lvl, kv, axis, model, e.path, e.record))
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM or SIGHUP (profiler.cli.signals)
        record.interrupted = f"{signal_name(e)} after {len(record.entries)} of {len(configs)} configurations"
    except runner.RunFailed as e:  # the llama.cpp worker crashed or hung: keep the finished configurations, say so
        record.interrupted = (f"llama.cpp worker failed during {e.record.model.label} "
                              f"({e.cause.signal_name or 'exit'}); {len(record.entries)} of {len(configs)} "
                              "configurations finished")
        record.save(path)
        raise
    record.save(path)
    return record
