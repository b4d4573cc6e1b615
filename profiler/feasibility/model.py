"""The roofline performance model: time of a decode step and of a prefill, from bytes moved and FLOPs done.

Owns the formulas of ``docs/performance-model.md``::

    t_decode_step(B, ctx) = t0 + (max(M, C1)^p + C_B^p)^(1/p)    (p = inf: t0 + max(M, C1 + C_B))
        M   = (W_read(B) + B*kv_read(ctx)) / BW_eff    (weights once per step, each sequence's KV at its depth)
        C1  = 2*P_active / F_eff                       (the first sequence: the single-stream roofline's compute)
        C_B = (B-1)*2*P_active / F_batch               (the other B-1 tokens at the batched-decode FLOP rate)
    t_prefill(n, s)       = (n*(P_active - P_out) + s*P_out)*2 / F_eff   (s sequences; never faster than reading
                                                                   the weights once per ubatch)

where, for a mixture-of-experts model, ``W_read(B)`` is the shared weights plus the experts a step of ``B``
sequences touches (``expected_experts`` over an effective expert count ``s*E``, ``s`` = ``Device.expert_spread``),
so at ``B = 1`` the step is exactly the single-stream roofline ``t0 + max(M, C1)``; and the split of a partially
offloaded model into a GPU part and a CPU part whose times add. ``kv_read(ctx)`` charges sliding-window layers at
most their window. ``p`` (the overlap exponent), ``F_batch`` and ``s`` come from ``batched`` (public batched
results) or a local calibration; a ``Device`` without them uses ``p = inf``, ``F_batch = F_eff`` and ``s = 1``
(uniform routing). Effective bandwidth/FLOPS and ``t0`` come from ``public_model`` or a local
calibration. It must not choose configurations, read files or know about campaigns; inputs are plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from profiler.schema.model import ModelFile

# Times accept and return floats or NumPy arrays (Monte Carlo draws are evaluated in one call).
Num = TypeVar("Num", float, np.ndarray)


def expected_experts(n_experts: int, n_used: int, batch: Num, spread: float = 1.0) -> Num:
    """Expected number of distinct experts a layer runs for ``batch`` tokens that each pick ``n_used`` experts
    independently and uniformly among ``E_eff = max(k, spread*E)``: ``E_eff * (1 - (1 - k/E_eff)^B)`` (``k`` at
    B = 1). ``spread = 1`` is uniform routing over all ``E`` (an upper bound); real routers concentrate on popular
    experts, which ``spread < 1`` (fitted on public batched MoE results, ``batched``) stands for."""
    if n_experts <= 0:
        return 0.0 * batch
    e_eff = max(float(n_used), spread * n_experts) if n_used > 0 else float(n_experts)
    return e_eff * (1.0 - (1.0 - n_used / e_eff) ** batch)  # type: ignore[no-any-return]


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
    output_params: float = 0.0  # output projection: once per sequence in a prefill (only the last token's logits)
    # cells past the window a sliding-window layer's cache holds and attention scans: llama.cpp sizes the SWA
    # cache n_swa + n_ubatch per sequence (src/llama-kv-cache-iswa.cpp) and masks, not skips, the extra cells
    swa_slack: int = 0
    # an untied input embedding: one row looked up per token, neither streamed nor multiplied (0 for spec shapes,
    # whose public fit absorbed it into the efficiencies)
    lookup_params: float = 0.0
    lookup_bytes: float = 0.0
    # weight bytes a CPU runs through llamafile's tinyBLAS once a step has two or more tokens (gemv at one):
    # ``memory.tinyblas_bytes`` for a file on a known host, else 0 (the term is then absent)
    tinyblas_bytes: float = 0.0

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
            output_params=float(model.output_params),
            lookup_params=float(model.lookup_params), lookup_bytes=float(model.lookup_bytes),
        )

    @property
    def is_moe(self) -> bool:
        """Whether a token reads only some experts' weights."""
        return self.n_experts > 1 and 0 < self.n_experts_used < self.n_experts and self.expert_bytes > 0

    @property
    def flop_params(self) -> float:
        """Parameters whose weights a token multiplies: the active ones (all of them for a dense model)."""
        return (self.active_params if self.active_params is not None else self.params) - self.lookup_params

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes a step streams at B = 1 for a dense model: all but the looked-up input embedding."""
        return self.weight_bytes - self.lookup_bytes

    def read_fraction(self, batch: Num, spread: float = 1.0) -> Num:
        """Share of the weight bytes a decode step of ``batch`` sequences reads: 1 for a dense model; for a MoE
        model the shared bytes plus the expected distinct experts' (``expected_experts`` at ``spread``)."""
        if not self.is_moe or not self.streamed_bytes:
            return 1.0 + 0.0 * batch  # type: ignore[return-value]
        touched = expected_experts(self.n_experts, self.n_experts_used, batch, spread) / self.n_experts
        shared = self.streamed_bytes - self.expert_bytes
        return (shared + self.expert_bytes * touched) / self.streamed_bytes  # type: ignore[no-any-return]

    def weights_read(self, batch: float = 1.0, spread: float = 1.0) -> float:
        """Weight bytes one decode step of ``batch`` sequences reads."""
        return float(self.streamed_bytes * self.read_fraction(batch, spread))

    def kv_read_bytes(self, ctx: Num) -> Num:
        """KV bytes one sequence reads per decode step at context ``ctx`` (sliding-window layers: at most their
        window plus ``swa_slack``)."""
        swa_ctx = np.minimum(ctx, self.window + self.swa_slack) if self.window else ctx
        return self.kv_full * ctx + self.kv_swa * swa_ctx  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Device:
    """One processor as the model sees it: effective bandwidth and FLOPS (peak x efficiency) and a fixed step cost."""

    name: str
    bandwidth_bps: float  # eta_bw * BW, bytes/s
    flops: float  # eta_f * F, FLOP/s
    t0_s: float = 0.0  # fixed time per decode step (per ubatch in prefill)
    batch_flops: float | None = None  # FLOP/s of a decode step's compute term (None: ``flops``)
    overlap: float | None = None  # exponent p of (max(M, C1)^p + C_B^p)^(1/p) (None: plain max, full overlap)
    # MoE routing concentration of batched decode, E_eff / E (1: uniform over all experts). A property of routers,
    # not of the processor, carried here with the other batched factors so every caller of t_decode_step gets it
    expert_spread: float = 1.0
    # a locally measured curve of the batched FLOP rate (B, rate / ``flops``) at the parallel levels a ladder ran:
    # a CPU build switches kernels with B (gemv per sequence below 4, repacked gemm from 4, docs/performance-model.md)
    # so one ratio cannot follow it; empty: ``batch_flops`` at every B
    batch_curve: tuple[tuple[int, float], ...] = ()
    # a step of two or more tokens runs ``ModelShape.tinyblas_bytes`` through tinyBLAS: one extra pass over them at
    # ``tinyblas_bps`` plus, per token after the first, another at ``tinyblas_token_bps`` (bytes/s; a ladder fit
    # with such a rung; None: no such term)
    tinyblas_bps: float | None = None
    tinyblas_token_bps: float | None = None

    @property
    def decode_flops(self) -> float:
        """FLOP/s of the compute term of a decode step of several tokens."""
        return self.batch_flops if self.batch_flops else self.flops

    def with_flop_share(self, share: float) -> Device:
        """This device with its FLOP rates (single, batched; a curve is relative to ``flops``) scaled by ``share``."""
        return replace(self, flops=self.flops * share,
                       batch_flops=self.batch_flops * share if self.batch_flops else None)

    def decode_flops_at(self, batch: float) -> float:
        """FLOP/s of the compute term at ``batch`` sequences: the measured curve interpolated in log B (held at
        its ends), else ``decode_flops``."""
        if not self.batch_curve:
            return self.decode_flops
        levels = np.log([b for b, _ in self.batch_curve])
        ratios = np.log([r for _, r in self.batch_curve])
        return self.flops * float(np.exp(np.interp(np.log(max(batch, 1.0)), levels, ratios)))


