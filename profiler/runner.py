"""Running workload points on an engine under telemetry, and building the run record.

Owns the measurement procedure: plan memory and refuse what will not fit, take an idle baseline, warm up,
repeat each point, turn raw timings and telemetry into metrics, and save the record after every point so that
an interruption loses nothing finished. It must not format output (the CLI and ``report`` do).
"""

from __future__ import annotations

import signal
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import psutil
from pydantic import BaseModel

from profiler import hardware, memory
from profiler.engine import PointTimings, llama_cpp_version
from profiler.engine.llamacpp import context_size
from profiler.engine.selfcheck import settings_for_host
from profiler.engine.worker import InProcessEngine, WorkerCrashed, WorkerEngine
from profiler.errors import ConfigError, EngineError, HfpError, signal_name
from profiler.record import (
    RUNS_DIR,
    FailedPoint,
    LlamaTimings,
    PointResult,
    Repetition,
    RunRecord,
    Settings,
    WorkloadPoint,
    new_id,
    now_iso,
)
from profiler.schema.energy import Energy
from profiler.schema.host import HostProfile
from profiler.schema.model import ModelFile
from profiler.telemetry import IdleBaseline, TelemetryWindow, default_sensors, measure_idle
from profiler.telemetry.common import Sensor
from profiler.telemetry.estimate import TdpModel, cpu_tdp_w
from profiler.telemetry.process import ProcessSensor
from profiler.workload_prompts import DEFAULT_PROXY_TEXT, exact_prompt

Progress = Callable[[str], None]


class RunOptions(BaseModel):
    """How to measure, beyond llama.cpp's settings."""

    idle_seconds: float = 3.0
    telemetry_hz: float = 10.0
    tdp_w: float | None = None
    sys_root: str = "/sys"
    gpu_index: int | None = 0
    verbose: bool = False
    proxy_text: str = DEFAULT_PROXY_TEXT
    record_path: str | None = None
    warmup_tokens: int = 16
    point_timeout_s: float | None = None  # per engine call (warm-up, each repetition); None: point_time_limit_s
    selfcheck: bool = True  # apply the llama.cpp self-check verdict (profiler.engine.selfcheck) to the settings
    in_process: bool = False  # run llama.cpp in this process, unsupervised (benchmarks/harness_overhead.py only)


class RunInterrupted(HfpError):
    """Ctrl-C, SIGTERM or SIGHUP during a run: the finished points were saved, marked incomplete. The exit status
    is 128 + the signal's number (130 for Ctrl-C), as a shell reports a process stopped by that signal."""

    exit_code = 130

    def __init__(self, record: RunRecord, path: Path, signame: str = "SIGINT") -> None:
        super().__init__(
            f"interrupted by {signame}: {len(record.points)} finished point(s) saved to {path} (marked incomplete)"
        )
        self.record, self.path, self.signame = record, path, signame
        self.exit_code = 128 + int(getattr(signal.Signals, signame, signal.SIGINT))


class RunFailed(EngineError):
    """The llama.cpp worker crashed, hung or was killed during a point: finished points were saved, the failed
    point is marked in the record (``failed_point``)."""

    def __init__(self, record: RunRecord, path: Path, cause: WorkerCrashed) -> None:
        super().__init__(f"{cause}; {len(record.points)} finished point(s) saved to {path} (failed point marked)")
        self.record, self.path, self.cause = record, path, cause


def point_time_limit_s(model: ModelFile, point: WorkloadPoint) -> float:
    """How long one engine call at ``point`` may take before the worker counts as hung and is killed.

    Ten times what a slow host would need: prefill at 100 GFLOP/s (2 x parameters per token), decode steps at
    5 GB/s of weight reads or the batch's FLOPs, whichever is slower, plus two minutes. Generous on purpose:
    it catches a hang, not a slow machine (``--point-timeout`` overrides it).
    """
    prefill = point.parallel * point.prompt_tokens * 2 * model.params / 100e9
    step = max(model.tensor_bytes / 5e9, point.parallel * 2 * model.params / 100e9)
    return 120.0 + 10 * (prefill + point.output_tokens * step)


