"""The `hfp` command line as a user meets it: `hfp run`, `models`, `inspect`, `hardware`, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from profiler.cli import cli
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord


def hfp(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, timeout=300)


def test_run_json_prints_the_record_and_saves_it(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    result = CliRunner().invoke(cli, ["run", "-p", "16", "-n", "4", "--parallel", "1,2", "-r", "1",
                                      "--idle-seconds", "0", "--record", str(path), "--json"])
    assert result.exit_code == 0, result.output
    printed = RunRecord.model_validate_json(result.stdout)
    assert RunRecord.load(path) == printed
    assert [p.point.parallel for p in printed.points] == [1, 2]


def test_run_prints_a_table_with_every_parallel_level(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-p", "16", "-n", "4", "--parallel", "1,3", "-r", "1",
                                      "--idle-seconds", "0", "--record", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "pp16+tg4 x1" in result.stdout and "pp16+tg4 x3" in result.stdout
    assert "energy source: estimated:tdp" in result.stdout or "energy source: measured:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--model", "/nonexistent/model.gguf"], "no such file"),
        (["run", "--parallel", "0"], "positive"),
        (["run", "--parallel", "a,b"], "comma-separated"),
        (["run", "--output-tokens", "1"], "output-tokens"),
        (["run", "--cache-type-k", "q3_x"], "cache-type-k"),
        (["run", "--gpu-layers", "lots"], "gpu-layers"),
        (["inspect", "/nonexistent.gguf"], "no such file"),
        (["run", "--model", "no-such-model-name"], "hfp models"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_non_gguf_and_truncated_files_exit_2(tmp_path: Path, default_model_path: Path) -> None:
    text = tmp_path / "readme.gguf"
    text.write_text("hello")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_model_path.read_bytes()[:5_000_000])
    for path, message in ((text, "not a GGUF file"), (cut, "truncated")):
        result = CliRunner().invoke(cli, ["run", "--model", str(path)])
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_model_too_large_for_memory_is_refused_before_loading(tmp_path: Path) -> None:
    # 200,000 parallel sequences need a KV cache of terabytes: refused with the numbers, nothing loaded.
    result = CliRunner().invoke(cli, ["run", "--parallel", "200000", "--idle-seconds", "0",
                                      "--record", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "will not fit" in result.output and "GiB RAM" in result.output
    assert not (tmp_path / "r.json").exists()


def test_models_lists_the_default_model() -> None:
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0
    assert any(e["source"] == "default" for e in json.loads(result.stdout))


def test_inspect_shows_metadata_and_predicted_memory() -> None:
    result = CliRunner().invoke(cli, ["inspect", "--ctx", "2048", "--parallel", "2"])
    assert result.exit_code == 0
    for text in ("llama", "Q4_1", "KV heads: 3", "KV cache", "compute buffer", "predicted:"):
        assert text in result.stdout
    data = json.loads(CliRunner().invoke(cli, ["inspect", "--json"]).stdout)
    assert data["model"]["n_layers"] == 30 and data["memory"]["fits"] in (True, False)


def test_hardware_save_writes_a_valid_profile(tmp_path: Path) -> None:
    path = tmp_path / "me.yaml"
    result = CliRunner().invoke(cli, ["hardware", "--save", str(path), "--price", "800"])
    assert result.exit_code == 0, result.output
    assert "GPU offload" in result.stdout
    profile = HardwareProfile.model_validate(yaml.safe_load(path.read_text()))
    assert profile.price_usd == 800 and profile.cpu.ram_bandwidth_gbps > 0
    assert profile.measured and profile.measured["cpu.ram_bandwidth_gbps"].startswith("measured:")


def test_ctrl_c_saves_finished_points_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "interrupted.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "profiler", "run", "-p", "16", "-n", "400", "--parallel", "1,1,1,1,1,1",
         "-r", "1", "--no-warmup", "--idle-seconds", "0", "--record", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert path.exists(), proc.communicate()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    record = RunRecord.load(path)
    assert not record.complete and len(record.points) >= 1
