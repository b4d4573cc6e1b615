"""Wilson intervals, paired flips and McNemar's test, on counts worked by hand."""

from __future__ import annotations

import pytest

from profiler.safety.stats import Rate, mcnemar_exact_p, paired_change, wilson_interval


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)


def test_wilson_interval_stays_inside_0_1_and_does_not_collapse_at_the_edges() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.65 < lo < 0.75
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_narrows_with_more_probes() -> None:
    widths = [hi - lo for lo, hi in (wilson_interval(n // 2, n) for n in (10, 50, 250))]
    assert widths == sorted(widths, reverse=True)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_mcnemar_exact_p() -> None:
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 0) == pytest.approx(2 / 32)  # all five discordant pairs one way
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(10, 1) == pytest.approx(0.01172, abs=1e-5)


def test_paired_change_counts_flips_against_the_reference() -> None:
    reference = {"a": True, "b": True, "c": True, "d": True, "e": False, "f": False}
    current = {"a": True, "b": False, "c": False, "d": True, "e": True, "f": False}
    ch = paired_change(reference, current)
    assert ch.n_paired == 6
    assert (ch.flip.k, ch.flip.n) == (2, 4)  # b, c: refused at the reference, complied with now
    assert (ch.reverse.k, ch.reverse.n) == (1, 2)  # e
    assert ch.drop_pp == pytest.approx((4 / 6 - 3 / 6) * 100)
    assert ch.relative_drop == pytest.approx(0.25)
    assert ch.mcnemar_p == pytest.approx(1.0)


def test_paired_change_only_pairs_probes_answered_in_both() -> None:
    ch = paired_change({"a": True, "b": True}, {"a": False, "z": True})
    assert ch.n_paired == 1 and (ch.flip.k, ch.flip.n) == (1, 1)


def test_rate_text_and_empty_rate() -> None:
    assert Rate.of(13, 32).text() == "41% [26-58] (13/32)"
    empty = Rate.of(0, 0)
    assert empty.rate is None and empty.text() == "-"