def load_time_limit_s(model: ModelFile) -> float:
    """How long loading may take: reading the file at 20 MB/s, plus two minutes."""
    return 120.0 + model.size_bytes / 20e6


def default_settings(**overrides: object) -> Settings:
    """Settings with threads = physical cores, as llama-bench defaults."""
    cores = psutil.cpu_count(logical=False) or 1
    values: dict[str, object] = {"threads": cores, "threads_batch": cores, "n_ctx": 0}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(values)


def points_grid(prompt_tokens: int, output_tokens: int, parallel: list[int]) -> list[WorkloadPoint]:
    """One point per parallel level."""
    return [WorkloadPoint(prompt_tokens=prompt_tokens, output_tokens=output_tokens, parallel=p) for p in parallel]


def point_n_ctx(point: WorkloadPoint) -> int:
    """Context cells a point needs (all sequences), as the engine sizes it."""
    return context_size(point.prompt_tokens, point.output_tokens, point.parallel)


def plan_point(model: ModelFile, point: WorkloadPoint, settings: Settings, host: HostProfile) -> memory.MemoryPlan:
    """Memory plan for one point against this host's free RAM and VRAM."""
    vram = host.gpus[0].vram_free_bytes if host.gpus else None
    return memory.plan(
        model, point_n_ctx(point), point.parallel, settings.n_gpu_layers, settings.n_ubatch, settings.type_k,
        settings.type_v, settings.flash_attn != "off", ram_available=host.ram_available_bytes, vram_available=vram,
        use_mmap=settings.use_mmap, n_tokens=point.prompt_tokens * point.parallel,
        cpu_features=memory.host_cpu_features(host.backends.system_info, getattr(settings, "extra_bufts", True)),
    )


def require_gpu_offload(settings: Settings, host: HostProfile) -> None:
    """Refuse GPU layers, before anything is loaded, when the installed llama.cpp build cannot offload."""
    if settings.n_gpu_layers > 0 and not host.backends.gpu_offload:
        n = "all" if settings.n_gpu_layers >= 999 else settings.n_gpu_layers  # the CLI's 'all' is 999
        raise ConfigError(
            f"--gpu-layers {n} needs GPU offload, but this llama.cpp build is CPU-only "
            "(llama_supports_gpu_offload() is false); build it with `make cuda` (docs/gpu.md) or use --gpu-layers 0"
        )


def require_trained_context(model: ModelFile, points: list[WorkloadPoint], settings: Settings) -> None:
    """Refuse, before loading, a point whose sequences (prompt + output) exceed the context the model was trained
    for: its figures would describe a model working outside its design. ``settings.allow_context_overflow``
    (``--allow-context-overflow``) measures it anyway, and the record's settings say so."""
    trained = model.n_ctx_train
    if settings.allow_context_overflow or trained <= 0:
        return
    for p in points:
        if p.prompt_tokens + p.output_tokens > trained:
            raise ConfigError(
                f"{p.label}: a sequence needs {p.prompt_tokens + p.output_tokens:,} tokens of context "
                f"({p.prompt_tokens:,} prompt + {p.output_tokens:,} output), but {model.label} was trained for "
                f"{trained:,}; shorten the prompt or output, or pass --allow-context-overflow to measure it anyway"
            )


def _percentile(xs: list[float], q: float) -> float:
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


class Rates(NamedTuple):
    """Token rates of one repetition: prompt tokens over the prefill, decode steps over the decode phase."""

    prefill_tok_s: float
    decode_tok_s_per_seq: float
    decode_tok_s_aggregate: float  # every sequence's tokens: steps x parallel over the decode phase


