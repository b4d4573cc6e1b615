"""The llama.cpp engine and the runner on the real default model: invariants, not timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler import runner
from profiler.engine import LlamaCppEngine
from profiler.record import RunRecord
from profiler.schema.model import ModelFile
from profiler.workload_prompts import exact_prompt


@pytest.fixture(scope="module")
def engine(default_model: ModelFile):  # type: ignore[no-untyped-def]
    with LlamaCppEngine(default_model.path, runner.default_settings()) as e:
        yield e


def test_prompts_have_exactly_the_requested_tokens(engine: LlamaCppEngine) -> None:
    for n in (1, 7, 64, 300):
        assert len(exact_prompt(engine.tokenize, n)) == n


def test_parallel_sequences_get_different_prompts(engine: LlamaCppEngine) -> None:
    assert exact_prompt(engine.tokenize, 32, 0) != exact_prompt(engine.tokenize, 32, 1)


def test_tokens_generated_equal_tokens_requested(engine: LlamaCppEngine) -> None:
    prompts = [exact_prompt(engine.tokenize, 24, s) for s in range(3)]
    t = engine.run(prompts, output_tokens=10)
    assert t.prompt_tokens == 3 * 24
    assert t.generated_tokens == 3 * 10  # EOS ignored: fixed output length
    assert len(t.step_ends) == 9  # the first token comes from the prefill logits
    assert t.t_start < t.t_first_token <= t.t_end


def test_llama_cpp_counts_the_same_tokens_as_the_harness(engine: LlamaCppEngine) -> None:
    prompts = [exact_prompt(engine.tokenize, 40, s) for s in range(2)]
    t = engine.run(prompts, output_tokens=6)
    assert t.engine_prefill and t.engine_decode
    assert t.engine_prefill.tokens == 80
    assert t.engine_decode.tokens == 2 * 5


def test_greedy_runs_are_repeatable(engine: LlamaCppEngine) -> None:
    prompts = [exact_prompt(engine.tokenize, 16)]
    assert engine.run(prompts, 12).sample_text == engine.run(prompts, 12).sample_text


def test_run_record_holds_every_metric_with_sources(small_record: RunRecord) -> None:
    assert small_record.complete and small_record.schema_version == 1
    assert [p.point.parallel for p in small_record.points] == [1, 2]
    for p in small_record.points:
        assert len(p.repetitions) == 2
        for rep in p.repetitions:
            assert rep.generated_tokens == p.point.parallel * p.point.output_tokens
            assert rep.prompt_tokens == p.point.parallel * p.point.prompt_tokens
            assert 0 < rep.ttft_s <= rep.e2e_s
            assert rep.itl_p50_s <= rep.itl_p95_s
            assert rep.energy.source  # e.g. "estimated:tdp" here, "measured:rapl" where readable
            assert rep.energy.energy_j and rep.energy.energy_j > 0
            assert rep.j_per_token and rep.j_per_token > 0
            assert rep.peak_rss_bytes and rep.peak_rss_bytes > (p.rss_baseline_bytes or 0)
            assert rep.llama and rep.llama.decode_tok_s and rep.llama.prefill_tok_s
        assert p.summary["decode_tok_s_aggregate"].n == 2
        assert p.memory_predicted.fits and p.memory_predicted.source.startswith("predicted:")
        assert p.samples and "process.rss_bytes" in p.samples[0]
    assert small_record.model.sha256 and small_record.llama_cpp_version


def test_record_round_trips_through_json(small_record: RunRecord, small_record_path: Path) -> None:
    assert RunRecord.load(small_record_path) == small_record


@pytest.mark.slow
def test_parallel_8_decodes_eight_sequences_in_each_step(default_model: ModelFile, tmp_path: Path) -> None:
    record = runner.measure(
        default_model, runner.points_grid(16, 24, [1, 8]), runner.default_settings(repetitions=1),
        options=runner.RunOptions(record_path=str(tmp_path / "r.json"), idle_seconds=0),
    )
    one, eight = (p.repetitions[0] for p in record.points)
    # eight sequences share every decode step: eight times the prompt and the tokens, and the aggregate rate is
    # eight per-sequence rates. Whether that is faster is a benchmark's question (benchmarks/validate_batched.py):
    # on a loaded 2-core machine it need not be.
    assert eight.prompt_tokens == 8 * one.prompt_tokens
    assert eight.generated_tokens == 8 * one.generated_tokens
    assert eight.decode_tok_s_aggregate == pytest.approx(8 * eight.decode_tok_s_per_seq)
    assert one.decode_tok_s_aggregate == pytest.approx(one.decode_tok_s_per_seq)


def test_interrupted_run_keeps_finished_points_marked_incomplete(default_model: ModelFile, tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    calls: list[str] = []

    def progress(label: str) -> None:
        calls.append(label)
        if len(calls) == 2:  # the second point's first repetition
            raise KeyboardInterrupt

    with pytest.raises(runner.RunInterrupted) as info:
        runner.measure(default_model, runner.points_grid(16, 4, [1, 2, 4]), runner.default_settings(repetitions=1),
                       progress, runner.RunOptions(record_path=str(path), idle_seconds=0))
    saved = RunRecord.load(path)
    assert info.value.path == path
    assert not saved.complete and (saved.interrupted or "").startswith("SIGINT after 1 of 3")
    assert [p.point.parallel for p in saved.points] == [1]
