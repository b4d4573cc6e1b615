"""The ladder calibration: rung parsing, RAM-based rung choice, and one joint fit over real runs of tiny
synthetic models (structure and invariants, no timing assertions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiler import hardware, profiles, runner, synth
from profiler.errors import ConfigError, ModelError
from profiler.feasibility import Calibration, ladder
from profiler.feasibility.calibration import Observation, calibration_for, fit_device, fitted_device, predict_seconds
from profiler.feasibility.model import ModelShape
from profiler.feasibility.target import Target
from profiler.record import RunRecord, WorkloadPoint
from profiler.schema.model import ModelFile

TINY = {
    "tiny-dense": synth.Shape(arch="llama", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                              n_vocab=4096),
    "tiny-wide": synth.Shape(arch="qwen3", n_embd=512, n_layers=4, n_heads=8, n_kv_heads=2, head_dim=64, n_ff=1536,
                             n_vocab=4096),
    "tiny-moe": synth.Shape(arch="qwen3moe", n_embd=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64, n_ff=512,
                            n_vocab=4096, n_experts=8, n_experts_used=2, n_ff_expert=256),
}


def _measure(model: ModelFile, points: list[WorkloadPoint]) -> tuple[RunRecord, Path | None]:
    options = runner.RunOptions(idle_seconds=0, record_path=str(Path(model.path).with_suffix(".run.json")))
    return runner.measure(model, points, runner.default_settings(repetitions=1), options=options), None


PROGRESS: list[str] = []  # the ladder's progress lines, as `hfp calibrate --ladder` prints them


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ladder.LadderResult:
    mp = pytest.MonkeyPatch()
    for name, shape in TINY.items():
        mp.setitem(synth.PRESETS, name, synth.Preset(shape=shape, source="test"))
    try:
        rungs = [ladder.Rung(preset=name) for name in TINY]
        return ladder.run_ladder(rungs, _measure, prompt_tokens=16, output_tokens=4, parallel=(1, 2),
                                 progress=PROGRESS.append)
    finally:
        mp.undo()


def test_ladder_progress_says_whether_each_file_was_written_or_reused(result: ladder.LadderResult) -> None:
    for rung in result.rungs:
        assert f"preparing {rung.rung}" in PROGRESS and f"measuring {rung.rung}" in PROGRESS
        said = [m for m in PROGRESS if m.endswith(Path(rung.file).name)]
        assert len(said) == 1 and said[0].split()[0] in ("wrote", "reused")


def test_ladder_fits_every_rung_and_reports_a_residual_per_point(result: ladder.LadderResult) -> None:
    assert [r.rung for r in result.rungs] == [f"{n}:Q4_K_M" for n in TINY]
    assert all(r.synthetic for r in result.rungs)
    # decode and prefill at each parallel level of each rung
    assert len(result.points) == len(TINY) * 2 * 2
    assert {p.rung for p in result.points} == {r.rung for r in result.rungs}
    fit = result.calibration
    assert fit.t0_s >= 0 and fit.bandwidth_eff_gbps > 0 and fit.flops_eff_tflops > 0
    assert fit.n_decode == len(TINY) * 2 and fit.rel_rms >= 0
    for p in result.points:
        assert p.point.predicted_s > 0
        assert p.point.rel_error == pytest.approx(p.point.predicted_s / p.point.measured_s - 1.0)
    assert result.duration_s > 0 and result.duration_s >= result.measure_s
    # the batched ratio is fitted from the parallel-2 points and handed to the estimate's efficiency
    assert fit.eta_batch is not None and fit.eta_batch > 0
    eff = fit.efficiency()
    assert eff is not None and eff.eta_batch == fit.eta_batch and eff.source_bw == "calibration:local-ladder"
    # the fixed step time is fitted per layer across sizes, and reaches the estimate's devices that way
    assert fit.tau_layer_s is not None and eff.tau_layer_s == fit.tau_layer_s
    assert fit.t0_s == pytest.approx(32 * fit.tau_layer_s)
    assert result.fingerprint is not None and result.fingerprint == fit.fingerprint
    assert all(r.model is not None and r.model.synthetic for r in result.rungs)


def test_ladder_points_are_long_at_parallel_1_and_short_when_batched() -> None:
    points = ladder.ladder_points((16, 1, 4))
    assert [(p.parallel, p.prompt_tokens, p.output_tokens) for p in points] == [
        (1, ladder.PROMPT_TOKENS, ladder.OUTPUT_TOKENS), (4, ladder.BATCH_PROMPT_TOKENS, ladder.BATCH_OUTPUT_TOKENS),
        (16, ladder.BATCH_PROMPT_TOKENS, ladder.BATCH_OUTPUT_TOKENS)]


def test_estimate_uses_the_ladder_for_this_host_only(result: ladder.LadderResult, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFP_CACHE_DIR", str(tmp_path))
    record = RunRecord.load(Path(result.rungs[0].file).with_suffix(".run.json"))
    here = hardware.to_profile(record.host)  # what `hfp hardware --save` writes on this host
    elsewhere = profiles.load("budget-laptop")
    assert calibration_for(here) is None  # nothing calibrated yet
    result.save()
    found = calibration_for(here)
    assert found is not None and found.record_id == result.id
    assert calibration_for(elsewhere) is None
    other_host = here.model_copy(update={"sources": ["hfp hardware on another-host"]})
    assert calibration_for(other_host) is None
    target = Target.of(here)
    assert target.cpu is not None and target.cpu.eff.source_bw == "calibration:local-ladder"
    assert target.cpu.eff.eta_batch == result.calibration.eta_batch
    # the profile's bandwidth was measured at another moment: the fitted rates apply as they are
    faster = here.model_copy(update={"cpu": here.cpu.model_copy(update={
        "ram_bandwidth_gbps": 1.3 * (here.cpu.ram_bandwidth_gbps or 1.0)})})
    shape = ModelShape.of(record.model)
    dev = Target.of(faster).cpu.device(shape)  # type: ignore[union-attr]
    assert dev.bandwidth_bps == pytest.approx(result.calibration.bandwidth_eff_gbps * 1e9)
    assert dev.flops == pytest.approx(result.calibration.flops_eff_tflops * 1e12)
    assert dev.t0_s == pytest.approx((result.calibration.tau_layer_s or 0) * shape.n_layers)
    cpu = Target.of(elsewhere).cpu
    assert cpu is not None and cpu.eff.source_bw != "calibration:local-ladder"


def test_ladder_result_saves_a_calibration_estimate_can_load(result: ladder.LadderResult, tmp_path: Path) -> None:
    path = result.save(tmp_path / "x.ladder.json")
    again = ladder.LadderResult.load(path)
    assert again == result and re.fullmatch(r"\d{8}T\d{6}Z-ladder", result.id)
    assert list(json.loads(path.read_text())) == list(ladder.LadderResult.model_fields)  # keys in field order
    assert Calibration.load(tmp_path / "x.json").bandwidth_eff_gbps == result.calibration.bandwidth_eff_gbps
    data = json.loads(path.read_text())
    (tmp_path / "v1.ladder.json").write_text(json.dumps({**data, "schema_version": 1}))
    assert ladder.LadderResult.load(tmp_path / "v1.ladder.json").id == result.id  # version 2 only added fields
    (tmp_path / "v9.ladder.json").write_text(json.dumps({**data, "schema_version": 9}))
    for bad in ("v9.ladder.json", "none.ladder.json"):
        with pytest.raises(ConfigError, match=bad):
            ladder.LadderResult.load(tmp_path / bad)


def test_leave_one_out_fits_leave_out_exactly_one_rung(result: ladder.LadderResult) -> None:
    records = [(r.rung, RunRecord.load(Path(r.file).with_suffix(".run.json"))) for r in result.rungs]
    loo = ladder.leave_one_out(records)
    assert set(loo) == {r.rung for r in result.rungs}
    for left_out, fit in loo.items():
        assert left_out not in fit.model and fit.n_decode == (len(TINY) - 1) * 2


def test_rungs_parse_and_refuse_bad_names() -> None:
    rungs = ladder.parse_rungs("qwen2.5-0.5b, llama-3.1-8b:q4_0, qwen3-30b-a3b/12l")
    assert [r.label for r in rungs] == ["qwen2.5-0.5b:Q4_K_M", "llama-3.1-8b:Q4_0", "qwen3-30b-a3b/12l:Q4_K_M"]
    assert rungs[2].shape().n_layers == 12 and rungs[2].shape().n_experts == 128
    cut = ladder.parse_rungs("qwen3-30b-a3b/12l/v32768")[0]
    assert cut.label == "qwen3-30b-a3b/12l/v32768:Q4_K_M" and cut.shape().n_vocab == 32768
    assert cut in ladder.DEFAULT_LADDER
    for bad in ("nope", "llama-3.1-8b:Q3_K", "qwen3-30b-a3b/xl", "qwen3-30b-a3b/0l", "", "qwen3-30b-a3b/v",
                "qwen3-30b-a3b/4l/4l"):
        with pytest.raises(ConfigError):
            ladder.parse_rungs(bad)


def test_rungs_that_do_not_fit_in_ram_are_skipped_with_the_numbers() -> None:
    keep, skipped = ladder.fitting_rungs(ladder.DEFAULT_LADDER, ram_available=4 * synth.GiB)
    assert [r.preset for r in keep] == ["llama-3.2-1b", "qwen2.5-1.5b", "qwen2.5-0.5b"]
    assert len(skipped) == 3 and all("GiB" in s for s in skipped)


def test_rung_and_synth_name_parsers_accept_or_refuse_in_one_line() -> None:
    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("qwenlama-3.1:/,8bQ4_KM0l ")), max_size=40))
    def check(text: str) -> None:
        try:
            rungs = ladder.parse_rungs(text)
            assert rungs and all(r.preset in synth.PRESETS for r in rungs)
        except ConfigError as e:
            assert "\n" not in str(e)
        try:
            preset, ftype = synth.parse_spec("synth:" + text)
            assert preset in synth.PRESETS and ftype in synth.SYNTH_TYPES
        except ModelError as e:
            assert "\n" not in str(e)

    check()


def test_the_fit_recovers_known_constants_from_the_roofline_it_predicts_with() -> None:
    """Observations made by the performance model itself (t0, bandwidth, FLOPS and batched ratio known) are fitted
    back to those constants, and each leave-one-size-out fit predicts the left-out size: the fit and
    the predictions share one roofline, so a ladder whose timings follow it validates exactly."""
    # a batched ratio where an added sequence costs less than a step of its own (below that the bound
    # t_step(B) <= B * t_step(1) holds every step and no timing can tell the ratio)
    truth = fitted_device(30e9, 300e9, 0.004, 0.8, "cpu")
    shapes = [ModelShape(params=p, weight_bytes=0.6 * p, kv_full=131072.0, n_layers=n)
              for p, n in ((1.2e9, 16), (1.5e9, 28), (3.2e9, 28), (8e9, 32))]
    points = [(1, 64, 16), (4, 8, 8), (16, 8, 8)]
    data = []
    for s in shapes:
        for b, prompt, out in points:
            for kind in ("decode", "prefill"):
                o = Observation(kind=kind, prompt_tokens=prompt, output_tokens=out, parallel=b, measured_s=1.0)
                data.append((s, 512, o.model_copy(update={"measured_s": predict_seconds(s, truth, o, 512)})))
    dev, fitted, rms, eta_batch = fit_device(data, 10e9, 100e9, "cpu")
    assert rms < 0.02 and all(abs(p.rel_error) < 0.05 for p in fitted)
    assert dev.bandwidth_bps == pytest.approx(30e9, rel=0.1) and dev.flops == pytest.approx(300e9, rel=0.1)
    assert eta_batch == pytest.approx(0.8, rel=0.1)
    left = shapes[-1]  # extrapolate to the largest size from the others
    dev, *_ = fit_device([d for d in data if d[0] is not left], 10e9, 100e9, "cpu")
    for s, ub, o in (d for d in data if d[0] is left):
        assert predict_seconds(s, dev, o, ub) == pytest.approx(o.measured_s, rel=0.05)
