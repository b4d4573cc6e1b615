"""Linux powercap RAPL: CPU package (and DRAM) energy counters under ``/sys/class/powercap``.

Owns reading ``energy_uj`` with wrap-around via ``max_energy_range_uj`` and explaining why the counters are
unreadable (since Linux 5.10, after CVE-2020-8694, ``energy_uj`` is readable by root only). The root is a
parameter so tests use a fake tree. RAPL measures the whole package, not this process: the sampler subtracts an
idle baseline. A top-level ``psys`` zone (the whole SoC/platform on some laptops) already contains the package
zones, so it is left out of the sum rather than counted twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from profiler.telemetry.common import Reading, SensorStatus

log = logging.getLogger(__name__)
DEFAULT_ROOT = Path("/sys/class/powercap")


def _zone_name(path: Path) -> str:
    try:
        return (path / "name").read_text().strip()
    except OSError:
        return path.name


class RaplZone:
    """One counter: a package or DRAM zone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = _zone_name(path)
        max_file = path / "max_energy_range_uj"
        self.max_uj = int(max_file.read_text()) if max_file.exists() else 0
        self.last_uj: int | None = None
        self.total_uj = 0

    def read_uj(self) -> int:
        """The raw counter in microjoules."""
        return int((self.path / "energy_uj").read_text())

    def advance(self) -> float:
        """Accumulated joules since the first read, correcting a counter wrap."""
        now = self.read_uj()
        if self.last_uj is not None:
            delta = now - self.last_uj
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                if self.max_uj > 0:
                    delta += self.max_uj
                else:  # the wrap point is unknown: lose this interval rather than count energy backwards
                    log.info("RAPL zone %s wrapped without max_energy_range_uj; interval dropped", self.name)
                    delta = 0
            self.total_uj += delta
        self.last_uj = now
        return self.total_uj / 1e6


def find_zones(root: Path) -> list[Path]:
    """Package zones (``intel-rapl:N``) and their DRAM subzones, which package energy does not include.

    A top-level ``psys`` zone is skipped: it measures the platform including the packages.
    """
    zones = []
    for pkg in sorted(root.glob("intel-rapl:*")):
        if pkg.name.count(":") != 1 or _zone_name(pkg) == "psys":
            continue
        zones.append(pkg)
        for sub in sorted(pkg.glob(f"{pkg.name}:*")):
            if _zone_name(sub) == "dram":
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
            self.zones, r = [], self.root
            return SensorStatus(
                name=self.name, available=False,
                detail=f"RAPL counters under {r} are not readable (permission denied; root-only since Linux "
                f"5.10); to measure CPU energy run as root or `sudo chmod o+r {r}/intel-rapl:*/energy_uj "
                f"{r}/intel-rapl:*/intel-rapl:*:*/energy_uj` (lasts until reboot)",
            )
        except (OSError, ValueError) as e:
            self.zones = []
            return SensorStatus(name=self.name, available=False, detail=f"RAPL unreadable under {self.root}: {e}")
        names = ", ".join(z.name for z in self.zones)
        return SensorStatus(name=self.name, available=True, detail=f"{len(self.zones)} zones ({names})")

    def status(self) -> SensorStatus:
        """Whether the counters can be read, and if not why."""
        return self._status

    def read(self) -> Reading:
        """Accumulated package + DRAM joules since the first read."""
        return {"energy_j": sum(z.advance() for z in self.zones)}
