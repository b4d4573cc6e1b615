"""Capability data, scenario requirements, `hfp capable` and the size trend: the shipped data validates, every
figure carries its source, shapes agree with parameter counts, and the commands answer for every scenario."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from profiler import capability, scenarios
from profiler.capability import CapabilityRequirement, OpenModel
from profiler.cli import cli
from profiler.errors import ConfigError

MODELS = capability.load_models()
SHIPPED = scenarios.load_all()


def test_capability_data_validates_and_every_figure_group_has_a_source() -> None:
    assert MODELS
    for m in MODELS:
        assert m.meta_source.startswith("http") or "SECONDARY" in m.meta_source or "https://" in m.meta_source
        assert date(2023, 1, 1) <= m.release_date <= date.today()
        if m.has_shape:
            assert m.shape_source
        for bench in capability.BENCHMARKS:
            if m.score(bench) is not None:
                assert m.score_source(bench), (m.model, bench)
        if m.params_active_b is not None:
            assert m.params_active_b <= m.params_total_b * 1.001 and m.params_active_basis


def test_data_spans_dense_and_moe_models_from_2023_to_2025_and_half_a_billion_to_70b() -> None:
    assert any(m.moe for m in MODELS) and any(not m.moe for m in MODELS)
    assert min(m.release_date for m in MODELS).year == 2023 and max(m.release_date for m in MODELS).year >= 2025
    assert min(m.params_total_b for m in MODELS) <= 0.5 and max(m.params_total_b for m in MODELS) >= 65


@pytest.mark.parametrize("m", [m for m in MODELS if m.params_from_shape() is not None], ids=lambda m: m.model)
def test_shape_agrees_with_the_published_parameter_count_within_10_percent(m: OpenModel) -> None:
    computed = m.params_from_shape()
    assert computed is not None
    assert abs(computed / m.total_params - 1) <= 0.10, f"{m.model}: shape gives {computed / 1e9:.2f}B"


def test_moe_rows_with_a_shape_say_how_many_experts_run() -> None:
    for m in MODELS:
        if m.experts is not None:
            assert m.moe and m.experts_used is not None and m.experts_used < m.experts
            assert m.params_active_b is not None and m.params_active_b < m.params_total_b


def _csv_with(change: dict[str, str]) -> str:
    text = capability._shipped_text()
    header, first = text.splitlines()[:2]
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(header + "\n" + first + "\n")))
    row.update(change)
    out = io.StringIO()
    w = csv.DictWriter(out, list(row))
    w.writeheader()
    w.writerow(row)
    return out.getvalue()


@pytest.mark.parametrize("change", [
    {"olb2_source": ""},                       # a score without its source
    {"olb2_ifeval": "140"},                    # out of range
    {"release_date": "2031-01-01"},            # in the future
    {"release_date": "yesterday"},             # not a date
    {"params_active_b": "900"},                # active above total
    {"experts": "8", "experts_used": ""},      # half an MoE description
])
def test_a_bad_row_is_refused_with_its_line_and_field(change: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"line 2 \("):
        capability.parse_models(_csv_with(change))


def test_a_score_is_never_made_up_models_without_it_are_not_capable() -> None:
    req = CapabilityRequirement(benchmark="olb2_ifeval", min_score=0, rationale="anything with a score at all",
                                sources=["test"])
    got = {m.model for m in capability.capable(req).by_total}
    assert got == {m.model for m in MODELS if m.olb2_ifeval is not None}


def test_requirement_takes_a_level_or_a_benchmark_and_score() -> None:
    lv = CapabilityRequirement(level="instruction-following", rationale="keeps constraints", sources=["x"])
    assert (lv.benchmark, lv.min_score) == ("olb2_ifeval", 70)
    for bad in [dict(level="genius"), dict(benchmark="olb2_ifeval"), dict(level="fluent-text", min_score=90),
                dict(benchmark="arena_elo", min_score=50)]:
        with pytest.raises(ValidationError):
            CapabilityRequirement(rationale="a reason of some length", sources=["x"], **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_scenario_declares_a_capability_requirement_with_rationale_and_sources(name: str) -> None:
    req = SHIPPED[name].capability
    assert req is not None and req.benchmark in capability.BENCHMARKS and req.min_score is not None
    assert len(req.rationale) > 40 and req.sources


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_hfp_capable_lists_the_smallest_capable_models_for_every_scenario(name: str) -> None:
    result = CliRunner().invoke(cli, ["capable", "--scenario", name])
    assert result.exit_code == 0, result.output
    best = capability.capable_for(SHIPPED[name])
    assert best.smallest_total is not None and best.smallest_total.model in result.output
    data = json.loads(CliRunner().invoke(cli, ["capable", "-s", name, "--json"]).stdout)[name]
    scores = [m[data["requirement"]["benchmark"]] for m in data["by_total"]]
    assert scores and min(scores) >= data["requirement"]["min_score"]
    totals = [m["params_total_b"] for m in data["by_total"]]
    assert totals == sorted(totals)


def test_the_smallest_capable_model_never_grows_as_time_passes() -> None:
    for s in SHIPPED.values():
        sizes = []
        for day in ["2023-12-31", "2024-06-30", "2024-12-31", date.today().isoformat()]:
            cs = capability.capable_for(s, day)
            assert all(m.release_date <= date.fromisoformat(day) for m in cs.by_total)
            sizes.append(cs.smallest_total.params_total_b if cs.smallest_total else float("inf"))
        assert sizes == sorted(sizes, reverse=True)


def test_hfp_scenarios_shows_the_requirement_and_a_bad_date_is_one_line() -> None:
    out = CliRunner().invoke(cli, ["scenarios"]).output
    assert "capability" in out and "olb2_ifeval >= " in out
    result = CliRunner().invoke(cli, ["capable", "--as-of", "31/12/2024"])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0 and "error:" in result.output


def test_model_spec_carries_the_rows_shape() -> None:
    m = capability.find_model("Llama-3.2-3B-Instruct")
    model = capability.model_spec(m, "Q4_K_M").to_model_file()
    assert (model.n_layers, model.n_kv_heads[0], model.head_dim_k, model.n_vocab) == (28, 8, 128, 128256)
    assert model.params == pytest.approx(m.total_params)
    no_shape = next(x for x in MODELS if not x.has_shape)
    with pytest.raises(ConfigError):
        capability.model_spec(no_shape)


def test_a_moe_rows_spec_keeps_its_active_parameters_and_experts() -> None:
    m = capability.find_model("Qwen3-30B-A3B")
    spec = capability.model_spec(m, "Q4_K_M")
    assert spec.params == pytest.approx(m.total_params)
    assert spec.active_params == pytest.approx(m.active_params)
    assert (spec.experts, spec.experts_used) == (m.experts, m.experts_used)


def test_estimate_model_capable_answers_every_scenario_with_its_capable_model() -> None:
    result = CliRunner().invoke(cli, ["estimate", "--model", "capable", "--quant", "Q4_K_M", "-p", "rtx-3060-desktop",
                                      "--json"])
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.stdout)
    assert {e["scenario"] for e in estimates} == set(SHIPPED)
    for e in estimates:
        choice, _ = capability.choose(SHIPPED[e["scenario"]])
        assert choice.model is not None and e["model"].startswith(choice.model) and e["model_source"] == "spec"
    text = CliRunner().invoke(cli, ["estimate", "--model", "capable", "-s", "scam-chat", "-p", "rtx-3060-desktop"])
    assert text.exit_code == 0 and "needs olb2_ifeval >= 70" in text.output


def test_trend_steps_fall_and_the_fitted_rate_has_an_interval_around_it() -> None:
    tr = capability.trend(n_boot=300)
    assert any(len(lt.steps) >= 2 for lt in tr.levels)
    for lt in tr.levels:
        assert [s.params_b for s in lt.steps] == sorted((s.params_b for s in lt.steps), reverse=True)
        assert [s.date for s in lt.steps] == sorted(s.date for s in lt.steps)
    r = tr.rate
    assert r.fold_per_year is not None and r.fold_per_year > 1  # smallest capable size fell
    assert r.bootstrap_low is not None and r.bootstrap_high is not None
    assert r.bootstrap_low <= r.fold_per_year <= r.bootstrap_high
    assert r.regression_low is not None and r.regression_high is not None
    assert r.regression_low <= r.fold_per_year <= r.regression_high
    assert tr.puri["fold_per_year"] == 10
    level = next(lt for lt in tr.levels if lt.steps)
    ahead = tr.extrapolate(level.level.name, date(tr.as_of.year + 1, 1, 1))
    assert ahead.low_b <= ahead.params_b <= ahead.high_b <= level.steps[-1].params_b
    assert "extrapolation" in ahead.label


def test_hfp_capable_trend_prints_the_rate_with_its_interval_and_puris_figure() -> None:
    result = CliRunner().invoke(cli, ["capable", "--trend"])
    assert result.exit_code == 0, result.output
    assert "x per year (95% bootstrap" in result.output and "Puri" in result.output
    data = json.loads(CliRunner().invoke(cli, ["capable", "--trend", "--by", "active", "--json"]).stdout)
    assert data["rate"]["by"] == "active" and data["levels"]


_COLUMNS = list(OpenModel.model_fields)


@given(column=st.sampled_from(_COLUMNS), value=st.text(max_size=30))
@settings(max_examples=150, deadline=None)
def test_any_cell_value_either_loads_or_is_a_one_line_config_error(column: str, value: str) -> None:
    try:
        capability.parse_models(_csv_with({column: value}))
    except ConfigError as e:
        assert "\n" not in str(e)
