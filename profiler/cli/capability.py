"""``hfp capable``: the smallest open models good enough for a scenario, and the trend of that size over time.

Parses options, calls ``profiler.capability`` and prints a table or JSON (``hfp estimate --model capable`` is
printed by ``profiler.cli.feasibility``). No selection or fitting logic lives here.
"""

from __future__ import annotations

from typing import Literal

import click

from profiler import capability, scenarios
from profiler.capability import CapableSet, OpenModel, Trend
from profiler.cli.common import echo_json, sig3, table


def _rows(models: list[OpenModel], bench: str, top: int) -> list[list[object]]:
    return [[m.model, m.release_date.isoformat(), sig3(m.params_total_b), sig3(m.params_active_b),
             f"{m.score(bench):g}", "yes" if m.has_shape else "-", m.licence] for m in models[:top]]


_HEADERS = ["model", "released", "total B", "active B", "score", "shape", "licence"]


def _describe_set(name: str, cs: CapableSet, top: int) -> str:
    req, bench = cs.requirement, cs.requirement.benchmark or ""
    lines = [f"{name}: needs {req.describe()} as of {cs.as_of} - {capability.BENCHMARKS[bench]}"]
    if not cs.by_total:
        return "\n".join(lines + ["  no open model in the capability data meets it by this date"])
    ref = cs.reference
    lines += ["smallest by total parameters (memory):", table(_rows(cs.by_total, bench, top), _HEADERS),
              "smallest by active parameters (per-token compute and reads):",
              table(_rows(cs.by_active, bench, top), _HEADERS),
              f"estimates use: {ref.model if ref else '- (no capable model has a known shape)'}"]
    return "\n".join(lines)


def _summary(sets: dict[str, CapableSet]) -> str:
    rows = []
    for name, cs in sets.items():
        t, a, r = cs.smallest_total, cs.smallest_active, cs.reference
        rows.append([name, cs.requirement.describe(), f"{t.model} ({sig3(t.params_total_b)}B)" if t else "-",
                     f"{a.model} ({sig3(a.params_active_b)}B)" if a else "-", r.model if r else "-"])
    return table(rows, ["scenario", "requirement", "smallest total", "smallest active", "estimates use"])


def _trend_text(tr: Trend) -> str:
    rows = [[lt.level.name, f"{lt.level.benchmark} >= {lt.level.min_score:g}", s.date.isoformat(), s.model,
             sig3(s.params_b), f"{s.score:g}"] for lt in tr.levels for s in lt.steps]
    r = tr.rate
    head = (f"smallest {r.by} parameter count reaching each level (a row = a model that lowered it), "
            f"data up to {tr.as_of}:")
    if r.fold_per_year is None:
        fit = "fitted rate: not enough frontier steps to fit"
    else:
        fit = (f"fitted decline: {r.fold_per_year:.1f}x per year (95% bootstrap {sig3(r.bootstrap_low)}-"
               f"{sig3(r.bootstrap_high)}x, regression {sig3(r.regression_low)}-{sig3(r.regression_high)}x; "
               f"{r.n_steps} steps over {r.n_levels} levels, {r.n_boot} bootstrap draws)")
    puri = f"Puri's published figure: more than {tr.puri['fold_per_year']:g}x per year ({tr.puri['source']})"
    return "\n".join([head, table(rows, ["level", "requirement", "date", "model", "params B", "score"]), fit, puri,
                      f"data: {tr.data_source}; {r.method}"])


@click.command("capable")
@click.option("--scenario", "-s", "scenario_names", multiple=True, help="Scenario name or YAML path (repeatable).")
@click.option("--as-of", help="Only models released by this date (YYYY-MM-DD); default: today.")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="Models listed per ranking.")
@click.option("--trend", "show_trend", is_flag=True, help="Show the size trend per level and the fitted rate.")
@click.option("--by", type=click.Choice(["total", "active"]), default="total", show_default=True,
              help="Trend: total or active parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def capable_command(scenario_names: tuple[str, ...], as_of: str | None, top: int, show_trend: bool,
                    by: Literal["total", "active"], as_json: bool) -> None:
    """The smallest open models (by total and by active parameters) that meet each scenario's capability
    requirement as of a date, from published scores in profiler/data/open_models.csv; with --trend, how that
    size has fallen over time and the fitted yearly rate of decline."""
    if show_trend:
        tr = capability.trend(by=by, as_of=as_of)
        click.echo(tr.model_dump_json(indent=1) if as_json else _trend_text(tr))
        return
    sets = {name: capability.capable_for(s, as_of) for name, s in scenarios.load_many(scenario_names).items()}
    if as_json:
        echo_json(sets)
    elif scenario_names:
        click.echo("\n\n".join(_describe_set(name, cs, top) for name, cs in sets.items()))
    else:
        click.echo(_summary(sets))


commands: list[click.Command] = [capable_command]
