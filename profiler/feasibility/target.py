"""A hardware profile as the roofline sees it: devices with effective bandwidth and FLOPS, and their sources.

Owns the choice of efficiency factors for each processor of a profile, in DESIGN.md's order: the local
calibration when its backend matches, else the public per-backend factors, else the profile's own declared
efficiency, else the public factors pooled over all backends. It must not choose configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.feasibility.calibration import Calibration
from profiler.feasibility.efficiency import POOLED, Efficiency, public_efficiencies
from profiler.feasibility.model import Device, ModelShape, Part, split
from profiler.feasibility.placement import Candidate
from profiler.profiles import HardwareProfile


def resolve(
    backend: str, profile: HardwareProfile, calibration: Calibration | None, public: dict[str, Efficiency],
    min_sigma: float = 0.0,
) -> Efficiency:
    """Efficiencies for ``backend`` on ``profile``: local calibration > public backend > profile > pooled."""
    if calibration is not None and calibration.backend == backend:
        local = calibration.efficiency(min_sigma)
        if local is not None:
            return local
    if backend in public and public[backend].source_bw == f"public-{backend}":
        return public[backend]
    pooled = public[POOLED]
    declared = profile.efficiency
    if declared is not None and backend != "cpu":
        return Efficiency(
            backend=backend, eta_bw=declared.eta_bw, eta_f=declared.eta_f, t0_s=declared.t0_s,
            sigma_bw=pooled.sigma_bw, sigma_f=pooled.sigma_f, source_bw="profile", source_f="profile",
        )
    return pooled.model_copy(update={"backend": backend})


@dataclass(frozen=True)
class Target:
    """The processors of a profile with the efficiencies that apply to them."""

    profile: HardwareProfile
    cpu: Device
    cpu_eff: Efficiency
    gpu: Device | None
    gpu_eff: Efficiency | None

    @classmethod
    def of(
        cls, profile: HardwareProfile, calibration: Calibration | None = None,
        public: dict[str, Efficiency] | None = None, min_sigma: float = 0.0,
    ) -> Target:
        """Build the devices of ``profile``."""
        public = public if public is not None else public_efficiencies()
        ce = resolve("cpu", profile, calibration, public, min_sigma)
        cpu = Device("cpu", profile.cpu.ram_bandwidth_gbps * 1e9 * ce.eta_bw, profile.cpu.tflops * 1e12 * ce.eta_f,
                      ce.t0_s)
        gpu = ge = None
        if profile.gpu is not None:
            ge = resolve(profile.gpu.backend, profile, calibration, public, min_sigma)
            gpu = Device(profile.gpu.backend, profile.gpu.bandwidth_gbps * 1e9 * ge.eta_bw,
                         profile.gpu.fp16_tflops * 1e12 * ge.eta_f, ge.t0_s)
        return cls(profile, cpu, ce, gpu, ge)

    def parts(self, shape: ModelShape, candidate: Candidate) -> list[Part]:
        """The model split over this target's devices for a placement."""
        return split(shape, self.gpu, self.cpu, candidate.n_gpu_layers if self.gpu else 0)

    def efficiencies(self, candidate: Candidate) -> list[Efficiency]:
        """The efficiencies a placement uses (GPU first)."""
        if candidate.placement == "cpu" or self.gpu_eff is None:
            return [self.cpu_eff]
        if candidate.placement == "full_offload":
            return [self.gpu_eff]
        return [self.gpu_eff, self.cpu_eff]

    def backend(self, candidate: Candidate) -> str:
        """``cuda``, ``metal`` …, ``cuda+cpu`` for partial offload, ``cpu``."""
        return "+".join(e.backend for e in self.efficiencies(candidate))

    def labels(self, candidate: Candidate) -> tuple[str, str]:
        """Source labels of decode and prefill figures, e.g. ``predicted:roofline+efficiency:public-cuda``."""

        def label(sources: list[str]) -> str:
            names = [s if s.startswith("calibration") else f"efficiency:{s}" for s in dict.fromkeys(sources)]
            return "predicted:roofline+" + "+".join(names)

        effs = self.efficiencies(candidate)
        return label([e.source_bw for e in effs]), label([e.source_f for e in effs])

    def sigmas(self, candidate: Candidate) -> tuple[float, float]:
        """Relative errors (log sd) of decode and prefill predictions: the largest among the devices used."""
        effs = self.efficiencies(candidate)
        return max(e.sigma_bw for e in effs), max(e.sigma_f for e in effs)
