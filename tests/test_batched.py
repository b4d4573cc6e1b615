"""Batched decode: the step-time model's invariants, the public batched fit, and ``hfp estimate --parallel B``."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from click.testing import CliRunner

from profiler import profiles, scenarios
from profiler.cli import cli
from profiler.feasibility import Assumptions, ModelSpec, concurrency_curve
from profiler.feasibility.batched import batched_model, leave_one_device_out, load_batched, moe_leave_one_model_out
from profiler.feasibility.calibration import Observation, fit_device
from profiler.feasibility.model import (
    Device,
    ModelShape,
    Part,
    batched_decode_tok_s,
    expected_experts,
    t_decode_step,
    t_prefill,
)
from profiler.feasibility.target import Target

LEVELS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]


def _shape(**spec: object) -> ModelShape:
    base: dict[str, object] = dict(params=8e9, quant="Q4_K_M", layers=32, kv_heads=8, head_dim=128)
    return ModelShape.of(ModelSpec.model_validate({**base, **spec}).to_model_file())


DENSE = _shape()
SWA = _shape(sliding_window=1024, swa_period=6)
MOE = _shape(params=30e9, active_params=3.3e9, experts=128, experts_used=8, layers=48, kv_heads=4)
DENSE_ACTIVE = _shape(params=3.3e9, layers=48, kv_heads=4)  # a dense model of the MoE's active size
SHAPES = {"dense": DENSE, "swa": SWA, "moe": MOE}


# A CPU's batched rate measured per level by a ladder (``calibration.fit_device``): steep, as a 2-core host's
# kernel switches make it (gemv per sequence below 4, repacked gemm from 4), to stress the invariants.
LADDER_CURVE = ((2, 0.4), (4, 0.6), (8, 0.9), (16, 1.8))


def _parts(shape: ModelShape, backend: str) -> list[Part]:
    """The shape on one public-profile processor (GPU or CPU), with the public batched factors, or (``cpu-curve``)
    with a ladder's curve of batched rates."""
    name = {"cuda": "rtx-3090-desktop", "metal": "apple-m4-max", "cpu": "budget-laptop",
            "cpu-curve": "budget-laptop"}[backend]
    target = Target.of(profiles.load(name))
    proc = target.gpu if backend in ("cuda", "metal") and target.gpu else target.cpu
    assert proc is not None
    device = proc.device(shape)
    if backend == "cpu-curve":
        device = replace(device, batch_curve=LADDER_CURVE)
    return [Part(device, shape.streamed_bytes, 1.0, 1.0)]


