"""Validate the performance model on this machine across sizes, with a ladder of synthetic models.

For each ladder rung (a synthetic model of a real model's shape, `hfp synth`), prints the measured decode rate
(parallel 1) and prefill rate beside the rate the roofline predicts for the same shape:
  - "before": from the hardware profile alone (measured bandwidth/GEMM of `hfp hardware --save`, or this host
    detected now) with the efficiencies `hfp estimate` uses without a local calibration;
  - "LOO": after calibrating on every *other* rung (leave-one-size-out), so each prediction is for an unseen size.
Then the median absolute error of each column (targets after calibration: decode <= 10%, prefill <= 15%).

Measurements are timings on a possibly shared machine: say what else was running when quoting them.

Usage:
  .venv/bin/python benchmarks/validate_local.py                      # run the default ladder, then validate
  .venv/bin/python benchmarks/validate_local.py --quick              # three small rungs (about a minute)
  .venv/bin/python benchmarks/validate_local.py --ladder <id>.ladder.json [--profile me.yaml]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from profiler import hardware, profiles, runner
from profiler.feasibility import ladder
from profiler.feasibility.calibration import Calibration
from profiler.feasibility.model import ModelShape, Part, t_decode_step, t_prefill
from profiler.feasibility.target import Target
from profiler.models import ModelFile
from profiler.record import RunRecord, WorkloadPoint


def _measure(model: ModelFile, points: list[WorkloadPoint]) -> tuple[RunRecord, Path | None]:
    options = runner.RunOptions(idle_seconds=0)
    record = runner.measure(model, points, runner.default_settings(repetitions=1), options=options)
    return record, runner.record_path(record, options)


def _rates(record: RunRecord, target: Target) -> tuple[float, float, float, float]:
    """(measured decode tok/s, predicted, measured prefill tok/s, predicted) at parallel 1."""
    p1 = min(record.points, key=lambda p: p.point.parallel)
    pt = p1.point
    shape = ModelShape.of(record.model, record.settings.type_k, record.settings.type_v)
    assert target.cpu is not None
    dev = target.cpu.device(shape)
    parts = [Part(dev, shape.weight_bytes, 1.0, 1.0)]
    step = float(t_decode_step(shape, parts, 1, pt.prompt_tokens + pt.output_tokens / 2))
    pre = float(t_prefill(shape, parts, pt.prompt_tokens, record.settings.n_ubatch))
    return (p1.mean("decode_tok_s_aggregate") or 0.0, 1.0 / step,
            p1.mean("prefill_tok_s") or 0.0, pt.prompt_tokens / pre)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ladder", type=Path, help="A saved ladder result (<id>.ladder.json) to validate.")
    ap.add_argument("--profile", help="Hardware profile saved by `hfp hardware --save` [default: detect now].")
    ap.add_argument("--quick", action="store_true", help="Three small rungs instead of the default ladder.")
    ap.add_argument("--rungs", help="Rungs, as for `hfp calibrate --rungs`.")
    args = ap.parse_args()

    if args.ladder:
        result = ladder.LadderResult.model_validate_json(args.ladder.read_text())
    else:
        chosen = ladder.parse_rungs(args.rungs) if args.rungs else list(
            ladder.QUICK_LADDER if args.quick else ladder.DEFAULT_LADDER)
        keep, skipped = ladder.fitting_rungs(chosen)
        for s in skipped:
            print(f"skipped {s}")
        result = ladder.run_ladder(keep, _measure, skipped=skipped)
        print(f"ladder saved to {result.save()}")
    records = [(r.rung, RunRecord.load(r.record_path)) for r in result.rungs if r.record_path]
    profile = profiles.load(args.profile) if args.profile else hardware.to_profile(hardware.detect(), "this-host")
    before = Target.of(profile, None)
    loo: dict[str, Calibration] = ladder.leave_one_out(records) if len(records) > 1 else {}
    print(f"host {result.host}; profile {profile.name}: {profile.cpu.ram_bandwidth_gbps} GB/s, "
          f"{profile.cpu.tflops} TFLOPS; ladder {result.id} ({result.duration_s:.0f} s, "
          f"{result.prompt_tokens}+{result.output_tokens} tokens); synthetic weights: timing and memory only")
    head = (f"{'rung':30} {'decode meas':>11} {'before':>8} {'err':>7} {'LOO':>8} {'err':>7}"
            f" {'prefill meas':>12} {'before':>8} {'err':>7} {'LOO':>8} {'err':>7}")
    print(head)
    print("-" * len(head))
    errs: dict[str, list[float]] = {"decode before": [], "decode LOO": [], "prefill before": [], "prefill LOO": []}
    for label, record in records:
        md, pd, mp, pp = _rates(record, before)
        row = [f"{label:30}", f"{md:11.2f}", f"{pd:8.2f}", f"{pd / md - 1:+7.0%}"]
        errs["decode before"].append(abs(pd / md - 1))
        if label in loo:
            _, ld, _, lp = _rates(record, Target.of(profile, loo[label]))
            row += [f"{ld:8.2f}", f"{ld / md - 1:+7.0%}"]
            errs["decode LOO"].append(abs(ld / md - 1))
        else:
            row += [f"{'-':>8}", f"{'-':>7}"]
        row += [f"{mp:12.1f}", f"{pp:8.1f}", f"{pp / mp - 1:+7.0%}"]
        errs["prefill before"].append(abs(pp / mp - 1))
        if label in loo:
            row += [f"{lp:8.1f}", f"{lp / mp - 1:+7.0%}"]
            errs["prefill LOO"].append(abs(lp / mp - 1))
        print(" ".join(row))
    print("median absolute error: " + "; ".join(
        f"{k} {statistics.median(v):.0%}" for k, v in errs.items() if v)
        + " (targets after calibration: decode <= 10%, prefill <= 15%)")


if __name__ == "__main__":
    main()
