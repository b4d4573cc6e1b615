"""Plain-text tables for the quantization commands: a ladder, a sweep and a safety run.

Owns turning ``Ladder``, ``SweepRecord`` and ``SafetyRecord`` into terminal text. It reads records only and
must not compute statistics (records carry them) or print (the CLI does).
"""

from __future__ import annotations

from profiler.quantize import Ladder
from profiler.record import PointResult
from profiler.safety.record import SafetyRecord
from profiler.safety.stats import Rate
from profiler.schema.units import fmt_mib
from profiler.summary import fmt_stat
from profiler.sweep import SweepRecord
from profiler.text import table


def ladder_table(ladder: Ladder) -> str:
    """One row per level: size, bits per weight, quantize time (or reused), fallbacks."""
    rows = []
    for lvl in ladder.levels:
        fell = ", ".join(f"{n} {t}" for t, n in sorted(lvl.fallback_types.items(), key=lambda kv: -kv[1]))
        rows.append([
            lvl.level, fmt_mib(lvl.size_bytes, 1), f"{lvl.bits_per_weight:.2f}",
            "reused" if lvl.quantize_s is None else f"{lvl.quantize_s:.1f}",
            "yes" if lvl.requantized else "no", fell or "-",
        ])
    head = (f"ladder of {ladder.source.name} ({ladder.source.file_type}, sha256 {ladder.source.sha256[:12]}) "
            f"in {ladder.directory}")
    body = table(rows, ["level", "MiB", "bits/weight", "quantize s", "requantized", "tensors that fell back"])
    return f"{head}\n{body}"


def ladder_warnings(ladder: Ladder) -> list[str]:
    """The warnings a user must see about a ladder, one line each (requantization first)."""
    lines = []
    requant = [lvl.level for lvl in ladder.levels if lvl.requantized]
    if requant:
        lines.append(
            f"warning: {', '.join(requant)} were requantized from an already-quantized "
            f"{ladder.source.file_type} source; their quality is bounded by {ladder.source.file_type} and is "
            "lower than the same types made from F16/BF16 weights. Quantize from an F16/BF16 GGUF where you can."
        )
    fell = [lvl for lvl in ladder.levels if lvl.fallback_tensors]
    if fell:
        lines.append(
            "warning: some tensors fell back to another type than the level intends (row size not a multiple of "
            "the block): " + "; ".join(f"{lvl.level} {lvl.fallback_tensors}" for lvl in fell)
            + ". Their size and speed are those of the fallback types."
        )
    return lines


def sweep_table(record: SweepRecord) -> str:
    """One row per (configuration, workload point): throughput, memory and energy per token."""
    rows = []
    for e in record.entries:
        for p in e.record.points:
            s = p.summary
            rows.append([
                e.level, e.kv_type, f"{e.bits_per_weight:.2f}", fmt_mib(e.record.model.size_bytes),
                p.point.label, fmt_stat(s.get("prefill_tok_s")), fmt_stat(s.get("decode_tok_s_aggregate")),
                _rss_above_baseline(p), fmt_mib(p.memory_predicted.ram_bytes),
                fmt_mib(p.memory_predicted.kv_cache_bytes, 1),
                fmt_stat(s.get("j_per_token"), 1, 3), p.energy_source or "-",
            ])
    headers = ["level", "KV", "bits/w", "file MiB", "point", "prefill t/s", "decode t/s", "RSS MiB meas",
               "RAM MiB pred", "KV MiB pred", "J/token", "energy source"]
    lines = [table(rows, headers), "decode t/s: all sequences together (mean ± sd); RSS meas: peak resident memory "
             "above the pre-load baseline; pred: planned allocation"]
    if not record.complete:
        lines.append(f"INCOMPLETE: {record.interrupted or 'sweep did not finish'}")
    return "\n".join(lines)


def _rss_above_baseline(p: PointResult) -> str:
    peak = p.summary.get("peak_rss_bytes")
    if not peak or peak.mean is None or p.rss_baseline_bytes is None:
        return "-"
    return fmt_mib(peak.mean - p.rss_baseline_bytes)


def _pp(x: float | None) -> str:
    return "-" if x is None else f"{(x or 0.0):+.1f}"


def _short(rate: Rate | None) -> str:
    return "-" if rate is None or rate.rate is None else f"{rate.k}/{rate.n}"


def safety_table(record: SafetyRecord) -> str:
    """Per configuration: refusal with its Wilson interval, drop and flips against the reference, over-refusal;
    then refusals per category and the probes that flipped."""
    rows = []
    for c in record.configs:
        ch = c.change
        rows.append([
            c.config.label + (" (ref)" if c.config.label == record.reference else ""),
            f"{c.config.bits_per_weight:.2f}",
            c.harmful_refusal.text() if c.harmful_refusal else "-",
            _pp(-ch.drop_pp if ch and ch.drop_pp is not None else None),
            ch.flip.text() if ch else "-",
            _short(ch.reverse) if ch else "-",
            f"{ch.mcnemar_p:.2f}" if ch else "-",
            c.control_over_refusal.text() if c.control_over_refusal else "-",
        ])
    headers = ["configuration", "bits/w", "refusal [95% CI] (harmful)", "change pp", "flip rate [95% CI]",
               "reverse", "McNemar p", "over-refusal (controls)"]
    ps = record.probe_set
    st = record.settings
    lines = [
        f"{ps.n_harmful} harmful probes, {ps.n_control} controls ({ps.name} v{ps.version}); classifier "
        f"{record.classifier}; greedy, {st.max_tokens} max tokens, seed {st.seed}",
        table(rows, headers),
    ]
    if record.configs and record.configs[0].by_category:
        cats = [cc.category for cc in record.configs[0].by_category]
        cat_rows = [[c.config.label] + [_short(cc.harmful_refusal) for cc in c.by_category] for c in record.configs]
        lines += ["", "refusals of harmful probes per category:", table(cat_rows, ["configuration"] + cats)]
    flips = [(c.config.label, c.flipped) for c in record.configs if c.flipped]
    if flips:
        lines += ["", "flipped (refused at the reference, complied here):"]
        lines += [f"  {label}: {', '.join(ids)}" for label, ids in flips]
    lines += [
        "",
        "flip rate: share of probes refused at the reference that are complied with here; reverse: complied at "
        "the reference, refused here. With few probes, read the intervals and McNemar p before the point values.",
    ]
    if not record.complete:
        lines.append(f"INCOMPLETE: {record.interrupted or 'run did not finish'}")
    return "\n".join(lines)
