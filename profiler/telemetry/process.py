"""Resident memory (total and anonymous) and CPU use of one process (psutil, with a light Linux fast path).

Owns per-process readings only; it reports no energy (a process has no power meter). The process is this one
(``pid=None``) or any other, e.g. hfp's llama.cpp worker. The sampler thread reads it ten times a second while
llama.cpp runs, so a read must be cheap: on Linux it reads ``/proc/<pid>/statm`` (kernel counters, no page-table
walk) and ``os.times()`` instead of psutil's heavier calls, which showed up as GIL contention in the
harness-overhead benchmark.

Memory comes in two parts, as ``profiler.memory`` predicts it: ``rss_bytes`` (all resident pages) and
``anon_bytes``, the anonymous part (``RssAnon``: heap, repacked weights, KV cache; only swap can free it).
statm's third field counts resident file-backed and shared-memory pages (``RssFile + RssShmem``), so
``anon = resident - shared``; ``smaps_rollup`` gives the same split page by page and is the cross-check
(``memory_parts``). Where the OS has no such split (macOS, Windows), ``anon_bytes`` is None, never a guess.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from profiler.telemetry.common import PowerSamplesOnly, Reading, SensorStatus

_STATM = "/proc/self/statm"


def memory_parts(pid: int | None = None, proc_root: Path = Path("/proc")) -> dict[str, int] | None:
    """Resident bytes by kind from ``/proc/<pid>/smaps_rollup`` (``Rss``, ``Anonymous``, ``Shmem``,
    ``File`` = the rest), or None where the file does not exist. Slower than statm (the kernel walks the page
    tables), so it is for checks, not for sampling."""
    path = proc_root / ("self" if pid is None else str(pid)) / "smaps_rollup"
    try:
        text = path.read_text()
    except OSError:
        return None
    kb: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            kb[parts[0][:-1]] = int(parts[1]) * 1024
    if "Rss" not in kb:
        return None
    anon, shmem = kb.get("Anonymous", 0), kb.get("Shmem", 0)
    return {"Rss": kb["Rss"], "Anonymous": anon, "Shmem": shmem, "File": kb["Rss"] - anon - shmem}


class ProcessSensor(PowerSamplesOnly):
    """RSS and its anonymous part (bytes) of a process, and CPU utilisation as a share of all logical cores."""

    name = "process"
    source = "measured:psutil"

    def __init__(self, pid: int | None = None, proc_root: Path = Path("/proc")) -> None:
        # ``pid``: another process to watch (hfp's llama.cpp worker, profiler.engine.worker); None = this one.
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.n_cpus = psutil.cpu_count(logical=True) or 1
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.statm = str(proc_root / ("self" if pid is None else str(pid)) / "statm")
        if pid is None and proc_root == Path("/proc"):
            self.statm = _STATM
        self.fast = os.path.exists(self.statm)
        self._last = self._cpu_times()

    def status(self) -> SensorStatus:
        """Always available; the detail says where memory is read and whether the anonymous part is."""
        if self.fast:
            return SensorStatus(name=self.name, available=True, detail=f"{self.statm} (RSS and anonymous part)")
        return SensorStatus(name=self.name, available=True,
                            detail=f"psutil on {sys.platform}: RSS only, no anonymous/file split")

    def _statm(self) -> tuple[int, int]:
        with open(self.statm, "rb") as f:
            fields = f.read().split()
        return int(fields[1]) * self.page, int(fields[2]) * self.page

    def rss_bytes(self) -> int:
        """Resident set size of the process."""
        if self.fast:
            return self._statm()[0]
        return int(self.proc.memory_info().rss)

    def anon_bytes(self) -> int | None:
        """Resident anonymous bytes of the process (not file-backed, not shared memory), or None if unknown."""
        if self.fast:
            rss, shared = self._statm()
            return rss - shared
        return None

    def memory(self) -> tuple[int, int | None]:
        """(RSS, anonymous part) from one read."""
        if self.fast:
            rss, shared = self._statm()
            return rss, rss - shared
        return int(self.proc.memory_info().rss), None

    def _cpu_times(self) -> tuple[float, float]:
        t = os.times() if self.pid is None else self.proc.cpu_times()
        return t.user + t.system, time.perf_counter()

    def read(self) -> Reading:
        """RSS, its anonymous part, CPU utilisation (0..1 of the whole machine) since the previous read, and
        cumulative CPU seconds of the process (``cpu_time_s``, what the TDP estimate integrates)."""
        cpu, wall = self._cpu_times()
        last_cpu, last_wall = self._last
        self._last = (cpu, wall)
        util = (cpu - last_cpu) / (wall - last_wall) / self.n_cpus if wall > last_wall else None
        rss, anon = self.memory()
        return {"rss_bytes": float(rss), "anon_bytes": float(anon) if anon is not None else None,
                "cpu_util": util, "cpu_time_s": cpu}
