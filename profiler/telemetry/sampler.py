"""The sampler thread and energy accounting for one measurement window.

Owns sampling sensors at a fixed rate (10 Hz default) and turning samples into labelled energy with the
priority of DESIGN.md: a hardware counter, then integrated power, then a TDP x utilisation estimate. It also
measures the idle baseline that whole-package sensors need. It must not know about models or workloads.
"""

from __future__ import annotations

import threading
import time
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
    """``with TelemetryWindow(...) as w:`` samples in a thread; afterwards ``w.energy()`` and ``w.peak(key)``."""

    def __init__(
        self, sensors: list[Sensor], process: ProcessSensor, tdp: TdpModel, hz: float = 10.0,
        idle: IdleBaseline | None = None,
    ) -> None:
        self.sensors, self.process, self.tdp, self.idle = sensors, process, tdp, idle
        self.period = 1.0 / hz
        self.times: list[float] = []
        self.readings: list[dict[str, Reading]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hfp-telemetry", daemon=True)
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Take one sample of every sensor now."""
        row = {s.name: s.read() for s in self.sensors}
        row["process"] = self.process.read()
        with self._lock:
            self.times.append(time.perf_counter())
            self.readings.append(row)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> TelemetryWindow:
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
        """(energy from the best method, integrated-power cross-check, notes) for one sensor."""
        notes: list[str] = []
        integrated = _integrate(self.times, self.series(sensor.name, "power_w"))
        if sensor.has_energy_counter:
            counter = self.series(sensor.name, "energy_j")
            if counter[0] is not None and counter[-1] is not None:
                delta = counter[-1] - counter[0]
                short = self.duration_s < MIN_COUNTER_PERIODS * sensor.counter_period_s
                if (short or delta <= 0) and integrated is not None:
                    notes.append(f"{sensor.name}: window {self.duration_s:.3f}s too short for its counter; "
                                 "integrated power used")
                    return integrated, None, notes
                return delta, integrated, notes
        return integrated, None, notes

    def energy(self) -> Energy:
        """Energy of the window with its source label, total and above idle."""
        duration = self.duration_s
        components: dict[str, float] = {}
        sources: list[str] = []
        notes: list[str] = []
        cross, cross_src = None, None
        for sensor in self.sensors:
            joules, check, n = self._component_j(sensor)
            notes += n
            if joules is None:
                continue
            components[sensor.name] = joules
            sources.append(sensor.source)
            if check is not None:
                cross, cross_src = check, f"{sensor.source}-power-integrated"
        if not any(s.name in ("rapl", "battery") for s in self.sensors):
            # Nothing measures the CPU side: estimate it, labelled.
            util = self.series("process", "cpu_util")
            power = [self.tdp.power_w(u) if u is not None else None for u in util]
            est = _integrate(self.times, power)
            components["cpu_estimate"] = est if est is not None else self.tdp.power_w(0.0) * duration
            sources.append(self.tdp.source)
        total = sum(components.values())
        above = None
        if self.idle is not None:
            above = total - sum(self.idle.power_w.get(k, 0.0) for k in components) * duration
            above = max(above, 0.0)
        return Energy(
            energy_j=total, above_idle_j=above, duration_s=duration,
            mean_power_w=total / duration if duration > 0 else None,
            idle_power_w=sum(self.idle.power_w.get(k, 0.0) for k in components) if self.idle else None,
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
