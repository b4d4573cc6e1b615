"""The sensor protocol: what every sensor (psutil, NVML, RAPL, battery) offers the sampler.

A sensor reads instantaneous values whose keys carry their units (``energy_j`` for a cumulative counter,
``power_w``, ``rss_bytes``, ``vram_bytes``, ``cpu_util``). An unmeasured quantity is ``None``, never 0.
Sensors do no threading and no integration; ``profiler.telemetry.sampler`` does.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from profiler.schema.energy import Energy as Energy

Reading = dict[str, float | None]


class SensorStatus(BaseModel):
    """Whether a sensor works here, and why not if it does not (shown to users, stored in records)."""

    name: str
    available: bool
    detail: str


class Sensor(Protocol):
    """A source of readings, e.g. ``rapl`` (package energy) or ``process`` (RSS, CPU).

    A sensor may also define ``begin_window()``, which ``TelemetryWindow`` calls when a window opens (NVML uses
    it to decide the VRAM label per window).
    """

    name: str
    #: ``measured:<name>`` label for energy from this sensor's counter or power samples
    source: str
    #: whether ``read`` returns a cumulative ``energy_j`` counter (preferred) or only ``power_w``
    has_energy_counter: bool
    #: the counter's update period; windows shorter than a few periods fall back to integrated power
    counter_period_s: float

    def status(self) -> SensorStatus:
        """Availability and a one-line explanation."""
        ...

    def read(self) -> Reading:
        """Current values; ``energy_j`` is monotonic (wrap-around already handled)."""
        ...


class PowerSamplesOnly:
    """Base of the sensors with no energy counter (psutil, battery): energy comes from integrated power samples."""

    has_energy_counter = False
    counter_period_s = 0.0
