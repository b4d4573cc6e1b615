"""The process sensor: RSS and its anonymous part, for this process or another one by pid."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.telemetry.process import ProcessSensor, memory_parts

MiB = 1024**2
linux = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="Linux /proc only")


@linux
def test_anonymous_part_agrees_with_smaps_rollup() -> None:
    sensor = ProcessSensor()
    rss, anon = sensor.memory()
    parts = memory_parts()
    assert parts is not None and anon is not None
    assert abs(anon - parts["Anonymous"]) < 4 * MiB and abs(rss - parts["Rss"]) < 4 * MiB
    assert 0 < anon < rss


@linux
def test_heap_memory_is_anonymous_and_mapped_file_pages_are_not(tmp_path: Path) -> None:
    sensor = ProcessSensor()
    path = tmp_path / "weights.bin"
    with path.open("wb") as f:  # in 1 MiB pieces, before measuring: one freed 32 MiB bytes object can stay
        for _ in range(32):  # resident in the heap (glibc's mmap threshold grows), which once read as anonymous
            f.write(b"\1" * MiB)
    _, anon0 = sensor.memory()
    block = bytearray(64 * MiB)  # zero-filled by the allocator: touched, anonymous
    rss1, anon1 = sensor.memory()
    assert anon0 is not None and anon1 is not None and anon1 - anon0 >= 60 * MiB
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert sum(m[i] for i in range(0, len(m), 4096)) == len(m) // 4096  # touch every page
        rss2, anon2 = sensor.memory()
    assert anon2 is not None and rss2 - rss1 >= 30 * MiB and abs(anon2 - anon1) < 4 * MiB
    del block


@linux
def test_another_process_is_read_by_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(48 << 20); "
                              "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        reading = ProcessSensor(child.pid).read()
        assert reading["anon_bytes"] is not None and reading["anon_bytes"] >= 48 * MiB
        assert reading["rss_bytes"] is not None and reading["rss_bytes"] > reading["anon_bytes"]
        assert reading["cpu_time_s"] is not None
    finally:
        child.kill()
        child.wait()


def test_without_proc_the_anonymous_part_is_unknown_not_zero(tmp_path: Path) -> None:
    sensor = ProcessSensor(proc_root=tmp_path)  # no statm there: psutil's RSS, no split
    reading = sensor.read()
    assert reading["anon_bytes"] is None and reading["rss_bytes"] and reading["rss_bytes"] > 0
    assert "RSS only" in sensor.status().detail
    assert memory_parts(proc_root=tmp_path) is None
