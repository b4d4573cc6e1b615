"""The roofline performance model: time of a decode step and of a prefill, from bytes moved and FLOPs done.

Owns the formulas of ``docs/performance-model.md``::

    t_decode_step(B, ctx) = t0 + max((W + B*ctx*k) / (eta_bw*BW), B*2*P / (eta_f*F))
    t_prefill(n)          = n*2*P / (eta_f*F)      (never faster than reading the weights once per ubatch)

and the split of a partially offloaded model into a GPU part and a CPU part whose times add. It must not choose
configurations, read files or know about campaigns; inputs are plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from profiler.models import ModelFile

# Times accept and return floats or NumPy arrays (Monte Carlo draws are evaluated in one call).
Num = TypeVar("Num", float, np.ndarray)


@dataclass(frozen=True)
class ModelShape:
    """What the model contributes to the roofline: parameters, bytes, KV bytes per token of context."""

    params: float
    weight_bytes: float
    kv_full: float  # bytes per token of context in global-attention layers (K + V)
    kv_swa: float = 0.0  # bytes per token in sliding-window layers, read for at most ``window`` tokens
    window: int | None = None
    n_layers: int = 1
    repeating_bytes: float = 0.0

    @classmethod
    def of(cls, model: ModelFile, type_k: str = "f16", type_v: str = "f16") -> ModelShape:
        """The shape of a described GGUF model with the given KV cache types."""
        full, swa = model.kv_bytes_per_token(type_k, type_v)
        return cls(
            params=float(model.params), weight_bytes=float(model.tensor_bytes), kv_full=full, kv_swa=swa,
            window=model.sliding_window, n_layers=max(model.n_layers, 1),
            repeating_bytes=float(model.repeating_bytes or model.tensor_bytes),
        )

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
    t0_s: float = 0.0


@dataclass(frozen=True)
class Part:
    """The share of a model one device holds: its weight bytes, and its fractions of KV and of FLOPs."""

    device: Device
    weight_bytes: float
    kv_fraction: float
    flop_fraction: float


def split(shape: ModelShape, gpu: Device | None, cpu: Device, n_gpu_layers: int) -> list[Part]:
    """Place ``n_gpu_layers`` repeating layers on the GPU (all of them plus the output layer when above
    ``n_layers``), the rest on the CPU, as llama.cpp's ``-ngl`` does. FLOPs follow the bytes."""
    if gpu is None or n_gpu_layers <= 0:
        return [Part(cpu, shape.weight_bytes, 1.0, 1.0)]
    layers = min(n_gpu_layers, shape.n_layers)
    frac = layers / shape.n_layers
    if n_gpu_layers > shape.n_layers:
        return [Part(gpu, shape.weight_bytes, 1.0, 1.0)]
    gpu_bytes = shape.repeating_bytes * frac
    cpu_bytes = shape.weight_bytes - gpu_bytes
    share = gpu_bytes / shape.weight_bytes if shape.weight_bytes else frac
    parts = [Part(gpu, gpu_bytes, frac, share)]
    if cpu_bytes > 0 or frac < 1:
        parts.append(Part(cpu, cpu_bytes, 1.0 - frac, 1.0 - share))
    return parts


def t_decode_step(shape: ModelShape, parts: list[Part], batch: int, ctx: Num) -> Num:
    """Seconds for one decode step of ``batch`` sequences at context ``ctx``: the parts' times add."""
    total = 0.0 * ctx
    kv = shape.kv_read_bytes(ctx)
    for p in parts:
        memory_s = (p.weight_bytes + batch * kv * p.kv_fraction) / p.device.bandwidth_bps
        compute_s = batch * 2.0 * shape.params * p.flop_fraction / p.device.flops
        total = total + p.device.t0_s + np.maximum(memory_s, compute_s)
    return total


def t_prefill(shape: ModelShape, parts: list[Part], n_tokens: Num, n_ubatch: int = 512) -> Num:
    """Seconds to process ``n_tokens`` prompt tokens in ubatches: compute-bound, but each ubatch reads the
    weights at least once (which dominates for short prompts). Zero tokens take no time."""
    chunks = np.ceil(n_tokens / max(n_ubatch, 1))
    total = 0.0 * n_tokens
    for p in parts:
        compute_s = n_tokens * 2.0 * shape.params * p.flop_fraction / p.device.flops
        memory_s = chunks * p.weight_bytes / p.device.bandwidth_bps
        total = total + chunks * p.device.t0_s + np.maximum(compute_s, memory_s)
    return total
