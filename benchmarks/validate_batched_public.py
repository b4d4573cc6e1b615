"""Validate batched decode against public ``llama-batched-bench`` results (profiler/data/llamacpp-batched-public.csv).

Leave-one-DEVICE-out (LODO): for every chip with used rows (``public_model.device_key``; an SoC's CPU and iGPU rows
go out together), the batched factors (``batched.fit``: per-backend compute-rate ratio, pooled overlap exponent)
are refit on the other chips' rows and the held-out chip's aggregate decode (S_TG at B sequences) is predicted
through ``model.t_decode_step`` with the public single-sequence factors (``public_model``) underneath.

Rows the file marks with an ``exclude`` reason are left out and counted by reason (fork-only quants, the pre-#4280
Metal build whose B = 2 is slower than B = 1, CPU-offloaded experts, B = 1-only tables). Shared-prompt (-pps) rows
are used (each sequence still reads the shared prompt's KV while decoding) and reported apart, as are fork
(ik_llama.cpp) and partial-table rows (quality ``secondary``). Prints median / 90th percentile absolute error of
aggregate decode, overall, per backend, dense / MoE, mainline / fork, and per held-out chip; then the MoE rows with
the routing spread fitted leave-one-MODEL-out within the row's backend (``batched.moe_leave_one_model_out``;
and, for comparison, on any chip); then the fitted factors.
Targets (issue #15): median <= 10%, p90 <= 25% on held-out devices. No timing; a few seconds.

Usage: .venv/bin/python benchmarks/validate_batched_public.py [--rows] [--write]
(--write: also write docs/validation-batched.md with the tables and every row; docs/validation.md is regenerated
by benchmarks/validate_model.py, so the batched results live in their own page.)
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from profiler.feasibility.batched import (
    BatchedResidual,
    batched_model,
    leave_one_device_out,
    load_batched,
    moe_leave_one_model_out,
)


def _stats(res: Sequence[BatchedResidual]) -> str:
    if not res:
        return "   -        -      0"
    e = np.abs([r.rel_error for r in res]) * 100
    return f"{np.median(e):6.1f}%  {np.quantile(e, 0.9):6.1f}%  {len(res):4d}"


def _table(title: str, res: Sequence[BatchedResidual], key: Callable[[BatchedResidual], str]) -> list[str]:
    lines = [f"{title:<44} {'median':>7}  {'p90':>7}  {'rows':>4}"]
    for k in sorted({key(r) for r in res}):
        lines.append(f"  {k:<42} {_stats([r for r in res if key(r) == k])}")
    return lines


def report(show_rows: bool = False) -> str:
    """The LODO tables as text."""
    rows = load_batched()
    res = leave_one_device_out(rows)
    model = batched_model()
    excluded = Counter(r.exclude for r in rows if r.exclude)
    out = [f"public batched rows: {len(rows)}, used {len(res)}, excluded {sum(excluded.values())}:"]
    out += [f"  {n:4d}  {why}" for why, n in excluded.most_common()]
    out += ["", f"{'held-out aggregate decode, all used rows':<44} {'median':>7}  {'p90':>7}  {'rows':>4}",
            f"  {'overall':<42} {_stats(res)}"]
    out += _table("per backend", res, lambda r: r.row.backend_key)
    out += _table("dense / MoE", res, lambda r: "MoE" if r.row.is_moe else "dense")
    out += _table("mainline / fork or partial (quality)", res, lambda r: r.row.quality)
    out += _table("prompt shared (-pps)", res, lambda r: r.row.shared_prompt)
    out += _table("held-out chip", res, lambda r: r.row.device_key)
    out += _table("B = 1 vs B > 1", res, lambda r: "B=1" if r.row.B == 1 else "B>1")
    out += _table("backend factors: own fit (>= 2 chips) / pooled", res,
                  lambda r: "own" if r.row.backend_key in model.ratio else "pooled (one-chip backend)")
    lomo = moe_leave_one_model_out(rows)
    out += ["", "MoE rows, routing spread fitted leave-one-MODEL-out (device factors still leave-one-device-out;",
            "the spread's rows are the other MoE models on the held-out row's backend, as the full fit's",
            "per-backend spread)"]
    out += _table("held-out MoE model", lomo, lambda r: r.row.model)
    out += _table("held-out chip", lomo, lambda r: r.row.device_key)
    out += [f"  {'all MoE rows':<42} {_stats(lomo)}"]
    anychip = moe_leave_one_model_out(rows, same_backend=False)
    out += [f"  {'all MoE rows, spread from any chip':<42} {_stats(anychip)}"]
    mixed = [r for r in res if not r.row.is_moe] + lomo
    out += ["", "all used rows, MoE rows with the leave-one-model-out spread (dense rows as above)"]
    out += [f"  {'overall':<42} {_stats(mixed)}",
            f"  {'primary rows':<42} {_stats([r for r in mixed if r.row.quality == 'primary'])}"]
    out += _table("per backend", mixed, lambda r: r.row.backend_key)
    out += [f"  {'dgx spark':<42} {_stats([r for r in mixed if r.row.device_key == 'dgx spark'])}"]
    if not any(r.row.is_moe for r in res):
        out.append("  (no usable public MoE batched rows: the only ones are B = 1-only or CPU-offloaded experts)")
    out += ["", f"fitted (all used rows): overlap p = {model.overlap:g}, pooled ratio F_batch/F_prefill = "
            f"{model.ratio_pooled:.3f}, MoE routing spread E_eff/E = {model.spread:g}, "
            f"pooled sigma {model.sigma_pooled:.2f}; per-backend spread "
            + ", ".join(f"{b} {s:g}" for b, s in sorted(model.spreads.items()))]
    out += [f"  {b:<8} ratio {model.ratio[b]:.3f}  sigma {model.sigma.get(b, model.sigma_pooled):.2f}  "
            f"rows {model.n_rows[b]}" for b in sorted(model.ratio)]
    if show_rows:
        out += ["", "device | backend | model | pp | tg | B | measured S_TG | predicted | error"]
        out += [f"{r.row.device} | {r.row.backend_key} | {r.row.model} {r.row.quant} | {r.row.pp} | {r.row.tg} | "
                f"{r.row.B} | {r.row.s_tg_tok_s:.2f} | {r.predicted:.2f} | {r.rel_error * 100:+.0f}%" for r in res]
    return "\n".join(out)


ROOT = Path(__file__).resolve().parent.parent
_DOC = """# Validation of batched decode (public llama-batched-bench results)

