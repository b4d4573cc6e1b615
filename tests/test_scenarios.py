"""Campaign scenarios: the shipped files load, say where their figures come from, and turn into workloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import scenarios, workload
from profiler.cli import cli
from profiler.errors import ConfigError
from profiler.workload import CHARS_PER_TOKEN

SHIPPED = scenarios.load_all()


def test_the_campaign_shapes_ship_with_a_benign_reference() -> None:
    names = set(SHIPPED)
    assert {"disinformation-posts", "spear-phishing-emails", "fake-reviews", "astroturf-comments",
            "scam-chat", "customer-support"} <= names
    assert any(s.category == "benign-reference" for s in SHIPPED.values())
    assert {s.mode for s in SHIPPED.values()} == {"bulk", "interactive"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_scenario_declares_its_shape_and_sources(name: str) -> None:
    s = SHIPPED[name]
    assert s.name == name  # the file stem is the scenario's name
    assert s.items > 0 and s.deadline_hours > 0
    assert s.prompt_tokens.mean > 0 and s.output_tokens.mean > 0
    assert s.rationale.strip() and s.sources
    if s.mode == "interactive":
        assert s.interactive is not None and s.interactive.latency_limit_s > 0


def test_campaigns_with_non_text_parts_say_what_is_out_of_scope() -> None:
    assert any("voice" in x.lower() or "speech" in x.lower() for x in SHIPPED["voice-clone-fraud"].out_of_scope)
    assert any("image" in x.lower() for x in SHIPPED["sextortion-messages"].out_of_scope)


@pytest.mark.parametrize("n_tokens", [40, 200, 1500])
def test_proxy_prompt_is_rendered_to_about_n_tokens(n_tokens: int) -> None:
    s = SHIPPED["disinformation-posts"]
    text = workload.render_proxy_prompt(s, n_tokens)
    assert 0.75 * n_tokens <= len(text) / CHARS_PER_TOKEN <= 1.25 * n_tokens
    assert "{" not in text  # every placeholder filled


def test_proxy_prompt_variants_use_different_topics() -> None:
    s = SHIPPED["fake-reviews"]
    assert workload.render_proxy_prompt(s, 100, 0) != workload.render_proxy_prompt(s, 100, 1)


def test_workload_plan_measures_the_scenario_shape_at_several_parallel_levels() -> None:
    points = workload.plan(SHIPPED["spear-phishing-emails"])
    assert [p.parallel for p in points] == [1, 4, 16]
    assert {p.output_tokens for p in points} == {220}
    assert {p.prompt_tokens for p in points} == {650}


def test_workload_plan_of_a_conversation_uses_its_grown_context_and_concurrency() -> None:
    chat = SHIPPED["voice-clone-fraud"]
    points = workload.plan(chat)
    assert max(p.parallel for p in points) <= chat.interactive.concurrency  # type: ignore[union-attr]
    assert points[0].prompt_tokens > chat.system_tokens + chat.prompt_tokens.mean


def test_token_spread_samples_stay_within_bounds() -> None:
    import numpy as np

    spread = SHIPPED["scam-chat"].output_tokens
    xs = spread.sample(np.random.default_rng(0), 5000)
    assert xs.min() >= (spread.min or 1) and xs.max() <= (spread.max or 10**9)
    assert abs(xs.mean() - spread.mean) < 3


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_a_bad_scenario_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    good = (scenarios.SCENARIOS_DIR / "fake-reviews.yaml").read_text()
    path = _write(tmp_path, good.replace("output_tokens: {mean: 110", "output_tokens: {mean: -5"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: output_tokens\.mean"):
        scenarios.load(path)


def test_cli_reports_a_bad_scenario_in_one_line_with_exit_2(tmp_path: Path) -> None:
    good = (scenarios.SCENARIOS_DIR / "scam-chat.yaml").read_text()
    path = _write(tmp_path, good.replace("latency_limit_s: 20", "latency_limit_s: soon"))
    result = CliRunner().invoke(cli, ["estimate", "--scenario", str(path), "--profile", "budget-laptop"])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "interactive.latency_limit_s" in result.output


def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    good = (scenarios.SCENARIOS_DIR / "fake-reviews.yaml").read_text()
    path = _write(tmp_path, good + "\nbudget_usd: 100\n")
    result = CliRunner().invoke(cli, ["scenarios", str(path)])
    assert result.exit_code == 2 and "budget_usd" in result.output


def test_hfp_scenarios_lists_and_shows() -> None:
    listing = CliRunner().invoke(cli, ["scenarios"])
    assert listing.exit_code == 0
    assert all(name in listing.output for name in SHIPPED)
    shown = CliRunner().invoke(cli, ["scenarios", "scam-chat"])
    assert shown.exit_code == 0 and "latency_limit_s" in shown.output and "sources" in shown.output
