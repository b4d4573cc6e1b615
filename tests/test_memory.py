"""Memory planning: predicted bytes follow the GGUF metadata and refuse what will not fit."""

from __future__ import annotations

import pytest

from profiler import memory
from profiler.errors import ModelTooLargeError
from profiler.gguf import GGML_TYPE_IDS, TensorInfo
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


# --- which weights llama.cpp's CPU backend repacks (ggml-cpu/repack.cpp, amx/), and the resident parts -------

AVX2 = memory.CpuFeatures(avx2=True, source="test")
AVX512 = memory.CpuFeatures(avx2=True, avx512=True, source="test")
PI5 = memory.CpuFeatures.guess("Broadcom BCM2712 (4x Cortex-A76)")
AMX = memory.CpuFeatures(avx2=True, avx512=True, amx=True, source="test")


def _t(name: str, type_name: str, shape: tuple[int, ...]) -> TensorInfo:
    return TensorInfo(name, shape, GGML_TYPE_IDS[type_name], 0)


def test_repack_rules_follow_type_shape_and_cpu_features() -> None:
    q4_0 = _t("blk.0.ffn_up.weight", "Q4_0", (2048, 8192))
    assert memory.extra_buffer_bytes(q4_0, AVX2) == q4_0.nbytes
    assert memory.extra_buffer_bytes(q4_0, PI5) == q4_0.nbytes
    assert memory.extra_buffer_bytes(q4_0, memory.CpuFeatures(source="none")) is None
    assert memory.extra_buffer_bytes(q4_0, AVX2.model_copy(update={"repack": False})) is None
    # rows not a multiple of the 8-row interleave stay in the plain buffer
    assert memory.extra_buffer_bytes(_t("blk.0.attn_k.weight", "Q4_0", (2048, 100)), AVX2) is None
    # Q8_0 and Q6_K have x86 kernels only on Arm; Q2_K needs AVX-512; Q4_1 and F16 are never repacked
    assert memory.extra_buffer_bytes(_t("blk.0.ffn_up.weight", "Q8_0", (2048, 8192)), AVX512) is None
    assert memory.extra_buffer_bytes(_t("blk.0.ffn_up.weight", "Q8_0", (2048, 8192)), PI5) is not None
    assert memory.extra_buffer_bytes(_t("blk.0.ffn_up.weight", "Q2_K", (2048, 8192)), AVX2) is None
    assert memory.extra_buffer_bytes(_t("blk.0.ffn_up.weight", "Q2_K", (2048, 8192)), AVX512) is not None
    for typ in ("Q4_1", "F16", "Q5_0"):
        assert memory.extra_buffer_bytes(_t("blk.0.ffn_up.weight", typ, (2048, 8192)), AVX512) is None


def test_embeddings_and_norms_are_never_repacked() -> None:
    assert memory.extra_buffer_bytes(_t("token_embd.weight", "Q4_0", (2048, 128256)), AVX2) is None  # GET_ROWS
    assert memory.extra_buffer_bytes(_t("blk.0.attn_norm.weight", "F32", (2048,)), AVX2) is None
    assert memory.extra_buffer_bytes(_t("output.weight", "Q4_0", (2048, 128256)), AVX2) is not None


def test_amx_takes_its_types_first_and_pads_k_quant_rows() -> None:
    q4_k = _t("blk.0.ffn_up.weight", "Q4_K", (2048, 8192))
    assert memory.extra_buffer_bytes(q4_k, AMX) == q4_k.nbytes + 8192 * (2048 // 256) * 4
    f16 = _t("blk.0.ffn_up.weight", "F16", (2048, 8192))
    assert memory.extra_buffer_bytes(f16, AMX) == f16.nbytes and memory.extra_buffer_bytes(f16, AVX512) is None


def test_cpu_features_from_llama_system_info() -> None:
    f = memory.CpuFeatures.from_system_info("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 0 | REPACK = 1 |")
    assert f.avx2 and f.avx512 and not f.amx and f.repack and not f.neon
    assert memory.host_cpu_features("AVX2 = 1 | REPACK = 1", extra_bufts=False) is None
    assert memory.CpuFeatures.guess("Apple M4 (4P+6E)").i8mm and not memory.CpuFeatures.guess("Apple M1").i8mm
    assert memory.CpuFeatures.guess("AMD Ryzen 9 7950X").avx512
    assert not memory.CpuFeatures.guess("Intel Core i5-1235U").avx512


def test_plan_splits_resident_memory_into_mapped_and_anonymous(default_model: ModelFile) -> None:
    on = memory.plan(default_model, 1024, cpu_features=AVX2, flash_attn=True)
    off = memory.plan(default_model, 1024, cpu_features=AVX2, flash_attn=True, use_mmap=False)
    assert on.ram_anon_bytes is not None and off.ram_anon_bytes is not None
    assert on.weights_repacked_bytes == 0  # Q4_1 and a Q8_0 tied embedding: nothing to repack on x86
    assert on.weights_mapped_bytes >= default_model.tensor_bytes * 0.99  # the whole data section stays mapped
    assert off.weights_mapped_bytes == 0 and off.ram_anon_bytes - on.ram_anon_bytes == default_model.tensor_bytes
    assert on.ram_bytes - on.ram_anon_bytes == on.weights_mapped_bytes + memory.CODE_PAGES_BYTES
    # the fit check counts the anonymous part and the mapped weights read every token, not the reservation
    assert on.ram_fit_bytes == on.ram_anon_bytes + on.weights_cpu_bytes
    assert on.compute_working_bytes is not None and on.compute_working_bytes < on.compute_buffer_bytes


def test_more_tokens_per_batch_touch_more_of_the_compute_buffer(default_model: ModelFile) -> None:
    small = memory.plan(default_model, 4096, 16, flash_attn=True, n_tokens=16)
    full = memory.plan(default_model, 4096, 16, flash_attn=True, n_tokens=4096)
    assert small.ram_anon_bytes is not None and full.ram_anon_bytes is not None
    assert small.ram_anon_bytes < full.ram_anon_bytes


def test_a_model_without_its_file_gets_an_estimated_repack_share(default_model: ModelFile) -> None:
    spec = default_model.model_copy(update={"path": "spec:q4_0-like", "file_type": "Q4_0"})
    plan = memory.plan(spec, 1024, cpu_features=AVX2)
    assert plan.weights_repacked_bytes > 0 and plan.source.startswith("estimated:")
    assert memory.plan(spec, 1024).weights_repacked_bytes == 0  # no CPU features given: none predicted
