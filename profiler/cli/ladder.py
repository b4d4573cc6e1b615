"""``hfp calibrate --ladder``: measure synthetic models of several sizes here and fit one calibration to them."""

from __future__ import annotations

from pathlib import Path

import click

from profiler import runner
from profiler.cli.common import echo_json, parse_int_list, table
from profiler.feasibility import ladder
from profiler.record import RunRecord, WorkloadPoint
from profiler.schema.model import ModelFile


def measure_rung(model: ModelFile, points: list[WorkloadPoint]) -> tuple[RunRecord, Path | None]:
    """Measure one ladder rung as ``hfp run`` would, kept short: ``ladder.REPETITIONS`` repetitions after a warm-up
    of the same prefill and two decode steps, no idle baseline (the ladder's figures are timings, not energy)."""
    options = runner.RunOptions(idle_seconds=0, warmup_tokens=2)
    record = runner.measure(model, points, runner.default_settings(repetitions=ladder.REPETITIONS), options=options)
    return record, runner.record_path(record, options)


def calibrate_ladder(rungs: str | None, quick: bool, parallel: str, out: Path | None, as_json: bool) -> None:
    """Run the ladder, print the fit with a residual per point, save both."""
    chosen = ladder.parse_rungs(rungs) if rungs else list(ladder.QUICK_LADDER if quick else ladder.DEFAULT_LADDER)
    keep, skipped = ladder.fitting_rungs(chosen)
    for s in skipped:
        click.echo(f"skipped {s}", err=True)
    if not keep:
        raise click.UsageError("no ladder rung fits in this machine's RAM; give smaller --rungs")
    levels = tuple(parse_int_list(parallel, "--parallel"))
    result = ladder.run_ladder(keep, measure_rung, parallel=levels, skipped=skipped,
                               progress=None if as_json else lambda m: click.echo(f"  {m}", err=True))
    path = result.save(out)
    if as_json:
        echo_json(result)
        return
    fit = result.calibration
    click.echo(f"ladder on {fit.host} ({fit.backend}): {result.duration_s:.0f} s ({result.build_s:.0f} s building "
               f"files, {result.measure_s:.0f} s measuring); t0 {fit.t0_s * 1e3:.3f} ms per 32 layers, "
               f"eta_bw*BW {fit.bandwidth_eff_gbps:.1f} GB/s, eta_f*F {fit.flops_eff_tflops:.3f} TFLOPS, "
               f"batched/prefill FLOP rate {_num(fit.eta_batch)}; eta_bw {_num(fit.eta_bw)}, eta_f {_num(fit.eta_f)} "
               f"({fit.reference_source})")
    rows = [[p.rung, p.point.kind, p.point.parallel, f"{p.point.measured_s * 1e3:.1f}",
             f"{p.point.predicted_s * 1e3:.1f}", f"{p.point.rel_error * 100:+.1f}%"] for p in result.points]
    click.echo(table(rows, ["rung", "kind", "parallel", "measured ms", "predicted ms", "error"]))
    click.echo(f"rms log error {fit.rel_rms:.3f}; synthetic weights: timing and memory only\n"
               f"saved to {path}; `hfp estimate` applies it to this host's profile (`hfp hardware --save`)")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
