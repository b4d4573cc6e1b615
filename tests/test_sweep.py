"""`hfp sweep`: the `hfp run` measurements at every level of a ladder and every KV cache type, in one table."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from profiler.cli import cli
from profiler.errors import ConfigError
from profiler.quantize import Ladder, LevelFile, build_ladder
from profiler.record import RunRecord
from profiler.sweep import SweepRecord, plan

LEVELS = ["F16", "Q8_0", "Q4_K_M", "Q2_K"]


@pytest.fixture(scope="module")
def ladder(default_model_path: Path) -> Ladder:
    return build_ladder(default_model_path, LEVELS)  # reused when another module built it first


@pytest.fixture(scope="module")
def swept(ladder: Ladder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, SweepRecord, Path]:
    """Two levels at f16, and q8_0 / q4_0 caches at the higher level: 16-token prompts, 4 tokens, one rep."""
    path = tmp_path_factory.mktemp("sweep") / "sweep.json"
    result = CliRunner().invoke(cli, [
        "sweep", "--ladder", ladder.directory, "--levels", "Q8_0,Q2_K", "--kv-types", "f16,q8_0,q4_0",
        "-p", "16", "-n", "4", "-r", "1", "--idle-seconds", "0", "--record", str(path),
    ])
    assert result.exit_code == 0, result.output
    return result, SweepRecord.load(path), path


def test_sweep_measures_every_level_and_kv_type_in_one_table(swept: tuple[Result, SweepRecord, Path]) -> None:
    result, record, _ = swept
    assert [(e.level, e.kv_type, e.axis) for e in record.entries] == [
        ("Q8_0", "f16", "weights"), ("Q2_K", "f16", "weights"), ("Q8_0", "q8_0", "kv"), ("Q8_0", "q4_0", "kv"),
    ]
    assert record.complete
    lines = result.stdout.splitlines()
    assert "decode t/s" in lines[0] and "J/token" in lines[0] and "RSS MiB meas" in lines[0]
    assert sum(1 for line in lines if line.startswith(("Q8_0", "Q2_K"))) == 4
    assert "requantized" in result.stderr


def test_each_configuration_keeps_its_own_run_record(swept: tuple[Result, SweepRecord, Path]) -> None:
    _, record, path = swept
    for entry in record.entries:
        assert entry.record.settings.type_k == entry.kv_type == entry.record.settings.type_v
        assert entry.record.model.file_type == entry.level
        point = entry.record.points[0]
        assert point.mean("decode_tok_s_aggregate") and point.mean("prefill_tok_s")
        assert entry.record_path and Path(entry.record_path).parent == path.with_suffix("")
        assert RunRecord.load(entry.record_path) == entry.record


def test_smaller_levels_and_caches_predict_fewer_bytes(swept: tuple[Result, SweepRecord, Path]) -> None:
    _, record, _ = swept
    by = {(e.level, e.kv_type): e for e in record.entries}
    assert by[("Q2_K", "f16")].record.model.size_bytes < by[("Q8_0", "f16")].record.model.size_bytes
    kv = [by[("Q8_0", t)].record.points[0].memory_predicted.kv_cache_bytes for t in ("f16", "q8_0", "q4_0")]
    assert kv == sorted(kv, reverse=True) and kv[0] > kv[-1]


def test_sweep_json_is_the_record(ladder: Ladder, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "sweep", "--ladder", str(Path(ladder.directory) / "ladder.json"), "--levels", "Q2_K", "-p", "8", "-n", "2",
        "-r", "1", "--idle-seconds", "0", "--json", "--record", str(tmp_path / "s.json"),
    ])
    assert result.exit_code == 0, result.output
    assert SweepRecord.model_validate_json(result.stdout) == SweepRecord.load(tmp_path / "s.json")


def test_grid_plans_every_combination_and_bad_kv_types_are_refused() -> None:
    levels = [LevelFile("Q8_0", Path("a.gguf")), LevelFile("Q2_K", Path("b.gguf"))]
    assert len(plan(levels, ["f16", "q8_0"], grid=True)) == 4
    assert [(lv.level, kv) for lv, kv, _ in plan(levels, ["f16", "q8_0"])] == [
        ("Q8_0", "f16"), ("Q2_K", "f16"), ("Q8_0", "q8_0"),
    ]
    with pytest.raises(ConfigError, match="unknown KV cache type 'q3'"):
        plan(levels, ["q3"])


def test_a_missing_ladder_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sweep", "--ladder", str(tmp_path / "nothing" / "ladder.json")])
    assert result.exit_code == 2 and "no such file" in result.stderr