@dataclass(frozen=True)
class Part:
    """The share of a model one device holds: its weight bytes, and its fractions of KV and of FLOPs."""

    device: Device
    weight_bytes: float
    kv_fraction: float
    flop_fraction: float


def split(shape: ModelShape, gpu: Device | None, cpu: Device | None, n_gpu_layers: int) -> list[Part]:
    """Place ``n_gpu_layers`` repeating layers on the GPU (all of them plus the output layer when above
    ``n_layers``), the rest on the CPU, as llama.cpp's ``-ngl`` does. FLOPs follow the bytes. A part's bytes are
    those a step streams (``ModelShape.streamed_bytes``: a looked-up input embedding is not)."""
    if gpu is None or n_gpu_layers <= 0:
        if cpu is None:
            raise ValueError("no processor to place the model on")
        return [Part(cpu, shape.streamed_bytes, 1.0, 1.0)]
    layers = min(n_gpu_layers, shape.n_layers)
    frac = layers / shape.n_layers
    if n_gpu_layers > shape.n_layers:
        return [Part(gpu, shape.streamed_bytes, 1.0, 1.0)]
    gpu_bytes = shape.repeating_bytes * frac
    cpu_bytes = shape.streamed_bytes - gpu_bytes
    share = gpu_bytes / shape.streamed_bytes if shape.streamed_bytes else frac
    parts = [Part(gpu, gpu_bytes, frac, share)]
    if cpu is None:
        raise ValueError("partial offload needs a CPU device")
    if cpu_bytes > 0 or frac < 1:
        parts.append(Part(cpu, cpu_bytes, 1.0 - frac, 1.0 - share))
    return parts


