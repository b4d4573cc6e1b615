"""Declared hardware profiles: the consumer tiers a campaign is estimated on (``hardware_profiles/*.yaml``).

Owns the profile schema and loading by name or path. It must not predict performance (``feasibility`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from profiler.config import Catalog
from profiler.resources import builtin_dir
from profiler.schema.base import Finite

# Bounds far beyond any real device (and allow_inf_nan=False): a typo such as 5e-324 GB/s is a one-line refusal,
# not a division by zero in the performance model.
PROFILES_DIR = builtin_dir("hardware_profiles")  # the shipped ones; the user's folders add to them (profiler.resources)


class CpuSpec(Finite):
    """The CPU and system memory of a profile."""

    model: str | None = None
    # optional for GPU profiles (a profile may declare only the accelerator's facts); a CPU-only profile needs
    # ram_gb and ram_bandwidth_gbps (checked by HardwareProfile)
    cores: int | None = Field(default=None, gt=0, le=100_000)
    ram_gb: float | None = Field(default=None, ge=0.01, le=1e6)
    ram_bandwidth_gbps: float | None = Field(default=None, ge=0.01, le=1e6,
                                             description="peak system-memory bandwidth, GB/s")
    tflops: float | None = Field(default=None, ge=1e-4, le=1e6, description="approximate dense FP32/FP16 CPU TFLOPS")


class GpuSpec(Finite):
    """An accelerator of a profile; unified-memory GPUs share ``cpu.ram_gb``."""

    model: str | None = None
    backend: Literal["cuda", "rocm", "metal", "vulkan", "sycl"]
    vram_gb: float | None = Field(default=None, ge=0.01, le=1e6, description="None: GPU memory is not checked")
    bandwidth_gbps: float = Field(ge=0.01, le=1e6)
    fp16_tflops: float | None = Field(default=None, ge=1e-4, le=1e6, description="dense FP16; None: not known (prefill "
                                      "is then predicted from bandwidth, see docs/performance-model.md)")
    unified_memory: bool = False


class PowerSpec(Finite):
    """Wall or package power of the whole device."""

    load_w: float = Field(ge=0.1, le=1e7)
    idle_w: float = Field(ge=0, le=1e7)


class EfficiencySpec(Finite):
    """Declared llama.cpp efficiencies for a profile whose backend has no public or local calibration."""

    eta_bw: float = Field(gt=0, le=1, description="fraction of peak bandwidth decode achieves")
    eta_f: float = Field(gt=0, le=1, description="fraction of peak FLOPS prefill achieves")
    t0_s: float = Field(default=0.0, ge=0, le=10, description="fixed time per decode step (launches, sync)")
    source: str


class HardwareProfile(Finite):
    """A declared hardware tier."""

    name: str = "custom profile"
    tier: str = "custom"
    description: str | None = None
    price_usd: float = Field(default=0.0, ge=0, le=1e12)
    cpu: CpuSpec = Field(default_factory=CpuSpec)
    gpu: GpuSpec | None = None
    power: PowerSpec | None = Field(default=None, description="None: no energy figures")
    sources: list[str] = Field(default_factory=list)
    efficiency: EfficiencySpec | None = Field(
        default=None, description="used only where neither a local calibration nor public results cover the backend"
    )
    measured: dict[str, str] | None = Field(
        default=None, description="for profiles written by `hfp hardware --save`: which fields were measured"
    )

    @model_validator(mode="after")
    def _processor(self) -> HardwareProfile:
        if self.gpu is None and (self.cpu.ram_gb is None or self.cpu.ram_bandwidth_gbps is None):
            raise ValueError("a profile without a gpu needs cpu.ram_gb and cpu.ram_bandwidth_gbps")
        return self


_CATALOG = Catalog("hardware_profiles", HardwareProfile, "hardware profile")
load = _CATALOG.load  # a hardware profile by file path, or by name on the search path
sources = _CATALOG.sources  # every hardware profile file on the search path by name, with where it came from
load_all = _CATALOG.load_all  # every hardware profile on the search path (or in one folder), keyed by file stem


def load_many(names_or_paths: list[str] | tuple[str, ...]) -> dict[str, HardwareProfile]:
    """The named profiles (names or paths; ``all`` or nothing means every shipped one), keyed by file stem."""
    if not names_or_paths or "all" in names_or_paths:
        return load_all()
    return {Path(n).stem: load(n) for n in names_or_paths}
