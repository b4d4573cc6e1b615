"""What a scenario needs from a model: benchmarks, named capability levels and the requirement a scenario declares.

``profiler.scenarios`` validates ``capability:`` with it; ``profiler.capability`` finds the models that meet it.
The thresholds are this project's choices, explained in docs/scenarios.md.
"""

from __future__ import annotations

import csv
from typing import Literal

from pydantic import Field, model_validator

from profiler.resources import data_file
from profiler.schema.base import Strict

Benchmark = Literal[
    "olb2_ifeval", "olb2_mmlu_pro", "olb2_bbh", "arena_elo", "vendor_mmlu", "vendor_mmlu_pro", "vendor_ifeval",
]
BENCHMARKS: dict[str, str] = {
    "olb2_ifeval": "IFEval on the Open LLM Leaderboard v2 (strict accuracy x 100, leaderboard's own run)",
    "olb2_mmlu_pro": "MMLU-Pro on the Open LLM Leaderboard v2 (raw accuracy x 100, leaderboard's own run)",
    "olb2_bbh": "BBH on the Open LLM Leaderboard v2 (raw accuracy x 100, leaderboard's own run)",
    "arena_elo": "LMArena text arena score (human pairwise preference, Elo-like scale)",
    "vendor_mmlu": "MMLU as reported by the model's vendor (settings differ between vendors)",
    "vendor_mmlu_pro": "MMLU-Pro as reported by the vendor (settings differ between vendors)",
    "vendor_ifeval": "IFEval as reported by the vendor (metric differs: strict-prompt or an average)",
}
_SCORE_RANGE: dict[str, tuple[float, float]] = {b: (0.0, 100.0) for b in BENCHMARKS} | {"arena_elo": (700.0, 2000.0)}


class Level(Strict):
    """A named capability level: a benchmark and the minimum score that reaches it."""

    name: str
    benchmark: Benchmark
    min_score: float
    meaning: str


def _levels() -> dict[str, Level]:
    """Named levels a scenario may refer to (``capability: {level: ...}``) and that the trend follows, from
    ``profiler/data/capability-levels.csv``. The thresholds are this project's choices, explained in
    docs/scenarios.md; Puri's paper (arXiv 2601.21365) reports the trend for "competitive" leaderboard scores
    without a threshold that could be read from the stored text."""
    with data_file("capability-levels.csv").open(newline="", encoding="utf-8") as f:
        return {row["name"]: Level.model_validate(row) for row in csv.DictReader(f)}


LEVELS: dict[str, Level] = _levels()


class CapabilityRequirement(Strict):
    """What a scenario needs from a model: a benchmark and minimum score, or a named level, with its reasons."""

    level: str | None = Field(default=None, description=f"a named level: {', '.join(LEVELS)}")
    benchmark: Benchmark | None = None
    min_score: float | None = None
    rationale: str = Field(min_length=10)
    sources: list[str] = Field(min_length=1)
    puri_reference: str | None = Field(default=None, description="the reference level Puri uses, where given")

    @model_validator(mode="after")
    def _resolve(self) -> CapabilityRequirement:
        if self.level is not None:
            lv = LEVELS.get(self.level)
            if lv is None:
                raise ValueError(f"unknown level {self.level!r}; known: {', '.join(LEVELS)}")
            if self.benchmark not in (None, lv.benchmark) or self.min_score not in (None, lv.min_score):
                raise ValueError(f"level {self.level!r} is {lv.benchmark} >= {lv.min_score:g}; "
                                 "give the level or a benchmark and min_score, not both")
            self.benchmark, self.min_score = lv.benchmark, lv.min_score
        elif self.benchmark is None or self.min_score is None:
            raise ValueError("give a level or both benchmark and min_score")
        lo, hi = _SCORE_RANGE[self.benchmark]
        if not lo <= self.min_score <= hi:
            raise ValueError(f"min_score {self.min_score:g} is outside {self.benchmark}'s range [{lo:g}, {hi:g}]")
        return self

    def describe(self) -> str:
        """``olb2_ifeval >= 70 (instruction-following)``."""
        text = f"{self.benchmark} >= {self.min_score:g}"
        return f"{text} ({self.level})" if self.level else text
