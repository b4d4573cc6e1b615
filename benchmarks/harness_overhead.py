"""Harness overhead and batching speed-up on the default model, measured in one run.

Prints, for parallel 1 and 16:
  - harness decode rate / llama.cpp's own decode rate (llama_perf_context) for the same repetitions
    (target >= 0.97: Python work per token must stay small);
  - the aggregate decode speed-up at parallel 16 over parallel 1.

Usage: .venv/bin/python benchmarks/harness_overhead.py [--output-tokens 128] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from profiler import models, runner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    model = models.resolve(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        record = runner.measure(
            model, runner.points_grid(args.prompt_tokens, args.output_tokens, [1, 16]),
            runner.default_settings(repetitions=args.repetitions),
            options=runner.RunOptions(record_path=str(Path(tmp) / "bench.json"), idle_seconds=0),
        )
    print(f"model: {model.label}; host: {record.host.cpu_model}, {record.settings.threads} threads; "
          f"llama-cpp-python {record.llama_cpp_version}; {args.repetitions} repetitions")
    rates = {}
    for p in record.points:
        pairs = [(r.decode_tok_s_aggregate, r.llama.decode_tok_s) for r in p.repetitions
                 if r.llama and r.llama.decode_tok_s]
        ratios = [h / ll for h, ll in pairs]
        harness = p.mean("decode_tok_s_aggregate")
        rates[p.point.parallel] = harness
        print(f"parallel {p.point.parallel:>2}: harness {harness:8.1f} tok/s, llama.cpp "
              f"{statistics.fmean(ll for _, ll in pairs):8.1f} tok/s, "
              f"ratio {statistics.fmean(ratios):.3f} (min {min(ratios):.3f}; target >= 0.97)")
    if rates.get(1) and rates.get(16):
        print(f"aggregate decode speed-up, parallel 16 / parallel 1: {rates[16] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
