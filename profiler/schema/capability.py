"""What a scenario needs from a model: benchmarks, named capability levels and the requirement a scenario declares.

``profiler.scenarios`` validates ``capability:`` with it; ``profiler.capability`` finds the models that meet it.
The thresholds are this project's choices, explained in docs/scenarios.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class Level(BaseModel):
    """A named capability level: a benchmark and the minimum score that reaches it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    benchmark: Benchmark
    min_score: float
    meaning: str


# Named levels a scenario may refer to (``capability: {level: ...}``) and that the trend follows. The thresholds
# are this project's choices, explained in docs/scenarios.md; Puri's paper (arXiv 2601.21365) reports the trend
# for "competitive" leaderboard scores without a threshold that could be read from the stored text.
LEVELS: dict[str, Level] = {lv.name: lv for lv in [
    Level(name="fluent-text", benchmark="olb2_ifeval", min_score=50,
          meaning="fluent short texts that keep to a simple format instruction (the 2023 7B-70B chat models)"),
    Level(name="instruction-following", benchmark="olb2_ifeval", min_score=70,
          meaning="keeps several verifiable constraints at once (length, format, content): personalised texts"),
    Level(name="conversational", benchmark="arena_elo", min_score=1150,
          meaning="open conversation people prefer about as often as Llama-3-8B-Instruct / Mixtral-8x7B"),
    Level(name="strong-conversational", benchmark="arena_elo", min_score=1250,
          meaning="open conversation people prefer about as often as Llama-3.1-70B-Instruct"),
    Level(name="knowledge-30", benchmark="olb2_mmlu_pro", min_score=30,
          meaning="broad knowledge and reasoning at about the Mistral-7B-v0.3 level (MMLU-Pro 30)"),
    Level(name="knowledge-40", benchmark="olb2_mmlu_pro", min_score=40,
          meaning="broad knowledge and reasoning at about the Yi-34B / Qwen2.5-7B level (MMLU-Pro 40)"),
]}


class CapabilityRequirement(BaseModel):
    """What a scenario needs from a model: a benchmark and minimum score, or a named level, with its reasons."""

    model_config = ConfigDict(extra="forbid")

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
