"""Resident memory and CPU use of this process (psutil, with a light Linux fast path).

Owns per-process readings only; it reports no energy (a process has no power meter). The sampler thread
reads it ten times a second while llama.cpp runs, so a read must be cheap: on Linux it reads
``/proc/self/statm`` and ``os.times()`` instead of psutil's heavier calls, which showed up as GIL contention
in the harness-overhead benchmark.
"""

from __future__ import annotations

import os
import time

import psutil

from profiler.telemetry.common import Reading, SensorStatus

_STATM = "/proc/self/statm"


class ProcessSensor:
    """RSS (bytes) of this process, and CPU utilisation as a share of all logical cores."""

    name = "process"
    source = "measured:psutil"
    has_energy_counter = False
    counter_period_s = 0.0

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.n_cpus = psutil.cpu_count(logical=True) or 1
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.fast = os.path.exists(_STATM)
        self._last = self._cpu_times()

    def status(self) -> SensorStatus:
        """Always available."""
        return SensorStatus(name=self.name, available=True, detail="/proc/self/statm" if self.fast else "psutil")

    def rss_bytes(self) -> int:
        """Resident set size of this process (llama.cpp runs in-process)."""
        if self.fast:
            with open(_STATM, "rb") as f:
                return int(f.read().split()[1]) * self.page
        return int(self.proc.memory_info().rss)

    @staticmethod
    def _cpu_times() -> tuple[float, float]:
        t = os.times()
        return t.user + t.system, time.perf_counter()

    def read(self) -> Reading:
        """RSS, CPU utilisation (0..1 of the whole machine) since the previous read, and cumulative CPU seconds
        of this process (``cpu_time_s``, what the TDP estimate integrates)."""
        cpu, wall = self._cpu_times()
        last_cpu, last_wall = self._last
        self._last = (cpu, wall)
        util = (cpu - last_cpu) / (wall - last_wall) / self.n_cpus if wall > last_wall else None
        return {"rss_bytes": float(self.rss_bytes()), "cpu_util": util, "cpu_time_s": cpu}
