"""`hfp report`'s local-ladder section (#10) and concurrency curves (#15): a real ladder of tiny synthetic models
measured by llama.cpp, shown beside its predictions on every tier; per tier, the curve of each bulk plan."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import runner, synth
from profiler.cli import cli
from profiler.feasibility import ladder
from profiler.models import ModelFile
from profiler.record import RunRecord, WorkloadPoint
from profiler.report import ladder as report_ladder
from profiler.report import plots
from profiler.report.data import ReportData

SCENARIOS = ["disinformation-posts", "scam-chat"]
PROFILES = ["raspberry-pi-5-8gb", "budget-laptop", "rtx-4060-laptop"]
LABEL = re.compile(r"^(measured|predicted):")
TINY = {
    "tiny-dense": synth.Shape(arch="llama", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                              n_vocab=4096),
    "tiny-moe": synth.Shape(arch="qwen3moe", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                            n_vocab=4096, n_experts=8, n_experts_used=2, n_ff_expert=256),
}


def _measure(model: ModelFile, points: list[WorkloadPoint]) -> tuple[RunRecord, Path | None]:
    path = Path(model.path).with_suffix(".report-run.json")
    options = runner.RunOptions(idle_seconds=0, record_path=str(path))
    return runner.measure(model, points, runner.default_settings(repetitions=1), options=options), path


@pytest.fixture(scope="module")
def ladder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ladder of two tiny synthetic models (dense and MoE) measured here, saved as a ladder record."""
    mp = pytest.MonkeyPatch()
    for name, shape in TINY.items():
        mp.setitem(synth.PRESETS, name, synth.Preset(shape=shape, source="test"))
    try:
        result = ladder.run_ladder([ladder.Rung(preset=n) for n in TINY], _measure, prompt_tokens=16,
                                   output_tokens=4, parallel=(1, 2))
    finally:
        mp.undo()
    return result.save(tmp_path_factory.mktemp("ladders") / f"{result.id}.ladder.json")


