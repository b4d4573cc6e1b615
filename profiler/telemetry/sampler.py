"""The sampler thread and energy accounting for one measurement window.

Owns sampling sensors at a fixed rate (10 Hz default) and turning samples into labelled energy with the
priority of docs/architecture.md ("Energy"): a hardware counter, then integrated power, then a TDP x utilisation
estimate. It also measures the idle baseline that whole-package sensors need. It must not know about models or
workloads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel

from profiler.telemetry.battery import BatterySensor
from profiler.telemetry.common import Energy, Reading, Sensor, SensorStatus
from profiler.telemetry.estimate import TdpModel
from profiler.telemetry.nvml import NvmlSensor
from profiler.telemetry.process import ProcessSensor
from profiler.telemetry.rapl import RaplSensor

# A counter window shorter than this many update periods is judged by integrated power instead.
MIN_COUNTER_PERIODS = 5
# Sensors that measure the CPU side (package, DRAM) and those that measure the whole machine (which already
# includes the CPU and any GPU, so their figure is never added to the others').
CPU_SENSORS = frozenset({"rapl"})
WHOLE_SYSTEM_SENSORS = frozenset({"battery"})

Clock = Callable[[], float]


def default_sensors(
    sys_root: Path = Path("/sys"), gpu_index: int | None = 0
) -> tuple[list[Sensor], list[SensorStatus]]:
    """The energy sensors that work here (RAPL, NVML, battery) and the status of every one tried."""
    candidates: list[Sensor] = [
        RaplSensor(sys_root / "class" / "powercap"),
        BatterySensor(sys_root / "class" / "power_supply"),
    ]
    if gpu_index is not None:
        candidates.append(NvmlSensor(gpu_index))
    statuses = [s.status() for s in candidates]
    return [s for s, st in zip(candidates, statuses) if st.available], statuses


class IdleBaseline(BaseModel):
    """Mean power per energy component while nothing runs, to report energy above idle."""

    power_w: dict[str, float]
    duration_s: float
    energy: Energy


def _integrate(times: list[float], values: list[float | None]) -> float | None:
    pairs = [(t, v) for t, v in zip(times, values) if v is not None]
    if len(pairs) < 2:
        return None
    return sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in zip(pairs, pairs[1:]))


class TelemetryWindow:
    """``with TelemetryWindow(...) as w:`` samples in a thread; afterwards ``w.energy()`` and ``w.peak(key)``.

    A sensor whose read fails leaves that sample empty and adds a note to the window's energy, so a flaky
    sensor never aborts a measurement. ``clock`` is ``time.perf_counter`` unless a test drives time itself.
    """

    def __init__(
        self, sensors: list[Sensor], process: ProcessSensor, tdp: TdpModel, hz: float = 10.0,
        idle: IdleBaseline | None = None, clock: Clock = time.perf_counter,
    ) -> None:
        self.sensors, self.process, self.tdp, self.idle = sensors, process, tdp, idle
        self.period = 1.0 / hz
        self.clock = clock
        self.times: list[float] = []
        self.readings: list[dict[str, Reading]] = []
        self.errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hfp-telemetry", daemon=True)
        self._lock = threading.Lock()

    def _read(self, sensor: Sensor | ProcessSensor) -> Reading:
        try:
            return sensor.read()
        except Exception as e:  # a sensor error must not abort the measurement; it is reported instead
            self.errors.setdefault(sensor.name, f"{sensor.name}: read failed ({type(e).__name__}: {e}); "
                                                "samples missing")
            return {}

    def sample(self) -> None:
        """Take one sample of every sensor now."""
        row = {s.name: self._read(s) for s in self.sensors}
        row["process"] = self._read(self.process)
        with self._lock:
            self.times.append(self.clock())
            self.readings.append(row)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> TelemetryWindow:
        for sensor in self.sensors:
            begin = getattr(sensor, "begin_window", None)
            if begin is not None:
                begin()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    # --- results -----------------------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Seconds between the first and last sample."""
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    def series(self, sensor: str, key: str) -> list[float | None]:
        """One quantity over the window."""
        return [r.get(sensor, {}).get(key) for r in self.readings]

    def peak(self, sensor: str, key: str) -> float | None:
        """Largest sample of a quantity, or None if never measured."""
        values = [v for v in self.series(sensor, key) if v is not None]
        return max(values) if values else None

    def samples(self) -> list[dict[str, float | None]]:
        """Raw samples for the run record: ``t`` (s from window start) and ``sensor.key`` columns."""
        t0 = self.times[0] if self.times else 0.0
        return [
            {"t": round(t - t0, 4), **{f"{s}.{k}": v for s, reading in row.items() for k, v in reading.items()}}
            for t, row in zip(self.times, self.readings)
        ]

    def _component_j(self, sensor: Sensor) -> tuple[float | None, float | None, list[str]]:
        """(energy from the best method, integrated-power cross-check, notes) for one sensor.

        A hardware counter is preferred, with integrated power as its cross-check; a window shorter than
        ``MIN_COUNTER_PERIODS`` counter updates (or one where the counter did not move) uses integrated power.
        """
        notes: list[str] = []
        integrated = _integrate(self.times, self.series(sensor.name, "power_w"))
        if not sensor.has_energy_counter:
            return integrated, None, notes
        counter = self.series(sensor.name, "energy_j")
        if counter[0] is None or counter[-1] is None:
            if integrated is not None:
                notes.append(f"{sensor.name}: energy counter unreadable at the window's edges; integrated power used")
            return integrated, None, notes
        delta = counter[-1] - counter[0]
        short = self.duration_s < MIN_COUNTER_PERIODS * sensor.counter_period_s
        if short or delta <= 0:
            why = (f"window {self.duration_s:.3f} s is shorter than {MIN_COUNTER_PERIODS} updates of its counter "
                   f"({sensor.counter_period_s:g} s each)" if short else "its energy counter did not advance")
            if integrated is not None:
                notes.append(f"{sensor.name}: {why}; integrated power used")
                return integrated, None, notes
            notes.append(f"{sensor.name}: {why} and it gives no power samples; counter figure kept (may be low)")
        return delta, integrated, notes

    def _cpu_estimate_j(self) -> float:
        """TDP x utilisation over the window, from this process's CPU seconds (or its sampled utilisation)."""
        duration = self.duration_s
        cpu = self.series("process", "cpu_time_s")
        if duration > 0 and cpu[0] is not None and cpu[-1] is not None:
            util = (cpu[-1] - cpu[0]) / self.process.n_cpus / duration
            return self.tdp.energy_j(duration, util)
        power = [self.tdp.power_w(u) if u is not None else None for u in self.series("process", "cpu_util")]
        est = _integrate(self.times, power)
        return est if est is not None else self.tdp.energy_j(duration, 0.0)

    def energy(self) -> Energy:
        """Energy of the window with its source label, total and above idle.

        Components are summed: the CPU side (RAPL, else a whole-system battery figure, else the TDP estimate)
        plus the GPU (NVML). A battery figure already includes the CPU and GPU, so it is used alone and never
        added to RAPL or NVML; whatever is left out is named in ``notes``. The total is never 0 or None
        silently: with no sensor it is the labelled TDP estimate.
        """
        duration = self.duration_s
        measured: dict[str, tuple[Sensor, float, float | None]] = {}
        notes: list[str] = list(self.errors.values())
        for sensor in self.sensors:
            joules, check, n = self._component_j(sensor)
            notes += n
            if joules is None:
                notes.append(f"{sensor.name}: no energy figure in this window (no counter or power samples)")
            else:
                measured[sensor.name] = (sensor, joules, check)
        whole = [name for name in measured if name in WHOLE_SYSTEM_SENSORS]
        if whole and any(name in CPU_SENSORS for name in measured):
            for name in whole:  # RAPL's counter is finer than battery discharge; do not count the CPU twice
                notes.append(f"{name}: {measured.pop(name)[1]:.1f} J whole-system figure not added; it includes "
                             "the CPU measured by RAPL")
        elif whole:
            for name in [n for n in measured if n not in WHOLE_SYSTEM_SENSORS]:
                notes.append(f"{name}: {measured.pop(name)[1]:.1f} J not added; the {whole[0]} figure includes it")
        components: dict[str, float] = {}
        sources: list[str] = []
        cross, cross_src = None, None
        for name, (sensor, joules, check) in measured.items():
            components[name] = joules
            sources.append(sensor.source)
            if check is not None:
                cross, cross_src = check, f"{sensor.source}-power-integrated"
        if not any(name in CPU_SENSORS or name in WHOLE_SYSTEM_SENSORS for name in components):
            components["cpu_estimate"] = self._cpu_estimate_j()
            sources.append(self.tdp.source)
            notes.append(f"cpu: no RAPL or battery reading; estimated as TDP {self.tdp.tdp_w:g} W x this process's "
                         "CPU utilisation")
        total = sum(components.values())
        idle_w = sum(self.idle.power_w.get(k, 0.0) for k in components) if self.idle is not None else None
        above = max(total - idle_w * duration, 0.0) if idle_w is not None else None
        return Energy(
            energy_j=total, above_idle_j=above, duration_s=duration,
            mean_power_w=total / duration if duration > 0 else None, idle_power_w=idle_w,
            source="+".join(sources), components=components, cross_check_j=cross, cross_check_source=cross_src,
            notes=notes,
        )


def measure_idle(
    sensors: list[Sensor], process: ProcessSensor, tdp: TdpModel, seconds: float = 3.0, hz: float = 10.0
) -> IdleBaseline:
    """Sample with nothing running for ``seconds``; the estimate component's idle power is the TDP idle share."""
    with TelemetryWindow(sensors, process, tdp, hz) as window:
        time.sleep(seconds)
    energy = window.energy()
    d = window.duration_s or seconds
    power = {k: v / d for k, v in energy.components.items()}
    if "cpu_estimate" in power:
        power["cpu_estimate"] = tdp.idle_w
    return IdleBaseline(power_w=power, duration_s=d, energy=energy)
