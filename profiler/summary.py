"""Plain-text summaries of run records for the terminal.

Owns the console table of ``hfp run`` (mean ± stddev per point, predicted beside measured memory, resident and
anonymous, energy with its source). It reads records only; the HTML/Markdown report lives in ``profiler.report``.
"""

from __future__ import annotations

from profiler.memory import fit_sentence
from profiler.record import PointResult, RunRecord, Stat
from profiler.schema.units import MiB, fmt_mib
from profiler.text import table


def fmt_stat(stat: Stat | None, scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± sd`` of a stat, scaled; ``-`` when unmeasured."""
    if stat is None or stat.mean is None:
        return "-"
    sd = f" ± {stat.stddev * scale:.{digits}f}" if stat.n > 1 and stat.stddev is not None else ""
    return f"{stat.mean * scale:.{digits}f}{sd}"


def _above(p: PointResult, field: str, baseline: int | None) -> str:
    peak = p.summary.get(field)
    if not peak or peak.mean is None or baseline is None:
        return "-"
    return fmt_mib(peak.mean - baseline)


def memory_cells(p: PointResult) -> tuple[str, str]:
    """``measured / predicted`` MiB of the peak RSS and of its anonymous part, both above the pre-load baseline."""
    m = p.memory_predicted
    rss = f"{_above(p, 'peak_rss_bytes', p.rss_baseline_bytes)} / {fmt_mib(m.ram_bytes)}"
    anon_pred = fmt_mib(m.ram_anon_bytes) if m.ram_anon_bytes is not None else "-"
    anon = f"{_above(p, 'peak_anon_bytes', p.anon_baseline_bytes)} / {anon_pred}"
    return rss, anon


def run_table(record: RunRecord) -> str:
    """The result table of a run, one row per workload point."""
    rows = []
    for p in record.points:
        s = p.summary
        rows.append([
            p.point.label, fmt_stat(s.get("prefill_tok_s")), fmt_stat(s.get("decode_tok_s_per_seq")),
            fmt_stat(s.get("decode_tok_s_aggregate")), fmt_stat(s.get("ttft_s"), 1e3, 0),
            f"{fmt_stat(s.get('itl_p50_s'), 1e3, 1)} / {fmt_stat(s.get('itl_p95_s'), 1e3, 1)}",
            fmt_stat(s.get("e2e_s"), 1, 2), *memory_cells(p),
            fmt_stat(s.get("peak_vram_bytes"), 1 / MiB, 0), fmt_stat(s.get("j_per_token"), 1, 3),
        ])
    headers = ["point", "prefill t/s", "decode t/s/seq", "decode t/s agg", "TTFT ms", "ITL p50/p95 ms", "e2e s",
               "RSS MiB meas/pred", "anon MiB meas/pred", "VRAM MiB", "J/token"]
    st = record.settings
    head = (f"{record.model.label} ({record.model.params / 1e6:.0f}M params, {fmt_mib(record.model.size_bytes)} MiB) "
            f"on {record.host.cpu_model}, {st.threads} threads, ngl={st.n_gpu_layers}, fa={st.flash_attn}, "
            f"KV {st.type_k}/{st.type_v}, {st.repetitions} reps (mean ± sd)")
    lines = [head, table(rows, headers)]
    sources = sorted({p.energy_source for p in record.points if p.energy_source})
    lines.append(f"energy source: {', '.join(sources) or 'none'}; memory: measured = peak above the pre-load "
                 "baseline (RSS, and its anonymous part that only swap can free), predicted = profiler.memory plan "
                 "(mapped file span + repacked weights, KV cache, touched buffers)")
    if record.points:
        largest = max(record.points, key=lambda p: p.memory_predicted.ram_bytes).memory_predicted
        lines.append(fit_sentence(largest))
    if not record.complete:
        lines.append(f"INCOMPLETE: {record.interrupted or 'run did not finish'}")
    return "\n".join(lines)


def offload_table(records: list[RunRecord]) -> str:
    """Decode and prefill per GPU layer count (one record each)."""
    rows = []
    for r in records:
        p = r.points[0]
        rows.append([
            r.settings.n_gpu_layers, p.memory_predicted.placement, fmt_stat(p.summary.get("prefill_tok_s")),
            fmt_stat(p.summary.get("decode_tok_s_aggregate")),
            fmt_mib(p.memory_predicted.vram_bytes), fmt_stat(p.summary.get("peak_vram_bytes"), 1 / MiB, 0),
            fmt_stat(p.summary.get("j_per_token"), 1, 3), p.energy_source or "-",
        ])
    headers = ["gpu layers", "placement", "prefill t/s", "decode t/s", "VRAM MiB pred", "VRAM MiB meas", "J/token",
               "energy source"]
    return table(rows, headers)
