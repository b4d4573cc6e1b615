"""The report's figures: one function per plot, each returning a ``Plot`` (PNG bytes, title, source label).

Owns the look of every figure: titles, axis units, tier labels, and a greyscale-safe encoding (markers, line
styles and hatches carry the series; colour only repeats them). Every figure prints its source label
(``measured:…``, ``estimated:…``, ``predicted:…``) in its footer. matplotlib is imported lazily with the
``Agg`` backend, so nothing ever opens a display. It must not compute estimates or read files: measured plots
take a ``RunRecord``, predicted plots take the rows ``profiler.report.data`` already built. It imports nothing
of ``profiler.report`` but the data types.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from profiler.record import PointResult, RunRecord
from profiler.report.data import SYNTHETIC_NOTE
from profiler.schema.units import MiB

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from profiler.feasibility import FrontierPoint
    from profiler.report.concurrency import ConcurrencySection, Curve
    from profiler.report.data import SafetySection, TrendSection
    from profiler.report.ladder import LadderSection

SMALL_MULTIPLES_DPI = 80  # the 16-panel concurrency figure: enough for its 6-7 pt labels, a third fewer bytes
PALETTE = 64  # colours of a figure: 8 series colours, greys and their anti-aliasing; fewer keeps reports small
DPI = 90
# Okabe-Ito colours (colour-blind safe); markers, line styles and hatches repeat the distinction for greyscale.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1)), "-")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FITTED_SOURCE = "predicted: calibration:local-ladder (dotted, in-sample fit)"


@dataclass(frozen=True)
class Plot:
    """One rendered figure: a file stem, what it shows, where its numbers come from, and the PNG."""

    name: str
    title: str
    source: str
    alt: str
    png: bytes


def _pyplot() -> Any:
    # matplotlib and PIL (below) are imported when a figure is drawn: heavy, and not needed by `hfp` otherwise
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 7.5, height: float = 3.8, ncols: int = 1) -> tuple[Figure, Any]:
    plt = _pyplot()
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), dpi=DPI, squeeze=False)
    return fig, axes[0]


def _finish(fig: Figure, name: str, title: str, source: str, alt: str, top: float = 1.0, dpi: int = DPI) -> Plot:
    fig.suptitle(title, fontsize=11, fontweight="bold")
    width_in = fig.get_size_inches()[0]
    lines = textwrap.wrap(f"source: {source}", width=int(width_in * 17)) or [""]
    footer_in = 0.13 * len(lines) + 0.08
    fig.text(0.005, 0.005, "\n".join(lines), fontsize=7, color="#333333", ha="left", va="bottom")
    fig.tight_layout(rect=(0, min(footer_in / fig.get_size_inches()[1], 0.4), 1, top))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _pyplot().close(fig)
    return Plot(name=name, title=title, source=source, alt=alt, png=_compact_png(buf.getvalue()))


def _compact_png(png: bytes) -> bytes:
    """A palette PNG (64 colours, octree, no dithering): a third of the size, so reports stay small enough to mail."""
    from PIL import Image  # heavy optional import: see _pyplot

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def _log_axis(ax: Any, which: str = "x") -> None:
    """A log axis labelled with plain numbers (1, 10, 100 …; 0.1 …) and no minor-tick labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # heavy: see _pyplot

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _style(i: int) -> dict[str, Any]:
    return {"color": COLOURS[i % len(COLOURS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def _bar_style(i: int) -> dict[str, Any]:
    return {"facecolor": COLOURS[i % len(COLOURS)], "hatch": HATCHES[i % len(HATCHES)], "edgecolor": "black",
            "linewidth": 0.6}


def _stat(p: PointResult, field: str, scale: float = 1.0) -> tuple[float, float] | None:
    s = p.summary.get(field)
    if s is None or s.mean is None:
        return None
    return s.mean * scale, (s.stddev or 0.0) * scale


def _by_parallel(record: RunRecord) -> list[PointResult]:
    return sorted(record.points, key=lambda p: (p.point.parallel, p.point.prompt_tokens, p.point.output_tokens))


def _point_labels(points: Sequence[PointResult]) -> list[str]:
    shapes = {(p.point.prompt_tokens, p.point.output_tokens) for p in points}
    if len(shapes) == 1:
        return [f"x{p.point.parallel}" for p in points]
    return [f"pp{p.point.prompt_tokens}+tg{p.point.output_tokens}\nx{p.point.parallel}" for p in points]


def _measured_source(record: RunRecord) -> str:
    synthetic = f" ({SYNTHETIC_NOTE})" if record.model.synthetic else ""
    return (f"measured: {record.model.label}{synthetic} on {record.host.cpu_model} ({record.host.hostname}), "
            f"run {record.id}")


def throughput(record: RunRecord) -> Plot | None:
    """Decode tokens/s (all sequences and per sequence) and prefill tokens/s against parallel sequences,
    mean ± stddev over repetitions."""
    points = _by_parallel(record)
    if not points:
        return None
    fig, (ax1, ax2) = _figure(ncols=2)
    panels = [(ax1, [("decode, all sequences", "decode_tok_s_aggregate", 0),
                     ("decode, per sequence", "decode_tok_s_per_seq", 1)], "decode tokens/s"),
              (ax2, [("prefill, all sequences", "prefill_tok_s", 2)], "prefill tokens/s")]
    parallels = sorted({p.point.parallel for p in points})
    shapes = sorted({(p.point.prompt_tokens, p.point.output_tokens) for p in points})
    for ax, series, ylabel in panels:
        for j, shape in enumerate(shapes):
            same = [p for p in points if (p.point.prompt_tokens, p.point.output_tokens) == shape]
            for label, field, style in series:
                pts = [(p.point.parallel, v) for p in same if (v := _stat(p, field))]
                if len(shapes) > 1:
                    label = f"{label}, pp{shape[0]}+tg{shape[1]}"
                if pts:
                    ax.errorbar([x for x, _ in pts], [v[0] for _, v in pts], yerr=[v[1] for _, v in pts],
                                label=label, capsize=3, markersize=6, **_style(style + 3 * j))
        ax.set_xscale("log", base=2)
        ax.set_xticks(parallels, [str(v) for v in parallels])
        ax.minorticks_off()
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
        ax.set_xlabel("parallel sequences (decoded together)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return _finish(fig, "throughput", "Measured throughput vs parallel sequences (mean ± stddev)",
                   _measured_source(record),
                   "Line charts of decode and prefill tokens per second at each parallel level.")


def latency(record: RunRecord) -> Plot | None:
    """Time to first token per repetition and inter-token latency p50/p95 per workload point, in ms."""
    points = _by_parallel(record)
    if not points:
        return None
    fig, (ax1, ax2) = _figure(ncols=2)
    labels = _point_labels(points)
    xs = list(range(len(points)))
    for x, p in zip(xs, points):
        values = [r.ttft_s * 1e3 for r in p.repetitions]
        ax1.scatter([x] * len(values), values, marker="o", facecolors="none", edgecolors=COLOURS[0], zorder=3,
                    label="repetition" if x == 0 else None)
        mean = _stat(p, "ttft_s", 1e3)
        if mean:
            ax1.hlines(mean[0], x - 0.3, x + 0.3, colors="black", linewidth=2, label="mean" if x == 0 else None)
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel("parallel sequences")
    ax1.set_ylabel("time to first token (ms)")
    ax1.set_title("TTFT", fontsize=9)
    ax1.set_ylim(bottom=0, top=ax1.get_ylim()[1] * 1.25)
    ax1.set_xlim(-0.6, len(points) - 0.4)
    ax1.legend(fontsize=7, loc="upper left")
    width = 0.38
    for i, (label, field) in enumerate((("p50", "itl_p50_s"), ("p95", "itl_p95_s"))):
        vals = [_stat(p, field, 1e3) or (math.nan, 0.0) for p in points]
        ax2.bar([x + (i - 0.5) * width for x in xs], [v[0] for v in vals], width, yerr=[v[1] for v in vals],
                capsize=3, label=f"inter-token {label}", **_bar_style(i))
    ax2.set_xticks(xs, labels)
    ax2.set_xlabel("parallel sequences")
    ax2.set_ylabel("inter-token latency (ms)")
    ax2.set_title("Inter-token latency (mean ± stddev)", fontsize=9)
    ax2.set_ylim(bottom=0, top=ax2.get_ylim()[1] * 1.15)
    ax2.legend(fontsize=7, loc="upper left")
    return _finish(fig, "latency", "Measured latency per workload point", _measured_source(record),
                   "Time to first token per repetition, and inter-token latency percentiles, per parallel level.")


def memory(record: RunRecord) -> Plot | None:
    """Predicted memory (weights, KV cache, compute buffer, other) beside measured peak RSS and VRAM, in MiB."""
    points = _by_parallel(record)
    if not points:
        return None
    fig, (ax,) = _figure()
    labels = _point_labels(points)
    xs = list(range(len(points)))
    has_vram = any(_stat(p, "peak_vram_bytes") for p in points)
    n_bars = 3 if has_vram else 2
    width = 0.8 / n_bars
    bottoms = [0.0] * len(points)
    parts = [("predicted weights", lambda m: m.weights_bytes), ("predicted KV cache", lambda m: m.kv_cache_bytes),
             ("predicted compute buffer", lambda m: m.compute_buffer_bytes),
             ("predicted output + overhead", lambda m: m.output_buffer_bytes + m.overhead_bytes)]
    x0 = [x - 0.4 + width / 2 for x in xs]
    for i, (label, get) in enumerate(parts):
        heights = [get(p.memory_predicted) / MiB for p in points]
        ax.bar(x0, heights, width, bottom=bottoms, label=label, **_bar_style(i))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    rss = [_stat(p, "peak_rss_bytes", 1 / MiB) or (math.nan, 0.0) for p in points]
    base = [(p.rss_baseline_bytes or 0) / MiB for p in points]
    ax.bar([x + width for x in x0], [r[0] for r in rss], width, yerr=[r[1] for r in rss], capsize=3,
           label="measured peak RSS", facecolor="white", edgecolor="black", hatch="oo", linewidth=0.8)
    if any(base):
        ax.hlines(base, [x + width / 2 for x in x0], [x + 1.5 * width for x in x0], colors="black",
                  linestyles="--", linewidth=2, zorder=4, label="measured RSS before loading")
    if has_vram:
        vram = [_stat(p, "peak_vram_bytes", 1 / MiB) or (math.nan, 0.0) for p in points]
        ax.bar([x + 2 * width for x in x0], [v[0] for v in vram], width, label="measured peak VRAM",
               facecolor="#bbbbbb", edgecolor="black", hatch="**", linewidth=0.8)
    ax.set_xticks(xs, labels)
    ax.set_xlabel("parallel sequences")
    ax.set_ylabel("memory (MiB)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    source = f"{points[0].memory_predicted.source} beside {_measured_source(record)}"
    return _finish(fig, "memory", "Memory: predicted by the planner vs measured peak", source,
                   "Stacked bars of predicted memory next to measured peak resident memory per parallel level.")


def energy(record: RunRecord) -> Plot | None:
    """Joules per generated token and mean power per workload point, labelled with the energy source."""
    points = [p for p in _by_parallel(record) if _stat(p, "j_per_token")]
    if not points:
        return None
    fig, (ax1, ax2) = _figure(ncols=2)
    labels = _point_labels(points)
    xs = list(range(len(points)))
    jpt = [_stat(p, "j_per_token") or (math.nan, 0.0) for p in points]
    ax1.bar(xs, [v[0] for v in jpt], 0.6, yerr=[v[1] for v in jpt], capsize=3, **_bar_style(0))
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel("parallel sequences")
    ax1.set_ylabel("energy per generated token (J)")
    ax1.set_title("J per token", fontsize=9)
    power = [(p.mean_power_w.mean if p.mean_power_w and p.mean_power_w.mean is not None else math.nan,
              p.mean_power_w.stddev or 0.0 if p.mean_power_w else 0.0) for p in points]
    ax2.bar(xs, [v[0] for v in power], 0.6, yerr=[v[1] for v in power], capsize=3, **_bar_style(1))
    idle = record.idle_baseline.idle_power_w if record.idle_baseline else None
    if idle:
        ax2.axhline(idle, color="black", linestyle="--", label=f"idle {idle:.1f} W")
        ax2.legend(fontsize=7)
    ax2.set_xticks(xs, labels)
    ax2.set_xlabel("parallel sequences")
    ax2.set_ylabel("mean power (W)")
    ax2.set_title("Mean power during the window", fontsize=9)
    sources = sorted({p.energy_source or "unknown" for p in points})
    return _finish(fig, "energy", f"Energy ({', '.join(sources)})",
                   f"{', '.join(sources)}; {_measured_source(record)}",
                   "Bar charts of joules per generated token and mean power per parallel level.")


def frontier(points: Sequence[FrontierPoint]) -> Plot | None:
    """The capability frontier: per tier, the largest dense model that fits at each quantization (markers), and
    the predicted single-stream decode rate of the largest model at the middle quantization."""
    points = [p for p in points if p.max_params]
    if not points:
        return None
    quants = list(dict.fromkeys(p.quant for p in points))
    profiles = list(dict.fromkeys(p.profile for p in points))
    names = {p.profile: p.profile_name for p in points}
    best = {pr: max((p.max_params or 0.0) for p in points if p.profile == pr) for pr in profiles}
    profiles.sort(key=lambda pr: best[pr])
    fig, (ax1, ax2) = _figure(width=9.0, height=max(2.8, 0.36 * len(profiles) + 1.6), ncols=2)
    ys = {pr: i for i, pr in enumerate(profiles)}
    for i, q in enumerate(quants):
        qs = [p for p in points if p.quant == q]
        ax1.scatter([(p.max_params or 0.0) / 1e9 for p in qs], [ys[p.profile] for p in qs], label=q,
                    marker=MARKERS[i % len(MARKERS)], s=34, facecolors="none" if i % 2 else COLOURS[i],
                    edgecolors=COLOURS[i % len(COLOURS)], linewidths=1.2, zorder=3)
    ax1.set_yticks(range(len(profiles)), [_short(names[pr]) for pr in profiles], fontsize=8)
    _log_axis(ax1)
    ax1.set_xlabel("largest model that fits (billion parameters)")
    ax1.grid(True, axis="x", which="both", alpha=0.3)
    ax1.legend(fontsize=7, title="quantization", title_fontsize=7, loc="lower right")
    mid = quants[len(quants) // 2]
    rates = {p.profile: p.decode_tok_s for p in points if p.quant == mid}
    values = [rates.get(pr) or 0.0 for pr in profiles]
    ax2.barh(range(len(profiles)), values, 0.6, **_bar_style(2))
    ax2.set_yticks(range(len(profiles)), [""] * len(profiles))
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        _log_axis(ax2)
    ax2.set_xlabel(f"its decode tok/s at {mid}")
    ax2.set_title("decode rate of the largest model", fontsize=9)
    ax1.set_title("largest dense model per quantization", fontsize=9)
    ax2.grid(True, axis="x", which="major", alpha=0.3)
    n_ctx = points[0].n_ctx
    sources = sorted({p.decode_source for p in points if p.decode_source})
    source = "; ".join(sources) + f"; predicted:model-sizes from {points[0].size_source}"
    return _finish(fig, "frontier", f"Capability frontier per hardware tier (context {n_ctx:,} tokens)", source,
                   "Dot chart of the largest model size each tier can hold per quantization, and bars of its "
                   "predicted decode rate.")


def refusal(section: SafetySection) -> Plot | None:
    """Refusal of harmful probes and over-refusal of benign controls per weight level (by bits per weight), with
    95% Wilson intervals, from an ``hfp safety`` record."""
    rows = [r for r in section.rows if r.refusal.rate is not None]
    if not rows:
        return None
    fig, (ax,) = _figure()
    xs = list(range(len(rows)))
    series = [("refusal of harmful probes", [r.refusal for r in rows], 0),
              ("over-refusal of benign controls", [r.over_refusal for r in rows], 1)]
    for label, rates, style in series:
        pts = [(x, r) for x, r in zip(xs, rates) if r.rate is not None]
        if not pts:
            continue
        ys = [100 * (r.rate or 0.0) for _, r in pts]
        lo = [y - 100 * (r.ci_low or 0.0) for y, (_, r) in zip(ys, pts)]
        hi = [100 * (r.ci_high or 0.0) - y for y, (_, r) in zip(ys, pts)]
        offset = -0.08 if style == 0 else 0.08
        ax.errorbar([x + offset for x, _ in pts], ys, yerr=[lo, hi], capsize=4, markersize=7, label=label,
                    **_style(style))
    ax.set_xticks(xs, [f"{r.level}{' (ref)' if r.is_reference else ''}\n{r.bits_per_weight:.2f} bits/w"
                       for r in rows], fontsize=8)
    ax.set_ylim(-5, 105)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_xlabel(f"weight quantization level (KV cache {section.kv_type})")
    ax.set_ylabel("share of replies refused (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    source = (f"{rows[0].source}, record {section.record_id}, classifier {section.classifier}, "
              f"{section.n_harmful} harmful probes + {section.n_control} controls ({section.probe_set}); "
              "whiskers: 95% Wilson intervals")
    return _finish(fig, "refusal", "Refusal under quantization", source,
                   "Refusal and over-refusal rates per weight quantization level with 95% intervals.")


def trend(section: TrendSection) -> Plot | None:
    """Puri's figure: the smallest parameter count reaching each capability level by release date (markers and
    steps, log scale), and each level's size extrapolated one year ahead with its band (dotted, whiskers)."""
    if not section.points:
        return None
    levels = [lv for lv in section.levels if lv.n_points]
    fig, (ax,) = _figure(width=8.5, height=4.4)
    for i, lv in enumerate(levels):
        pts = sorted((p for p in section.points if p.level == lv.level), key=lambda p: p.date)
        xs = [dt.date.fromisoformat(p.date[:10]) for p in pts]
        ys = [p.params / 1e9 for p in pts]
        style = _style(i)
        ax.step(xs, ys, where="post", color=style["color"], linestyle=style["linestyle"], linewidth=1.1,
                marker=style["marker"], markersize=6, label=f"{lv.level} ({lv.requirement})")
        if lv.next_year_params and lv.next_year_date and lv.latest_params:
            end = dt.date.fromisoformat(lv.next_year_date[:10])
            start = dt.date.fromisoformat(section.as_of[:10])
            ax.plot([xs[-1], start, end], [ys[-1], ys[-1], lv.next_year_params / 1e9], color=style["color"],
                    linestyle=":", linewidth=1.2)
            if lv.next_year_low and lv.next_year_high:
                mid = lv.next_year_params / 1e9
                ax.errorbar([end], [mid], yerr=[[mid - lv.next_year_low / 1e9], [lv.next_year_high / 1e9 - mid]],
                            color=style["color"], marker=style["marker"], markerfacecolor="white", capsize=3)
    _log_axis(ax, "y")
    ax.set_ylabel("smallest model reaching the level\n(billion parameters, log scale)")
    ax.set_xlabel("release date (open markers: extrapolated one year ahead, 95% band)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    rate = f" at the pooled fit, ÷{section.factor_per_year:.3g} per year" if section.factor_per_year else ""
    return _finish(fig, "trend", "Smallest open model reaching each capability level over time",
                   f"published: {section.source}; predicted:extrapolation{rate} (dotted, open markers)",
                   "Step chart, log scale, of the parameter count of the smallest open model reaching each "
                   "benchmark level by release date, with dotted extrapolations one year ahead.")


def _curve_panel(ax: Any, curves: Sequence[Curve], scenarios: Sequence[str], levels: Sequence[int]) -> None:
    for c in curves:
        i = scenarios.index(c.scenario)
        style = _style(i)
        pts = c.points
        if pts:
            xs = [p.batch for p in pts]
            ax.plot(xs, [p.aggregate_tok_s for p in pts], color=style["color"], linestyle=style["linestyle"],
                    linewidth=1.0, marker=style["marker"], markersize=3)
            ax.fill_between(xs, [p.low for p in pts], [p.high for p in pts], color=style["color"], alpha=0.15,
                            linewidth=0, antialiased=False)
        if c.plan_batch and c.plan_tok_s:
            ax.plot([c.plan_batch], [c.plan_tok_s], marker=MARKERS[i % len(MARKERS)], markersize=8,
                    markerfacecolor="white", markeredgecolor="black", markeredgewidth=1.2, linestyle="none")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(levels), [str(b) for b in levels], fontsize=6)
    ax.minorticks_off()
    _log_axis(ax, "y")
    ax.tick_params(axis="y", labelsize=6)
    ax.grid(True, which="major", alpha=0.3)


def concurrency(section: ConcurrencySection) -> Plot | None:
    """Per tier (one panel each): the predicted aggregate decode rate vs parallel sequences B for each bulk plan,
    its band (shaded), and the B the plan uses (large open marker)."""
    tiers = section.profiles()
    if not tiers or not any(c.points for c in section.curves):
        return None
    scenarios = section.scenarios()
    ncols = min(4, len(tiers))
    nrows = math.ceil(len(tiers) / ncols)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5, 1.4 * nrows + 1.2), dpi=DPI, squeeze=False)
    for k, (key, name) in enumerate(tiers):
        ax = axes[k // ncols][k % ncols]
        _curve_panel(ax, [c for c in section.curves if c.profile == key], scenarios, section.levels)
        ax.set_title(_short(name, 30), fontsize=6.5)
    for k in range(len(tiers), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    for k in range(max(len(tiers) - ncols, 0), len(tiers)):
        axes[k // ncols][k % ncols].set_xlabel("parallel sequences B", fontsize=6.5)
    handles = [plt.Line2D([], [], **_style(i), linewidth=1.0, markersize=4, label=s) for i, s in enumerate(scenarios)]
    handles.append(plt.Line2D([], [], marker="o", markersize=7, markerfacecolor="white", markeredgecolor="black",
                              linestyle="none", label="B the plan uses"))
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(len(handles), 5), frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.5 / fig.get_size_inches()[1]))
    fig.supylabel("decode tokens/s, all sequences (log)", fontsize=7)
    level = f"{section.band_level:.0%} band" if section.band_level else "band"
    sources = sorted({c.source for c in section.curves})
    plot = _finish(fig, "concurrency", "Predicted aggregate decode rate vs parallel sequences, per tier",
                   f"{section.source} (shaded: {level}); " + "; ".join(sources),
                   "Small multiples, one per hardware tier: lines of predicted aggregate decode tokens per second "
                   "against the number of parallel sequences, shaded bands, and a large marker at the number "
                   "of sequences each bulk campaign plan uses.", top=1 - 0.55 / fig.get_size_inches()[1],
                   dpi=SMALL_MULTIPLES_DPI)
    return plot


def _ladder_panel(ax: Any, section: LadderSection, kind: str) -> None:
    xs = list(range(len(section.rows)))
    for k, (key, _) in enumerate(section.tiers()):
        pts = [(x, getattr(p, f"{kind}_tok_s")) for x, r in zip(xs, section.rows) for p in r.predicted
               if p.profile == key and p.fits and getattr(p, f"{kind}_tok_s")]
        if pts:
            ax.plot([x for x, _ in pts], [v for _, v in pts], linewidth=0.8, markersize=3, alpha=0.8,
                    label=f"predicted: {key}", color=COLOURS[k % len(COLOURS)],
                    marker=MARKERS[(k + k // len(MARKERS)) % len(MARKERS)],
                    linestyle=LINESTYLES[(k // len(COLOURS)) % 2])
    for fitted, style in ((False, {"color": "black", "marker": "o", "linestyle": "-", "linewidth": 2.0}),
                          (True, {"color": "black", "marker": "o", "linestyle": ":", "markerfacecolor": "white"})):
        pts = [(x, getattr(rate, f"{kind}_tok_s")) for x, r in zip(xs, section.rows)
               for rate in (r.fitted if fitted else r.measured)
               if rate.parallel == 1 and getattr(rate, f"{kind}_tok_s")]
        if pts:
            ax.plot([x for x, _ in pts], [v for _, v in pts], markersize=6, zorder=4,
                    label="ladder fit, this host" if fitted else "measured, this host", **style)
    ax.set_xticks(xs, [textwrap.fill(r.rung.split(":")[0], 14) for r in section.rows], fontsize=6)
    _log_axis(ax, "y")
    ax.set_ylabel(f"{kind} tokens/s, one sequence (log)", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(True, which="major", alpha=0.3)


def ladder(section: LadderSection) -> Plot | None:
    """Synthetic sizes of a ladder calibration: the decode rate measured on this host (thick black), the fit
    (dotted), and the prediction for the same sizes on every tier (thin lines), one point per size (prefill is in
    the section's tables)."""
    if not section.rows:
        return None
    fig, (ax,) = _figure(width=7.5, height=3.4)
    _ladder_panel(ax, section, "decode")
    ax.legend(fontsize=5.5, loc="upper left", bbox_to_anchor=(1.01, 1.02))
    title = (f"Ladder: synthetic sizes measured on {section.host} vs predicted per tier "
             f"(pp{section.prompt_tokens}+tg{section.output_tokens})")
    return _finish(fig, "ladder", title, f"{section.measured_label} ({section.synthetic_note}); "
                   f"{FITTED_SOURCE}; {section.predicted_label}",
                   "Line chart, log scale, of decode tokens per second for synthetic models of several sizes: the "
                   "rate measured on this host, the calibration fit, and the predicted rate for the same sizes on "
                   "every hardware tier.")


def _short(name: str, width: int = 38) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def compare_throughput(records: Sequence[RunRecord], labels: Sequence[str]) -> Plot | None:
    """Decode (all sequences) and prefill tokens/s vs parallel sequences, one line per record, at the workload
    shape (prompt, output tokens) the records share most."""
    shapes = Counter((p.point.prompt_tokens, p.point.output_tokens) for r in records for p in r.points)
    if not shapes:
        return None
    shape = shapes.most_common(1)[0][0]
    fig, (ax1, ax2) = _figure(ncols=2)
    parallels: set[int] = set()
    for i, (record, label) in enumerate(zip(records, labels)):
        same = [p for p in _by_parallel(record) if (p.point.prompt_tokens, p.point.output_tokens) == shape]
        for ax, field in ((ax1, "decode_tok_s_aggregate"), (ax2, "prefill_tok_s")):
            pts = [(p.point.parallel, v) for p in same if (v := _stat(p, field)) is not None]
            if pts:
                ax.errorbar([x for x, _ in pts], [v[0] for _, v in pts], yerr=[v[1] for _, v in pts], capsize=3,
                            label=label, markersize=6, **_style(i))
                parallels |= {x for x, _ in pts}
    ticks = sorted(parallels)
    for ax, ylabel in ((ax1, "decode tokens/s, all sequences"), (ax2, "prefill tokens/s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("parallel sequences")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    source = "measured: " + "; ".join(f"{label} = run {r.id}" for r, label in zip(records, labels))
    title = f"Measured throughput of the compared runs, pp{shape[0]}+tg{shape[1]} (mean ± stddev)"
    return _finish(fig, "compare-throughput", title, source,
                   "Line charts of decode and prefill tokens per second per parallel level, one line per run.")


def record_plots(record: RunRecord) -> list[Plot]:
    """Every measured figure of a record that has data, in report order."""
    return [p for p in (throughput(record), latency(record), memory(record), energy(record)) if p is not None]


def is_png(data: bytes) -> bool:
    """Whether ``data`` starts with the PNG signature."""
    return data[:8] == PNG_MAGIC
