"""`hfp report`: a feasibility report people read, rendered from a real run record and rebuilt from it alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import browser
import pytest
from click.testing import CliRunner

from profiler import feasibility, profiles, report, scenarios
from profiler.cli import cli
from profiler.feasibility.spec import family_spec
from profiler.quantize import build_ladder
from profiler.record import RunRecord
from profiler.report import plots
from profiler.report.data import CapableModel, ReportData
from profiler.report.plots import is_png

SCENARIOS = ["disinformation-posts", "scam-chat"]
PROFILES = ["raspberry-pi-5-8gb", "budget-laptop", "rtx-4060-laptop"]
SECTIONS = [
    "What a campaign would use: answer per scenario", "What you measured: answer per scenario",
    "Feasibility matrix of the measured model", "Host, model and settings measured",
    "Measured throughput vs parallel sequences", "Latency distribution", "Memory: predicted vs measured", "Energy",
    "Predicted decode rate per hardware tier", "Concurrency: aggregate decode rate vs parallel sequences",
    "Local ladder: synthetic sizes measured here", "Capability frontier", "Assumptions, method and sources",
    "Limitations",
]
SOURCE_LABEL = re.compile(r"^(measured|estimated|predicted|published):")


@pytest.fixture(scope="module")
def full_report(small_record_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hfp report RUN.json --out DIR` with every shipped scenario and hardware profile."""
    out = tmp_path_factory.mktemp("report-full")
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    return out


@pytest.fixture(scope="module")
def subset_report(small_record_path: Path, tmp_path_factory: pytest.TempPathFactory) -> report.ReportPaths:
    return report.build(small_record_path, SCENARIOS, PROFILES, tmp_path_factory.mktemp("report-subset"))


def test_report_writes_html_markdown_with_plots_and_summary(full_report: Path) -> None:
    assert (full_report / "report.html").stat().st_size > 0
    markdown = (full_report / "report.md").read_text()
    data = ReportData.model_validate_json((full_report / "summary.json").read_text())
    expected = ({"throughput", "latency", "memory", "energy", "concurrency", "frontier"}
                | ({"trend"} if data.trend else set()))
    assert {f.name for f in data.figures} == expected
    for figure in data.figures:
        png = (full_report / figure.file).read_bytes()
        assert is_png(png)
        assert f"]({figure.file})" in markdown
    assert len(data.scenarios) == len(scenarios.load_all())
    assert len(data.profiles) == len(profiles.load_all())
    assert len(data.matrix) == len(data.scenarios) * len(data.profiles)


def test_html_is_one_self_contained_file(full_report: Path) -> None:
    html = (full_report / "report.html").read_text()
    figures = ReportData.model_validate_json((full_report / "summary.json").read_text()).figures
    assert browser.static_problems(html) == []
    images = re.findall(r"<img [^>]*src=\"([^\"]*)\"", html)
    assert len(images) == len(figures) >= 6 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "<style>" in html and "<link" not in html


def test_report_opens_offline_in_headless_chromium_with_every_image_shown(full_report: Path, tmp_path: Path) -> None:
    page = browser.load(full_report / "report.html")
    figures = ReportData.model_validate_json((full_report / "summary.json").read_text()).figures
    assert page.console_errors == []
    assert page.external_requests == []
    assert len(page.images) == len(figures) and page.broken_images == []
    assert page.title.startswith("Feasibility report:")
    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot)
    assert is_png(shot.read_bytes()) and page.height > 2000


def test_sections_come_in_the_order_a_reader_needs_them(full_report: Path) -> None:
    html = (full_report / "report.html").read_text()
    markdown = (full_report / "report.md").read_text()
    data = ReportData.model_validate_json((full_report / "summary.json").read_text())
    expected = SECTIONS[:1] + (["Capability trend"] if data.trend else []) + SECTIONS[1:]
    html_h2 = re.findall(r"<h2>(.*?)</h2>", html)
    md_h2 = re.findall(r"^## (.*)$", markdown, re.M)
    for headings in (html_h2, md_h2):
        assert len(headings) == len(expected)
        assert all(h.startswith(s) for h, s in zip(headings, expected)), headings


