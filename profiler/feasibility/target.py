"""A hardware profile as the roofline sees it: its processors, the efficiencies that apply to each, and the
``Device`` (effective bandwidth, FLOPS, fixed step time) each one is for a given model.

Owns the choice of efficiency factors for each processor of a profile, in the order of docs/performance-model.md
("Efficiency factors"): the local calibration when its backend matches, else the public model (``public_model``:
fitted factors applied to the processor's declared facts, for every backend the public rows cover), else the
profile's own declared efficiency, else the public model's pooled factors; and the batched-decode factors
(``batched``: the calibration's ``eta_batch`` if it has one, else the public batched fit). It must not choose
configurations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from profiler.feasibility.batched import batched_factors
from profiler.feasibility.calibration import Calibration, calibration_for, for_shape, with_local_batched
from profiler.feasibility.efficiency import Efficiency, public_summary
from profiler.feasibility.model import Device, ModelShape, Part, split
from profiler.feasibility.placement import Candidate
from profiler.feasibility.public_model import DeviceFacts, PublicModel, public_model
from profiler.profiles import HardwareProfile


def resolve(
    backend: str, profile: HardwareProfile, calibration: Calibration | None, public: PublicModel,
    min_sigma: float = 0.0,
) -> Efficiency:
    """Efficiencies for ``backend`` on ``profile``: local calibration > public backend > profile > pooled."""
    if calibration is not None and calibration.backend == backend:
        local = calibration.efficiency(min_sigma)
        if local is not None:
            return local
    if public.has_backend(backend, "decode"):
        return public_summary(public, backend)
    declared = profile.efficiency
    if declared is not None and backend != "cpu":
        return Efficiency(
            backend=backend, eta_bw=declared.eta_bw, eta_f=declared.eta_f, t0_s=declared.t0_s,
            sigma_bw=public.sigma_decode_pooled, sigma_f=public.sigma_prefill_pooled, source_bw="profile",
            source_f="profile",
        )
    return public_summary(public, backend)


@dataclass(frozen=True)
class Processor:
    """One processor of a profile: its declared facts, the efficiency that applies, and the public model."""

    name: str
    facts: DeviceFacts
    eff: Efficiency
    public: PublicModel

    def device(self, shape: ModelShape) -> Device:
        """The roofline device this processor is for ``shape``, with its batched-decode compute rate and overlap
        (``batched``: a calibration's ``eta_batch`` when it has one, else the public batched factors)."""
        factors = batched_factors(self.facts.backend)
        ratio = self.eff.eta_batch or factors.ratio
        base = self._single(shape)
        return with_local_batched(replace(base, batch_flops=base.flops * ratio, overlap=factors.overlap,
                                          expert_spread=factors.spread), self.eff)

    def _single(self, shape: ModelShape) -> Device:
        if self.eff.is_public or self.eff.eta_bw is None:
            return self.public.device(self.facts, shape, self.name)
        bw = self.facts.bandwidth_gbps * 1e9 * self.eff.eta_bw
        t0 = self.eff.tau_layer_s * shape.n_layers if self.eff.tau_layer_s else self.eff.t0_s  # ladder: per layer
        if self.facts.fp16_tflops and self.eff.eta_f:  # a fit on dense and MoE alike: MoE at the public share
            return for_shape(Device(self.name, bw, self.facts.fp16_tflops * 1e12 * self.eff.eta_f, t0), shape)
        # no declared FLOPS to scale: the public model's prefill rule (its MoE factor included)
        return Device(self.name, bw, self.public.flops(self.facts, shape), t0)

    @property
    def prefill_source(self) -> str:
        """Where the prefill figure comes from (the public model when no FLOPS are declared to scale)."""
        if not self.eff.is_public and not (self.facts.fp16_tflops and self.eff.eta_f):
            return public_summary(self.public, self.facts.backend).source_f
        return self.eff.source_f


@dataclass(frozen=True)
class Target:
    """The processors of a profile with the efficiencies that apply to them."""

    profile: HardwareProfile
    cpu: Processor | None  # None: the profile declares no CPU memory bandwidth (GPU-only placements)
    gpu: Processor | None

    @classmethod
    def of(
        cls, profile: HardwareProfile, calibration: Calibration | None = None, public: PublicModel | None = None,
        min_sigma: float = 0.0,
    ) -> Target:
        """Build the processors of ``profile`` (without ``calibration``: this host's ladder fit, when ``profile`` was
        saved on the host a ``hfp calibrate --ladder`` ran on, ``calibration.calibration_for``)."""
        public = public if public is not None else public_model()
        calibration = calibration if calibration is not None else calibration_for(profile)
        cpu = gpu = None
        c = profile.cpu
        if c.ram_bandwidth_gbps:
            facts = DeviceFacts("cpu", c.ram_bandwidth_gbps, c.tflops, c.cores)
            cpu = Processor("cpu", facts, resolve("cpu", profile, calibration, public, min_sigma), public)
        if profile.gpu is not None:
            g = profile.gpu
            facts = DeviceFacts(g.backend, g.bandwidth_gbps, g.fp16_tflops, c.cores)
            gpu = Processor(g.backend, facts, resolve(g.backend, profile, calibration, public, min_sigma), public)
        return cls(profile, cpu, gpu)

    def parts(self, shape: ModelShape, candidate: Candidate) -> list[Part]:
        """The model split over this target's devices for a placement."""
        gpu = self.gpu.device(shape) if self.gpu else None
        cpu = self.cpu.device(shape) if self.cpu else None
        return split(shape, gpu, cpu, candidate.n_gpu_layers if gpu else 0)

    def processors(self, candidate: Candidate) -> list[Processor]:
        """The processors a placement uses (GPU first)."""
        both = [p for p in (self.gpu, self.cpu) if p is not None]
        if candidate.placement == "cpu" or self.gpu is None:
            return [self.cpu] if self.cpu else both[:1]
        if candidate.placement == "full_offload" or self.cpu is None:
            return [self.gpu]
        return both

    def efficiencies(self, candidate: Candidate) -> list[Efficiency]:
        """The efficiencies a placement uses (GPU first)."""
        return [p.eff for p in self.processors(candidate)]

    def backend(self, candidate: Candidate) -> str:
        """``cuda``, ``metal`` …, ``cuda+cpu`` for partial offload, ``cpu``."""
        return "+".join(e.backend for e in self.efficiencies(candidate))

    def labels(self, candidate: Candidate) -> tuple[str, str]:
        """Source labels of decode and prefill figures, e.g. ``predicted:roofline+efficiency:public-cuda``."""

        def label(sources: list[str]) -> str:
            names = [s if s.startswith("calibration") else f"efficiency:{s}" for s in dict.fromkeys(sources)]
            return "predicted:roofline+" + "+".join(names)

        procs = self.processors(candidate)
        return label([p.eff.source_bw for p in procs]), label([p.prefill_source for p in procs])

    def batch_sigma(self, candidate: Candidate) -> float:
        """Relative error (log sd) of batched decode (B > 1): a calibration's decode spread where it fitted the
        batched rate, else the public batched LODO spread; the largest among the devices used."""
        return max(p.eff.sigma_bw if p.eff.eta_batch else batched_factors(p.facts.backend).sigma
                   for p in self.processors(candidate))

    def batch_source(self, candidate: Candidate) -> str:
        """Where the batched-decode factors come from, e.g. ``public-batched-cpu`` or ``calibration``."""
        return "+".join(dict.fromkeys("calibration" if p.eff.eta_batch else batched_factors(p.facts.backend).source
                                      for p in self.processors(candidate)))

    def sigmas(self, candidate: Candidate) -> tuple[float, float]:
        """Relative errors (log sd) of decode and prefill predictions: the largest among the devices used."""
        effs = self.efficiencies(candidate)
        return max(e.sigma_bw for e in effs), max(e.sigma_f for e in effs)
