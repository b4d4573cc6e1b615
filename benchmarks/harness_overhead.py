"""Harness overhead, worker overhead and batching speed-up on the default model, measured in one run.

Runs the same points (parallel 1 and 16) with llama.cpp in this process and in hfp's supervised worker
(``profiler.engine.worker``), interleaved A-B-B-A so slow drift of a shared machine hits both alike, and prints
for each parallel level:
  - per mode: the harness decode rate (per sequence and aggregate) and its ratio to llama.cpp's own timer
    (llama_perf_context) for the same repetitions (target >= 0.97: Python work per token must stay small);
  - worker / in-process for the decode rate per sequence and the aggregate rate (target: within 2%);
  - the aggregate decode speed-up at parallel 16 over parallel 1 (worker);
  - a paired A/B comparison: both engines loaded at once, ``--pairs`` back-to-back calls (order alternating,
    each inside a telemetry window sampling its process as the runner does), and the median of the per-pair
    worker / in-process decode-rate ratios, which a shared machine's load drift disturbs far less than whole
    runs measured minutes apart.

Usage: .venv/bin/python benchmarks/harness_overhead.py [--output-tokens 128] [--repetitions 3] [--rounds 2]
       [--pairs 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from profiler import models, runner
from profiler.engine.worker import InProcessEngine, WorkerEngine, open_engine
from profiler.record import RunRecord
from profiler.schema.model import ModelFile
from profiler.telemetry import TelemetryWindow
from profiler.telemetry.estimate import TdpModel
from profiler.telemetry.process import ProcessSensor
from profiler.workload_prompts import exact_prompt

MODES = {"in-process": True, "worker": False}


def _rates(records: list[RunRecord], parallel: int) -> tuple[list[float], list[float], list[float]]:
    """(harness per-sequence, harness aggregate, harness/llama.cpp) per repetition at ``parallel``."""
    per_seq, agg, ratio = [], [], []
    for record in records:
        for p in record.points:
            if p.point.parallel != parallel:
                continue
            for r in p.repetitions:
                per_seq.append(r.decode_tok_s_per_seq)
                agg.append(r.decode_tok_s_aggregate)
                if r.llama and r.llama.decode_tok_s:
                    ratio.append(r.decode_tok_s_aggregate / r.llama.decode_tok_s)
    return per_seq, agg, ratio


def paired(model: ModelFile, prompt_tokens: int, output_tokens: int, pairs: int) -> None:
    """Worker / in-process decode rate, pair by pair, with both engines loaded."""
    settings = runner.default_settings()
    tdp = TdpModel(tdp_w=100.0)
    in_process = InProcessEngine()
    in_process.load(model.path, settings)
    worker = open_engine(model.path, settings)
    try:
        for parallel in (1, 16):
            prompts = [exact_prompt(in_process.tokenize, prompt_tokens, s) for s in range(parallel)]
            engines: list[WorkerEngine | InProcessEngine] = [in_process, worker]
            for engine in engines:
                engine.run(prompts, 16)  # warm-up
            ratios = []
            for k in range(pairs):
                rates = {}
                for engine in engines if k % 2 == 0 else engines[::-1]:
                    with TelemetryWindow([], ProcessSensor(engine.pid), tdp, 10.0):
                        t = engine.run(prompts, output_tokens)
                    rates[engine.pid] = runner.rates(t).decode_tok_s_aggregate
                ratios.append(rates[worker.pid] / rates[in_process.pid])
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
            print(f"parallel {parallel:>2} paired worker / in-process (decode per sequence = aggregate, lockstep): "
                  f"median {statistics.median(ratios):.3f}, quartiles {q[0]:.3f}..{q[2]:.3f}, "
                  f"range {min(ratios):.3f}..{max(ratios):.3f} over {pairs} pairs (target within 0.98..1.02)")
    finally:
        worker.close()
        in_process.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="A-B-B-A rounds of (in-process, worker) [default: 2]")
    ap.add_argument("--pairs", type=int, default=10, help="paired A/B calls per parallel level [default: 10]")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    model = models.resolve(args.model)
    order = [m for i in range(args.rounds) for m in (("in-process", "worker") if i % 2 == 0 else ("worker",
                                                                                                  "in-process"))]
    records: dict[str, list[RunRecord]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for i, mode in enumerate(order):
            records[mode].append(runner.measure(
                model, runner.points_grid(args.prompt_tokens, args.output_tokens, [1, 16]),
                runner.default_settings(repetitions=args.repetitions),
                options=runner.RunOptions(record_path=str(Path(tmp) / f"bench-{i}.json"), idle_seconds=0,
                                          in_process=MODES[mode]),
            ))
    first = records["worker"][0]
    print(f"model: {model.label}; host: {first.host.cpu_model}, {first.settings.threads} threads; "
          f"llama-cpp-python {first.llama_cpp_version}; {args.repetitions} repetitions x {args.rounds} rounds "
          f"per mode, order {' '.join(order)}")
    aggregate: dict[str, dict[int, float]] = {m: {} for m in MODES}
    for parallel in (1, 16):
        means, medians = {}, {}
        for mode in MODES:
            per_seq, agg, ratio = _rates(records[mode], parallel)
            means[mode] = (statistics.fmean(per_seq), statistics.fmean(agg))
            medians[mode] = statistics.median(agg)
            aggregate[mode][parallel] = means[mode][1]
            print(f"parallel {parallel:>2} {mode:>10}: decode {means[mode][0]:7.1f} tok/s/seq, aggregate "
                  f"{means[mode][1]:8.1f} tok/s (sd {statistics.stdev(agg) if len(agg) > 1 else 0:.1f}); harness / "
                  f"llama.cpp {statistics.fmean(ratio):.3f} (min {min(ratio):.3f}; target >= 0.97)")
        w, p = means["worker"], means["in-process"]
        print(f"parallel {parallel:>2}     worker / in-process: decode per sequence {w[0] / p[0]:.3f}, "
              f"aggregate {w[1] / p[1]:.3f}, aggregate medians {medians['worker'] / medians['in-process']:.3f} "
              "(target within 0.98..1.02)")
    wa = aggregate["worker"]
    if wa.get(1) and wa.get(16):
        print(f"aggregate decode speed-up, parallel 16 / parallel 1 (worker): {wa[16] / wa[1]:.2f}x")
    if args.pairs > 0:
        paired(model, args.prompt_tokens, args.output_tokens, args.pairs)


if __name__ == "__main__":
    main()
