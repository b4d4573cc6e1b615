"""Energy over a measurement window, as the telemetry sampler produces it and the run record stores it."""

from __future__ import annotations

from profiler.schema.base import Strict


class Energy(Strict):
    """Energy over a measurement window; ``source`` says how it was obtained (``measured:rapl``,
    ``measured:nvml+estimated:tdp``, ``estimated:tdp`` …) and ``components`` gives joules per source."""

    energy_j: float | None
    above_idle_j: float | None = None
    duration_s: float | None = None
    mean_power_w: float | None = None
    idle_power_w: float | None = None
    source: str
    components: dict[str, float] = {}
    cross_check_j: float | None = None
    cross_check_source: str | None = None
    notes: list[str] = []
