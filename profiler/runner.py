"""Running workload points on an engine under telemetry, and building the run record.

Owns the measurement procedure: plan memory and refuse what will not fit, take an idle baseline, warm up,
repeat each point, turn raw timings and telemetry into metrics, and save the record after every point so that
an interruption loses nothing finished. It must not format output (the CLI and ``report`` do).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import psutil
from pydantic import BaseModel

from profiler import hardware, memory
from profiler.engine import LlamaCppEngine, PointTimings, llama_cpp_version
from profiler.engine.llamacpp import context_size
from profiler.errors import ConfigError, HfpError
from profiler.hardware import HostProfile
from profiler.models import ModelFile
from profiler.record import (
    RUNS_DIR,
    LlamaTimings,
    PointResult,
    Repetition,
    RunRecord,
    Settings,
    WorkloadPoint,
    new_id,
    now_iso,
)
from profiler.telemetry import IdleBaseline, TelemetryWindow, default_sensors, measure_idle
from profiler.telemetry.common import Energy, Sensor
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


class RunInterrupted(HfpError):
    """Ctrl-C during a run: the finished points were saved, marked incomplete."""

    exit_code = 130

    def __init__(self, record: RunRecord, path: Path) -> None:
        super().__init__(
            f"interrupted: {len(record.points)} finished point(s) saved to {path} (marked incomplete)"
        )
        self.record, self.path = record, path


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
    )


def require_gpu_offload(settings: Settings, host: HostProfile) -> None:
    """Refuse GPU layers, before anything is loaded, when the installed llama.cpp build cannot offload."""
    if settings.n_gpu_layers > 0 and not host.backends.gpu_offload:
        n = "all" if settings.n_gpu_layers >= 999 else settings.n_gpu_layers  # the CLI's 'all' is 999
        raise ConfigError(
            f"--gpu-layers {n} needs GPU offload, but this llama.cpp build is CPU-only "
            "(llama_supports_gpu_offload() is false); build it with `make cuda` (docs/gpu.md) or use --gpu-layers 0"
        )


def _percentile(xs: list[float], q: float) -> float:
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def repetition_metrics(t: PointTimings, energy: Energy, peak_rss: int | None, peak_vram: int | None,
                       vram_source: str | None) -> Repetition:
    """Metrics of one repetition from raw timings and the telemetry window."""
    prefill_s = t.t_first_token - t.t_start
    decode_s = t.t_end - t.t_first_token
    steps = len(t.step_ends)
    gaps = [b - a for a, b in zip([t.t_first_token] + t.step_ends, t.step_ends)] or [0.0]
    llama = None
    if t.engine_prefill and t.engine_decode:
        llama = LlamaTimings(prompt_eval_ms=t.engine_prefill.ms, n_prompt_eval=t.engine_prefill.tokens,
                             eval_ms=t.engine_decode.ms, n_eval=t.engine_decode.tokens)
    return Repetition(
        prompt_tokens=t.prompt_tokens, generated_tokens=t.generated_tokens, prefill_s=prefill_s, decode_s=decode_s,
        prefill_tok_s=t.prompt_tokens / prefill_s,
        decode_tok_s_per_seq=steps / decode_s if decode_s > 0 else 0.0,
        decode_tok_s_aggregate=steps * t.parallel / decode_s if decode_s > 0 else 0.0,
        ttft_s=prefill_s, itl_p50_s=_percentile(gaps, 50), itl_p95_s=_percentile(gaps, 95), e2e_s=t.t_end - t.t_start,
        peak_rss_bytes=peak_rss, peak_vram_bytes=peak_vram, vram_source=vram_source, energy=energy,
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
        plans = [plan_point(self.model, p, self.settings, self.host) for p in points]
        for p in sorted(plans, key=lambda p: p.total_bytes, reverse=True)[:1]:
            memory.require_fit(p, self.model)
        rss_before = self.process.rss_bytes()
        idle = self.idle_baseline()
        self.record.idle_baseline = idle.energy
        engine = LlamaCppEngine(self.model.path, self.settings, verbose=self.options.verbose)
        try:
            for point, plan in zip(points, plans):
                self.record.points.append(self._measure_point(engine, point, plan, idle, rss_before, progress))
                self.save()
            self.record.complete = True
        except KeyboardInterrupt:
            self.record.interrupted = f"KeyboardInterrupt after {len(self.record.points)} of {len(points)} points"
            raise RunInterrupted(self.record, self.save()) from None
        finally:
            engine.close()
        self.save()
        return self.record

    def _measure_point(self, engine: LlamaCppEngine, point: WorkloadPoint, plan: memory.MemoryPlan,
                       idle: IdleBaseline, rss_before: int, progress: Progress | None) -> PointResult:
        prompts = [exact_prompt(engine.tokenize, point.prompt_tokens, s, self.options.proxy_text)
                   for s in range(point.parallel)]
        if self.settings.warmup:
            engine.run(prompts, min(point.output_tokens, self.options.warmup_tokens))
        reps: list[Repetition] = []
        samples: list[dict[str, float | None]] = []
        for i in range(self.settings.repetitions):
            window = TelemetryWindow(self.sensors, self.process, self.tdp, self.options.telemetry_hz, idle)
            with window:
                timings = engine.run(prompts, point.output_tokens)
            peak_rss = max(v for v in (window.peak("process", "rss_bytes"), self.process.rss_bytes()) if v)
            vram_src = getattr(next((s for s in self.sensors if s.name == "nvml"), None), "vram_source", None)
            reps.append(repetition_metrics(timings, window.energy(), int(peak_rss),
                                           _int(window.peak("nvml", "vram_bytes")), vram_src))
            samples += [{"rep": float(i), **s} for s in window.samples()]
            if progress:
                progress(f"{point.label} rep {i + 1}")
        result = PointResult(point=point, repetitions=reps, memory_predicted=plan, rss_baseline_bytes=rss_before,
                             samples=samples)
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
