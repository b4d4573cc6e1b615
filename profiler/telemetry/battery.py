"""Laptop battery discharge: ``/sys/class/power_supply/BAT*`` power while on battery.

Owns reading ``power_now`` (µW) or, where the driver reports no power, ``current_now`` (µA) x ``voltage_now``
(µV). Some drivers report discharge as a negative current or power, so magnitudes are used. ``energy_now`` is
too coarse (often 1 Wh steps) to serve as a counter; power samples are integrated instead. The battery measures
the whole laptop and only while discharging; on AC power it reports itself unavailable. The root is a parameter.
"""

from __future__ import annotations

from pathlib import Path

from profiler.telemetry.common import PowerSamplesOnly, Reading, SensorStatus

DEFAULT_ROOT = Path("/sys/class/power_supply")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_text(path: Path, default: str) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def battery_power_w(battery: Path) -> float | None:
    """Discharge power of one battery in watts: ``power_now``, else ``current_now`` x ``voltage_now``."""
    p = _read_int(battery / "power_now")
    if p is not None:
        return abs(p) / 1e6
    i, v = _read_int(battery / "current_now"), _read_int(battery / "voltage_now")
    if i is None or v is None:
        return None
    return abs(i) * abs(v) / 1e12


class BatterySensor(PowerSamplesOnly):
    """Whole-system power from the battery's discharge rate."""

    name = "battery"
    source = "measured:battery"

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.batteries = sorted(self.root.glob("BAT*")) if self.root.is_dir() else []

    def status(self) -> SensorStatus:
        """Available only with a battery that is discharging and reports its power."""
        if not self.batteries:
            return SensorStatus(name=self.name, available=False, detail=f"no battery under {self.root}")
        states = [_read_text(b / "status", "Unknown") for b in self.batteries]
        if "Discharging" not in states:
            return SensorStatus(
                name=self.name, available=False,
                detail=f"battery is {states[0].lower()}, not discharging; unplug AC to measure laptop energy",
            )
        if all(battery_power_w(b) is None for b in self.batteries):
            return SensorStatus(
                name=self.name, available=False,
                detail="battery reports neither power_now nor current_now and voltage_now",
            )
        return SensorStatus(name=self.name, available=True, detail=f"{len(self.batteries)} battery, discharging")

    def read(self) -> Reading:
        """Discharge power in watts, summed over batteries (None if none reports it)."""
        powers = [p for p in (battery_power_w(b) for b in self.batteries) if p is not None]
        return {"power_w": sum(powers) if powers else None}
