"""Memory planning: how many bytes a model needs for a given context, parallel count and offload, and where.

Owns the prediction (weights + KV cache + compute buffer + output buffer) and the fit check against free RAM and
VRAM, so a model that will not fit is refused before anything is loaded. It must not load models or measure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from profiler.errors import ConfigError, ModelTooLargeError
from profiler.models import ModelFile

GiB = 1024**3
MiB = 1024**2

# KV cache element types llama.cpp accepts for type_k / type_v, and their bytes per element.
KV_CACHE_TYPES: dict[str, float] = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
    "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32,
}
# ggml_type ids for the KV cache types, as llama_context_params.type_k/type_v want them.
KV_CACHE_GGML_TYPE: dict[str, int] = {
    "f32": 0, "f16": 1, "bf16": 30, "q8_0": 8, "q5_1": 7, "q5_0": 6, "q4_1": 3, "q4_0": 2, "iq4_nl": 20,
}

# Memory a llama.cpp process holds beyond the model's own buffers (runtime, libraries, allocator slack),
# and what an OS needs to stay usable; explicit so that plans are reproducible.
RUNTIME_OVERHEAD_BYTES = 16 * MiB
GPU_RUNTIME_OVERHEAD_BYTES = 400 * MiB  # CUDA context and cuBLAS workspace


def cache_type_bytes(name: str) -> float:
    """Bytes per element of a KV cache type (``f16``, ``q8_0``, ``q4_0`` …)."""
    try:
        return KV_CACHE_TYPES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown KV cache type {name!r}; choose from {', '.join(KV_CACHE_TYPES)}") from None


def kv_cache_bytes(
    model: ModelFile, n_ctx: int, n_parallel: int = 1, type_k: str = "f16", type_v: str = "f16", n_ubatch: int = 512
) -> int:
    """Bytes llama.cpp allocates for the KV cache of ``n_ctx`` cells shared by ``n_parallel`` sequences.

    Global-attention layers hold every cell. Sliding-window layers hold at most window + ubatch cells per
    sequence (llama.cpp's SWA cache, ``swa_full=false``), which is what keeps Gemma-style models small.
    """
    full, swa = model.kv_bytes_per_token(type_k, type_v)
    total = full * n_ctx
    if swa:
        per_seq = min(n_ctx // max(n_parallel, 1), (model.sliding_window or n_ctx) + n_ubatch)
        total += swa * min(n_ctx, per_seq * n_parallel)
    return int(total)


def compute_buffer_bytes(model: ModelFile, n_ctx: int, n_ubatch: int, flash_attn: bool, n_parallel: int = 1) -> int:
    """Estimated size of llama.cpp's compute (graph) buffer, which it reserves for a worst-case ubatch.

    The allocator reuses memory, so the buffer is about the largest live set: the logits of a full ubatch
    (vocab x ubatch, F32) or, without flash attention, the attention scores (heads x cells per sequence x
    ubatch), plus a few activations of width n_embd. Checked against llama.cpp's own "compute buffer size"
    log within a few percent for the default model (docs/architecture.md).
    """
    ub = min(n_ubatch, n_ctx)
    logits = model.n_vocab * ub * 4
    scores = 0 if flash_attn else model.n_heads * (n_ctx // max(n_parallel, 1)) * ub * 4
    return int(max(logits, scores) + 4 * model.n_embd * ub * 4)


class MemoryPlan(BaseModel):
    """Predicted bytes of a configuration, where they live, and whether that fits."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int
    n_parallel: int
    n_gpu_layers: int
    type_k: str
    type_v: str
    weights_bytes: int
    kv_cache_bytes: int
    compute_buffer_bytes: int
    output_buffer_bytes: int
    overhead_bytes: int
    ram_bytes: int
    vram_bytes: int
    ram_available_bytes: int | None
    vram_available_bytes: int | None
    placement: Literal["cpu", "full_offload", "partial_offload"]
    fits: bool
    reason: str
    source: str = "predicted:gguf-metadata"

    @property
    def total_bytes(self) -> int:
        """RAM plus VRAM."""
        return self.ram_bytes + self.vram_bytes


def plan(
    model: ModelFile,
    n_ctx: int,
    n_parallel: int = 1,
    n_gpu_layers: int = 0,
    n_ubatch: int = 512,
    type_k: str = "f16",
    type_v: str = "f16",
    flash_attn: bool = False,
    ram_available: int | None = None,
    vram_available: int | None = None,
) -> MemoryPlan:
    """Predict memory for a configuration and check it against the available RAM and VRAM."""
    if n_ctx < 1 or n_parallel < 1:
        raise ConfigError("n_ctx and parallel must be positive")
    gpu_layers = max(0, min(n_gpu_layers, model.n_layers + 1))
    layer_frac = min(gpu_layers, model.n_layers) / model.n_layers if model.n_layers else 0.0
    # Offloading moves repeating layers; the output layer follows once all of them are on the GPU.
    head_bytes = model.tensor_bytes - model.repeating_bytes
    gpu_weights = int(model.repeating_bytes * layer_frac + (head_bytes // 2 if gpu_layers > model.n_layers else 0))
    kv = kv_cache_bytes(model, n_ctx, n_parallel, type_k, type_v, n_ubatch)
    gpu_kv = int(kv * layer_frac)
    compute = compute_buffer_bytes(model, n_ctx, n_ubatch, flash_attn, n_parallel)
    output = model.n_vocab * 4 * n_parallel
    vram = gpu_weights + gpu_kv + (compute + GPU_RUNTIME_OVERHEAD_BYTES if gpu_layers else 0)
    ram = (model.tensor_bytes - gpu_weights) + (kv - gpu_kv) + output + RUNTIME_OVERHEAD_BYTES
    ram += compute if not gpu_layers else compute // 4  # a CPU buffer stays for the layers and ops left behind
    placement: Literal["cpu", "full_offload", "partial_offload"] = (
        "cpu" if gpu_layers == 0 else "full_offload" if gpu_layers >= model.n_layers else "partial_offload"
    )
    problems = []
    if ram_available is not None and ram > ram_available:
        problems.append(f"needs {ram / GiB:.2f} GiB RAM, {ram_available / GiB:.2f} GiB free")
    if gpu_layers and vram_available is not None and vram > vram_available:
        problems.append(f"needs {vram / GiB:.2f} GiB VRAM, {vram_available / GiB:.2f} GiB free")
    reason = "; ".join(problems) or f"fits ({placement.replace('_', ' ')})"
    if gpu_layers and vram_available is None and not problems:
        reason += "; VRAM not checked (no NVML reading of free GPU memory)"
    return MemoryPlan(
        n_ctx=n_ctx, n_parallel=n_parallel, n_gpu_layers=gpu_layers, type_k=type_k, type_v=type_v,
        weights_bytes=model.tensor_bytes, kv_cache_bytes=kv, compute_buffer_bytes=compute,
        output_buffer_bytes=output, overhead_bytes=RUNTIME_OVERHEAD_BYTES, ram_bytes=ram, vram_bytes=vram,
        ram_available_bytes=ram_available, vram_available_bytes=vram_available, placement=placement,
        fits=not problems, reason=reason,
    )


def require_fit(memory_plan: MemoryPlan, model: ModelFile) -> None:
    """Refuse, before loading, a configuration that will not fit, with the numbers."""
    if not memory_plan.fits:
        raise ModelTooLargeError(
            f"{model.label} will not fit: {memory_plan.reason} (weights {memory_plan.weights_bytes / GiB:.2f} GiB, "
            f"KV cache {memory_plan.kv_cache_bytes / GiB:.2f} GiB at n_ctx={memory_plan.n_ctx}); "
            "try a smaller quantization, a shorter context or fewer parallel sequences"
        )