@pytest.fixture(scope="module")
def with_ladder(small_record_path: Path, ladder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-ladder")
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--scenarios", ",".join(SCENARIOS),
                                      "--profiles", ",".join(PROFILES), "--ladder", str(ladder_path),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_ladder_section_shows_measured_rates_beside_every_tiers_prediction(with_ladder: Path,
                                                                          ladder_path: Path) -> None:
    data = ReportData.model_validate_json((with_ladder / "summary.json").read_text())
    result = report_ladder.load_ladder(ladder_path)
    sec = data.ladder
    assert sec is not None and sec.record_id == result.id and sec.same_host and sec.anchors
    assert [r.rung for r in sec.rows] == [r.rung for r in result.rungs]
    for row in sec.rows:
        assert row.model_source in ("ladder record", "run record")
        assert [m.parallel for m in row.measured] == [1, 2]
        # the measured rates are the ladder's own timings, turned into tokens/s
        for m in row.measured:
            [dec] = [p.point for p in result.points if p.rung == row.rung and p.point.kind == "decode"
                     and p.point.parallel == m.parallel]
            assert m.decode_tok_s == pytest.approx(m.parallel / dec.measured_s, rel=1e-5)
            assert m.label.startswith("measured:") and m.prefill_tok_s and m.prefill_tok_s > 0
        assert all(f.label.startswith("predicted:") and f.decode_tok_s for f in row.fitted)
        assert {p.profile for p in row.predicted} == set(PROFILES)
        for p in row.predicted:
            assert p.fits and p.decode_tok_s and p.prefill_tok_s and p.decode_source
            assert p.decode_tok_s_low is not None and p.decode_tok_s_low <= p.decode_tok_s <= (p.decode_tok_s_high or 0)
    # its fit anchors the report's predictions
    assert data.calibration is not None and data.calibration.source == "calibration:local-ladder"
    assert any("calibration:local-ladder" in (c.decode_source or "") for c in data.matrix)


def test_ladder_figure_and_tables_are_labelled_measured_and_predicted(with_ladder: Path) -> None:
    data = ReportData.model_validate_json((with_ladder / "summary.json").read_text())
    figure = data.figure("ladder")
    assert figure is not None and plots.is_png((with_ladder / figure.file).read_bytes())
    assert all(LABEL.match(part.strip()) for part in figure.source.split(";")), figure.source
    markdown = (with_ladder / "report.md").read_text()
    html = (with_ladder / "report.html").read_text()
    for text in (markdown, html):
        assert "Local ladder: synthetic sizes measured here vs predicted per tier" in text
        assert "synthetic weights: timing and memory only" in text
        assert all(r.rung in text for r in data.ladder.rows)  # type: ignore[union-attr]
    assert "source: `measured: llama.cpp on" in markdown and "`predicted: roofline per tier" in markdown


def test_without_a_ladder_the_section_says_how_to_get_one(small_record_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--scenarios", SCENARIOS[0],
                                      "--profiles", PROFILES[0], "--ladder", "none", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = ReportData.model_validate_json((tmp_path / "summary.json").read_text())
    assert data.ladder is None and data.figure("ladder") is None
    assert data.calibration is not None and data.calibration.source == "calibration:local"
    assert "run `hfp calibrate --ladder`" in (tmp_path / "report.md").read_text()
    assert "run `hfp calibrate --ladder`" in (tmp_path / "report.html").read_text()


def test_auto_finds_the_newest_ladder_of_this_host_only(small_record: RunRecord, ladder_path: Path,
                                                        tmp_path: Path) -> None:
    result = report_ladder.load_ladder(ladder_path)
    older = result.model_copy(update={"id": "old", "started": "2000-01-01T00:00:00+00:00"})
    other = result.model_copy(update={"id": "other", "host": "elsewhere", "started": "2999-01-01T00:00:00+00:00"})
    for r in (result, older, other):
        r.save(tmp_path / f"{r.id}.ladder.json")
    (tmp_path / "broken.ladder.json").write_text("{")
    assert report_ladder.newest_for_host(small_record.host.hostname, tmp_path) == tmp_path / f"{result.id}.ladder.json"
    assert report_ladder.newest_for_host("elsewhere", tmp_path) == tmp_path / "other.ladder.json"
    assert report_ladder.newest_for_host("nowhere", tmp_path) is None
    assert report_ladder.find_ladder(small_record, "none") is None


def test_a_ladder_of_another_host_is_shown_but_does_not_anchor(small_record: RunRecord, ladder_path: Path,
                                                              tmp_path: Path) -> None:
    from profiler import report

    other = report_ladder.load_ladder(ladder_path).model_copy(update={"host": "elsewhere"})
    path = other.save(tmp_path / "other.ladder.json")
    paths = report.build(small_record, SCENARIOS[:1], PROFILES[:1], tmp_path / "out", ladder=path)
    data = ReportData.model_validate_json(paths.summary.read_text())
    assert data.ladder is not None and not data.ladder.same_host and not data.ladder.anchors
    assert data.calibration is not None and data.calibration.source == "calibration:local"
    assert any("measured on elsewhere, not on this run's host" in x for x in data.limitations)


@pytest.mark.parametrize("content", [None, "{", '{"id": 1}'])
def test_a_bad_ladder_path_is_one_line_and_exit_2(content: str | None, small_record_path: Path,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "x.ladder.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(cli, ["report", str(small_record_path), "--ladder", str(path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_a_rung_without_files_is_predicted_from_its_preset_shape(ladder_path: Path) -> None:
    rung = ladder.LadderRung(rung="qwen3-30b-a3b/4l:Q4_K_M", file="/nonexistent.gguf", params=3_000_000_000,
                             weight_bytes=2_000_000_000, measure_s=1.0)
    model, source = report_ladder.rung_model(rung)
    assert source == "preset shape" and model is not None
    assert model.params == rung.params and model.tensor_bytes == rung.weight_bytes and model.n_layers == 4
    assert model.is_moe and 0 < model.active_params < model.params
    unknown = rung.model_copy(update={"rung": "no-such-preset:Q4_K_M"})
    assert report_ladder.rung_model(unknown) == (None, None)
    # a record that describes its rung's model is self-contained
    described = rung.model_copy(update={"model": model})
    assert report_ladder.rung_model(described) == (model, "ladder record")


# --- concurrency curves ----------------------------------------------------------------------------------------


def test_concurrency_curves_per_tier_mark_each_bulk_plans_batch(with_ladder: Path) -> None:
    data = ReportData.model_validate_json((with_ladder / "summary.json").read_text())
    sec = data.concurrency
    assert sec is not None and sec.plans == "capable" and sec.levels[0] == 1
    bulk = [s.name for s in data.scenarios if s.mode == "bulk"]
    assert sec.scenarios() == bulk and {k for k, _ in sec.profiles()} == set(PROFILES)
    for c in sec.curves:
        cell = data.cell(c.scenario, c.profile, capable=True)
        assert cell is not None and c.source.startswith("predicted:")
        if c.plan_batch:
            assert f"{c.plan_batch} parallel" in cell.configuration
            assert c.plan_tok_s == pytest.approx(cell.batched_decode_tok_s)
            # the plan sits on its own curve
            at = next(p for p in c.points if p.batch == c.plan_batch)
            assert at.aggregate_tok_s == pytest.approx(c.plan_tok_s)
        assert [p.batch for p in c.points] == sorted({p.batch for p in c.points})
        assert all(p.low <= p.aggregate_tok_s <= p.high for p in c.points)
    figure = data.figure("concurrency")
    assert figure is not None and plots.is_png((with_ladder / figure.file).read_bytes())
    assert all(LABEL.match(part.strip()) for part in figure.source.split(";")), figure.source
    raw = json.loads((with_ladder / "summary.json").read_text())
    assert raw["concurrency"]["source"].startswith("predicted:")
    assert raw["concurrency"]["curves"][0].keys() >= {"batch", "aggregate_tok_s", "low", "high", "plan_batch", "source"}
    assert set(raw["concurrency"]["models"]) == set(bulk)
    markdown = (with_ladder / "report.md").read_text()
    assert "## Concurrency: aggregate decode rate vs parallel sequences, per tier" in markdown
    assert "plan B, decode tok/s all sequences" in markdown
