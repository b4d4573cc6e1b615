"""The roofline and its inputs: public efficiency factors, KV growth, batching, offload, the model spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import profiles, scenarios
from profiler.cli import cli
from profiler.feasibility import Assumptions, Estimate, ModelSpec, public_efficiencies
from profiler.feasibility.efficiency import public_rows
from profiler.feasibility.model import Device, ModelShape, split, t_decode_step, t_prefill
from profiler.feasibility.placement import best_placement
from profiler.feasibility.public_model import BACKENDS, DeviceFacts, public_model
from profiler.feasibility.spec import BITS_PER_WEIGHT, family_spec

SHAPE = ModelShape(params=8e9, weight_bytes=4.9e9, kv_full=131072.0, n_layers=32, repeating_bytes=4.4e9)
GPU = Device("cuda", 600e9, 100e12, 0.0)
CPU = Device("cpu", 50e9, 0.5e12, 0.0)


def test_public_results_give_factors_for_every_backend_and_a_pooled_fallback() -> None:
    effs = public_efficiencies()
    assert set(BACKENDS) | {"pooled"} <= effs.keys()
    for e in effs.values():
        assert e.eta_bw is not None and 0.2 < e.eta_bw < 1.0 and 0 < e.t0_s < 0.02
        assert 0.05 <= e.sigma_bw < 1.0 and 0.05 <= e.sigma_f < 1.5
    assert effs["cuda"].source_bw == "public-cuda" and effs["cuda"].n_rows_bw >= 40
    assert all(r.source for r in public_rows())


def test_decode_slows_as_the_kv_cache_grows_with_context() -> None:
    parts = split(SHAPE, GPU, CPU, 33)
    assert t_decode_step(SHAPE, parts, 1, 32000) > t_decode_step(SHAPE, parts, 1, 100)


def test_batching_raises_aggregate_throughput_until_compute_bound() -> None:
    parts = split(SHAPE, GPU, CPU, 33)
    rates = [b / t_decode_step(SHAPE, parts, b, 512) for b in (1, 2, 4, 8, 16, 64, 256)]
    assert rates == sorted(rates)
    assert rates[-1] <= GPU.flops / (2 * SHAPE.params) * 1.0001


def test_partial_offload_sits_between_full_offload_and_cpu() -> None:
    full, half, cpu = (t_decode_step(SHAPE, split(SHAPE, GPU, CPU, n), 1, 512) for n in (33, 16, 0))
    assert full < half < cpu
    # the GPU part plus the CPU part, by the bytes placed on each
    expected = (SHAPE.repeating_bytes / 2 + 512 * SHAPE.kv_full / 2) / GPU.bandwidth_bps + (
        SHAPE.weight_bytes - SHAPE.repeating_bytes / 2 + 512 * SHAPE.kv_full / 2) / CPU.bandwidth_bps
    assert half == pytest.approx(expected)


def test_prefill_is_compute_bound_for_long_prompts_and_weight_bound_for_short_ones() -> None:
    parts = split(SHAPE, GPU, CPU, 33)
    assert t_prefill(SHAPE, parts, 4096) == pytest.approx(2 * t_prefill(SHAPE, parts, 2048))
    assert t_prefill(SHAPE, parts, 4) == pytest.approx(SHAPE.weight_bytes / GPU.bandwidth_bps)


def test_a_spec_sizes_weights_from_bits_per_weight() -> None:
    spec = ModelSpec(params=8.03e9, quant="Q4_K_M", layers=32, kv_heads=8, head_dim=128)
    model = spec.to_model_file()
    assert model.tensor_bytes == pytest.approx(8.03e9 * BITS_PER_WEIGHT["Q4_K_M"] / 8, rel=1e-6)
    assert model.kv_bytes_per_token() == (32 * 8 * 128 * 2 * 2.0, 0.0)


def test_reference_family_grows_with_parameters() -> None:
    layers = [family_spec(p, "Q4_K_M").layers for p in (0.5e9, 3e9, 8e9, 32e9, 70e9, 405e9, 1e12)]
    assert layers == sorted(layers)


def test_placement_prefers_full_offload_then_partial_then_cpu() -> None:
    a = Assumptions()
    card = profiles.load("rtx-3060-desktop")
    small, mid, big = (family_spec(p, "Q4_K_M").to_model_file() for p in (8e9, 32e9, 90e9))
    assert best_placement(small, card, 4096, 1, a).placement == "full_offload"  # type: ignore[union-attr]
    assert best_placement(mid, card, 4096, 1, a).placement == "partial_offload"  # type: ignore[union-attr]
    assert best_placement(mid, profiles.load("budget-laptop"), 4096, 1, a).placement == "cpu"  # type: ignore[union-attr]
    assert not best_placement(big, card, 4096, 1, a).fits  # type: ignore[union-attr]


def test_estimate_field_names_are_the_documented_ones() -> None:
    documented = (Path(__file__).resolve().parent.parent / "docs" / "performance-model.md").read_text()
    for name in Estimate.model_fields:
        assert f"`{name}`" in documented, name


def test_a_real_run_record_can_be_calibrated_and_estimated(small_record_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    fitted = CliRunner().invoke(cli, ["calibrate", str(small_record_path), "--out", str(out), "--json"])
    assert fitted.exit_code == 0, fitted.output
    fit = json.loads(fitted.output)
    assert fit["n_decode"] == 2 and fit["points"] and fit["t0_s"] >= 0
    rows = CliRunner().invoke(cli, ["estimate", "--model", str(small_record_path), "-s", "fake-reviews", "--json"])
    assert rows.exit_code == 0, rows.output
    assert {r["model_source"] for r in json.loads(rows.output)} == {"record"}
    assert len(json.loads(rows.output)) == len(profiles.load_all())
    assert scenarios.load("fake-reviews").items == json.loads(rows.output)[0]["items"]


def test_cpu_rates_follow_declared_compute_and_scale_at_most_linearly_in_cores() -> None:
    """A CPU's prefill follows its declared TFLOPS when given (proportionally), else grows no faster than its
    core count; its per-core streaming limit is a modern core's (tens of GB/s), so two cores are not capped
    far below their bandwidth."""
    m = public_model()
    small = ModelShape(params=1.2e9, weight_bytes=0.8e9, kv_full=32768.0, n_layers=16)
    declared = [m.flops(DeviceFacts("cpu", 50.0, t, 2), small) for t in (0.25, 0.5)]
    assert declared[1] == pytest.approx(2 * declared[0])
    by_cores = [m.flops(DeviceFacts("cpu", 50.0, None, c), small) for c in (2, 4, 32)]
    assert by_cores[0] < by_cores[1] < by_cores[2] <= 16.5 * by_cores[0]
    assert 15e9 <= m.decode.kappa_core_bps <= 40e9
    assert m.bandwidth_bps(DeviceFacts("cpu", 50.0, None, 2), small) > 0.4 * 50e9 * m.decode.eta["cpu"]
