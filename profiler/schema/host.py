"""The machine a run was measured on: CPU, RAM, GPUs and what the installed llama.cpp build can do.

``profiler.hardware`` detects it; the run record stores it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from profiler.schema.base import Strict


class GpuInfo(Strict):
    """One GPU as NVML reports it."""

    index: int
    name: str
    vram_total_bytes: int
    vram_free_bytes: int = Field(description="free when hfp read it: other processes hold the rest")
    power_limit_w: float | None = Field(default=None, description="the enforced limit; None where NVML has none")
    driver: str | None = None
    energy_counter: bool = False


class Backends(BaseModel):
    """What the installed llama.cpp build can do."""

    llama_cpp_python: str | None = None
    gpu_offload: bool = False
    mmap: bool = False
    mlock: bool = False
    system_info: str | None = None
    cpu_kernels: list[str] = []  # CPU features the build uses (llama_print_system_info), e.g. AVX2, AMX_INT8
    cpu_amx_flags: list[str] = []  # AMX features this CPU advertises (/proc/cpuinfo)
    selfcheck: str | None = None  # the cached llama.cpp self-check verdict (profiler.engine.selfcheck), if any
    extra_bufts_ok: bool | None = None  # whether extra buffer types (repack, AMX) decode here; None: not checked


class HostProfile(Strict):
    """The machine a run was measured on."""

    hostname: str
    os: str
    python: str
    cpu_model: str
    physical_cores: int
    logical_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: list[GpuInfo] = []
    memory_bandwidth_gbps: float | None = None
    memory_bandwidth_source: str = "not measured"
    cpu_gflops: float | None = None
    cpu_gflops_source: str = "not measured"
    backends: Backends = Backends()
    tdp_w: float | None = None
