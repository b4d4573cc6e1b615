"""Resident memory through the real engine: a repackable model's anonymous memory holds the repacked copy of its
weights and a non-repackable model's does not, as the memory plan predicts (structure, not timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler import hardware, memory, models, runner
from profiler.models import ModelFile
from profiler.quantize import build_ladder
from profiler.record import PointResult

MiB = 1024**2


def _tolerance(predicted: int) -> float:
    """15% of the prediction, at least 8 MiB (allocator slack and Python objects in a small model's footprint)."""
    return max(0.15 * predicted, 8 * MiB)


@pytest.fixture(scope="module")
def host() -> hardware.HostProfile:
    return hardware.detect(measure=False)


@pytest.fixture(scope="module")
def q4_0(default_model_path: Path) -> ModelFile:
    """The default model quantized to Q4_0 (repacked by llama.cpp's CPU backend on AVX2 and Arm dot-product CPUs)."""
    ladder = build_ladder(default_model_path, ["Q4_0"])
    return models.inspect(Path(ladder.directory) / ladder.levels[0].file)


def _measure(model: ModelFile, host: hardware.HostProfile, tmp_path: Path, use_mmap: bool = True) -> PointResult:
    settings = runner.default_settings(repetitions=1, warmup=False, use_mmap=use_mmap)
    record = runner.measure(model, runner.points_grid(32, 4, [1]), settings, host=host,
                            options=runner.RunOptions(record_path=str(tmp_path / "mem.json"), idle_seconds=0))
    return record.points[0]


def _anon_above_baseline(p: PointResult) -> float:
    peak = p.summary["peak_anon_bytes"].mean
    assert peak is not None and p.anon_baseline_bytes is not None, "the process sensor gave no anonymous part"
    return peak - p.anon_baseline_bytes


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the anonymous part is read from /proc")
def test_repacked_weights_are_anonymous_and_match_the_plan(
    default_model: ModelFile, q4_0: ModelFile, host: hardware.HostProfile, tmp_path: Path
) -> None:
    features = memory.host_cpu_features(host.backends.system_info)
    plain = _measure(default_model, host, tmp_path)
    packed = _measure(q4_0, host, tmp_path)
    plain_plan, packed_plan = plain.memory_predicted, packed.memory_predicted
    assert plain_plan.weights_repacked_bytes == 0  # Q4_1 matmul weights have no repacked layout (repack.cpp)
    can_repack = features is not None and features.repack and (features.avx2 or (features.neon and features.dotprod))
    assert (packed_plan.weights_repacked_bytes > 0) == can_repack
    for p in (plain, packed):
        assert p.memory_predicted.ram_anon_bytes is not None
        measured, predicted = _anon_above_baseline(p), p.memory_predicted.ram_anon_bytes
        assert abs(measured - predicted) <= _tolerance(predicted), (p.memory_predicted.source, measured, predicted)
    # the repacked copy shows up in the anonymous part, not only in the plan
    extra = _anon_above_baseline(packed) - _anon_above_baseline(plain)
    expected = packed_plan.ram_anon_bytes - plain_plan.ram_anon_bytes  # type: ignore[operator]
    assert abs(extra - expected) <= 8 * MiB


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the anonymous part is read from /proc")
def test_without_mmap_every_weight_is_anonymous(default_model: ModelFile, host: hardware.HostProfile,
                                                tmp_path: Path) -> None:
    p = _measure(default_model, host, tmp_path, use_mmap=False)
    plan = p.memory_predicted
    assert plan.weights_mapped_bytes == 0 and plan.ram_anon_bytes is not None
    assert plan.ram_anon_bytes >= default_model.tensor_bytes
    measured = _anon_above_baseline(p)
    assert measured >= 0.95 * default_model.tensor_bytes
    assert abs(measured - plan.ram_anon_bytes) <= _tolerance(plan.ram_anon_bytes)
