"""Predicted vs measured resident memory: peak RSS and its anonymous part, per model, mmap and parallel level.

For every model (the default model, its F16/Q8_0/Q4_0/Q4_K_M quantization ladder, and synthetic models of a
larger shape when ``--synth`` names them), with mmap on and off, at parallel 1 and 16, one short ``hfp run`` point
is measured in a fresh Python process (so one model's freed heap never hides the next one's) and the record's
peaks above the pre-load baseline are set against ``profiler.memory``'s plan: ``ram_bytes`` (resident) and
``ram_anon_bytes`` (anonymous). Prints a table and, with ``--markdown``, the same table for docs/validation.md.
The target is |error| <= 10% for both parts. Memory figures do not depend on timing, so a loaded machine only
makes the run slower, not the figures noisier.

Usage: .venv/bin/python benchmarks/validate_memory.py [--levels F16,Q8_0,Q4_0,Q4_K_M] [--parallel 1,16]
           [--synth synth:llama-3.2-1b:Q4_0,synth:llama-3.2-1b:Q4_K_M] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MiB = 1024 * 1024
PROMPT, OUTPUT = 32, 4  # 32 x 16 = 512 prompt tokens: a full ubatch at parallel 16


def measure_one(spec: str, use_mmap: bool, parallel: int) -> dict[str, object]:
    """One point of one model in this process; returns predicted and measured bytes above the baseline."""
    from profiler import hardware, models, runner

    model = models.resolve(spec)
    settings = runner.default_settings(repetitions=1, warmup=False, use_mmap=use_mmap)
    with tempfile.TemporaryDirectory() as tmp:
        record = runner.measure(
            model, runner.points_grid(PROMPT, OUTPUT, [parallel]), settings,
            options=runner.RunOptions(record_path=str(Path(tmp) / "mem.json"), idle_seconds=0),
            host=hardware.detect(measure=False),
        )
    p = record.points[0]
    plan = p.memory_predicted
    rss, anon = p.summary["peak_rss_bytes"].mean, p.summary["peak_anon_bytes"].mean
    return {
        "model": model.label, "file_type": model.file_type, "path": model.path, "mmap": use_mmap,
        "parallel": parallel, "pred_rss": plan.ram_bytes, "pred_anon": plan.ram_anon_bytes,
        "meas_rss": rss - p.rss_baseline_bytes if rss is not None and p.rss_baseline_bytes is not None else None,
        "meas_anon": anon - p.anon_baseline_bytes if anon is not None and p.anon_baseline_bytes is not None else None,
        "repacked": plan.weights_repacked_bytes, "mapped": plan.weights_mapped_bytes,
        "kv": plan.kv_ram_bytes, "source": plan.source, "llama_cpp": record.llama_cpp_version,
    }


def _err(pred: float | None, meas: float | None) -> float | None:
    return (pred - meas) / meas * 100 if pred is not None and meas else None


def _specs(args: argparse.Namespace) -> list[str]:
    from profiler import models
    from profiler.quantize import build_ladder

    specs = ["default"]
    levels = [lv for lv in args.levels.split(",") if lv]
    if levels:
        ladder = build_ladder(models.default_model_path(), levels)
        specs += [str(Path(ladder.directory) / lvl.file) for lvl in ladder.levels]
    specs += [s for s in args.synth.split(",") if s]
    return specs


def main() -> None:
    """Run every configuration in its own process and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="F16,Q8_0,Q4_0,Q4_K_M", help="ladder levels of the default model")
    ap.add_argument("--synth", default="", help="comma-separated synth: specs (profiler/synth.py) to add")
    ap.add_argument("--parallel", default="1,16")
    ap.add_argument("--mmap", default="on,off")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    ap.add_argument("--one", nargs=3, metavar=("SPEC", "MMAP", "PARALLEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        spec, mm, par = args.one
        print(json.dumps(measure_one(spec, mm == "on", int(par))))
        return

    rows = []
    for spec in _specs(args):
        for mm in args.mmap.split(","):
            for par in args.parallel.split(","):
                out = subprocess.run([sys.executable, __file__, "--one", spec, mm, par], capture_output=True,
                                     text=True)
                if out.returncode != 0:
                    print(f"{spec} mmap {mm} x{par}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(r)
                print(f"{r['model']:<44} mmap {mm:<3} x{par:<3} RSS {r['meas_rss'] / MiB:7.1f} / "
                      f"{r['pred_rss'] / MiB:7.1f} MiB ({_err(r['pred_rss'], r['meas_rss']):+5.1f}%)  anon "
                      f"{r['meas_anon'] / MiB:7.1f} / {r['pred_anon'] / MiB:7.1f} MiB "
                      f"({_err(r['pred_anon'], r['meas_anon']):+5.1f}%)  repacked {r['repacked'] / MiB:.1f} MiB",
                      flush=True)
    errs = [abs(e) for r in rows for e in (_err(r["pred_rss"], r["meas_rss"]), _err(r["pred_anon"], r["meas_anon"]))
            if e is not None]
    if errs:
        print(f"\n{len(rows)} configurations; largest |error| {max(errs):.1f}% (target 10%); "
              f"{sum(e <= 10 for e in errs)} of {len(errs)} figures within 10%")
    if args.markdown and rows:
        print("\n| model | type | mmap | parallel | RSS MiB meas / pred | err | anon MiB meas / pred | err | "
              "repacked MiB |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['file_type']} | {'on' if r['mmap'] else 'off'} | {r['parallel']} | "
                  f"{r['meas_rss'] / MiB:.1f} / {r['pred_rss'] / MiB:.1f} | {_err(r['pred_rss'], r['meas_rss']):+.1f}% "
                  f"| {r['meas_anon'] / MiB:.1f} / {r['pred_anon'] / MiB:.1f} | "
                  f"{_err(r['pred_anon'], r['meas_anon']):+.1f}% | {r['repacked'] / MiB:.1f} |")


if __name__ == "__main__":
    main()
