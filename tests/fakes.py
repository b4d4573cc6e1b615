"""Every fake in the test suite, and only for hardware this machine lacks: RAPL and battery files under a fake
``/sys``, and NVIDIA GPUs behind NVML.

- ``FakeSysfs`` builds the parts of ``/sys/class`` that hfp reads: ``powercap/intel-rapl:N`` zones (``name``,
  ``energy_uj``, ``max_energy_range_uj``; ``core`` and ``dram`` subzones; a settable counter that wraps like the
  kernel's) and ``power_supply/BAT0`` (``status``, ``power_now``/``energy_now`` or ``current_now`` and
  ``voltage_now``). The real sensors are pointed at it through their ``root`` parameters.
- ``FakeNvml`` mirrors the pynvml functions ``profiler.telemetry.nvml`` calls, returning pynvml's own
  structures and raising pynvml's own errors. ``patch_nvml`` (and the ``fake_nvml`` fixture) patch ``pynvml``
  where hfp imports it, with ``autospec=True``, so a call with the wrong arguments or to a function pynvml does
  not have fails as it would on a real GPU; the fake only supplies the answers.

llama.cpp, psutil and the process are never faked.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pynvml
import pytest

from profiler.telemetry import nvml

MiB = 1024**2
GiB = 1024**3

# max_energy_range_uj of a typical Intel package zone (2^32 energy units of 61 µJ).
RAPL_MAX_RANGE_UJ = 262_143_328_850


# --- a fake /sys -------------------------------------------------------------------------------------------


class FakeRaplZone:
    """One powercap zone directory; ``energy_uj`` wraps at ``max_energy_range_uj`` as the kernel's does."""

    def __init__(self, path: Path, name: str, energy_uj: int, max_energy_range_uj: int) -> None:
        self.path = path
        path.mkdir(parents=True)
        (path / "name").write_text(f"{name}\n")
        (path / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (path / "enabled").write_text("1\n")
        self.max_energy_range_uj = max_energy_range_uj
        self.set_uj(energy_uj)

    @property
    def energy_uj(self) -> int:
        """The counter as the file holds it now."""
        return int((self.path / "energy_uj").read_text())

    def set_uj(self, value: int) -> None:
        """Write the raw counter."""
        (self.path / "energy_uj").write_text(f"{value}\n")

    def add_joules(self, joules: float) -> None:
        """Consume energy: the counter advances and wraps past ``max_energy_range_uj``."""
        self.set_uj((self.energy_uj + round(joules * 1e6)) % self.max_energy_range_uj)

    def deny_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make ``energy_uj`` unreadable, as Linux >= 5.10 does for non-root users.

        The file mode becomes 000, which stops any non-root reader. Root ignores file modes, so reading that one
        path through ``Path.read_text`` also raises the ``PermissionError`` (EACCES) the kernel gives a user;
        every other path reads normally.
        """
        target = self.path / "energy_uj"
        target.chmod(0)
        real_read_text = Path.read_text

        def read_text(path: Path, *args: Any, **kwargs: Any) -> str:
            if Path(path) == target:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_read_text(path, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", read_text)


@dataclass
class FakeRaplPackage:
    """A package zone and its subzones."""

    package: FakeRaplZone
    core: FakeRaplZone
    dram: FakeRaplZone | None


class FakeBattery:
    """``/sys/class/power_supply/BATn``; values in the kernel's units (µW, µWh, µA, µV)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        (path / "type").write_text("Battery\n")

    def set(self, **values: int | str | None) -> None:
        """Write files, e.g. ``set(status="Discharging", power_now=12_000_000)``; None removes a file."""
        for key, value in values.items():
            if value is None:
                (self.path / key).unlink(missing_ok=True)
            else:
                (self.path / key).write_text(f"{value}\n")


class FakeSysfs:
    """A ``/sys`` tree under a temporary folder: pass ``root`` as ``sys_root`` (or its ``powercap`` /
    ``power_supply`` folders to the sensors)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.powercap = root / "class" / "powercap"
        self.power_supply = root / "class" / "power_supply"
        self.powercap.mkdir(parents=True)
        self.power_supply.mkdir(parents=True)

    def add_rapl_package(self, index: int = 0, energy_uj: int = 1_000_000, dram: bool = True,
                         max_energy_range_uj: int = RAPL_MAX_RANGE_UJ, name: str | None = None) -> FakeRaplPackage:
        """``intel-rapl:N`` (``package-N``) with a ``core`` subzone and, if asked, a ``dram`` one, laid out as
        the kernel does: subzones inside the package folder and linked beside it."""
        (self.powercap / "intel-rapl").mkdir(exist_ok=True)  # the control type folder, not a zone
        top = f"intel-rapl:{index}"
        package = FakeRaplZone(self.powercap / top, name or f"package-{index}", energy_uj, max_energy_range_uj)
        subzones = []
        for i, sub in enumerate(["core", "dram"] if dram else ["core"]):
            zone = FakeRaplZone(package.path / f"{top}:{i}", sub, energy_uj // 2, max_energy_range_uj)
            (self.powercap / zone.path.name).symlink_to(zone.path)
            subzones.append(zone)
        return FakeRaplPackage(package=package, core=subzones[0], dram=subzones[1] if dram else None)

    def add_ac(self, online: bool) -> None:
        """The mains adapter (``AC``), which the battery sensor must ignore."""
        (self.power_supply / "AC").mkdir()
        (self.power_supply / "AC" / "online").write_text(f"{int(online)}\n")

    def add_battery(self, name: str = "BAT0", status: str = "Discharging", power_uw: int | None = None,
                    energy_uwh: int | None = 40_000_000, current_ua: int | None = None,
                    voltage_uv: int | None = None) -> FakeBattery:
        """A battery; give ``power_uw`` or ``current_ua`` with ``voltage_uv`` (drivers report one or the other)."""
        battery = FakeBattery(self.power_supply / name)
        battery.set(status=status, power_now=power_uw, energy_now=energy_uwh, current_now=current_ua,
                    voltage_now=voltage_uv)
        return battery


# --- a fake NVML -------------------------------------------------------------------------------------------


@dataclass
class FakeProcess:
    """A compute process on a GPU, with the attributes of pynvml's process info."""

    pid: int
    usedGpuMemory: int | None  # noqa: N815 - pynvml's name


class FakeGpu:
    """One NVIDIA card. Power is set in watts; the energy counter integrates it over ``clock`` and, like the
    real one, publishes a new value only every ``counter_period_s``."""

    def __init__(
        self, name: str = "NVIDIA GeForce RTX 4060", total_bytes: int = 8 * GiB, used_bytes: int = 700 * MiB,
        power_w: float = 20.0, power_limit_w: float | None = 115.0, energy_counter: bool = True,
        counter_period_s: float = 0.1, process_vram_bytes: int | None = 512 * MiB, per_process: bool = True,
        other_processes: list[FakeProcess] | None = None, clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.name, self.total_bytes, self.used_bytes = name, total_bytes, used_bytes
        self.power_limit_w, self.energy_counter, self.counter_period_s = power_limit_w, energy_counter, counter_period_s
        self.process_vram_bytes, self.per_process = process_vram_bytes, per_process
        self.other_processes = other_processes or []
        self.clock = clock
        self._power_mw = power_w * 1000
        self._t = self._t0 = clock()
        self._updates = 0  # counter updates published so far; the next is due at t0 + (updates + 1) x period
        self._true_mj = 123_456_789.0  # the counter counts from driver load, not from zero
        self._published_mj = self._true_mj

    def _settle(self) -> None:
        t = self.clock()
        while (due := self._t0 + (self._updates + 1) * self.counter_period_s) <= t + 1e-9:
            self._true_mj += self._power_mw * max(due - self._t, 0.0)
            self._t = max(due, self._t)
            self._published_mj = self._true_mj
            self._updates += 1
        self._true_mj += self._power_mw * (t - self._t)
        self._t = t

    @property
    def power_w(self) -> float:
        """Board power now."""
        return self._power_mw / 1000

    @power_w.setter
    def power_w(self, watts: float) -> None:
        self._settle()
        self._power_mw = watts * 1000

    @property
    def true_energy_j(self) -> float:
        """Energy since driver load, including what the counter has not published yet."""
        self._settle()
        return self._true_mj / 1000

    def counter_mj(self) -> int:
        """What ``nvmlDeviceGetTotalEnergyConsumption`` returns now."""
        self._settle()
        return round(self._published_mj)

    def processes(self, pid: int) -> list[FakeProcess]:
        """Compute processes: this process (if it holds VRAM) and any others."""
        mine = [FakeProcess(pid, self.process_vram_bytes)] if self.process_vram_bytes is not None else []
        return mine + self.other_processes


class FakeNvml:
    """The pynvml functions hfp calls, answering for ``gpus``; errors are pynvml's own exception classes."""

    FUNCTIONS = (
        "nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName",
        "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetPowerManagementLimit", "nvmlSystemGetDriverVersion",
    )

    def __init__(self, gpus: list[FakeGpu] | None = None, driver: str = "550.54.14",
                 init_error: Exception | None = None, pid: int | None = None) -> None:
        self.gpus = [FakeGpu()] if gpus is None else gpus
        self.driver, self.init_error = driver, init_error
        self.pid = pid or os.getpid()

    def _gpu(self, handle: Any) -> FakeGpu:
        if not isinstance(handle, FakeGpu):
            raise pynvml.NVMLError_InvalidArgument()
        return handle

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> pynvml.c_nvmlMemory_t:
        gpu = self._gpu(handle)
        return pynvml.c_nvmlMemory_t(total=gpu.total_bytes, free=gpu.total_bytes - gpu.used_bytes,
                                     used=gpu.used_bytes)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return round(self._gpu(handle).power_w * 1000)  # milliwatts

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        gpu = self._gpu(handle)
        if not gpu.energy_counter:  # before Volta
            raise pynvml.NVMLError_NotSupported()
        return gpu.counter_mj()  # millijoules since driver load

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[FakeProcess]:
        gpu = self._gpu(handle)
        if not gpu.per_process:
            raise pynvml.NVMLError_NotSupported()
        return gpu.processes(self.pid)

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:
        gpu = self._gpu(handle)
        if gpu.power_limit_w is None:
            raise pynvml.NVMLError_NotSupported()
        return round(gpu.power_limit_w * 1000)

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def install(self, module: Any) -> None:
        """Answer for ``module`` (an autospec of pynvml): each function's side effect is the fake's method, and
        the error classes stay pynvml's real ones so that ``except pynvml.NVMLError`` works."""
        for name in self.FUNCTIONS:
            getattr(module, name).side_effect = getattr(self, name)
        for name in dir(pynvml):
            if name.startswith("NVMLError"):
                setattr(module, name, getattr(pynvml, name))


@contextmanager
def patch_nvml(fake: FakeNvml) -> Iterator[FakeNvml]:
    """Patch ``pynvml`` where ``profiler.telemetry.nvml`` imports it, with ``autospec=True``, answered by
    ``fake``; NVML's cached availability check is cleared on the way in and out."""
    nvml.available.cache_clear()
    try:
        with mock.patch("profiler.telemetry.nvml.pynvml", autospec=True) as module:
            fake.install(module)
            yield fake
    finally:
        nvml.available.cache_clear()


@pytest.fixture
def fake_nvml() -> Iterator[FakeNvml]:
    """NVML with one fake RTX 4060 (8 GiB, energy counter, per-process VRAM for this process).

    Change ``fake_nvml.gpus`` (or a GPU's fields) in the test before creating sensors. Import it into a test
    module as ``fake_nvml = fakes.fake_nvml``.
    """
    with patch_nvml(FakeNvml()) as fake:
        yield fake


@pytest.fixture
def fake_sys(tmp_path: Path) -> FakeSysfs:
    """An empty fake ``/sys`` (no RAPL zone, no battery) to add hardware to."""
    return FakeSysfs(tmp_path / "sys")
