"""``hfp quantize``, ``hfp sweep`` and ``hfp safety``: quantization ladders, their speed, and refusal under them.

Each command parses options, calls one library function (``quantize.build_ladder``, ``sweep.sweep``,
``safety.run_safety``) and prints a table or JSON. Warnings a user must see go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from profiler import runner, safety, sweep
from profiler.cli.common import parse_int_list, parse_str_list
from profiler.models import resolve_path
from profiler.quantize import LadderLevel, build_ladder, resolve_levels
from profiler.safety.tables import ladder_table, ladder_warnings, safety_table, sweep_table
from profiler.schema.base import Strict
from profiler.synth import refuse_synthetic

LEVELS_HELP = "Comma-separated GGUF weight types, e.g. F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K."
KV_HELP = "Comma-separated KV cache types for K and V (f16, q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl)."


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


def _levels(text: str | None) -> list[str] | None:
    return parse_str_list(text) if text else None


@click.command("quantize")
@click.argument("source", default="default")
@click.option("--levels", "-l", default="F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K", show_default=True,
              help=LEVELS_HELP)
@click.option("--out", type=click.Path(file_okay=False),
              help="Ladder folder [default: <cache>/ladders/<source sha256 prefix>/].")
@click.option("--threads", "-t", type=click.IntRange(1), help="Quantizer threads [default: all cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the ladder manifest as JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show llama.cpp's own log.")
def quantize_command(source: str, levels: str, out: str | None, threads: int | None, as_json: bool,
                     verbose: bool) -> None:
    """Build a quantization ladder of SOURCE (a GGUF path or model name) with llama.cpp's own quantizer.

    Offline: nothing is downloaded. Levels already built from the same source are reused. The manifest
    (ladder.json) beside the files records which levels were requantized from an already-quantized source
    and which tensors fell back to another type; both are printed as warnings.

    \b
    Examples:
      hfp quantize                                   # the default model, seven levels
      hfp quantize ~/models/llama-3.2-3b.F16.gguf --levels Q8_0,Q4_K_M,Q2_K
    """
    def report(lvl: LadderLevel) -> None:
        done = "reused" if lvl.quantize_s is None else f"{lvl.quantize_s:.1f} s"
        click.echo(f"  {lvl.level}: {done}", err=True)

    ladder = build_ladder(resolve_path(source), parse_str_list(levels), out, threads, verbose, report)
    ladder.levels = ladder.select(parse_str_list(levels))
    click.echo(ladder.model_dump_json(indent=1) if as_json else ladder_table(ladder))
    _warn(ladder_warnings(ladder))


@click.command("sweep")
@click.option("--ladder", "spec", default="default", show_default=True,
              help="A ladder folder or ladder.json (from `hfp quantize`), or a model (with --levels: quantized "
                   "first).")
@click.option("--levels", "-l", help="Levels of the ladder to measure [default: all]. " + LEVELS_HELP)
@click.option("--kv-types", default="f16", show_default=True, help=KV_HELP)
@click.option("--grid", is_flag=True, help="Every level at every KV type (default: levels at the first KV type, "
                                           "KV types at the highest-precision level).")
@click.option("--prompt-tokens", "-p", type=click.IntRange(1), default=128, show_default=True)
@click.option("--output-tokens", "-n", type=click.IntRange(2), default=64, show_default=True)
@click.option("--parallel", "-np", default="1", show_default=True, help="Comma-separated parallel sequences.")
@click.option("--repetitions", "-r", type=click.IntRange(1), default=3, show_default=True)
@click.option("--threads", "-t", type=click.IntRange(1), help="CPU threads [default: physical cores].")
@click.option("--gpu-layers", "-ngl", type=click.IntRange(0), help="Layers to offload to the GPU [default: 0].")
@click.option("--flash-attn", "-fa", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--idle-seconds", type=click.FloatRange(0), default=3.0, show_default=True)
@click.option("--record", "record_path", type=click.Path(dir_okay=False),
              help="Where to write the sweep [default: reports/runs/<id>.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep record as JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show llama.cpp's own log.")
def sweep_command(**options: Any) -> None:
    """Measure `hfp run`'s metrics at every level of a ladder and/or every KV cache type, in one table.

    \b
    Examples:
      hfp quantize && hfp sweep --ladder ~/.cache/hfp/ladders/<hash>
      hfp sweep --ladder default --levels Q8_0,Q4_K_M --kv-types f16,q8_0,q4_0 --parallel 1,4
    """
    _sweep(SweepOptions(**options))


class _LevelOptions(Strict):
    """The options ``hfp sweep`` and ``hfp safety`` share: which levels and KV types, how they combine, output."""

    spec: str = "default"
    levels: str | None = None
    kv_types: str = "f16"
    grid: bool = False
    record_path: str | None = None
    as_json: bool = False
    verbose: bool = False


class SweepOptions(_LevelOptions):
    """Every option of ``hfp sweep``, as click parsed them."""

    prompt_tokens: int = 128
    output_tokens: int = 64
    parallel: str = "1"
    repetitions: int = 3
    threads: int | None = None
    gpu_layers: int | None = None
    flash_attn: str = "auto"
    idle_seconds: float = 3.0


def _sweep(o: SweepOptions) -> None:
    files, ladder = resolve_levels(o.spec, _levels(o.levels), o.verbose)
    settings = runner.default_settings(threads=o.threads, threads_batch=o.threads, n_gpu_layers=o.gpu_layers,
                                       flash_attn=o.flash_attn, repetitions=o.repetitions)
    points = runner.points_grid(o.prompt_tokens, o.output_tokens, parse_int_list(o.parallel, "--parallel"))
    options = runner.RunOptions(idle_seconds=o.idle_seconds, verbose=o.verbose)
    echo = None if o.as_json else (lambda msg: click.echo(f"  {msg}", err=True))
    record = sweep.sweep(files, parse_str_list(o.kv_types), points, settings, options, echo, ladder, o.grid,
                         record_path=Path(o.record_path) if o.record_path else None)
    click.echo(record.model_dump_json(indent=1) if o.as_json else sweep_table(record))
    if ladder:
        _warn(ladder_warnings(ladder.model_copy(update={"levels": ladder.select(_levels(o.levels))})))


@click.command("safety")
@click.argument("spec", default="default", metavar="[MODEL-OR-LADDER]")
@click.option("--levels", "-l", help="Weight levels (of the ladder, or to quantize the model to first). "
                                     + LEVELS_HELP)
@click.option("--kv-types", default="f16", show_default=True, help=KV_HELP)
@click.option("--grid", is_flag=True, help="Every level at every KV type (default: one factor at a time).")
@click.option("--limit", type=click.IntRange(1), help="Use N harmful probes and N controls, spread over categories.")
@click.option("--max-tokens", type=click.IntRange(1), default=64, show_default=True)
@click.option("--probes", "probes_path", type=click.Path(dir_okay=False),
              help="Your own probe set (.jsonl, one probe per line, or .yaml) [default: the built-in set].")
@click.option("--judge", help="Classify with a local GGUF judge model instead of the refusal patterns "
                              "('advbench' uses the AdvBench substring test).")
@click.option("--store-completions", is_flag=True, help="Keep full replies in the record (default: verdicts and "
                                                        "200-character excerpts only).")
@click.option("--threads", "-t", type=click.IntRange(1), help="CPU threads [default: all cores].")
@click.option("--gpu-layers", "-ngl", type=click.IntRange(0), default=0, show_default=True)
@click.option("--ctx-size", "-c", "n_ctx", type=click.IntRange(128), default=1024, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--no-flash-attn", is_flag=True, help="Disable flash attention (quantized V caches need it).")
@click.option("--record", "record_path", type=click.Path(dir_okay=False),
              help="Where to write the safety record [default: reports/runs/<id>.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the safety record as JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Show llama.cpp's own log.")
def safety_command(**options: Any) -> None:
    """Refusal under quantization: send harmful-category probes and benign look-alike controls to a model at
    each weight level and KV cache type, and report refusal (with 95% Wilson intervals), the drop and the
    conditional flip rate against the highest-precision configuration, and over-refusal on controls.

    Only verdicts and excerpts of at most 200 characters are stored, unless --store-completions is given.

    \b
    Examples:
      hfp safety --limit 10                                   # default model, as shipped
      hfp safety default --levels F16,Q8_0,Q4_K_M,Q2_K --kv-types f16,q8_0,q4_0
      hfp safety ~/.cache/hfp/ladders/<hash> --judge ~/models/judge.gguf
    """
    _safety(SafetyOptions(**options))


class SafetyOptions(_LevelOptions):
    """Every option of ``hfp safety``, as click parsed them."""

    limit: int | None = None
    max_tokens: int = 64
    probes_path: str | None = None
    judge: str | None = None
    store_completions: bool = False
    threads: int | None = None
    gpu_layers: int = 0
    n_ctx: int = 1024
    seed: int = 42
    no_flash_attn: bool = False


def _safety(o: SafetyOptions) -> None:
    refuse_synthetic(o.spec)
    files, ladder = resolve_levels(o.spec, _levels(o.levels), o.verbose)
    refuse_synthetic(*[f.path for f in files])
    probes = safety.load_probes(o.probes_path).subset(o.limit)
    settings = safety.default_settings(max_tokens=o.max_tokens, n_ctx=o.n_ctx, seed=o.seed, threads=o.threads,
                                       n_gpu_layers=o.gpu_layers, flash_attn=not o.no_flash_attn,
                                       store_completions=o.store_completions, limit=o.limit, grid=o.grid)
    configs = safety.plan_configs(files, parse_str_list(o.kv_types), o.grid, flash_attn=not o.no_flash_attn)
    classifier = safety.get_classifier(o.judge, o.threads, o.verbose)
    with click.progressbar(length=len(configs) * len(probes.probes), label="probing", file=sys.stderr,
                           show_pos=True, hidden=o.as_json) as bar:
        record = safety.run_safety(configs, probes, classifier, settings, bar.update, o.verbose, ladder)
    path = record.save(Path(o.record_path) if o.record_path else None)
    click.echo(record.model_dump_json(indent=1) if o.as_json else f"{safety_table(record)}\n\nsafety record: {path}")
    if ladder:
        _warn(ladder_warnings(ladder.model_copy(update={"levels": ladder.select(_levels(o.levels))})))


commands: list[click.Command] = [quantize_command, sweep_command, safety_command]
