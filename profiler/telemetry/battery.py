"""Laptop battery discharge: ``/sys/class/power_supply/BAT*`` power and energy while on battery.

Owns reading ``power_now`` (or ``current_now`` x ``voltage_now``) and ``energy_now``. It measures the whole
laptop and only while discharging; on AC power it reports itself unavailable. The root is a parameter.
"""

from __future__ import annotations

from pathlib import Path

from profiler.telemetry.common import Reading, SensorStatus

DEFAULT_ROOT = Path("/sys/class/power_supply")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class BatterySensor:
    """Whole-system power from the battery's discharge rate."""

    name = "battery"
    source = "measured:battery"
    has_energy_counter = False  # energy_now is too coarse (often 1 Wh steps) for a counter; power is integrated
    counter_period_s = 0.0

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.batteries = sorted(self.root.glob("BAT*")) if self.root.is_dir() else []

    def status(self) -> SensorStatus:
        """Available only with a battery that is discharging."""
        if not self.batteries:
            return SensorStatus(name=self.name, available=False, detail=f"no battery under {self.root}")
        states = [(b / "status").read_text().strip() if (b / "status").exists() else "Unknown" for b in self.batteries]
        if "Discharging" not in states:
            return SensorStatus(
                name=self.name, available=False,
                detail=f"battery is {states[0].lower()}, not discharging; unplug AC to measure laptop energy",
            )
        return SensorStatus(name=self.name, available=True, detail=f"{len(self.batteries)} battery, discharging")

    def read(self) -> Reading:
        """Discharge power in watts (None if the battery does not report it)."""
        total = 0.0
        seen = False
        for b in self.batteries:
            p = _read_int(b / "power_now")
            if p is None:
                i, v = _read_int(b / "current_now"), _read_int(b / "voltage_now")
                p = i * v // 1_000_000 if i is not None and v is not None else None
            if p is not None:
                total += p / 1e6
                seen = True
        return {"power_w": total if seen else None}
