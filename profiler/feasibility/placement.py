"""Memory fit on a declared profile: weights + KV cache + compute buffer + OS reserve against VRAM and RAM.

Owns the choice of placement for one (model, context, parallel) on a profile: full GPU offload if it fits,
else the most layers that fit (partial offload), else CPU only, else nothing, with the reason. It reuses
``profiler.memory.plan`` for the byte counts and must not predict speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from profiler import memory
from profiler.feasibility.assumptions import Assumptions
from profiler.profiles import HardwareProfile
from profiler.schema.model import ModelFile

GB = 1e9  # profile memory sizes are decimal GB, as `hfp hardware --save` writes them
Placement = Literal["full_offload", "partial_offload", "cpu"]


@dataclass(frozen=True)
class Candidate:
    """A configuration that fits: where the layers go, how many sequences, the context and the memory plan."""

    placement: Placement
    n_gpu_layers: int
    parallel: int
    n_ctx: int
    plan: memory.MemoryPlan

    def describe(self, n_layers: int) -> str:
        """``full offload, 8 parallel, n_ctx 16384`` and the like."""
        where = {"full_offload": "full GPU offload", "cpu": "CPU only"}.get(
            self.placement, f"partial offload ({min(self.n_gpu_layers, n_layers)}/{n_layers} layers on GPU)"
        )
        return f"{where}, {self.parallel} parallel, n_ctx {self.n_ctx}"


def limits(profile: HardwareProfile, assumptions: Assumptions) -> tuple[int | None, int | None]:
    """Bytes of RAM available to the model, and of GPU memory (None without a GPU). None also means "not
    declared": a GPU profile may omit ``cpu.ram_gb`` (then only full offload is placed; a unified-memory GPU's
    pool is its ``vram_gb``) or ``gpu.vram_gb`` (then GPU memory is not checked)."""
    ram_gb = profile.cpu.ram_gb
    gpu = profile.gpu
    if ram_gb is None and gpu is not None and gpu.unified_memory:
        ram_gb = gpu.vram_gb
    ram = int((ram_gb - assumptions.os_reserve_gb) * GB) if ram_gb is not None else None
    if gpu is None:
        return ram, None
    vram_gb = gpu.vram_gb
    if gpu.unified_memory and vram_gb is not None and ram_gb is not None:
        vram_gb = min(vram_gb, ram_gb - assumptions.os_reserve_gb)
    return ram, int((vram_gb - assumptions.vram_reserve_gb) * GB) if vram_gb is not None else None


def cpu_declared(profile: HardwareProfile) -> bool:
    """Whether the profile declares the CPU memory (size and bandwidth) that partial offload and CPU use need."""
    return profile.cpu.ram_gb is not None and profile.cpu.ram_bandwidth_gbps is not None


def plan_on(
    model: ModelFile, profile: HardwareProfile, n_ctx: int, parallel: int, n_gpu_layers: int, assumptions: Assumptions
) -> memory.MemoryPlan:
    """``memory.plan`` against the profile's memory; unified memory counts GPU and CPU bytes in one pool."""
    ram, vram = limits(profile, assumptions)
    unified = profile.gpu is not None and profile.gpu.unified_memory
    p = memory.plan(
        model, n_ctx=n_ctx, n_parallel=parallel, n_gpu_layers=n_gpu_layers, n_ubatch=assumptions.n_ubatch,
        type_k=assumptions.type_k, type_v=assumptions.type_v, flash_attn=assumptions.flash_attn,
        ram_available=None if unified and n_gpu_layers else ram, vram_available=vram,
        cpu_features=memory.CpuFeatures.guess(profile.cpu.model),  # which weights a CPU tier repacks (memory.py)
    )
    if unified and n_gpu_layers and p.fits and ram is not None and p.ram_bytes + p.vram_bytes > ram:
        need = (p.ram_bytes + p.vram_bytes) / memory.GiB
        return p.model_copy(update={"fits": False, "reason": f"needs {need:.2f} GiB of unified memory, "
                                                              f"{ram / memory.GiB:.2f} GiB free"})
    return p


def best_placement(
    model: ModelFile, profile: HardwareProfile, ctx_per_seq: int, parallel: int, assumptions: Assumptions
) -> Candidate | memory.MemoryPlan:
    """The fastest placement that fits (full > partial with the most layers > CPU), or the CPU plan that failed."""
    n_ctx = max(ctx_per_seq * parallel, 1)
    if profile.gpu is not None:
        full = plan_on(model, profile, n_ctx, parallel, model.n_layers + 1, assumptions)
        if full.fits:
            return Candidate("full_offload", model.n_layers + 1, parallel, n_ctx, full)
        if not cpu_declared(profile):  # no CPU memory declared: the model goes on the GPU or nowhere
            return full
        lo, hi, best = 1, model.n_layers - 1, None
        while lo <= hi:  # more layers on the GPU never needs less VRAM: bisect for the most that fit
            mid = (lo + hi) // 2
            p = plan_on(model, profile, n_ctx, parallel, mid, assumptions)
            if p.fits:
                best, lo = (mid, p), mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return Candidate("partial_offload", best[0], parallel, n_ctx, best[1])
    cpu = plan_on(model, profile, n_ctx, parallel, 0, assumptions)
    if cpu.fits:
        return Candidate("cpu", 0, parallel, n_ctx, cpu)
    return cpu
