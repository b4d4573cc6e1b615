"""Declared hardware profiles: the consumer tiers a campaign is estimated on (``hardware_profiles/*.yaml``).

Owns the profile schema and loading by name or path. It must not predict performance (``feasibility`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from profiler.config import load_named

PROFILES_DIR = Path(__file__).resolve().parent.parent / "hardware_profiles"


class CpuSpec(BaseModel):
    """The CPU and system memory of a profile."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    cores: int = Field(gt=0)
    ram_gb: float = Field(gt=0)
    ram_bandwidth_gbps: float = Field(gt=0, description="peak system-memory bandwidth, GB/s")
    tflops: float = Field(gt=0, description="approximate dense FP32/FP16 CPU TFLOPS")


class GpuSpec(BaseModel):
    """An accelerator of a profile; unified-memory GPUs share ``cpu.ram_gb``."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    backend: Literal["cuda", "rocm", "metal", "vulkan", "sycl"]
    vram_gb: float = Field(gt=0)
    bandwidth_gbps: float = Field(gt=0)
    fp16_tflops: float = Field(gt=0)
    unified_memory: bool = False


class PowerSpec(BaseModel):
    """Wall or package power of the whole device."""

    model_config = ConfigDict(extra="forbid")

    load_w: float = Field(gt=0)
    idle_w: float = Field(ge=0)


class EfficiencySpec(BaseModel):
    """Declared llama.cpp efficiencies for a profile whose backend has no public or local calibration."""

    model_config = ConfigDict(extra="forbid")

    eta_bw: float = Field(gt=0, le=1, description="fraction of peak bandwidth decode achieves")
    eta_f: float = Field(gt=0, le=1, description="fraction of peak FLOPS prefill achieves")
    t0_s: float = Field(default=0.0, ge=0, description="fixed time per decode step (launches, sync)")
    source: str


class HardwareProfile(BaseModel):
    """A declared hardware tier."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tier: str
    description: str | None = None
    price_usd: float = Field(ge=0)
    cpu: CpuSpec
    gpu: GpuSpec | None = None
    power: PowerSpec
    sources: list[str] = Field(min_length=1)
    efficiency: EfficiencySpec | None = Field(
        default=None, description="used only where neither a local calibration nor public results cover the backend"
    )
    measured: dict[str, str] | None = Field(
        default=None, description="for profiles written by `hfp hardware --save`: which fields were measured"
    )


def load(name_or_path: str | Path) -> HardwareProfile:
    """A profile by file path or by name (file stem) in ``hardware_profiles/``."""
    return load_named(name_or_path, PROFILES_DIR, HardwareProfile, "hardware profile")


def load_all(directory: Path = PROFILES_DIR) -> dict[str, HardwareProfile]:
    """Every profile in a folder, keyed by file stem."""
    return {p.stem: load(p) for p in sorted(directory.glob("*.yaml"))}


def load_many(names_or_paths: list[str] | tuple[str, ...]) -> dict[str, HardwareProfile]:
    """The named profiles (names or paths; ``all`` or nothing means every shipped one), keyed by file stem."""
    if not names_or_paths or "all" in names_or_paths:
        return load_all()
    return {Path(n).stem: load(n) for n in names_or_paths}
