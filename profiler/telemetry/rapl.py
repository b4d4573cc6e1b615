"""Linux powercap RAPL: CPU package (and DRAM) energy counters under ``/sys/class/powercap``.

Owns reading ``energy_uj`` with wrap-around via ``max_energy_range_uj`` and explaining why the counters are
unreadable (since 2020 kernels make them root-only). The root is a parameter so tests use a fake tree.
RAPL measures the whole package, not this process: the sampler subtracts an idle baseline.
"""

from __future__ import annotations

import logging
from pathlib import Path

from profiler.telemetry.common import Reading, SensorStatus

log = logging.getLogger(__name__)
DEFAULT_ROOT = Path("/sys/class/powercap")


class RaplZone:
    """One counter: a package or DRAM zone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = (path / "name").read_text().strip() if (path / "name").exists() else path.name
        self.max_uj = int((path / "max_energy_range_uj").read_text()) if (path / "max_energy_range_uj").exists() else 0
        self.last_uj: int | None = None
        self.total_uj = 0

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())

    def advance(self) -> float:
        """Accumulated joules since the first read, correcting a counter wrap."""
        now = self.read_uj()
        if self.last_uj is not None:
            delta = now - self.last_uj
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += self.max_uj
            self.total_uj += delta
        self.last_uj = now
        return self.total_uj / 1e6


def find_zones(root: Path) -> list[Path]:
    """Package zones (``intel-rapl:N``) and their DRAM subzones, which package energy does not include."""
    zones = []
    for pkg in sorted(root.glob("intel-rapl:*")):
        if pkg.name.count(":") != 1:
            continue
        zones.append(pkg)
        for sub in sorted(pkg.glob(f"{pkg.name}:*")):
            name = (sub / "name").read_text().strip() if (sub / "name").exists() else ""
            if name == "dram":
                zones.append(sub)
    return zones


class RaplSensor:
    """Sum of package and DRAM energy counters."""

    name = "rapl"
    source = "measured:rapl"
    has_energy_counter = True
    counter_period_s = 0.001

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.zones: list[RaplZone] = []
        self._status = self._probe()

    def _probe(self) -> SensorStatus:
        paths = find_zones(self.root) if self.root.is_dir() else []
        if not paths:
            return SensorStatus(name=self.name, available=False, detail=f"no RAPL zones under {self.root}")
        try:
            self.zones = [RaplZone(p) for p in paths]
            for z in self.zones:
                z.read_uj()
        except PermissionError:
            self.zones = []
            return SensorStatus(
                name=self.name, available=False,
                detail=f"RAPL counters under {self.root} are not readable (permission denied); run as root or "
                f"`sudo chmod o+r {self.root}/intel-rapl:*/energy_uj` to measure CPU energy",
            )
        except (OSError, ValueError) as e:
            self.zones = []
            return SensorStatus(name=self.name, available=False, detail=f"RAPL unreadable: {e}")
        names = ", ".join(z.name for z in self.zones)
        return SensorStatus(name=self.name, available=True, detail=f"{len(self.zones)} zones ({names})")

    def status(self) -> SensorStatus:
        """Whether the counters can be read, and if not why."""
        return self._status

    def read(self) -> Reading:
        """Accumulated package + DRAM joules."""
        return {"energy_j": sum(z.advance() for z in self.zones)}
