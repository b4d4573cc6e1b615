"""Memory planning: predicted bytes follow the GGUF metadata and refuse what will not fit."""

from __future__ import annotations

import pytest

from profiler import memory
from profiler.errors import ModelTooLargeError
from profiler.models import ModelFile

GiB = 1024**3


def _gemma_like(default: ModelFile) -> ModelFile:
    """The default model's shape with Gemma-3-style sliding-window layers (5 of every 6)."""
    swa = [(i % 6) < 5 for i in range(default.n_layers)]
    return default.model_copy(update={"sliding_window": 512, "swa_layers": swa})


def test_kv_cache_grows_linearly_with_context(default_model: ModelFile) -> None:
    a = memory.kv_cache_bytes(default_model, 1024)
    b = memory.kv_cache_bytes(default_model, 4096)
    assert b == 4 * a


def test_quantized_kv_cache_is_smaller(default_model: ModelFile) -> None:
    f16 = memory.kv_cache_bytes(default_model, 4096, type_k="f16", type_v="f16")
    q8 = memory.kv_cache_bytes(default_model, 4096, type_k="q8_0", type_v="q8_0")
    q4 = memory.kv_cache_bytes(default_model, 4096, type_k="q4_0", type_v="q4_0")
    assert f16 > q8 > q4


def test_sliding_window_layers_stop_growing_past_the_window(default_model: ModelFile) -> None:
    gemma = _gemma_like(default_model)
    short, long = memory.kv_cache_bytes(gemma, 2048), memory.kv_cache_bytes(gemma, 32768)
    naive_long = memory.kv_cache_bytes(default_model, 32768)
    assert long < naive_long / 3  # only 1 layer in 6 holds the whole context
    assert long > short


def test_plan_matches_llama_cpp_kv_buffer(default_model: ModelFile) -> None:
    # llama.cpp logs "KV buffer size = 22.50 MiB" for 1024 cells of this model at f16.
    assert memory.kv_cache_bytes(default_model, 1024) == 22.5 * 1024 * 1024


def test_model_that_does_not_fit_is_refused_with_the_numbers(default_model: ModelFile) -> None:
    plan = memory.plan(default_model, n_ctx=8192, ram_available=64 * 1024 * 1024)
    assert not plan.fits
    with pytest.raises(ModelTooLargeError, match=r"needs \d+\.\d+ GiB RAM"):
        memory.require_fit(plan, default_model)


def test_more_gpu_layers_move_bytes_from_ram_to_vram(default_model: ModelFile) -> None:
    plans = [memory.plan(default_model, 4096, n_gpu_layers=n, ram_available=8 * GiB, vram_available=8 * GiB)
             for n in (0, 10, 20, 31)]
    vram = [p.vram_bytes for p in plans]
    assert vram == sorted(vram) and vram[0] == 0
    assert [p.placement for p in plans] == ["cpu", "partial_offload", "partial_offload", "full_offload"]
