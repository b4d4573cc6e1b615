"""A memory plan: the predicted bytes of one configuration, where they live, and whether that fits.

``profiler.memory`` computes it; the run record stores it beside the measured peaks.
"""

from __future__ import annotations

from typing import Literal

from profiler.schema.base import Strict


class MemoryPlan(Strict):
    """Predicted bytes of a configuration, where they live, and whether that fits."""

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
    # --- resident parts (schema additions; absent in older records) ---
    ram_anon_bytes: int | None = None
    ram_fit_bytes: int | None = None
    use_mmap: bool = True
    weights_repacked_bytes: int = 0
    weights_cpu_bytes: int = 0
    weights_mapped_bytes: int = 0
    compute_working_bytes: int | None = None
    kv_ram_bytes: int | None = None
    cpu_features: str | None = None

    @property
    def total_bytes(self) -> int:
        """RAM plus VRAM."""
        return self.ram_bytes + self.vram_bytes
