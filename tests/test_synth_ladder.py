"""The ladder calibration: rung parsing, RAM-based rung choice, and one joint fit over real runs of tiny
synthetic models (structure and invariants, no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler import runner, synth
from profiler.errors import ConfigError
from profiler.feasibility import ladder
from profiler.models import ModelFile
from profiler.record import RunRecord, WorkloadPoint

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


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ladder.LadderResult:
    mp = pytest.MonkeyPatch()
    for name, shape in TINY.items():
        mp.setitem(synth.PRESETS, name, synth.Preset(shape=shape, source="test"))
    try:
        rungs = [ladder.Rung(preset=name) for name in TINY]
        return ladder.run_ladder(rungs, _measure, prompt_tokens=16, output_tokens=4, parallel=(1, 2))
    finally:
        mp.undo()


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
    assert result.duration_s > 0


def test_ladder_result_saves_a_calibration_estimate_can_load(result: ladder.LadderResult, tmp_path: Path) -> None:
    from profiler.feasibility import Calibration

    path = result.save(tmp_path / "x.ladder.json")
    again = ladder.LadderResult.model_validate_json(path.read_text())
    assert again.id == result.id
    assert Calibration.load(tmp_path / "x.json").bandwidth_eff_gbps == result.calibration.bandwidth_eff_gbps


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
    for bad in ("nope", "llama-3.1-8b:Q3_K", "qwen3-30b-a3b/xl", "qwen3-30b-a3b/0l", ""):
        with pytest.raises(ConfigError):
            ladder.parse_rungs(bad)


def test_rungs_that_do_not_fit_in_ram_are_skipped_with_the_numbers() -> None:
    keep, skipped = ladder.fitting_rungs(ladder.DEFAULT_LADDER, ram_available=4 * synth.GiB)
    assert [r.preset for r in keep] == ["qwen2.5-0.5b", "qwen2.5-1.5b"]
    assert len(skipped) == 3 and all("GiB" in s for s in skipped)


def test_rung_and_synth_name_parsers_accept_or_refuse_in_one_line() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from profiler.errors import ModelError

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