def rates(t: PointTimings) -> Rates:
    """The token rates of one repetition's raw timings (0 decode rate when nothing was decoded)."""
    prefill_s = t.t_first_token - t.t_start
    decode_s = t.t_end - t.t_first_token
    steps = len(t.step_ends)
    return Rates(t.prompt_tokens / prefill_s, steps / decode_s if decode_s > 0 else 0.0,
                 steps * t.parallel / decode_s if decode_s > 0 else 0.0)


def repetition_metrics(t: PointTimings, energy: Energy, peak_rss: int | None, peak_vram: int | None,
                       vram_source: str | None, peak_anon: int | None = None) -> Repetition:
    """Metrics of one repetition from raw timings and the telemetry window."""
    prefill_s = t.t_first_token - t.t_start
    decode_s = t.t_end - t.t_first_token
    r = rates(t)
    gaps = [b - a for a, b in zip([t.t_first_token] + t.step_ends, t.step_ends)] or [0.0]
    llama = None
    if t.engine_prefill and t.engine_decode:
        llama = LlamaTimings(prompt_eval_ms=t.engine_prefill.ms, n_prompt_eval=t.engine_prefill.tokens,
                             eval_ms=t.engine_decode.ms, n_eval=t.engine_decode.tokens)
    return Repetition(
        prompt_tokens=t.prompt_tokens, generated_tokens=t.generated_tokens, prefill_s=prefill_s, decode_s=decode_s,
        prefill_tok_s=r.prefill_tok_s, decode_tok_s_per_seq=r.decode_tok_s_per_seq,
        decode_tok_s_aggregate=r.decode_tok_s_aggregate,
        ttft_s=prefill_s, itl_p50_s=_percentile(gaps, 50), itl_p95_s=_percentile(gaps, 95), e2e_s=t.t_end - t.t_start,
        peak_rss_bytes=peak_rss, peak_anon_bytes=peak_anon, peak_vram_bytes=peak_vram, vram_source=vram_source,
        energy=energy,
        j_per_token=energy.energy_j / t.generated_tokens if energy.energy_j is not None else None,
        llama=llama,
    )


