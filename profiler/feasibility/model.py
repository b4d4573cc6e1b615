"""The roofline performance model: time of a decode step and of a prefill, from bytes moved and FLOPs done.

Owns the formulas of ``docs/performance-model.md``::

    t_decode_step(B, ctx) = t0 + max((W_read(B) + B*ctx*k) / BW_eff, B*2*P_active / F_eff)
    t_prefill(n)          = n*2*P_active / F_eff      (never faster than reading the weights once per ubatch)

where, for a mixture-of-experts model, ``W_read(B)`` is the shared weights plus the experts a step of ``B``
sequences touches (``expected_experts``), and the split of a partially offloaded model into a GPU part and a
CPU part whose times add. Effective bandwidth/FLOPS and ``t0`` come from ``public_model`` or a local
calibration. It must not choose configurations, read files or know about campaigns; inputs are plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from profiler.models import ModelFile

# Times accept and return floats or NumPy arrays (Monte Carlo draws are evaluated in one call).
Num = TypeVar("Num", float, np.ndarray)


def expected_experts(n_experts: int, n_used: int, batch: Num) -> Num:
    """Expected number of distinct experts a layer runs for ``batch`` tokens that each pick ``n_used`` of
    ``n_experts`` independently and uniformly: ``E * (1 - (1 - k/E)^B)`` (``k`` at B = 1, all ``E`` as B grows).
    Real routers are not uniform (some experts are popular), so this is an upper bound on the distinct experts
    and batched decode of MoE models is, if anything, predicted slightly pessimistically."""
    if n_experts <= 0:
        return 0.0 * batch
    return n_experts * (1.0 - (1.0 - n_used / n_experts) ** batch)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ModelShape:
    """What the model contributes to the roofline: parameters, bytes, KV bytes per token of context, and for a
    mixture-of-experts model the routed experts' bytes and how many experts a token uses."""

    params: float
    weight_bytes: float
    kv_full: float  # bytes per token of context in global-attention layers (K + V)
    kv_swa: float = 0.0  # bytes per token in sliding-window layers, read for at most ``window`` tokens
    window: int | None = None
    n_layers: int = 1
    repeating_bytes: float = 0.0
    active_params: float | None = None  # parameters a token uses (None: all of them, a dense model)
    expert_bytes: float = 0.0  # routed-expert tensor bytes (MoE); the rest is read every step
    n_experts: int = 0
    n_experts_used: int = 0
    quant: str = ""  # llama.cpp file type (Q4_K_M, Q4_0, MXFP4 ...), for the public quantization factors

    @classmethod
    def of(cls, model: ModelFile, type_k: str = "f16", type_v: str = "f16") -> ModelShape:
        """The shape of a described GGUF model with the given KV cache types."""
        full, swa = model.kv_bytes_per_token(type_k, type_v)
        moe = model.is_moe
        return cls(
            params=float(model.params), weight_bytes=float(model.tensor_bytes), kv_full=full, kv_swa=swa,
            window=model.sliding_window, n_layers=max(model.n_layers, 1),
            repeating_bytes=float(model.repeating_bytes or model.tensor_bytes),
            active_params=float(model.active_params) if moe else None,
            expert_bytes=float(model.expert_bytes) if moe else 0.0,
            n_experts=model.n_experts if moe else 0, n_experts_used=model.n_experts_used if moe else 0,
            quant=model.file_type,
        )

    @property
    def is_moe(self) -> bool:
        """Whether a token reads only some experts' weights."""
        return self.n_experts > 1 and 0 < self.n_experts_used < self.n_experts and self.expert_bytes > 0

    @property
    def flop_params(self) -> float:
        """Parameters whose weights a token multiplies: the active ones (all of them for a dense model)."""
        return self.active_params if self.active_params is not None else self.params

    def read_fraction(self, batch: Num) -> Num:
        """Share of the weight bytes a decode step of ``batch`` sequences reads: 1 for a dense model; for a MoE
        model the shared bytes plus the expected distinct experts' (``expected_experts``)."""
        if not self.is_moe or not self.weight_bytes:
            return 1.0 + 0.0 * batch  # type: ignore[return-value]
        touched = expected_experts(self.n_experts, self.n_experts_used, batch) / self.n_experts
        shared = self.weight_bytes - self.expert_bytes
        return (shared + self.expert_bytes * touched) / self.weight_bytes  # type: ignore[no-any-return]

    def weights_read(self, batch: float = 1.0) -> float:
        """Weight bytes one decode step of ``batch`` sequences reads."""
        return float(self.weight_bytes * self.read_fraction(batch))

    def kv_read_bytes(self, ctx: Num) -> Num:
        """KV bytes one sequence reads per decode step at context ``ctx``."""
        swa_ctx = np.minimum(ctx, self.window) if self.window else ctx
        return self.kv_full * ctx + self.kv_swa * swa_ctx  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Device:
    """One processor as the model sees it: effective bandwidth and FLOPS (peak x efficiency) and a fixed step cost."""

    name: str
    bandwidth_bps: float  # eta_bw * BW, bytes/s
    flops: float  # eta_f * F, FLOP/s
    t0_s: float = 0.0  # fixed time per decode step (per ubatch in prefill)


