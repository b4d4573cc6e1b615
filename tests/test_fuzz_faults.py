"""Faults around files: a full disk, two hfp processes writing into one results folder, unreadable and non-UTF-8
inputs. Every writer goes through ``profiler.files`` (temporary file in the same folder, fsync, rename)."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler.cli import cli
from profiler.errors import ConfigError, DiskFullError
from profiler.files import create_exclusive, read_text, write_atomic
from profiler.record import RunRecord

ROOT = Path(__file__).resolve().parent.parent


def _hfp_with_file_size_limit(limit: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`hfp args` in a process that may not write files larger than ``limit`` bytes (SIGXFSZ ignored, so a write
    past the limit fails with EFBIG, as a full disk fails with ENOSPC)."""
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HFP_CACHE_DIR": str(cwd / "cache")}
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=limited, restore_signals=False)


def test_full_disk_keeps_the_previous_file_and_says_so_in_one_line(small_record_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    out.write_text("previous calibration\n")
    result = _hfp_with_file_size_limit(256, "calibrate", str(small_record_path), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: disk full writing {out}"
    assert out.read_text() == "previous calibration\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["fit.json"]  # no temporary file left


def test_full_disk_while_saving_a_record(small_record_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("{}")
    code = ("import sys; from profiler.record import RunRecord; "
            f"RunRecord.load({str(small_record_path)!r}).save(__import__('pathlib').Path({str(target)!r}))")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                            preexec_fn=limited, restore_signals=False)
    assert result.returncode != 0 and f"DiskFullError: disk full writing {target}" in result.stderr
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_two_processes_saving_records_with_the_same_id_never_clobber(small_record_path: Path,
                                                                     tmp_path: Path) -> None:
    # Two hfp runs of the same model started in the same second get the same id; each save() of a new record
    # creates its file exclusively, so the second one gets a -2 suffix instead of overwriting the first.
    code = (
        "from profiler.record import RunRecord\n"
        f"r = RunRecord.load({str(small_record_path)!r})\n"
        "for i in range(25):\n"
        "    r.model_copy(update={'id': 'same-second', 'notes': [str(i)]}).save()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    files = sorted((tmp_path / "reports" / "runs").iterdir())
    assert len(files) == 50
    ids = {RunRecord.load(f).id for f in files}
    assert len(ids) == 50 and all(f.stem in ids for f in files)


def test_write_atomic_replaces_whole_and_create_exclusive_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    write_atomic(path, "one")
    write_atomic(path, b"two")
    assert path.read_text() == "two"
    assert create_exclusive(path, "three") is False and path.read_text() == "two"
    assert create_exclusive(tmp_path / "b.json", "new") is True
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.json"]


def test_write_into_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(Exception, match="permission denied"):
        write_atomic(folder / "x.json", "x")


def test_disk_full_error_is_an_hfp_error() -> None:
    assert issubclass(DiskFullError, Exception) and DiskFullError("x").exit_code == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"name: x\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 7)"),
     (b"a: 1\x00\n", "not a text file (NUL byte at offset 4)")],
)
def test_non_utf8_and_binary_text_files_name_the_file_and_offset(tmp_path: Path, content: bytes,
                                                                 message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_text(path)
    for args in (["scenarios", str(path)], ["profiles", str(path)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and result.stderr.strip() == f"error: {path}: {message}"


def test_a_folder_a_fifo_and_a_missing_file_are_one_line_each(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    for path, message in ((fifo, "not a regular file"), (folder, "is a folder"), (tmp_path / "no.yaml", "no such")):
        for args in (["scenarios", str(path)], ["estimate", "--model-spec", str(path)], ["report", str(path)]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 2, (args, result.output)
            assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_record_that_is_not_utf8_or_not_json(tmp_path: Path) -> None:
    for content, message in ((b"\x93\x00garbage", "not UTF-8"), (b"[1, 2", "not a JSON run record"),
                             (json.dumps([[[]]] * 2).encode(), "not a JSON run record")):
        path = tmp_path / "r.json"
        path.write_bytes(content)
        result = CliRunner().invoke(cli, ["calibrate", str(path)])
        assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_unreadable_scenario_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads anything")
    path = tmp_path / "secret.yaml"
    path.write_text("name: x\n")
    path.chmod(0)
    result = CliRunner().invoke(cli, ["scenarios", str(path)])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {path}: permission denied"
