"""NVIDIA GPUs through NVML: VRAM (of this process where the driver says, else device-wide), power and the
total-energy counter (Volta and newer).

Owns every call into ``pynvml`` (from nvidia-ml-py); its errors are translated here. Availability is checked
once and cached; a machine without NVIDIA GPUs simply has no NVML sensor. NVML measures the whole card: the
sampler subtracts an idle baseline. Its energy counter updates every 20-100 ms, so short windows also get
integrated power samples (as ml-energy/zeus does).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from profiler.telemetry.common import Reading, SensorStatus

try:
    import pynvml
except ImportError:  # pragma: no cover - nvidia-ml-py is a dependency
    pynvml = None

log = logging.getLogger(__name__)

# Published memory bandwidth (GB/s) and dense FP16 tensor TFLOPS, for `hfp hardware --save` profiles.
_GPU_SPECS: dict[str, tuple[float, float]] = {
    "H200": (4800, 989), "H100 SXM": (3350, 989), "H100 PCIe": (2000, 756), "H100 NVL": (3900, 835),
    "H100": (3350, 989), "A100-SXM4-80GB": (2039, 312), "A100": (1555, 312), "V100": (900, 125),
    "RTX 5090": (1792, 209), "RTX 4090": (1008, 165), "RTX 4080": (717, 97), "RTX 4070": (504, 58),
    "RTX 4060 Ti": (288, 44), "RTX 4060": (272, 30), "RTX 3090": (936, 71), "RTX 3080": (760, 59),
    "RTX 3060": (360, 51), "L4": (300, 121), "T4": (320, 65),
}


def _spec(name: str) -> tuple[float, float] | None:
    for key in sorted(_GPU_SPECS, key=len, reverse=True):
        if key.lower() in name.lower():
            return _GPU_SPECS[key]
    return None


def spec_bandwidth_gbps(name: str) -> float | None:
    """Published memory bandwidth of a GPU model, if known."""
    s = _spec(name)
    return s[0] if s else None


def spec_fp16_tflops(name: str) -> float | None:
    """Published dense FP16 tensor TFLOPS of a GPU model, if known."""
    s = _spec(name)
    return s[1] if s else None


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether NVML initialises here (logged at INFO when not; never raises)."""
    if pynvml is None:
        return False
    try:
        pynvml.nvmlInit()
        return bool(pynvml.nvmlDeviceGetCount())
    except Exception as e:  # pynvml.NVMLError and library-load failures
        log.info("NVML unavailable: %s", e)
        return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def list_gpus() -> list[dict[str, Any]]:
    """Every NVIDIA GPU: index, name, VRAM total/free, power limit, driver, energy-counter support.

    A GPU that NVML lists but cannot describe (lost, in reset) is left out and logged at INFO.
    """
    if not available():
        return []
    gpus = []
    driver = _try(pynvml.nvmlSystemGetDriverVersion)
    for i in range(_try(pynvml.nvmlDeviceGetCount) or 0):
        try:
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = _text(pynvml.nvmlDeviceGetName(h))
        except Exception as e:  # pynvml.NVMLError
            log.info("NVML GPU %d unreadable: %s", i, e)
            continue
        limit = _try(pynvml.nvmlDeviceGetPowerManagementLimit, h)
        gpus.append({
            "index": i, "name": name, "vram_total_bytes": int(mem.total),
            "vram_free_bytes": int(mem.free), "power_limit_w": limit / 1000 if limit else None,
            "driver": _text(driver) if driver else None,
            "energy_counter": _try(pynvml.nvmlDeviceGetTotalEnergyConsumption, h) is not None,
        })
    return gpus


class NvmlSensor:
    """One GPU: power, energy counter, VRAM of this process (or of the device, labelled).

    ``vram_source`` is ``measured:nvml-process`` while the driver reports this process's memory, and becomes
    ``measured:nvml-device`` (device-wide used memory, other processes included) from the first sample of a
    window where it does not (no per-process accounting, or a container whose PIDs the driver does not see), so
    a window's peak is never labelled more precisely than its least precise sample.
    """

    name = "nvml"
    source = "measured:nvml"
    counter_period_s = 0.1  # NVML's energy counter updates every 20-100 ms

    def __init__(self, index: int = 0, pid: int | None = None) -> None:
        self.index, self.pid = index, pid or os.getpid()
        self.handle: Any = None
        self._detail = "no NVIDIA GPU / NVML here"
        if available():
            try:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            except Exception as e:  # pynvml.NVMLError_InvalidArgument for an index past the last GPU
                count = _try(pynvml.nvmlDeviceGetCount)
                self._detail = f"GPU {index} not found (NVML sees {count} GPU(s)): {e}"
        start = _try(pynvml.nvmlDeviceGetTotalEnergyConsumption, self.handle) if self.handle is not None else None
        self.has_energy_counter = start is not None
        self.start_mj = start or 0
        self.vram_source = "measured:nvml-process"

    def begin_window(self) -> None:
        """Start a new measurement window: the VRAM label is decided afresh by this window's samples."""
        self.vram_source = "measured:nvml-process"

    def status(self) -> SensorStatus:
        """Available when NVML sees GPU ``index``."""
        if self.handle is None:
            return SensorStatus(name=self.name, available=False, detail=self._detail)
        counter = "with energy counter" if self.has_energy_counter else "power samples only"
        return SensorStatus(name=self.name, available=True, detail=f"GPU {self.index} ({counter})")

    def process_vram_bytes(self) -> float | None:
        """VRAM used by this process; None where the driver does not report per-process use."""
        procs = _try(pynvml.nvmlDeviceGetComputeRunningProcesses, self.handle) or []
        used = [p.usedGpuMemory for p in procs if p.pid == self.pid and p.usedGpuMemory]
        return float(sum(used)) if used else None

    def device_vram_bytes(self) -> float | None:
        """VRAM used on the whole device (every process)."""
        mem = _try(pynvml.nvmlDeviceGetMemoryInfo, self.handle)
        return float(mem.used) if mem is not None else None

    def read(self) -> Reading:
        """Power (W), energy since start (J), VRAM (bytes; per process, else device-wide)."""
        power = _try(pynvml.nvmlDeviceGetPowerUsage, self.handle)  # milliwatts
        reading: Reading = {"power_w": power / 1000 if power is not None else None}
        if self.has_energy_counter:
            mj = _try(pynvml.nvmlDeviceGetTotalEnergyConsumption, self.handle)  # millijoules since driver load
            reading["energy_j"] = (mj - self.start_mj) / 1000 if mj is not None else None
        vram = self.process_vram_bytes()
        if vram is None:
            vram = self.device_vram_bytes()
            if vram is not None:
                self.vram_source = "measured:nvml-device"
        reading["vram_bytes"] = vram
        return reading
