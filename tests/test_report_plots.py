"""The report's plots: one function per figure, each a valid PNG that matplotlib reads back, on real records."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from profiler import feasibility, profiles, scenarios
from profiler.record import RunRecord
from profiler.report import plots
from profiler.report.plots import Plot

PROFILES = ["raspberry-pi-5-8gb", "budget-laptop", "rtx-4060-laptop", "apple-m4-base"]


def assert_valid_png(plot: Plot | None, width: int = 300) -> Plot:
    """PNG signature, and matplotlib decodes it into an RGB(A) image of a sensible size."""
    import matplotlib.image

    assert plot is not None
    assert plot.png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(plot.png), format="png")
    assert pixels.ndim == 3 and pixels.shape[1] >= width and pixels.shape[0] >= 150
    assert plot.title and plot.alt and plot.name
    return plot


@pytest.fixture(scope="module")
def estimates(small_record: RunRecord) -> list[feasibility.Estimate]:
    chosen = {k: profiles.load(k) for k in PROFILES}
    return feasibility.estimate(small_record, profiles=chosen,
                                scenarios={"disinformation-posts": scenarios.load("disinformation-posts")})


@pytest.mark.parametrize("plot_fn", [plots.throughput, plots.latency, plots.memory, plots.energy],
                         ids=lambda f: f.__name__)
def test_measured_plots_are_valid_pngs_labelled_with_their_source(plot_fn: Callable[[RunRecord], Plot | None],
                                                                   small_record: RunRecord) -> None:
    plot = assert_valid_png(plot_fn(small_record))
    assert plot.name == plot_fn.__name__
    assert small_record.id in plot.source
    assert plot.source.startswith(("measured:", "predicted:", "estimated:"))


def test_energy_plot_names_the_energy_source(small_record: RunRecord) -> None:
    plot = assert_valid_png(plots.energy(small_record))
    for source in {p.energy_source for p in small_record.points if p.energy_source}:
        assert source in plot.title and source in plot.source


def test_concurrency_plot_draws_a_panel_per_tier_with_each_plans_batch(small_record: RunRecord,
                                                                       estimates: list[feasibility.Estimate]) -> None:
    from profiler.report import concurrency

    chosen = {k: profiles.load(k) for k in PROFILES}
    scen = {"disinformation-posts": scenarios.load("disinformation-posts")}
    section = concurrency.concurrency_section(estimates, scen, {"disinformation-posts": small_record}, chosen,
                                              feasibility.Assumptions(), None, "measured")
    assert section is not None and {k for k, _ in section.profiles()} == set(PROFILES)
    assert all(c.plan_batch and any(p.batch == c.plan_batch for p in c.points) for c in section.curves)
    plot = assert_valid_png(plots.concurrency(section))
    assert plot.name == "concurrency" and all(part.strip().startswith("predicted:") for part in plot.source.split(";"))


def test_frontier_plot_shows_every_tier(small_record: RunRecord) -> None:
    points = feasibility.frontier(profiles={k: profiles.load(k) for k in PROFILES},
                                  calibration=feasibility.fit(small_record))
    plot = assert_valid_png(plots.frontier(points))
    assert all(part.strip().startswith("predicted:") for part in plot.source.split(";"))


def test_compare_plot_draws_each_run(small_record: RunRecord) -> None:
    other = small_record.model_copy(update={"id": "second-look"})
    plot = assert_valid_png(plots.compare_throughput([small_record, other], ["A: first", "B: second"]))
    assert small_record.id in plot.source and "second-look" in plot.source


def test_record_plots_come_in_report_order(small_record: RunRecord) -> None:
    assert [p.name for p in plots.record_plots(small_record)] == ["throughput", "latency", "memory", "energy"]


def test_a_record_without_points_gives_no_measured_figures(small_record: RunRecord) -> None:
    empty = small_record.model_copy(update={"points": [], "complete": False})
    assert plots.record_plots(empty) == []
    assert plots.frontier([]) is None


def test_plotting_never_needs_a_display(small_record: RunRecord) -> None:
    import matplotlib

    plots.throughput(small_record)
    assert matplotlib.get_backend().lower() == "agg"


def test_trend_plot_shows_the_capability_frontier_and_its_extrapolation() -> None:
    from profiler.report.capable import trend_section

    section = trend_section(feasibility.frontier(profiles={k: profiles.load(k) for k in PROFILES}))
    plot = assert_valid_png(plots.trend(section))
    assert plot.source.startswith("published:") and "predicted:extrapolation" in plot.source