class Runner:
    """One measurement session: a host, a loaded model, sensors, and the record being built."""

    def __init__(self, model: ModelFile, settings: Settings, options: RunOptions, host: HostProfile | None = None):
        self.model, self.settings, self.options = model, settings, options
        self.host = host or hardware.detect(measure=True)
        self.process = ProcessSensor()
        self.sensors: list[Sensor]
        self.sensors, statuses = default_sensors(Path(options.sys_root), options.gpu_index)
        self.tdp = TdpModel(tdp_w=options.tdp_w or cpu_tdp_w(self.host.physical_cores))
        self.record = RunRecord(
            id=new_id(model), created_at=now_iso(), llama_cpp_version=llama_cpp_version(),
            llama_system_info=self.host.backends.system_info, complete=False, host=self.host, model=model,
            settings=settings,
            notes=[f"sensor {s.name}: {s.detail}" for s in statuses if not s.available],
            extra={"sensors": [s.model_dump() for s in statuses], "tdp_model": self.tdp.model_dump(),
                   "proxy_prompt": "benign:" + options.proxy_text[:80]},
        )
        self.path = Path(options.record_path) if options.record_path else None
        self._current: tuple[WorkloadPoint | None, str, int] = (None, "", 0)

    def idle_baseline(self) -> IdleBaseline:
        """Idle power of whole-package sensors; with none, the TDP model's idle share (no waiting needed)."""
        if self.sensors and self.options.idle_seconds > 0:
            return measure_idle(self.sensors, self.process, self.tdp, self.options.idle_seconds)
        energy = Energy(energy_j=None, source=self.tdp.source, idle_power_w=self.tdp.idle_w)
        return IdleBaseline(power_w={"cpu_estimate": self.tdp.idle_w}, duration_s=0.0, energy=energy)

    def save(self) -> Path:
        """Write the record as it stands."""
        self.path = self.record.save(self.path)
        return self.path

    def run(self, points: list[WorkloadPoint], progress: Progress | None = None) -> RunRecord:
        """Measure every point; Ctrl-C saves what finished and raises ``RunInterrupted``."""
        require_gpu_offload(self.settings, self.host)
        require_trained_context(self.model, points, self.settings)
        plans = [plan_point(self.model, p, self.settings, self.host) for p in points]
        for p in sorted(plans, key=lambda p: p.total_bytes, reverse=True)[:1]:
            memory.require_fit(p, self.model)
        self._apply_selfcheck()
        engine = self._start_engine()
        self._current = (points[0] if points else None, "loading the model", 0)
        try:
            self.process = ProcessSensor(engine.pid)  # llama.cpp's process: the worker, or this one in-process
            rss_before = self.process.rss_bytes()
            self.anon_before = self.process.anon_bytes()  # anonymous part of the pre-load baseline (memory.py)
            idle = self.idle_baseline()
            self.record.idle_baseline = idle.energy
            engine.load(self.model.path, self.settings, load_time_limit_s(self.model))
            for index, (point, plan) in enumerate(zip(points, plans), 1):
                self.record.points.append(
                    self._measure_point(engine, index, point, plan, idle, rss_before, progress))
                self.save()
            self.record.complete = True
        except WorkerCrashed as e:
            raise self._failed(e, len(points)) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP turned into one (profiler.cli.signals)
            name = signal_name(e)
            self.record.interrupted = f"{name} after {len(self.record.points)} of {len(points)} points"
            raise RunInterrupted(self.record, self.save(), name) from None
        finally:
            engine.close()
        self.save()
        return self.record

    def _apply_selfcheck(self) -> None:
        """Turn llama.cpp's extra buffer types off where the self-check found they crash this build on this CPU."""
        if not self.options.selfcheck:
            return
        self.settings = settings_for_host(self.settings, self.model.path)
        self.record.settings = self.settings
        if self.settings.extra_bufts_reason:
            self.record.notes.append(f"extra_bufts: false: {self.settings.extra_bufts_reason}")

    def _start_engine(self) -> WorkerEngine | InProcessEngine:
        if self.options.in_process:
            return InProcessEngine(verbose=self.options.verbose)
        return WorkerEngine(verbose=self.options.verbose)

    def _failed(self, error: WorkerCrashed, total: int) -> RunFailed:
        """Mark the point that was running when the worker failed, save the finished points, say both."""
        point, phase, done = self._current
        if point is not None:
            self.record.failed_point = FailedPoint(point=point, reason=str(error), signal=error.signal_name,
                                                   phase=phase, repetitions_finished=done)
        where = f" at {point.label} ({phase})" if point is not None else ""
        self.record.interrupted = (f"llama.cpp worker failed{where} after {len(self.record.points)} of {total} "
                                   f"points: {error.signal_name or 'exit'}")
        return RunFailed(self.record, self.save(), error)

    def _measure_point(self, engine: WorkerEngine | InProcessEngine, index: int, point: WorkloadPoint,
                       plan: memory.MemoryPlan, idle: IdleBaseline, rss_before: int,
                       progress: Progress | None) -> PointResult:
        limit = self.options.point_timeout_s or point_time_limit_s(self.model, point)
        self._current = (point, "tokenizing its prompts", 0)
        prompts = [exact_prompt(engine.tokenize, point.prompt_tokens, s, self.options.proxy_text)
                   for s in range(point.parallel)]
        if self.settings.warmup:
            self._current = (point, "warm-up", 0)
            engine.run(prompts, min(point.output_tokens, self.options.warmup_tokens), timeout_s=limit,
                       what=f"{point.label} warm-up", point=index, phase="warm-up")
        reps: list[Repetition] = []
        samples: list[dict[str, float | None]] = []
        for i in range(self.settings.repetitions):
            phase = f"repetition {i + 1}"
            self._current = (point, phase, i)
            window = TelemetryWindow(self.sensors, self.process, self.tdp, self.options.telemetry_hz, idle)
            with window:
                timings = engine.run(prompts, point.output_tokens, timeout_s=limit, what=f"{point.label} {phase}",
                                     point=index, phase=phase)
            peak_rss = max(v for v in (window.peak("process", "rss_bytes"), self.process.rss_bytes()) if v)
            vram_src = getattr(next((s for s in self.sensors if s.name == "nvml"), None), "vram_source", None)
            anon = [v for v in (window.peak("process", "anon_bytes"), self.process.anon_bytes()) if v is not None]
            reps.append(repetition_metrics(timings, window.energy(), int(peak_rss),
                                           _int(window.peak("nvml", "vram_bytes")), vram_src,
                                           int(max(anon)) if anon else None))
            samples += [{"rep": float(i), **s} for s in window.samples()]
            if progress:
                progress(f"{point.label} rep {i + 1}")
        result = PointResult(point=point, repetitions=reps, memory_predicted=plan, rss_baseline_bytes=rss_before,
                             anon_baseline_bytes=getattr(self, "anon_before", None), samples=samples)
        result.summarize()
        return result


