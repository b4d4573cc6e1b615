"""The host: CPU, RAM, GPUs, OS, llama.cpp backends and a measured memory bandwidth.

Owns detection of this machine and its conversion into a ``HardwareProfile`` (``hfp hardware --save``). It must
not run models; NVML access goes through ``profiler.telemetry.nvml`` so there is one place that talks to it.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from pydantic import BaseModel, ConfigDict

from profiler.profiles import CpuSpec, GpuSpec, HardwareProfile, PowerSpec
from profiler.telemetry import nvml


class GpuInfo(BaseModel):
    """One GPU as NVML reports it."""

    model_config = ConfigDict(extra="forbid")

    index: int
    name: str
    vram_total_bytes: int
    vram_free_bytes: int
    power_limit_w: float | None = None
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


class HostProfile(BaseModel):
    """The machine a run was measured on."""

    model_config = ConfigDict(extra="forbid")

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


def cpu_model(proc: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name."""
    try:
        for line in proc.read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_bandwidth_gbps(size_mb: int = 256, repeats: int = 5, threads: int | None = None) -> float:
    """Memory bandwidth from parallel NumPy copies (read + write bytes / best time), like STREAM's copy."""
    threads = threads or psutil.cpu_count(logical=False) or 1
    n = size_mb * 1024 * 1024 // 8 // threads
    src = [np.ones(n) for _ in range(threads)]
    dst = [np.empty(n) for _ in range(threads)]
    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=np.copyto, args=(d, s)) for d, s in zip(dst, src)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    return 2 * n * 8 * threads / best / 1e9


def measure_gflops(n: int = 1024, repeats: int = 3) -> float:
    """Dense FP32 matrix-multiply rate with NumPy's BLAS, a rough ceiling for llama.cpp's CPU prefill."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def llama_backends() -> Backends:
    """Ask the installed llama.cpp what it supports (offload is what a CUDA/Metal/Vulkan build adds)."""
    try:
        import llama_cpp
    except ImportError:
        return Backends()
    from profiler.engine import selfcheck  # lazily: the engine package imports the record, which imports this

    info = llama_cpp.llama_print_system_info()
    system_info = info.decode(errors="replace").strip() if isinstance(info, bytes) else str(info)
    verdict = selfcheck.cached_verdict()
    return Backends(
        llama_cpp_python=getattr(llama_cpp, "__version__", None),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        mmap=bool(llama_cpp.llama_supports_mmap()),
        mlock=bool(llama_cpp.llama_supports_mlock()),
        system_info=system_info,
        cpu_kernels=selfcheck.cpu_kernels(system_info),
        cpu_amx_flags=[f for f in selfcheck.cpu_flags()[1] if f.startswith("amx")],
        selfcheck=verdict.summary() if verdict else None,
        extra_bufts_ok=verdict.extra_bufts_ok if verdict else None,
    )


def amx_status(b: Backends) -> str:
    """Whether llama.cpp's AMX kernels are built and usable here, in words."""
    built = any(k.startswith("AMX") for k in b.cpu_kernels)
    cpu = f"CPU has {' '.join(b.cpu_amx_flags)}" if b.cpu_amx_flags else "CPU has no AMX"
    if not built:
        return f"not in this build ({cpu})"
    if b.extra_bufts_ok is None:
        return f"in this build, {cpu}; not self-checked yet (`python -m profiler.engine.selfcheck`)"
    if b.extra_bufts_ok:
        return f"in this build and usable ({cpu}; self-check passed)"
    return f"in this build but NOT usable ({cpu}; self-check crashed; hfp runs with use_extra_bufts = false)"


def detect(measure: bool = True) -> HostProfile:
    """Describe this machine; ``measure`` adds the bandwidth and GEMM tests (about a second)."""
    vm = psutil.virtual_memory()
    gpus = [GpuInfo(**g) for g in nvml.list_gpus()]
    host = HostProfile(
        hostname=platform.node(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        cpu_model=cpu_model(),
        physical_cores=psutil.cpu_count(logical=False) or os.cpu_count() or 1,
        logical_cores=psutil.cpu_count(logical=True) or 1,
        ram_total_bytes=vm.total,
        ram_available_bytes=vm.available,
        gpus=gpus,
        backends=llama_backends(),
    )
    if measure:
        host.memory_bandwidth_gbps = round(measure_bandwidth_gbps(), 2)
        host.memory_bandwidth_source = "measured:numpy-copy"
        host.cpu_gflops = round(measure_gflops(), 1)
        host.cpu_gflops_source = "measured:numpy-sgemm"
    return host


def to_profile(host: HostProfile, name: str | None = None, price_usd: float = 0.0) -> HardwareProfile:
    """This host as a hardware profile, with its measured fields marked as such."""
    from profiler.telemetry.estimate import cpu_tdp_w

    gpu = None
    if host.gpus:
        g = host.gpus[0]
        gpu = GpuSpec(
            model=g.name, backend="cuda", vram_gb=round(g.vram_total_bytes / 1e9, 2),
            bandwidth_gbps=nvml.spec_bandwidth_gbps(g.name) or 100.0,
            fp16_tflops=nvml.spec_fp16_tflops(g.name) or 10.0,
        )
    tdp = host.tdp_w or cpu_tdp_w(host.physical_cores)
    load = tdp + ((host.gpus[0].power_limit_w or 0.0) if host.gpus else 0.0)
    return HardwareProfile(
        name=name or f"this host ({host.hostname})",
        tier="measured-host",
        description=f"{host.cpu_model}, {host.logical_cores} threads, {host.os}",
        price_usd=price_usd,
        cpu=CpuSpec(
            model=host.cpu_model, cores=host.physical_cores, ram_gb=round(host.ram_total_bytes / 1e9, 2),
            ram_bandwidth_gbps=host.memory_bandwidth_gbps or 20.0, tflops=round((host.cpu_gflops or 100.0) / 1000, 4),
        ),
        gpu=gpu,
        power=PowerSpec(load_w=load, idle_w=round(tdp * 0.15, 1)),
        sources=[f"hfp hardware on {host.hostname}"],
        measured={
            "cpu.ram_bandwidth_gbps": host.memory_bandwidth_source,
            "cpu.tflops": host.cpu_gflops_source,
            "power": "estimated:tdp",
            "gpu": "nvml name + spec table" if gpu else "none",
        },
    )
