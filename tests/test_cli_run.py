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
    assert data["model"]["n_layers"] == 30
    # inspect plans without this host's free memory: nothing to refuse, and the plan says it did not check
    assert data["memory"]["ram_available_bytes"] is None and data["memory"]["fits"] is True
    assert data["memory"]["reason"] == "fits (cpu)"


def test_hardware_save_writes_a_valid_profile(tmp_path: Path) -> None:
    path = tmp_path / "me.yaml"
    result = CliRunner().invoke(cli, ["hardware", "--save", str(path), "--price", "800"])
    assert result.exit_code == 0, result.output
    assert "GPU offload" in result.stdout
    profile = HardwareProfile.model_validate(yaml.safe_load(path.read_text()))
    assert profile.price_usd == 800 and profile.cpu.ram_bandwidth_gbps > 0
    assert profile.measured and profile.measured["cpu.ram_bandwidth_gbps"].startswith("measured:")


# A run far longer than any test waits (200 points of 64 tokens: minutes here, still over ten seconds on a host ten
# times faster), so a signal sent right after the first finished point always lands mid-run: the test cannot race
# the run's end, and a loaded machine only makes the first point slower to come.
LONG_RUN_POINTS = 200


def _start_long_run(path: Path, ignore: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    def child_signals() -> None:  # as a terminal session would start hfp, whatever pytest itself inherited
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN if sig in ignore else signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "profiler", "run", "-p", "16", "-n", "64", "--parallel",
         ",".join(["1"] * LONG_RUN_POINTS), "-r", "1", "--no-warmup", "--idle-seconds", "0", "--record", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=child_signals,
    )


def _wait_for_finished_points(proc: subprocess.Popen[str], path: Path, n: int = 1) -> None:
    """Wait until the record on disk holds ``n`` finished points (it is rewritten atomically after each)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(RunRecord.load(path).points) >= n:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no finished point in the record: {proc.communicate()}")


def _assert_interrupted_by(proc: subprocess.Popen[str], path: Path, sig: int) -> None:
    out, err = proc.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {name}" in err and "Traceback" not in err
    record = RunRecord.load(path)
    assert not record.complete and 1 <= len(record.points) < LONG_RUN_POINTS
    assert record.interrupted and record.interrupted.startswith(f"{name} after {len(record.points)} of ")


def test_ctrl_c_saves_finished_points_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "interrupted.json"
    proc = _start_long_run(path)
    _wait_for_finished_points(proc, path)
    os.kill(proc.pid, signal.SIGINT)
    _assert_interrupted_by(proc, path, signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_save_finished_points_like_ctrl_c(tmp_path: Path, sig: int) -> None:
    path = tmp_path / "stopped.json"
    proc = _start_long_run(path)
    _wait_for_finished_points(proc, path)
    os.kill(proc.pid, sig)
    _assert_interrupted_by(proc, path, sig)


def test_ctrl_c_is_not_lost_when_sigint_was_inherited_ignored(tmp_path: Path) -> None:
    # A background job of a non-interactive shell (`make test &`, a CI step) starts with SIGINT ignored; Python
    # then installs no KeyboardInterrupt handler and `kill -INT` did nothing: the run went on to exit 0. This was
    # the cause of the flaky Ctrl-C test (issue #16): hfp now handles SIGINT whatever it inherited.
    path = tmp_path / "interrupted.json"
    proc = _start_long_run(path, ignore=(signal.SIGINT,))
    _wait_for_finished_points(proc, path)
    os.kill(proc.pid, signal.SIGINT)
    _assert_interrupted_by(proc, path, signal.SIGINT)


def test_nohup_keeps_sighup_ignored(tmp_path: Path) -> None:
    path = tmp_path / "nohup.json"
    proc = _start_long_run(path, ignore=(signal.SIGHUP,))
    _wait_for_finished_points(proc, path)
    os.kill(proc.pid, signal.SIGHUP)
    _wait_for_finished_points(proc, path, len(RunRecord.load(path).points) + 1)  # still running
    os.kill(proc.pid, signal.SIGTERM)
    _assert_interrupted_by(proc, path, signal.SIGTERM)


def test_prompt_beyond_the_trained_context_is_refused_before_loading(tmp_path: Path, default_model) -> None:
    trained = default_model.n_ctx_train
    result = CliRunner().invoke(cli, ["run", "-p", str(trained), "-n", "8", "--parallel", "1", "--idle-seconds", "0",
                                      "--record", str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    assert f"{trained + 8:,}" in result.output and f"trained for {trained:,}" in result.output
    assert "--allow-context-overflow" in result.output and not (tmp_path / "r.json").exists()


def test_allow_context_overflow_lets_the_point_through_and_is_recorded(default_model) -> None:
    from profiler import runner

    points = runner.points_grid(default_model.n_ctx_train, 8, [1])
    settings = runner.default_settings(allow_context_overflow=True)
    runner.require_trained_context(default_model, points, settings)  # no refusal
    assert settings.model_dump()["allow_context_overflow"] is True
    with pytest.raises(Exception, match="trained for"):
        runner.require_trained_context(default_model, points, runner.default_settings())