def test_every_figure_and_table_carries_a_source_label(subset_report: report.ReportPaths) -> None:
    data = ReportData.model_validate_json(subset_report.summary.read_text())
    for figure in data.figures:
        assert all(SOURCE_LABEL.match(part.strip()) for part in figure.source.split(";")), figure.source
    html = subset_report.html.read_text()
    captions = re.findall(r'source: <span class="src">([^<]*)</span>', html)
    assert len(captions) >= 12
    assert all(re.search(r"(measured|estimated|predicted|declared|published|calibration)", c) for c in captions)


def test_headline_answers_each_scenario_with_wall_times_per_tier(subset_report: report.ReportPaths) -> None:
    data = ReportData.model_validate_json(subset_report.summary.read_text())
    assert [h.scenario for h in data.headlines] == SCENARIOS
    posts = data.headlines[0].text
    assert posts.startswith("300,000 posts within 30 days with ")
    assert "the fastest tier" in posts and re.search(r"\d+(\.\d+)? (s|min|h|days) on ", posts)
    markdown = subset_report.markdown.read_text()
    for h in data.headlines:
        assert h.text in markdown


def test_headline_names_the_tiers_a_model_does_not_fit(small_record: RunRecord, tmp_path: Path) -> None:
    spec = family_spec(14e9, "Q4_K_M")
    chosen = {k: profiles.load(k) for k in PROFILES + ["rtx-4090-desktop"]}
    estimates = feasibility.estimate(spec, profiles=chosen, scenarios={"disinformation-posts":
                                                                        scenarios.load("disinformation-posts")})
    paths = report.render(small_record, estimates, tmp_path)
    data = ReportData.model_validate_json(paths.summary.read_text())
    text = data.headlines[0].text
    assert "does not fit on Raspberry Pi 5 (8 GB)" in text
    assert data.cell("disinformation-posts", "raspberry-pi-5-8gb").verdict_kind == "does_not_fit"  # type: ignore[union-attr]
    assert "does not fit" in paths.html.read_text()


def _capable(small_record: RunRecord, params: float) -> dict:
    """A hand-made capable model (a dense family shape) for two scenarios, estimated on the subset's tiers."""
    chosen = {k: profiles.load(k) for k in PROFILES + ["rtx-4090-desktop"]}
    out = {}
    for name in SCENARIOS:
        spec = family_spec(params, "Q4_K_M")
        model = CapableModel(scenario=name, requirement="MMLU-Pro >= 40", rationale="test requirement",
                             model=spec.name, params=params, active_params=params / 4, quant="Q4_K_M",
                             sources=["test fixture"])
        out[name] = (model, feasibility.estimate(spec, profiles=chosen, scenarios={name: scenarios.load(name)},
                                                 calibration=feasibility.fit(small_record)))
    return out


def test_report_opens_with_the_cheapest_tier_for_the_capable_model(small_record: RunRecord, tmp_path: Path) -> None:
    capable = _capable(small_record, 8e9)
    estimates = feasibility.estimate(small_record, profiles={k: profiles.load(k) for k in PROFILES},
                                     scenarios={n: scenarios.load(n) for n in SCENARIOS})
    paths = report.render(small_record, estimates, tmp_path, capable=capable)
    data = ReportData.model_validate_json(paths.summary.read_text())
    assert [a.scenario for a in data.answers] == SCENARIOS
    for a in data.answers:
        model, found = capable[a.scenario]
        feasible = [e for e in found if e.verdict_kind == "feasible"]
        if feasible:
            cheapest = min(feasible, key=lambda e: (e.price_usd, e.wall_time_s))
            assert a.tier == cheapest.profile and a.wall_time_s == pytest.approx(cheapest.wall_time_s, rel=1e-5)
            assert a.wall_time_low_s is not None and a.wall_time_low_s <= a.wall_time_s <= a.wall_time_high_s
            assert a.energy_kwh is not None and a.electricity_usd is not None
            assert f"the cheapest tier that meets the deadline on one device is {cheapest.profile_name}" in a.text
        assert model.model in a.text and "MMLU-Pro >= 40" in a.text
    assert len(data.capable_matrix) == len(SCENARIOS) * 4
    html, markdown = paths.html.read_text(), paths.markdown.read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings[0] == "What a campaign would use: answer per scenario"
    assert headings[1].startswith("What you measured")
    assert html.index("What a campaign would use") < html.index("What you measured")
    for a in data.answers:
        assert a.text in markdown
    assert "2.0B active" in html and browser.static_problems(html) == []
    assert any("models this host did not run" in x for x in data.limitations)