@dataclass(frozen=True)
class Part:
    """The share of a model one device holds: its weight bytes, and its fractions of KV and of FLOPs."""

    device: Device
    weight_bytes: float
    kv_fraction: float
    flop_fraction: float


def split(shape: ModelShape, gpu: Device | None, cpu: Device | None, n_gpu_layers: int) -> list[Part]:
    """Place ``n_gpu_layers`` repeating layers on the GPU (all of them plus the output layer when above
    ``n_layers``), the rest on the CPU, as llama.cpp's ``-ngl`` does. FLOPs follow the bytes."""
    if gpu is None or n_gpu_layers <= 0:
        if cpu is None:
            raise ValueError("no processor to place the model on")
        return [Part(cpu, shape.weight_bytes, 1.0, 1.0)]
    layers = min(n_gpu_layers, shape.n_layers)
    frac = layers / shape.n_layers
    if n_gpu_layers > shape.n_layers:
        return [Part(gpu, shape.weight_bytes, 1.0, 1.0)]
    gpu_bytes = shape.repeating_bytes * frac
    cpu_bytes = shape.weight_bytes - gpu_bytes
    share = gpu_bytes / shape.weight_bytes if shape.weight_bytes else frac
    parts = [Part(gpu, gpu_bytes, frac, share)]
    if cpu is None:
        raise ValueError("partial offload needs a CPU device")
    if cpu_bytes > 0 or frac < 1:
        parts.append(Part(cpu, cpu_bytes, 1.0 - frac, 1.0 - share))
    return parts


def t_decode_step(shape: ModelShape, parts: list[Part], batch: int, ctx: Num) -> Num:
    """Seconds for one decode step of ``batch`` sequences at context ``ctx``: the parts' times add. A MoE
    model's parts read their shared bytes plus the experts the step touches (``ModelShape.read_fraction``)."""
    total = 0.0 * ctx
    kv = shape.kv_read_bytes(ctx)
    read = shape.read_fraction(float(batch))
    for p in parts:
        memory_s = (p.weight_bytes * read + batch * kv * p.kv_fraction) / p.device.bandwidth_bps
        compute_s = batch * 2.0 * shape.flop_params * p.flop_fraction / p.device.flops
        total = total + p.device.t0_s + np.maximum(memory_s, compute_s)
    return total


def t_prefill(shape: ModelShape, parts: list[Part], n_tokens: Num, n_ubatch: int = 512) -> Num:
    """Seconds to process ``n_tokens`` prompt tokens in ubatches: compute-bound, but each ubatch reads the
    weights at least once (which dominates for short prompts). Zero tokens take no time."""
    chunks = np.ceil(n_tokens / max(n_ubatch, 1))
    total = 0.0 * n_tokens
    for p in parts:
        compute_s = n_tokens * 2.0 * shape.flop_params * p.flop_fraction / p.device.flops
        memory_s = chunks * p.weight_bytes / p.device.bandwidth_bps
        total = total + chunks * p.device.t0_s + np.maximum(compute_s, memory_s)
    return total