def _int(v: float | None) -> int | None:
    return int(v) if v is not None else None


def measure(model: ModelFile, points: list[WorkloadPoint], settings: Settings, progress: Progress | None = None,
            options: RunOptions | None = None, host: HostProfile | None = None) -> RunRecord:
    """Measure ``points`` for ``model`` on this machine and return (and save) the run record."""
    return Runner(model, settings, options or RunOptions(), host).run(points, progress)


def record_path(record: RunRecord, options: RunOptions) -> Path:
    """Where ``measure`` saved ``record``."""
    return Path(options.record_path) if options.record_path else RUNS_DIR / f"{record.id}.json"


def offload_layer_counts(n_layers: int) -> list[int]:
    """CPU only, quarters of the layers, and everything (output layer included), as a user with a small card
    would try them."""
    counts = {0, n_layers // 4, n_layers // 2, 3 * n_layers // 4, n_layers + 1}
    return sorted(c for c in counts if c >= 0)


def sweep_plans(model: ModelFile, point: WorkloadPoint, settings: Settings, host: HostProfile,
                layers: list[int] | None = None) -> list[memory.MemoryPlan]:
    """The memory plan of each GPU layer count of an offload sweep (``fits`` says which can run here)."""
    counts = layers or offload_layer_counts(model.n_layers)
    return [plan_point(model, point, settings.model_copy(update={"n_gpu_layers": n}), host) for n in counts]


def offload_sweep(model: ModelFile, point: WorkloadPoint, settings: Settings, options: RunOptions,
                  progress: Progress | None = None, layers: list[int] | None = None) -> list[RunRecord]:
    """One run record per GPU layer count at ``point``; each is saved beside the others. Layer counts whose
    predicted VRAM does not fit the card are skipped (and reported through ``progress``), not attempted."""
    if not hardware.llama_backends().gpu_offload:
        raise HfpError("this llama.cpp build cannot offload to a GPU; build it with `make cuda` (docs/gpu.md)")
    host = hardware.detect(measure=True)
    plans = sweep_plans(model, point, settings, host, layers)
    for p in plans:
        if not p.fits and progress:
            progress(f"skipping --gpu-layers {p.n_gpu_layers}: {p.reason}")
    runnable = [p.n_gpu_layers for p in plans if p.fits] or [plans[0].n_gpu_layers]  # none fit: refuse the first
    records = []
    base = Path(options.record_path) if options.record_path else None
    for n in runnable:
        path = str(base.with_name(f"{base.stem}-ngl{n}.json")) if base else None
        opts = options.model_copy(update={"record_path": path})
        s = settings.model_copy(update={"n_gpu_layers": n})
        records.append(Runner(model, s, opts, host).run([point], progress))
    return records
