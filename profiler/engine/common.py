"""The engine protocol and the raw timings an engine returns for one workload point.

Owns nothing but the contract: an engine turns prompts into tokens and timestamps. Metrics (rates, percentiles,
energy) are computed by ``profiler.runner`` from these raw figures, so every engine is measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class PhaseTimings:
    """llama.cpp's own timer for one phase: milliseconds spent in llama_decode and tokens it processed."""

    ms: float
    tokens: int


@dataclass
class PointTimings:
    """Raw timestamps (``time.perf_counter`` seconds) of one repetition of a workload point."""

    t_start: float
    t_first_token: float  # every sequence has its first token (prefill done and sampled)
    step_ends: list[float] = field(default_factory=list)  # end of each decode step (one token per sequence)
    prompt_tokens: int = 0  # summed over sequences
    generated_tokens: int = 0  # summed over sequences, first tokens included
    parallel: int = 1
    engine_prefill: PhaseTimings | None = None
    engine_decode: PhaseTimings | None = None
    sample_text: str = ""  # a short excerpt of sequence 0's output, for sanity checks only

    @property
    def t_end(self) -> float:
        """When the last token was sampled."""
        return self.step_ends[-1] if self.step_ends else self.t_first_token


class Engine(Protocol):
    """What the runner needs from an inference engine."""

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text``."""
        ...

    def run(self, prompts: list[list[int]], output_tokens: int) -> PointTimings:
        """Prefill every prompt as its own sequence, then decode ``output_tokens`` per sequence together."""
        ...

    def close(self) -> None:
        """Free the engine's resources."""
        ...
