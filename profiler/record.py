"""The run record: the schema-versioned JSON document that is the source of truth for every report.

Owns the result schema (settings, workload points, per-repetition metrics, summaries, telemetry samples) and
save/load. Reports, comparisons and calibration are derived from records and must not need anything else.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

from pydantic import BaseModel, ConfigDict, Field

from profiler import __version__
from profiler.config import validated
from profiler.errors import HfpError, RecordError
from profiler.files import create_exclusive, read_text, write_atomic
from profiler.schema.base import Strict
from profiler.schema.energy import Energy
from profiler.schema.host import HostProfile
from profiler.schema.memory import MemoryPlan
from profiler.schema.model import ModelFile

SCHEMA_VERSION = 1
RUNS_DIR = Path("reports") / "runs"

M = TypeVar("M", bound=BaseModel)


class Settings(Strict):
    """Every llama.cpp and harness setting that shapes a result."""

    threads: int
    threads_batch: int
    n_gpu_layers: int = 0
    n_ctx: int
    n_batch: int = 512
    n_ubatch: int = 512
    flash_attn: str = "auto"  # auto | on | off, as llama.cpp -fa
    type_k: str = "f16"
    type_v: str = "f16"
    seed: int = 42
    sampling: str = "greedy"
    ignore_eos: bool = True
    repetitions: int = 3
    warmup: bool = True
    use_mmap: bool = True
    # --allow-context-overflow: points whose prompt + output exceed the model's trained context were measured
    # on purpose (otherwise they are refused before loading)
    allow_context_overflow: bool = False
    # llama.cpp's extra CPU buffer types (weight repacking, AMX kernels); false when the self-check found that
    # they crash on this CPU with this build (profiler.engine.selfcheck), with the reason.
    extra_bufts: bool = True
    extra_bufts_reason: str | None = None


class WorkloadPoint(BaseModel):
    """One shape to measure: prompt length, generated length, sequences decoded together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = Field(gt=0)
    output_tokens: int = Field(gt=0)
    parallel: int = Field(gt=0)

    @property
    def label(self) -> str:
        """Short label, llama-bench style: ``pp128+tg64 x4``."""
        return f"pp{self.prompt_tokens}+tg{self.output_tokens} x{self.parallel}"


class LlamaTimings(Strict):
    """llama.cpp's own timer (``llama_perf_context``) for the same window, to expose harness overhead."""

    prompt_eval_ms: float
    n_prompt_eval: int
    eval_ms: float
    n_eval: int

    @property
    def prefill_tok_s(self) -> float | None:
        """llama.cpp's prefill rate."""
        return self.n_prompt_eval / self.prompt_eval_ms * 1e3 if self.prompt_eval_ms > 0 else None

    @property
    def decode_tok_s(self) -> float | None:
        """llama.cpp's decode rate."""
        return self.n_eval / self.eval_ms * 1e3 if self.eval_ms > 0 else None


class Repetition(Strict):
    """The metrics of one repetition of a workload point."""

    prompt_tokens: int
    generated_tokens: int
    prefill_s: float
    decode_s: float
    prefill_tok_s: float
    decode_tok_s_per_seq: float
    decode_tok_s_aggregate: float
    ttft_s: float
    itl_p50_s: float
    itl_p95_s: float
    e2e_s: float
    peak_rss_bytes: int | None = None
    peak_anon_bytes: int | None = None  # anonymous part of the peak RSS (not file-backed), where the OS tells
    peak_vram_bytes: int | None = None
    vram_source: str | None = None
    energy: Energy
    j_per_token: float | None = None
    llama: LlamaTimings | None = None


class Stat(BaseModel):
    """Mean and sample standard deviation over repetitions, like llama-bench's ``avg ± stddev``."""

    mean: float | None
    stddev: float | None
    n: int

    @classmethod
    def of(cls, values: list[float | None]) -> Stat:
        """Summarize a list of values, ignoring unmeasured ones."""
        xs = [v for v in values if v is not None]
        if not xs:
            return cls(mean=None, stddev=None, n=0)
        return cls(mean=statistics.fmean(xs), stddev=statistics.stdev(xs) if len(xs) > 1 else 0.0, n=len(xs))


SUMMARY_FIELDS = (
    "prefill_tok_s", "decode_tok_s_per_seq", "decode_tok_s_aggregate", "ttft_s", "itl_p50_s", "itl_p95_s",
    "e2e_s", "peak_rss_bytes", "peak_vram_bytes", "j_per_token", "peak_anon_bytes",
)


class PointResult(Strict):
    """All repetitions of one workload point, their summary, memory predicted vs measured, raw samples."""

    point: WorkloadPoint
    repetitions: list[Repetition]
    summary: dict[str, Stat] = {}
    energy_j: Stat | None = None
    mean_power_w: Stat | None = None
    energy_source: str | None = None
    memory_predicted: MemoryPlan
    rss_baseline_bytes: int | None = None
    anon_baseline_bytes: int | None = None  # anonymous part of the RSS before the model was loaded
    samples: list[dict[str, float | None]] = []

    def summarize(self) -> None:
        """Fill ``summary`` from the repetitions."""
        self.summary = {f: Stat.of([getattr(r, f) for r in self.repetitions]) for f in SUMMARY_FIELDS}
        self.energy_j = Stat.of([r.energy.energy_j for r in self.repetitions])
        self.mean_power_w = Stat.of([r.energy.mean_power_w for r in self.repetitions])
        self.energy_source = self.repetitions[0].energy.source if self.repetitions else None

    def mean(self, field: str) -> float | None:
        """The mean of a summary field, or None."""
        s = self.summary.get(field)
        return s.mean if s else None


