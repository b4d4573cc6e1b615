"""``hfp run``: measure a model on this machine and write a run record."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from profiler import hardware, models, report, runner, scenarios, workload
from profiler.cli import signals
from profiler.cli.common import data_dir_options, echo_json, parse_int_list
from profiler.record import RunRecord, Settings, WorkloadPoint
from profiler.schema.base import Strict
from profiler.schema.units import KV_CACHE_TYPES
from profiler.summary import offload_table, run_table
from profiler.synth import SYNTH_LABEL


def _gpu_layers(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    if value == "all":
        return 999
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of layers or 'all', got {value!r}") from None
    if n < 0:
        raise click.BadParameter("must be 0 or more")
    return n


class RunCommandOptions(Strict):
    """Every option of ``hfp run``, as click parsed them (one object instead of two dozen parameters)."""

    model_spec: str = "default"
    prompt_tokens: int = 128
    output_tokens: int = 64
    parallel: str | None = None
    scenario: str | None = None
    repetitions: int = 3
    threads: int | None = None
    gpu_layers: int | None = None
    offload_sweep: bool = False
    batch_size: int = 512
    ubatch_size: int = 512
    flash_attn: str = "auto"
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    sampling: str = "greedy"
    seed: int = 42
    no_warmup: bool = False
    idle_seconds: float = 3.0
    tdp_w: float | None = None
    point_timeout_s: float | None = None
    record_path: str | None = None
    with_report: bool = False
    out: str | None = None
    as_json: bool = False
    verbose: bool = False
    use_mmap: bool = True
    allow_context_overflow: bool = False

    def settings(self) -> Settings:
        """The llama.cpp and harness settings these options ask for (defaults filled in by the runner)."""
        return runner.default_settings(
            threads=self.threads, threads_batch=self.threads, n_gpu_layers=self.gpu_layers, n_batch=self.batch_size,
            n_ubatch=self.ubatch_size, flash_attn=self.flash_attn, type_k=self.cache_type_k,
            type_v=self.cache_type_v, sampling=self.sampling, seed=self.seed, repetitions=self.repetitions,
            warmup=not self.no_warmup, allow_context_overflow=self.allow_context_overflow or None,
            use_mmap=self.use_mmap,
        )

    def run_options(self) -> runner.RunOptions:
        """How the runner measures: idle baseline, TDP, log, record path, per-call time limit."""
        return runner.RunOptions(idle_seconds=self.idle_seconds, tdp_w=self.tdp_w, verbose=self.verbose,
                                 record_path=self.record_path, point_timeout_s=self.point_timeout_s)


@click.command("run")
@data_dir_options
@click.option("--model", "-m", "model_spec", default="default", show_default=True,
              help="GGUF path, folder, Ollama name:tag, or a name from `hfp models`.")
@click.option("--prompt-tokens", "-p", type=click.IntRange(1), default=128, show_default=True)
@click.option("--output-tokens", "-n", type=click.IntRange(2), default=64, show_default=True)
@click.option("--parallel", "-np",
              help="Comma-separated counts of sequences decoded together, like llama-batched-bench "
              "[default: 1,4, or the scenario's levels].")
@click.option("--scenario", help="Measure the workload shape of a scenario (name or YAML path) instead.")
@click.option("--repetitions", "-r", type=click.IntRange(1), default=3, show_default=True)
@click.option("--threads", "-t", type=click.IntRange(1), help="CPU threads [default: physical cores].")
@click.option("--gpu-layers", "-ngl", callback=_gpu_layers,
              help="Layers to offload to the GPU: a number or 'all' [default: 0].")
@click.option("--offload-sweep", is_flag=True, help="Measure decode/prefill across GPU layer counts.")
@click.option("--batch-size", "-b", type=click.IntRange(1), default=512, show_default=True)
@click.option("--ubatch-size", "-ub", type=click.IntRange(1), default=512, show_default=True)
@click.option("--flash-attn", "-fa", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--cache-type-k", "-ctk", type=click.Choice(list(KV_CACHE_TYPES)), default="f16", show_default=True)
@click.option("--cache-type-v", "-ctv", type=click.Choice(list(KV_CACHE_TYPES)), default="f16", show_default=True)
@click.option("--sampling", type=click.Choice(["greedy", "seeded"]), default="greedy", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--no-warmup", is_flag=True, help="Skip the warm-up run before each point.")
@click.option("--idle-seconds", type=click.FloatRange(0), default=3.0, show_default=True,
              help="Idle baseline length for whole-package energy sensors (RAPL, NVML, battery).")
@click.option("--tdp", "tdp_w", type=click.FloatRange(1), help="CPU TDP in W for the energy estimate fallback.")
@click.option("--point-timeout", "point_timeout_s", type=click.FloatRange(min=0, min_open=True),
              help="Seconds one warm-up or repetition may take before llama.cpp counts as hung and is stopped "
              "[default: generous, from the model and point size].")
@click.option("--record", "record_path", type=click.Path(dir_okay=False),
              help="Where to write the run record [default: reports/runs/<id>.json].")
@click.option("--report", "with_report", is_flag=True, help="Also render the HTML/Markdown report.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [default: reports/<id>/].")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show llama.cpp's own log.")
@click.option("--mmap/--no-mmap", "use_mmap", default=True, show_default=True,
              help="Memory-map the model file (llama.cpp's default) or read it into RAM; changes resident memory.")
@click.option("--allow-context-overflow", is_flag=True,
              help="Measure points whose prompt + output exceed the model's trained context (refused otherwise); "
                   "the record's settings say so.")
def run_command(**options: Any) -> None:
    """Measure a GGUF model through llama.cpp: prefill and decode throughput, TTFT, inter-token latency,
    peak memory (predicted beside measured) and energy (with its source), at each parallel level.

    Prompts are benign proxy text of the requested token length; output length is fixed (EOS ignored).
    Writes a schema-versioned run record; Ctrl-C keeps the points already finished, marked incomplete.

    \b
    Examples:
      hfp run                                  # default model, parallel 1 and 4
      hfp run -m ~/models/llama-3.2-3b.Q4_K_M.gguf -p 512 -n 128 --parallel 1,8,16
      hfp run --scenario disinformation-posts --report
    """
    run(RunCommandOptions(**options))


def run(o: RunCommandOptions) -> None:
    """``hfp run`` with parsed options: resolve, plan the points, refuse early, measure, print and save."""
    model = models.resolve(o.model_spec)
    settings = o.settings()
    levels = parse_int_list(o.parallel, "--parallel") if o.parallel is not None else None
    options = o.run_options()
    if o.scenario:
        points, options.proxy_text = _scenario_points(o.scenario, levels)
    else:
        points = runner.points_grid(o.prompt_tokens, o.output_tokens, levels or [1, 4])
    runner.require_trained_context(model, points, settings)  # before anything is measured or loaded
    if o.offload_sweep:
        records = runner.offload_sweep(model, points[0], settings, options, progress=_bar_factory(o.as_json))
        echo_json([r.model_dump(mode="json") for r in records]) if o.as_json else click.echo(offload_table(records))
        return
    host = hardware.detect(measure=True)
    runner.require_gpu_offload(settings, host)  # before the progress bar, so the refusal is one line
    try:
        with _progress(len(points) * o.repetitions, model.label, o.as_json) as bar:
            record = runner.measure(model, points, settings, _stepper(bar), options, host)
    except runner.RunInterrupted as e:
        with contextlib.suppress(OSError):  # stderr may be gone (SIGHUP: the terminal closed)
            click.echo(run_table(e.record), err=True)
        raise
    _finish(record, runner.record_path(record, options), o.as_json, o.with_report, o.out)


def _scenario_points(name: str, levels: list[int] | None) -> tuple[list[WorkloadPoint], str]:
    """The scenario's workload shape and its benign proxy prompt."""
    scenario = scenarios.load(name)
    points = workload.plan(scenario, parallel=levels)
    return points, workload.render_proxy_prompt(scenario, points[0].prompt_tokens)


def _progress(total: int, label: str, quiet: bool):  # type: ignore[no-untyped-def]
    return click.progressbar(length=total, label=f"measuring {label}", file=sys.stderr,
                             show_pos=True, item_show_func=lambda item: item, hidden=quiet)


def _stepper(bar: Any) -> runner.Progress:
    """Advance the progress bar; between repetitions, raise a stop signal whose first exception was lost."""

    def step(label: str) -> None:
        bar.update(1, label)
        signals.check()

    return step


def _bar_factory(quiet: bool) -> runner.Progress:
    return (lambda label: None) if quiet else (lambda label: click.echo(f"  {label}", err=True))


def _finish(record: RunRecord, path: Path, as_json: bool, with_report: bool, out: str | None) -> None:
    if as_json:
        click.echo(record.model_dump_json(indent=1))
    else:
        click.echo(run_table(record))
        if record.model.synthetic:
            click.echo(f"{record.model.name}: {SYNTH_LABEL}")
        click.echo(f"\nrun record: {path}")
    if with_report:
        paths = report.build(record, out_dir=Path(out) if out else None)
        click.echo(f"report: {paths.html}", err=as_json)


commands: list[click.Command] = [run_command]
