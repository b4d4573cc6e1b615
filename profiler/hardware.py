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

from profiler.engine.backends import llama_backends as llama_backends
from profiler.profiles import CpuSpec, GpuSpec, HardwareProfile, PowerSpec
from profiler.schema.host import Backends as Backends
from profiler.schema.host import GpuInfo as GpuInfo
from profiler.schema.host import HostProfile as HostProfile
from profiler.telemetry import nvml
from profiler.telemetry.estimate import cpu_tdp_w


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
