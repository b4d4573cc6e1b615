"""`hfp compare`: run records of the same model side by side, aligned by workload point, as ratios to the first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import browser
import pytest
from click.testing import CliRunner

from profiler import models, runner
from profiler.cli import cli
from profiler.record import RunRecord
from profiler.report import compare

X1 = (32, 8, 1)


@pytest.fixture(scope="module")
def one_thread_path(default_model: models.ModelFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real run: one thread instead of all cores, parallel 1 and 4 (the first run has 1 and 2)."""
    path = tmp_path_factory.mktemp("runs") / "one-thread.json"
    runner.measure(default_model, runner.points_grid(32, 8, [1, 4]),
                   runner.default_settings(repetitions=2, threads=1, threads_batch=1),
                   options=runner.RunOptions(record_path=str(path), idle_seconds=0))
    return path


def test_compare_prints_aligned_points_with_ratios_to_the_first(small_record_path: Path,
                                                                 one_thread_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(small_record_path), str(one_thread_path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^point\s+metric\s+A\s+B\s+B/A$", out, re.M)
    assert re.search(r"^pp32\+tg8 x1\s+decode tok/s, all sequences\s+[\d.]+ ± [\d.]+\s+[\d.]+ ± [\d.]+\s+×[\d.]+$",
                     out, re.M), out
    assert "B: " in out and "threads=1" in out
    assert "pp32+tg8 x2 was not measured in B" in out and "pp32+tg8 x4 was not measured in A" in out


def test_ratios_are_ratios_of_the_means(small_record_path: Path, one_thread_path: Path) -> None:
    a, b = RunRecord.load(small_record_path), RunRecord.load(one_thread_path)
    c = compare.compare([a, b])
    for field in ("decode_tok_s_aggregate", "prefill_tok_s", "ttft_s", "j_per_token"):
        pa = next(p for p in a.points if p.point.parallel == 1)
        pb = next(p for p in b.points if p.point.parallel == 1)
        expected = pb.mean(field) / pa.mean(field)  # type: ignore[operator]
        assert compare.ratio_of(c, X1, field) == pytest.approx(expected)
    assert compare.ratio_of(c, (32, 8, 4), "decode_tok_s_aggregate") is None
    assert [r.label for r in c.runs] == ["A", "B"]
    assert c.runs[1].differences == "threads=1, threads_batch=1"


def test_a_record_compared_with_itself_has_unit_ratios(small_record_path: Path) -> None:
    a = RunRecord.load(small_record_path)
    c = compare.compare([a, a])
    ratios = [row.values[1].ratio for row in c.rows if row.values[1].ratio is not None]
    assert ratios and all(r == pytest.approx(1.0) for r in ratios)
    assert any("identical settings" in n for n in c.notes)


def test_compare_out_writes_a_self_contained_report(small_record_path: Path, one_thread_path: Path,
                                                    tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(small_record_path), str(one_thread_path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "compare.html").read_text()
    assert browser.static_problems(html) == []
    assert "threads=1, threads_batch=1" in html
    markdown = (tmp_path / "compare.md").read_text()
    assert "](plots/compare-throughput.png)" in markdown and "| B/A |" in markdown
    assert (tmp_path / "plots" / "compare-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = compare.Comparison.model_validate_json((tmp_path / "compare.json").read_text())
    assert len(summary.runs) == 2
    page = browser.load(tmp_path / "compare.html")
    assert page.console_errors == [] and page.external_requests == [] and page.broken_images == []
    assert len(page.images) == 1


def test_compare_json_is_the_comparison(small_record_path: Path, one_thread_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(small_record_path), str(one_thread_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model_sha256"] == RunRecord.load(small_record_path).model.sha256
    assert {row["point"] for row in data["rows"]} == {"pp32+tg8 x1", "pp32+tg8 x2", "pp32+tg8 x4"}


def _edited(path: Path, tmp_path: Path, name: str, **changes: object) -> Path:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        target = data
        *parents, last = key.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    out = tmp_path / name
    out.write_text(json.dumps(data))
    return out


def test_records_of_different_models_are_refused_with_one_line(small_record_path: Path, tmp_path: Path) -> None:
    other = _edited(small_record_path, tmp_path, "other-model.json", model__sha256="0" * 64,
                    model__file_type="Q8_0")
    result = CliRunner().invoke(cli, ["compare", str(small_record_path), str(other)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "compare runs of the same model file" in result.stderr and "sha256 000000000000" in result.stderr


def test_records_of_another_schema_version_are_refused(small_record_path: Path, tmp_path: Path) -> None:
    newer = _edited(small_record_path, tmp_path, "newer.json", schema_version=2)
    result = CliRunner().invoke(cli, ["compare", str(small_record_path), str(newer)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "schema version 2" in result.stderr


def test_one_record_is_not_a_comparison(small_record_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(small_record_path)])
    assert result.exit_code == 2
    assert result.stderr == "error: compare needs at least two run records\n"