@pytest.mark.parametrize("backend", ["cuda", "metal", "cpu", "cpu-curve"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_aggregate_never_decreases_and_per_sequence_never_increases_with_b(kind: str, backend: str) -> None:
    shape = SHAPES[kind]
    parts = _parts(shape, backend)
    for ctx in (64.0, 2048.0, 16384.0):
        agg = [batched_decode_tok_s(shape, parts, b, ctx) for b in LEVELS]
        per = [a / b for a, b in zip(agg, LEVELS, strict=True)]
        assert all(y >= x * (1 - 1e-12) for x, y in zip(agg, agg[1:], strict=False)), (kind, backend, ctx, agg)
        assert all(y <= x * (1 + 1e-12) for x, y in zip(per, per[1:], strict=False)), (kind, backend, ctx, per)


@pytest.mark.parametrize("backend", ["cuda", "metal", "cpu", "cpu-curve"])
def test_moe_gains_less_from_a_second_sequence_than_a_dense_model_of_its_active_size(backend: str) -> None:
    def gain(shape: ModelShape) -> float:
        parts = _parts(shape, backend)
        return batched_decode_tok_s(shape, parts, 2, 512.0) / batched_decode_tok_s(shape, parts, 1, 512.0)

    assert gain(MOE) < gain(DENSE_ACTIVE)


@pytest.mark.parametrize("backend", ["cuda", "cpu", "cpu-curve"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_deeper_context_never_decodes_faster(kind: str, backend: str) -> None:
    shape = SHAPES[kind]
    parts = _parts(shape, backend)
    for b in (1, 4, 32):
        rates = [batched_decode_tok_s(shape, parts, b, c) for c in (0.0, 512.0, 1024.0, 4096.0, 32768.0)]
        assert all(y <= x for x, y in zip(rates, rates[1:], strict=False)), (kind, b, rates)


def test_sliding_window_layers_read_at_most_their_window() -> None:
    """Past the window, only the global layers' KV grows: SWA slows down with depth far less than dense."""
    parts_swa, parts_dense = _parts(SWA, "cuda"), _parts(DENSE, "cuda")
    swa_loss = 1 - batched_decode_tok_s(SWA, parts_swa, 8, 32768.0) / batched_decode_tok_s(SWA, parts_swa, 8, 1024.0)
    dense_loss = 1 - (batched_decode_tok_s(DENSE, parts_dense, 8, 32768.0)
                      / batched_decode_tok_s(DENSE, parts_dense, 8, 1024.0))
    assert 0 < swa_loss < dense_loss


def test_the_compute_term_uses_the_batched_rate_not_prefill() -> None:
    """With a slow batched rate the step grows with B even where prefill FLOPS would leave it memory-bound."""
    dev = Device("d", bandwidth_bps=100e9, flops=10e12, t0_s=1e-3)
    shape = DENSE
    fast = [Part(dev, shape.weight_bytes, 1.0, 1.0)]
    slow = [Part(replace(dev, batch_flops=0.5e12, overlap=math.inf), shape.weight_bytes, 1.0, 1.0)]
    assert float(t_decode_step(shape, slow, 1, 64.0)) == pytest.approx(float(t_decode_step(shape, fast, 1, 64.0)))
    assert float(t_decode_step(shape, slow, 16, 64.0)) > 2 * float(t_decode_step(shape, fast, 16, 64.0))


@pytest.mark.parametrize("kind", list(SHAPES))
def test_one_sequence_is_the_single_stream_roofline_whatever_the_batched_factors(kind: str) -> None:
    """B = 1 is t0 + max(M, C1): the public single-sequence model, untouched by F_batch, p or the MoE spread."""
    shape = SHAPES[kind]
    plain = Device("d", bandwidth_bps=200e9, flops=2e12, t0_s=1e-3)
    for batched in (replace(plain, batch_flops=0.1e12, overlap=1.0, expert_spread=0.2),
                    replace(plain, batch_flops=5e12, overlap=3.0)):
        for ctx in (0.0, 4096.0):
            one = [Part(batched, shape.weight_bytes, 1.0, 1.0)]
            ref = [Part(plain, shape.weight_bytes, 1.0, 1.0)]
            assert float(t_decode_step(shape, one, 1, ctx)) == pytest.approx(float(t_decode_step(shape, ref, 1, ctx)))


def test_routing_spread_touches_fewer_experts_but_k_at_one_token() -> None:
    assert expected_experts(128, 8, 1.0, 0.25) == pytest.approx(8.0)
    uniform = [expected_experts(128, 8, float(b)) for b in (2, 8, 32)]
    spread = [expected_experts(128, 8, float(b), 0.25) for b in (2, 8, 32)]
    assert all(8 < s < u <= 128 for s, u in zip(spread, uniform, strict=True))
    assert expected_experts(128, 8, 32.0, 0.01) == pytest.approx(8.0)  # never fewer than k to pick from


def test_public_batched_rows_load_and_every_used_row_names_its_source_and_exclusions_say_why() -> None:
    rows = load_batched()
    assert len(rows) >= 197
    assert all(r.source.startswith("http") for r in rows)
    used = [r for r in rows if r.used]
    assert used and all(not r.exclude for r in used)
    assert all(r.exclude for r in rows if r.quant.endswith("_R4"))  # fork-only repacked quants are left out


def test_batched_fit_gives_positive_factors_and_lodo_predicts_every_used_row() -> None:
    model = batched_model()
    assert model.ratio_pooled > 0 and model.overlap >= 1 and model.sigma_pooled > 0
    rows = load_batched()
    residuals = leave_one_device_out(rows)
    assert len(residuals) == sum(r.used for r in rows)
    assert all(r.predicted > 0 for r in residuals)


def test_a_backend_with_public_moe_rows_gets_its_own_routing_spread_and_the_others_the_pooled_one() -> None:
    model = batched_model()
    moe_backends = {r.backend_key for r in load_batched() if r.used and r.is_moe}
    assert set(model.spreads) == moe_backends
    for backend in moe_backends:
        assert model.factors(backend).spread == model.spreads[backend]
    assert model.factors("no-such-backend").spread == model.spread
    # and each backend's spread is the best fit on its own MoE rows: leave-one-model-out within the backend
    # predicts every MoE row
    moe = moe_leave_one_model_out(load_batched())
    assert len(moe) == sum(r.used and r.is_moe for r in load_batched()) and all(r.predicted > 0 for r in moe)


def test_concurrency_curve_marks_the_planned_parallel_count() -> None:
    scenario = scenarios.load("fake-reviews")
    profile = profiles.load("rtx-3090-desktop")
    curve = concurrency_curve(ModelSpec(params=8e9, quant="Q4_K_M", layers=32, kv_heads=8, head_dim=128),
                              scenario, profile, "rtx-3090-desktop", Assumptions(mc_samples=200))
    batches = [p.batch for p in curve.points]
    assert batches[0] == 1 and curve.planned_parallel in batches
    assert all(p.low <= p.aggregate_tok_s <= p.high for p in curve.points)
    aggs = [p.aggregate_tok_s for p in curve.points]
    assert aggs == sorted(aggs)


SPEC_ARGS = {
    "dense": ["--params", "8e9", "--quant", "Q4_K_M", "--layers", "32", "--kv-heads", "8", "--head-dim", "128"],
    "swa": ["--params", "12e9", "--quant", "Q4_K_M", "--layers", "48", "--kv-heads", "8", "--head-dim", "256",
            "--sliding-window", "1024", "--swa-period", "6"],
    "moe": ["--params", "30e9", "--active-params", "3.3e9", "--experts", "128", "--experts-used", "8",
            "--quant", "Q4_K_M", "--layers", "48", "--kv-heads", "4", "--head-dim", "128"],
}


@pytest.mark.parametrize("kind", list(SPEC_ARGS))
def test_estimate_parallel_b_json_on_every_profile(kind: str) -> None:
    result = CliRunner().invoke(cli, ["estimate", *SPEC_ARGS[kind], "-s", "fake-reviews", "--parallel", "4", "--json"])
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.output)
    assert {e["profile"] for e in estimates} == set(profiles.load_all())
    fitting = [e for e in estimates if e["fits"]]
    assert fitting
    for e in fitting:
        assert e["parallel"] == 4
        assert e["decode_tok_s"] > 0 and e["batched_decode_tok_s"] > 0 and e["prefill_tok_s"] > 0
        assert e["batched_decode_tok_s"] >= e["decode_tok_s"] * (1 - 1e-9) or e["placement"] != "full_offload"


def test_estimate_parallel_that_does_not_fit_says_so() -> None:
    result = CliRunner().invoke(cli, ["estimate", *SPEC_ARGS["dense"], "-s", "fake-reviews", "-p",
                                      "raspberry-pi-5-8gb", "--parallel", "4096", "--json"])
    assert result.exit_code == 0, result.output
    (e,) = json.loads(result.output)
    assert not e["fits"] and "4096 sequences" in e["reason"]


def test_a_measured_curve_sets_the_batched_rate_per_level_interpolated_in_log_b() -> None:
    dev = Device("d", bandwidth_bps=100e9, flops=1e12, batch_flops=0.5e12, batch_curve=((2, 0.2), (8, 0.8)))
    assert dev.decode_flops_at(2) == pytest.approx(0.2e12)
    assert dev.decode_flops_at(4) == pytest.approx(0.4e12)  # halfway in log B: the geometric mean
    assert dev.decode_flops_at(64) == pytest.approx(0.8e12)  # held beyond the last level measured
    assert replace(dev, batch_curve=()).decode_flops_at(4) == pytest.approx(0.5e12)  # no curve: one ratio


def test_the_ladder_fit_recovers_a_curve_of_batched_rates_and_keeps_it_non_decreasing() -> None:
    """Timings made by the model from a known device are fitted back: per-level ratios close to the truth; a
    level whose points say "slower" (a kernel switch) cannot make the fitted curve fall."""
    truth = Device("t", bandwidth_bps=40e9, flops=0.25e12, t0_s=8e-3, batch_flops=0.25e12,
                   batch_curve=((2, 0.5), (4, 0.9), (8, 1.3), (16, 2.4)), overlap=1.0)
    shapes = [_shape(params=p) for p in (1e9, 3e9, 8e9)]
    rows = []
    for shape in shapes:
        parts = [Part(truth, shape.streamed_bytes, 1.0, 1.0)]
        rows.append((shape, 512, Observation(kind="prefill", prompt_tokens=64, output_tokens=16, parallel=1,
                                             measured_s=float(t_prefill(shape, parts, 64)))))
        for b in (1, 2, 4, 8, 16):
            step = float(t_decode_step(shape, parts, b, 8 + 8 / 2 if b > 1 else 64 + 16 / 2))
            pt, out = (8, 8) if b > 1 else (64, 16)
            rows.append((shape, 512, Observation(kind="decode", prompt_tokens=pt, output_tokens=out, parallel=b,
                                                 measured_s=step)))
    dev, _, rms, _ = fit_device(rows, 30e9, 0.2e12, "cpu")
    fitted = dict(dev.batch_curve)
    assert rms < 0.05
    for b, r in truth.batch_curve:
        assert fitted[b] == pytest.approx(r, rel=0.15), (b, fitted)
    # the same timings with the B = 8 steps 40% slower: the fit holds the curve level instead of letting it fall
    slow = [(s, ub, o.model_copy(update={"measured_s": o.measured_s * 1.4}) if o.parallel == 8 else o)
            for s, ub, o in rows]
    curve = fit_device(slow, 30e9, 0.2e12, "cpu")[0].batch_curve
    assert all(r1 >= r0 for (_, r0), (_, r1) in zip(curve, curve[1:], strict=False)), curve
    assert all(r1 / r0 <= b1 / b0 * (1 + 1e-9) for (b0, r0), (b1, r1) in zip(curve, curve[1:], strict=False)), curve
