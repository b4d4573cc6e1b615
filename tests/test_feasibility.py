"""Campaign feasibility: `hfp estimate` on every scenario and profile, for a GGUF, a run record and a spec,
and the invariants the performance model must keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import feasibility, memory, profiles, scenarios
from profiler.cli import cli
from profiler.feasibility import Assumptions, ModelSpec
from profiler.feasibility.batched import batched_factors
from profiler.feasibility.model import Device, ModelShape, Part, t_decode_step, t_prefill
from profiler.feasibility.spec import family_spec
from profiler.hardware import HostProfile
from profiler.models import ModelFile
from profiler.record import PointResult, RunRecord, Settings, Stat, WorkloadPoint

PROFILES = profiles.load_all()
SCENARIOS = scenarios.load_all()
REQUIRED_KEYS = {"scenario", "profile", "fits", "decode_tok_s", "batched_decode_tok_s", "prefill_tok_s",
                 "wall_time_s", "devices_needed", "energy_kwh", "verdict"}
SPEC_8B = ModelSpec(name="8b", params=8.03e9, quant="Q4_K_M", layers=32, kv_heads=8, head_dim=128, vocab=128256)

# The roofline a synthetic CPU run record is generated from (record-format fixture, not a fake engine).
TRUE_T0, TRUE_BW, TRUE_F, TRUE_RATIO = 0.0005, 20e9, 0.3e12, 0.4  # ratio: batched-decode FLOP rate / prefill's


def _stat(value: float) -> Stat:
    return Stat(mean=value, stddev=0.0, n=3)


def make_record(model: ModelFile, parallel: tuple[int, ...] = (1, 4, 16)) -> RunRecord:
    """A run record of the real default model whose rates follow a known roofline."""
    host = HostProfile(hostname="fixture", os="Linux", python="3.11", cpu_model="Fixture CPU", physical_cores=8,
                       logical_cores=16, ram_total_bytes=32 * 10**9, ram_available_bytes=28 * 10**9,
                       memory_bandwidth_gbps=25.0, memory_bandwidth_source="measured:numpy-copy",
                       cpu_gflops=400.0, cpu_gflops_source="measured:numpy-sgemm")
    settings = Settings(threads=8, threads_batch=8, n_ctx=8192)
    shape = ModelShape.of(model)
    dev = Device("cpu", TRUE_BW, TRUE_F, TRUE_T0, batch_flops=TRUE_RATIO * TRUE_F,
                 overlap=batched_factors("cpu").overlap)  # the step model the calibration fits
    parts = [Part(dev, shape.weight_bytes, 1.0, 1.0)]
    points = []
    for b in parallel:
        pt = WorkloadPoint(prompt_tokens=256, output_tokens=64, parallel=b)
        step = float(t_decode_step(shape, parts, b, 256 + 32))
        pre = float(t_prefill(shape, parts, 256 * b, settings.n_ubatch))
        plan = memory.plan(model, (256 + 64) * b, b)
        points.append(PointResult(point=pt, repetitions=[], memory_predicted=plan, summary={
            "decode_tok_s_aggregate": _stat(b / step), "decode_tok_s_per_seq": _stat(1 / step),
            "prefill_tok_s": _stat(256 * b / pre)}))
    return RunRecord(id="fixture-run", created_at="2025-01-01T00:00:00+00:00", host=host, model=model,
                     settings=settings, points=points)


@pytest.fixture(scope="module")
def model(default_model_path: Path) -> ModelFile:
    from profiler import models

    return models.inspect(default_model_path, with_hash=False)


@pytest.fixture(scope="module")
def record_path(model: ModelFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_record(model).save(tmp_path_factory.mktemp("records") / "run.json")


def _all_pairs_args() -> list[str]:
    args = ["estimate", "--json"]
    for s in SCENARIOS:
        args += ["--scenario", s]
    for p in PROFILES:
        args += ["--profile", p]
    return args


def _run_json(args: list[str]) -> list[dict]:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("source", ["gguf", "record", "spec"])
def test_estimate_runs_for_every_scenario_and_profile(source: str, record_path: Path, default_model_path: Path,
                                                       tmp_path: Path) -> None:
    if source == "gguf":
        extra = ["--model", str(default_model_path)]
    elif source == "record":
        extra = ["--model", str(record_path)]
    else:
        extra = ["--params", "8.03e9", "--quant", "Q4_K_M", "--layers", "32", "--kv-heads", "8", "--head-dim", "128"]
    rows = _run_json(_all_pairs_args() + extra)
    assert len(rows) == len(SCENARIOS) * len(PROFILES)
    assert {(r["scenario"], r["profile"]) for r in rows} == {(s, p) for s in SCENARIOS for p in PROFILES}
    for r in rows:
        assert REQUIRED_KEYS <= r.keys()
        assert r["model_source"] == source
        assert r["verdict"] in ("feasible", "does not fit", "too slow") or r["verdict"].startswith("needs ")
        if r["fits"]:
            assert r["decode_source"].startswith("predicted:roofline+")
            assert r["decode_tok_s"] > 0 and r["batched_decode_tok_s"] >= r["decode_tok_s"] * 0.999


def test_estimate_table_is_readable_and_names_its_sources() -> None:
    result = CliRunner().invoke(cli, ["estimate", "-s", "fake-reviews", "-p", "rtx-3060-desktop"])
    assert result.exit_code == 0, result.output
    assert "fake-reviews" in result.output and "verdict" in result.output
    assert "sources: predicted:roofline+efficiency:public-cuda" in result.output


def test_model_spec_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: my-7b\nparams: 7e9\nquant: Q4_K_M\nlayers: 32\nkv_heads: 8\nhead_dim: 128\n")
    rows = _run_json(["estimate", "--model-spec", str(path), "-s", "fake-reviews", "-p", "rtx-4090-desktop",
                      "--json"])
    assert rows[0]["model"].startswith("my-7b") and rows[0]["fits"]


def test_an_incomplete_model_spec_is_a_user_error() -> None:
    result = CliRunner().invoke(cli, ["estimate", "--params", "7e9", "--layers", "32"])
    assert result.exit_code == 2 and "kv_heads" in result.output


def test_calibrate_recovers_the_roofline_a_record_follows(record_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    result = CliRunner().invoke(cli, ["calibrate", str(record_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    fit = feasibility.Calibration.load(out)
    assert fit.backend == "cpu" and fit.n_decode == 3 and fit.n_prefill == 3
    assert fit.bandwidth_eff_gbps == pytest.approx(TRUE_BW / 1e9, rel=0.1)
    assert fit.flops_eff_tflops == pytest.approx(TRUE_F / 1e12, rel=0.1)
    assert fit.eta_batch == pytest.approx(TRUE_RATIO, rel=0.15)  # from the parallel 4 and 16 decode points
    assert fit.eta_bw == pytest.approx(fit.bandwidth_eff_gbps / 25.0)
    assert fit.rel_rms < 0.02 and all(abs(p.rel_error) < 0.05 for p in fit.points)


def test_calibrate_a_missing_record_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_a_record_calibrates_profiles_of_its_own_backend_only(model: ModelFile) -> None:
    results = feasibility.estimate(make_record(model), PROFILES, [SCENARIOS["fake-reviews"]])
    by_profile = {e.profile: e for e in results}
    assert by_profile["raspberry-pi-5-8gb"].decode_source == "predicted:roofline+calibration:local"
    assert by_profile["rtx-4090-desktop"].decode_source == "predicted:roofline+efficiency:public-cuda"


def test_a_saved_calibration_is_used_by_estimate(record_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    CliRunner().invoke(cli, ["calibrate", str(record_path), "--out", str(out)])
    rows = _run_json(["estimate", "--calibration", str(out), "-s", "fake-reviews", "-p", "budget-laptop", "--json"])
    assert rows[0]["decode_source"] == "predicted:roofline+calibration:local"


# --- invariants --------------------------------------------------------------------------------------------


def test_results_are_identical_for_identical_inputs() -> None:
    a = feasibility.estimate(SPEC_8B, PROFILES, SCENARIOS)
    b = feasibility.estimate(SPEC_8B, PROFILES, SCENARIOS)
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_larger_model_never_predicts_faster_decode(profile: str) -> None:
    # from 1.2B up the reference family never has fewer layers for more parameters; below it, shapes interpolated
    # between SmolLM2-135M (30 layers) and Llama-3.2-1B (16) have more layers, and the per-layer fixed cost of a
    # decode step (docs/performance-model.md) may then make a smaller model slower on a fast GPU
    sizes = [1.2e9, 3e9, 8e9, 14e9, 32e9, 70e9, 123e9]
    scenario = [SCENARIOS["disinformation-posts"]]
    rates = [feasibility.estimate(family_spec(p, "Q4_K_M"), {profile: PROFILES[profile]}, scenario)[0]
             for p in sizes]
    fitted = [e.decode_tok_s for e in rates if e.fits]
    assert fitted == sorted(fitted, reverse=True)
    fits = [e.fits for e in rates]
    assert fits == sorted(fits, reverse=True)  # once a size does not fit, no larger one does


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_more_bandwidth_never_predicts_slower_decode(profile: str) -> None:
    base = PROFILES[profile]
    faster = base.model_copy(deep=True)
    faster.cpu.ram_bandwidth_gbps *= 2
    if faster.gpu:
        faster.gpu.bandwidth_gbps *= 2
    for spec in (SPEC_8B, family_spec(70e9, "Q4_K_M")):
        slow, fast = (feasibility.estimate(spec, {profile: p}, [SCENARIOS["scam-chat"]])[0] for p in (base, faster))
        if slow.fits:
            assert fast.decode_tok_s >= slow.decode_tok_s  # type: ignore[operator]
            assert fast.wall_time_s <= slow.wall_time_s  # type: ignore[operator]


def test_a_model_larger_than_vram_plus_ram_does_not_fit() -> None:
    for key, p in PROFILES.items():
        total_gb = p.cpu.ram_gb + (p.gpu.vram_gb if p.gpu and not p.gpu.unified_memory else 0)
        spec = ModelSpec(params=2e12, weights_bytes=(total_gb + 1) * 1e9, layers=120, kv_heads=8, head_dim=128)
        (e,) = feasibility.estimate(spec, {key: p}, [SCENARIOS["fake-reviews"]])
        assert not e.fits and e.verdict == "does not fit" and e.verdict_kind == "does_not_fit"
        assert e.devices_needed is None and "does not fit" in e.reason


def test_devices_needed_cover_the_campaign_within_its_deadline() -> None:
    checked = 0
    for e in feasibility.estimate(SPEC_8B, PROFILES, SCENARIOS):
        if e.devices_needed is None:
            continue
        per_device_items = e.items_per_hour * e.deadline_s / 3600  # type: ignore[operator]
        assert e.devices_needed * per_device_items >= e.items * (1 - 1e-9)
        assert e.devices_needed == 1 or (e.devices_needed - 1) * per_device_items < e.items or e.mode == "interactive"
        assert e.hardware_usd == pytest.approx(e.devices_needed * e.price_usd)
        checked += 1
    assert checked > 50


def test_interactive_campaigns_respect_the_latency_limit_or_say_too_slow() -> None:
    for e in feasibility.estimate(family_spec(32e9, "Q4_K_M"), PROFILES, [SCENARIOS["voice-clone-fraud"]]):
        if e.verdict_kind == "too_slow":
            assert e.devices_needed is None and e.latency_quantile_s > e.latency_limit_s  # type: ignore[operator]
        elif e.fits:
            assert e.latency_quantile_s <= e.latency_limit_s  # type: ignore[operator]


def test_the_uncertainty_band_brackets_the_estimate() -> None:
    for e in feasibility.estimate(SPEC_8B, PROFILES, [SCENARIOS["spear-phishing-emails"]]):
        if e.fits:
            band = e.wall_time_s_band
            assert band is not None and band.low < e.wall_time_s < band.high  # type: ignore[operator]
            assert e.decode_tok_s_band.low < e.decode_tok_s < e.decode_tok_s_band.high  # type: ignore[union-attr]


def test_electricity_cost_follows_the_price_assumption() -> None:
    cheap, dear = (feasibility.estimate(SPEC_8B, {"x": PROFILES["rtx-3090-desktop"]}, [SCENARIOS["fake-reviews"]],
                                        Assumptions(electricity_usd_per_kwh=price))[0] for price in (0.1, 0.3))
    assert dear.energy_kwh == cheap.energy_kwh
    assert dear.electricity_usd == pytest.approx(3 * cheap.electricity_usd)  # type: ignore[operator]


def test_ten_used_v100s_check_the_papers_claim_for_text_parts() -> None:
    """Puri (arXiv 2601.21365): ten used V100s exceed every campaign's compute bound. For an 8B model the
    text parts of every shipped campaign need at most ten V100s (or do not fit, which would refute it)."""
    results = feasibility.estimate(SPEC_8B, {"v100": PROFILES["tesla-v100-16gb-used"]}, SCENARIOS)
    assert all(e.fits for e in results)
    assert all(e.devices_needed is not None for e in results)  # computed, whatever the answer


# --- frontier ---------------------------------------------------------------------------------------------


def test_frontier_fits_larger_models_at_fewer_bits() -> None:
    points = feasibility.frontier(PROFILES, ["Q8_0", "Q4_K_M", "Q2_K"])
    assert len(points) == 3 * len(PROFILES)
    for key in PROFILES:
        mine = [p for p in points if p.profile == key]
        sizes = [p.max_params or 0 for p in mine]
        assert sizes == sorted(sizes) and sizes[-1] > 0
        assert all(p.decode_tok_s and p.decode_tok_s > 0 for p in mine)
        assert all(p.decode_source and p.decode_source.startswith("predicted:roofline+") for p in mine)


def test_frontier_grows_with_memory() -> None:
    q4 = {p.profile: p.max_params for p in feasibility.frontier(PROFILES, ["Q4_K_M"])}
    assert q4["raspberry-pi-5-8gb"] < q4["rtx-3060-desktop"] < q4["rtx-3090-desktop"] < q4["dgx-spark"]


def test_hfp_frontier_prints_json_and_refuses_unknown_quants() -> None:
    rows = _run_json(["frontier", "-p", "tesla-v100-16gb-used", "--quant", "Q4_K_M,Q8_0", "--json"])
    assert [r["quant"] for r in rows] == ["Q4_K_M", "Q8_0"]
    bad = CliRunner().invoke(cli, ["frontier", "--quant", "Q1_X"])
    assert bad.exit_code == 2 and "unknown quantization" in bad.output