def overlap(memory_s: Num, compute_s: float | np.ndarray, p: float | None) -> Num:
    """Time of a step whose memory and compute parts overlap imperfectly: ``(M^p + C^p)^(1/p)``; ``p`` None or
    infinite is full overlap, ``max(M, C)``; ``p = 1`` is no overlap, ``M + C``."""
    if p is None or not np.isfinite(p):
        return np.maximum(memory_s, compute_s)  # type: ignore[return-value]
    big = np.maximum(np.maximum(memory_s, compute_s), 1e-30)  # scaled, so large p does not overflow
    return big * ((memory_s / big) ** p + (compute_s / big) ** p) ** (1.0 / p)  # type: ignore[return-value]


def combine(memory_s: Num, single_s: float | np.ndarray, extra_s: float | np.ndarray, p: float | None) -> Num:
    """Time of a decode step from its memory time, the first sequence's compute and the other sequences' compute:
    ``(max(M, C1)^p + C_B^p)^(1/p)``; with ``p`` None or infinite (a plain roofline device) ``max(M, C1 + C_B)``,
    so such a device never beats its compute roofline."""
    if p is None or not np.isfinite(p):
        return np.maximum(memory_s, single_s + extra_s)  # type: ignore[return-value]
    return overlap(np.maximum(memory_s, single_s), extra_s, p)  # type: ignore[arg-type,return-value]


def t_decode_step(shape: ModelShape, parts: list[Part], batch: int, ctx: Num) -> Num:
    """Seconds for one decode step of ``batch`` sequences, each at context ``ctx``: the parts' times add. A MoE
    model's parts read their shared bytes plus the experts the step touches (``ModelShape.read_fraction``).
    The first sequence costs the single-stream roofline ``max(M, C1)`` (so B = 1 is exactly the public
    single-sequence model); the other ``batch - 1`` tokens add compute at the batched-decode FLOP rate
    (``Device.decode_flops_at``), combined with it by the overlap exponent; a CPU adds its tinyBLAS pass over
    ``tinyblas_bytes`` from two tokens on. A step is never charged more than its sequences one after another,
    ``batch`` x the single step (a bound: measured CPUs do dip at B = 2 for tinyBLAS-heavy shapes,
    docs/performance-model.md), so with a non-decreasing batched rate the aggregate never falls as B grows."""
    total = 0.0 * ctx
    kv = shape.kv_read_bytes(ctx)
    flop = 2.0 * shape.flop_params
    for p in parts:
        read = shape.read_fraction(float(batch), p.device.expert_spread)
        memory_s = (p.weight_bytes * read + batch * kv * p.kv_fraction) / p.device.bandwidth_bps
        single_s = flop * p.flop_fraction / p.device.flops
        extra_s = (batch - 1) * flop * p.flop_fraction / p.device.decode_flops_at(batch)
        total = total + p.device.t0_s + combine(memory_s, single_s, extra_s, p.device.overlap)
        if batch > 1 and p.device.tinyblas_bps and shape.tinyblas_bytes:
            per_token = (batch - 1) / p.device.tinyblas_token_bps if p.device.tinyblas_token_bps else 0.0
            total = total + shape.tinyblas_bytes * p.flop_fraction * (1.0 / p.device.tinyblas_bps + per_token)
    if batch > 1:  # never slower than the sequences one after another: aggregate(B) >= aggregate(1)
        total = np.minimum(total, batch * t_decode_step(shape, parts, 1, ctx))
    return total


def batched_decode_tok_s(shape: ModelShape, parts: list[Part], batch: int, ctx: float) -> float:
    """Aggregate decode rate (tokens/s summed over sequences) of ``batch`` sequences each at context ``ctx``."""
    return batch / float(t_decode_step(shape, parts, batch, ctx))


def t_prefill(shape: ModelShape, parts: list[Part], n_tokens: Num, n_ubatch: int = 512, n_seq: int = 1) -> Num:
    """Seconds to process ``n_tokens`` prompt tokens of ``n_seq`` sequences in ubatches: compute-bound, but each
    ubatch reads the weights at least once (which dominates for short prompts). The output projection runs for
    each sequence's last token only (the logits a prefill asks for). Zero tokens take no time."""
    chunks = np.ceil(n_tokens / max(n_ubatch, 1))
    total = 0.0 * n_tokens
    per_token = shape.flop_params - shape.output_params
    flop = n_tokens * per_token + np.minimum(n_seq, n_tokens) * shape.output_params
    for p in parts:
        compute_s = flop * 2.0 * p.flop_fraction / p.device.flops
        memory_s = chunks * p.weight_bytes / p.device.bandwidth_bps
        total = total + chunks * p.device.t0_s + np.maximum(compute_s, memory_s)
    return total