Generated by `.venv/bin/python benchmarks/validate_batched_public.py --write` (a few seconds, no timing). The
model and its factors: docs/performance-model.md, *Batched decode*. Rows and sources:
`profiler/data/llamacpp-batched-public.csv` (its header says where every row comes from and why some are left
out). Leave-one-device-out: every chip's rows are predicted from factors fitted on the other chips only; the
single-sequence factors underneath (`public_model`) are fitted on llama-bench rows, none of which is from the
same chips as the batched rows except as noted in that file. Errors are |predicted / measured - 1| of
aggregate decode (S_TG) at B sequences. Targets (issue #15): median <= 10%, p90 <= 25%. The public batched MoE
rows come from two chips (DGX Spark and, since issue #15's last pass, the M2 Ultra's llama.cpp benches table), so
strict leave-one-device-out tests the MoE routing spread too (each chip's MoE rows with the spread fitted on the
other's, whose backend reads experts differently); a second table fits the spread leave-one-MODEL-out on the
other MoE models of the row's backend, as the full fit does per backend (docs/performance-model.md).

```
{body}
```
"""


if __name__ == "__main__":
    text = report("--rows" in sys.argv[1:] or "--write" in sys.argv[1:])
    print(text)
    if "--write" in sys.argv[1:]:
        (ROOT / "docs" / "validation-batched.md").write_text(_DOC.format(body=text))
        print("wrote docs/validation-batched.md", file=sys.stderr)