def test_a_model_no_tier_holds_is_answered_as_such(small_record: RunRecord, tmp_path: Path) -> None:
    capable = _capable(small_record, 400e9)
    estimates = feasibility.estimate(small_record, profiles={k: profiles.load(k) for k in PROFILES},
                                     scenarios={n: scenarios.load(n) for n in SCENARIOS})
    data = report.render(small_record, estimates, tmp_path, capable=capable)
    answers = ReportData.model_validate_json(data.summary.read_text()).answers
    assert all(a.tier is None and "no tier holds this model" in a.text for a in answers)


def test_values_are_escaped_in_html_and_in_markdown_cells(small_record: RunRecord, tmp_path: Path) -> None:
    odd = small_record.model_copy(update={"notes": ["<script>alert(1)</script> | pipe"]})
    estimates = feasibility.estimate(odd, profiles={k: profiles.load(k) for k in PROFILES[:1]},
                                     scenarios={n: scenarios.load(n) for n in SCENARIOS[:1]})
    paths = report.render(odd, estimates, tmp_path)
    html = paths.html.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; | pipe" in html
    assert browser.static_problems(html) == []
    assert "| note | <script>alert(1)</script> \\| pipe |" in paths.markdown.read_text()


def test_synthetic_weights_and_moe_sizes_are_labelled(small_record: RunRecord, tmp_path: Path) -> None:
    m = small_record.model
    moe = m.model_copy(update={"synthetic": True, "n_experts": 8, "n_experts_used": 2,
                               "expert_params": m.params // 2, "expert_bytes": m.tensor_bytes // 2})
    record = small_record.model_copy(update={"model": moe})
    estimates = feasibility.estimate(record, profiles={k: profiles.load(k) for k in PROFILES[:1]},
                                     scenarios={n: scenarios.load(n) for n in SCENARIOS[:1]})
    paths = report.render(record, estimates, tmp_path)
    data = ReportData.model_validate_json(paths.summary.read_text())
    assert data.model_info.synthetic and data.model_info.experts == 8 and data.model_info.experts_used == 2
    assert data.model_info.active_params == moe.active_params < moe.params
    for text in (paths.html.read_text(), paths.markdown.read_text()):
        assert "synthetic weights: timing and memory only" in text
        assert "active per token" in text and "2 used per token" in text
    assert "synthetic weights: timing and memory only" in data.title
    assert all("synthetic weights" in f.source for f in data.figures if f.source.startswith("measured:"))
    assert any("synthetic weights" in x for x in data.limitations)


def test_matrix_tells_verdicts_by_text_not_colour_alone(subset_report: report.ReportPaths) -> None:
    html = subset_report.html.read_text().split('<section id="matrix">')[1].split("</section>")[0]
    data = ReportData.model_validate_json(subset_report.summary.read_text())
    cells = re.findall(r'<td class="v-([a-z_]+)"[^>]*>(.*?)</td>', html)
    assert len(cells) == len(SCENARIOS) * len(PROFILES)
    for _kind, content in cells:
        assert re.search(r'<span class="mark">[^<]+</span> \w', content)
    assert {c.verdict_kind for c in data.matrix} >= {kind for kind, _ in cells}


def test_limitations_are_written_from_the_data(small_record: RunRecord, tmp_path: Path) -> None:
    interrupted = small_record.model_copy(update={"complete": False, "interrupted": "KeyboardInterrupt after 1 of 2"})
    paths = report.build(interrupted, SCENARIOS[:1], PROFILES[:1], tmp_path)
    limits = " ".join(ReportData.model_validate_json(paths.summary.read_text()).limitations)
    assert "incomplete (KeyboardInterrupt after 1 of 2)" in limits
    assert "Few repetitions: 2 per point" in limits
    sources = {p.energy_source or "" for p in small_record.points}
    if any(s.startswith("estimated:") for s in sources):
        assert "Energy on this host is estimated, not measured" in limits
    assert "Incomplete run" in paths.html.read_text() and "Incomplete run" in paths.markdown.read_text()


def test_report_is_rebuilt_from_the_record_json_alone(small_record_path: Path, small_record: RunRecord,
                                                      tmp_path: Path) -> None:
    first = report.build(small_record_path, SCENARIOS, PROFILES, tmp_path / "a")
    again = report.build(RunRecord.load(small_record_path), SCENARIOS, PROFILES, tmp_path / "b")
    a, b = (json.loads(p.summary.read_text()) for p in (first, again))
    a.pop("generated_at"), b.pop("generated_at")
    assert a == b
    assert a["record"]["id"] == small_record.id


def test_default_out_dir_is_reports_record_id(small_record: RunRecord, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = report.build(small_record, SCENARIOS[:1], PROFILES[:1])
    assert paths.html == Path("reports") / small_record.id / "report.html"
    assert paths.html.exists() and paths.markdown.exists() and paths.summary.exists()


def test_report_contains_no_generated_text(full_report: Path, small_record: RunRecord) -> None:
    html = (full_report / "report.html").read_text()
    assert "this report contains no model-generated text" in html
    assert small_record.extra.get("proxy_prompt", "")[8:60] not in html


@pytest.mark.parametrize("make_bad", ["missing", "not-json", "other-schema"])
def test_a_bad_record_is_refused_with_one_line_and_exit_2(make_bad: str, small_record_path: Path,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    if make_bad == "not-json":
        path.write_text("{ nope")
    elif make_bad == "other-schema":
        path.write_text(json.dumps({**json.loads(small_record_path.read_text()), "schema_version": 99}))
    result = CliRunner().invoke(cli, ["report", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out" / "report.html").exists()


def test_an_unknown_scenario_is_a_user_error(small_record_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--scenarios", "no-such-thing",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no scenario 'no-such-thing'" in result.stderr


@pytest.fixture(scope="module")
def safety_record_path(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `hfp safety` run: two weight levels of the default model, two harmful probes and two controls."""
    ladder = build_ladder(default_model_path, ["F16", "Q4_K_M"])
    path = tmp_path_factory.mktemp("safety") / "safety.json"
    result = CliRunner().invoke(cli, ["safety", ladder.directory, "--levels", "F16,Q4_K_M", "--kv-types", "f16",
                                      "--limit", "2", "--max-tokens", "12", "--record", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_a_safety_record_adds_refusal_under_quantization(small_record_path: Path, safety_record_path: Path,
                                                         tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--scenarios", SCENARIOS[0], "--profiles",
                                      PROFILES[0], "--safety", str(safety_record_path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = ReportData.model_validate_json((tmp_path / "summary.json").read_text())
    assert data.safety is not None
    assert [r.level for r in data.safety.rows] == ["F16", "Q4_K_M"]
    assert data.safety.rows[0].is_reference and data.safety.rows[0].refusal.n == 2
    assert any("rest on 2 harmful probes" in x for x in data.limitations)
    html = (tmp_path / "report.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings.index("Refusal under quantization") == headings.index("Capability frontier") + 1
    assert "refusal of harmful probes [95% CI]" in html
    assert re.search(r"<td>\d+% \[\d+-\d+\] \([0-2]/2\)</td>", html)
    assert "## Refusal under quantization" in (tmp_path / "report.md").read_text()
    assert is_png((tmp_path / "plots" / "refusal.png").read_bytes())
    assert browser.static_problems(html) == []


def test_refusal_plot_is_a_valid_png_with_its_source(small_record: RunRecord, safety_record_path: Path,
                                                     tmp_path: Path) -> None:
    import io

    import matplotlib.image

    from profiler.report.data import safety_section
    from profiler.safety import SafetyRecord

    section = safety_section(SafetyRecord.load(safety_record_path))
    assert section is not None
    plot = plots.refusal(section)
    assert plot is not None and is_png(plot.png)
    assert matplotlib.image.imread(io.BytesIO(plot.png), format="png").ndim == 3
    assert plot.source.startswith("measured:hfp-safety") and section.record_id in plot.source


def test_without_a_safety_record_the_report_says_refusal_was_not_measured(subset_report: report.ReportPaths) -> None:
    data = ReportData.model_validate_json(subset_report.summary.read_text())
    assert data.safety is None
    assert any("Refusal under quantization was not measured" in x for x in data.limitations)
    assert "Refusal under quantization</h2>" not in subset_report.html.read_text()


def test_full_report_answers_every_scenario_with_its_capable_model(full_report: Path) -> None:
    from profiler import capability

    data = ReportData.model_validate_json((full_report / "summary.json").read_text())
    declared = {n for n, s in scenarios.load_all().items() if s.capability is not None}
    assert {a.scenario for a in data.answers} == {s.name for s in data.scenarios}
    for a in data.answers:
        if a.scenario not in declared:
            continue
        assert a.capable is not None and a.capable.model, a
        choice, _ = capability.choose(scenarios.load(a.scenario))
        assert a.capable.model == choice.model and a.capable.sources
        assert a.capable.model in a.text
        if a.tier is not None:
            assert a.wall_time_s and a.energy_kwh is not None and a.electricity_usd is not None
    assert len(data.capable_matrix) == len(declared) * len(data.profiles)
    markdown = (full_report / "report.md").read_text()
    assert markdown.index("## What a campaign would use") < markdown.index("## What you measured")


def test_trend_section_gives_the_fitted_rate_with_its_interval_and_the_published_figure(full_report: Path) -> None:
    data = ReportData.model_validate_json((full_report / "summary.json").read_text())
    trend = data.trend
    assert trend is not None and trend.points and trend.levels
    assert trend.factor_per_year and trend.factor_low is not None and trend.factor_high is not None
    assert trend.factor_low <= trend.factor_per_year <= trend.factor_high
    assert trend.published and "arXiv 2601.21365" in trend.published
    for lv in trend.levels:
        if lv.next_year_params is not None:
            assert lv.next_year_low <= lv.next_year_params <= lv.next_year_high  # type: ignore[operator]
            assert lv.latest_params is not None and lv.next_year_params <= lv.latest_params
    html = (full_report / "report.html").read_text()
    assert "extrapolat" in html and trend.text() in html.replace("&#39;", "'")
    assert data.figure("trend") is not None


def test_report_modules_import_each_other_one_way() -> None:
    """records and estimates -> data -> plots/view -> templating -> render/compare: no import cycle."""
    import ast

    import profiler.report as package

    folder = Path(package.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        name = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("profiler.report."):
                    deps.add(node.module.split(".")[2])
                elif node.module == "profiler.report":
                    deps |= {a.name for a in node.names if (folder / f"{a.name}.py").exists()}
        graph[name] = deps - {name}
    graph.pop("__init__")
    seen: set[str] = set()

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, f"import cycle: {' -> '.join((*stack, node))}"
        if node in seen:
            return
        for dep in graph.get(node, ()):
            visit(dep, (*stack, node))
        seen.add(node)

    for module in graph:
        visit(module, ())
    assert "render" not in set().union(*graph.values())


def test_as_of_and_quant_choose_the_capable_models_of_that_date(small_record_path: Path, tmp_path: Path) -> None:
    from profiler import capability

    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--scenarios", ",".join(SCENARIOS),
                                      "--profiles", ",".join(PROFILES), "--as-of", "2024-01-31", "--quant", "Q8_0",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = ReportData.model_validate_json((tmp_path / "summary.json").read_text())
    for a in data.answers:
        choice, _ = capability.choose(scenarios.load(a.scenario), "Q8_0", "2024-01-31")
        assert a.capable is not None and a.capable.model == choice.model and a.capable.as_of == "2024-01-31"
        if choice.model is None:
            assert a.tier is None and "no campaign model was estimated" in a.text
        else:
            assert a.capable.quant == "Q8_0" and "Q8_0" in a.text
    assert data.trend is not None and data.trend.as_of == "2024-01-31"


def test_a_bad_as_of_date_is_a_user_error(small_record_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--as-of", "2024-13-01",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "2024-13-01" in result.stderr