class FailedPoint(Strict):
    """The workload point whose measurement failed (the llama.cpp worker crashed, hung or was killed)."""

    point: WorkloadPoint
    reason: str  # one line, as the CLI printed it
    signal: str | None = None  # e.g. "SIGSEGV", when the worker died by a signal
    phase: str = ""  # "warm-up", "repetition 2", ...
    repetitions_finished: int = 0


class Document(Strict):
    """A schema-versioned JSON document under ``reports/runs/``: save atomically, load with a clear refusal of
    other kinds and versions. Subclasses set ``NOUN`` (for messages) and the defaults of ``schema_version`` and,
    if they carry one, of a ``kind`` field: the version and kind a document is written with are those it reads."""

    NOUN: ClassVar[str] = "record"

    id: str
    schema_version: int = 1

    def save(self, path: Path | None = None) -> Path:
        """Write the document as JSON atomically (``profiler.files.write_atomic``) and return where.

        With no ``path`` it creates ``reports/runs/<id>.json`` exclusively: when another document (another hfp
        process started in the same second) already holds that name, the id gets a ``-2``, ``-3``… suffix, so
        concurrent runs never overwrite each other. Save again to the returned path to update the file.
        """
        if path is not None:
            return write_atomic(Path(path), self.model_dump_json(indent=1))
        base, n = self.id, 1
        while not create_exclusive(target := RUNS_DIR / f"{self.id}.json", self.model_dump_json(indent=1)):
            n += 1
            self.id = f"{base}-{n}"
        return target

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Read a document, refusing other kinds and schema versions with a clear message."""
        fields = cls.model_fields
        kind = fields["kind"].default if "kind" in fields else None
        return load_document(cls, path, cls.NOUN, fields["schema_version"].default, kind=kind)


class KindedDocument(Document):
    """A document that names its ``kind`` (a sweep, a safety run), when it was made and by which hfp. Subclasses
    narrow ``kind`` to their own literal and default; the JSON keeps the order id, schema_version, kind,
    created_at, hfp_version. Its ``NOUN`` is ``<kind> record``."""

    kind: str
    created_at: str
    hfp_version: str = __version__

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.NOUN = f"{cls.model_fields['kind'].default} record"


def read_json_object(path: Path, noun: str, kind: str | None, schema: int | tuple[int, ...],
                     error: type[HfpError] = RecordError, missing: str | None = None, hint: str = "") -> dict[str, Any]:
    """The JSON object in ``path`` after checking its ``kind`` (unless None) and ``schema_version`` (``schema``,
    or one of them: the versions this hfp still reads).

    Every problem is one ``error`` naming the file: ``missing`` (if given) when there is no such file, else
    ``profiler.files.read_text``'s reasons; not JSON; another kind; another schema version (``hint`` added).
    """
    if missing is not None and not path.exists():
        raise error(f"{path}: {missing}")
    text = read_text(path, error)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise error(f"{path}: not a JSON {noun} ({e})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: not a JSON {noun}")
    if kind is not None and data.get("kind") != kind:
        raise error(f'{path}: not a {noun} (no "kind": "{kind}")')
    versions = schema if isinstance(schema, tuple) else (schema,)
    if data.get("schema_version") not in versions:
        raise error(f"{path}: {noun} schema version {data.get('schema_version')!r}; this hfp reads version "
                    f"{' or '.join(map(str, versions))}{hint}")
    return data


def load_document(cls: type[M], path: Path | str, noun: str, schema: int | tuple[int, ...],
                  error: type[HfpError] = RecordError, kind: str | None = None, missing: str | None = None) -> M:
    """``read_json_object`` then ``validate_document``: the saved ``cls`` at ``path``, or one ``error`` naming it."""
    path = Path(path)
    return validate_document(cls, read_json_object(path, noun, kind, schema, error, missing), path, noun, error)


def validate_document(cls: type[M], data: dict[str, Any], path: Path, noun: str,
                      error: type[HfpError] = RecordError) -> M:
    """``cls`` validated from ``data`` read from ``path``; invalid fields are one ``error`` naming the file."""
    return validated(cls, data, f"{path}: invalid {noun}", error)


class RunRecord(Document):
    """One ``hfp run``: where, what, how and the results."""

    NOUN: ClassVar[str] = "run record"

    schema_version: int = SCHEMA_VERSION
    created_at: str
    hfp_version: str = __version__
    llama_cpp_version: str | None = None
    llama_system_info: str | None = None
    complete: bool = True
    interrupted: str | None = None
    host: HostProfile
    model: ModelFile
    settings: Settings
    points: list[PointResult] = []
    idle_baseline: Energy | None = None
    notes: list[str] = []
    extra: dict[str, Any] = {}
    failed_point: FailedPoint | None = None  # set when a point's worker crashed, hung or was killed



def new_id(model: ModelFile | str | Path | None, kind: str | None = None, at: datetime | None = None) -> str:
    """A sortable, readable document id: ``<UTC time>[-<kind>]-<model file stem>`` (stem cut to 40 characters).

    ``model`` is the model file (or its path) the document is about, or None for a document about several
    (``<UTC time>-<kind>``, e.g. a ladder); ``kind`` tells documents apart that are not plain runs (``sweep``,
    ``safety``, ``ladder``); ``at`` is the time to stamp (default now).
    """
    stamp = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if model is None:
        return f"{stamp}-{kind}" if kind else stamp
    path = model.path if isinstance(model, ModelFile) else model
    stem = Path(path).stem.replace(" ", "_")[:40]
    return f"{stamp}-{kind}-{stem}" if kind else f"{stamp}-{stem}"


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
