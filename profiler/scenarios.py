"""Campaign scenarios: the workload shape of a campaign (``scenarios/*.yaml``) and its benign proxy prompt.

Owns the scenario schema, loading by name or path, and the token-shape helpers (high quantiles, sampling,
per-reply context of a growing conversation). It must not predict performance (``feasibility`` does) and must
never hold operational harmful text: a scenario carries sizes, sources and a *benign* proxy prompt of the same
token shape, which is all hfp ever sends to a model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from profiler.config import Catalog
from profiler.resources import builtin_dir
from profiler.schema.base import Finite
from profiler.schema.capability import CapabilityRequirement

# Upper bounds far beyond any campaign; with allow_inf_nan=False they keep a typo (1e308 items, .inf hours) a
# one-line refusal instead of an overflow deep in the estimate.
MAX_TOKENS = 10**9
SCENARIOS_DIR = builtin_dir("scenarios")  # the shipped ones; the user's folders add to them (profiler.resources)


class TokenSpread(Finite):
    """Tokens per item: a mean, a standard deviation across items, and optional hard bounds."""

    mean: float = Field(gt=0, le=MAX_TOKENS)
    sd: float = Field(default=0.0, ge=0, le=MAX_TOKENS)
    min: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    max: int | None = Field(default=None, gt=0, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _bounds(self) -> TokenSpread:
        lo, hi = self.min or 1, self.max
        if hi is not None and hi < lo:
            raise ValueError(f"max ({hi}) is below min ({lo})")
        if hi is not None and not lo <= self.mean <= hi:
            raise ValueError(f"mean ({self.mean}) is outside [min, max] = [{lo}, {hi}]")
        return self

    def high(self) -> int:
        """A planning bound: mean + 2 sd, clipped to ``max`` (what the memory plan reserves per item)."""
        value = self.mean + 2 * self.sd
        if self.max is not None:
            value = min(value, self.max)
        return max(int(np.ceil(value)), 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` integer token counts from a normal(mean, sd) clipped to [min, max] (and to at least 1)."""
        draws = rng.normal(self.mean, self.sd, n) if self.sd > 0 else np.full(n, self.mean)
        return np.clip(np.rint(draws), self.min or 1, self.max or np.inf).astype(np.int64)


class Interactive(Finite):
    """Concurrent conversations: replies generated at once, the reply-latency limit, turns per conversation."""

    concurrency: int = Field(gt=0, le=10**9, description="replies being generated at the same moment (peak)")
    latency_limit_s: float = Field(ge=1e-3, le=1e7,
                                   description="longest acceptable time from incoming message to full reply")
    turns: int = Field(default=1, gt=0, le=10**6,
                       description="replies per conversation; the context grows with each turn")
    reuse_context: bool = Field(
        default=True,
        description="the server keeps each conversation's KV cache (llama-server cache_prompt), so a turn "
        "prefills only its new tokens; false: the whole history is prefilled again every turn",
    )


class Scenario(Finite):
    """One campaign shape: how many items, their token shape, the deadline and how they are produced."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    category: Literal["harmful-campaign", "benign-reference"]
    description: str
    mode: Literal["bulk", "interactive"]
    items: int = Field(gt=0, le=10**15, description="generated texts in the whole campaign (posts, emails, replies)")
    item_unit: str = "item"
    system_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS,
                               description="fixed instructions/persona at the start of a context")
    prompt_tokens: TokenSpread = Field(description="new prompt tokens per item (per turn when interactive)")
    output_tokens: TokenSpread
    deadline_hours: float = Field(ge=1 / 3600, le=1e7)
    max_parallel: int | None = Field(default=None, gt=0, le=10**6, description="cap on sequences decoded together")
    interactive: Interactive | None = None
    proxy_prompt: str = Field(min_length=10, description="benign prompt template of the same token shape")
    proxy_topics: list[str] = Field(default_factory=list, description="benign topics for {topic}")
    out_of_scope: list[str] = Field(default_factory=list, description="parts of the campaign no text model does")
    rationale: str
    sources: list[str] = Field(min_length=1)
    capability: CapabilityRequirement | None = Field(
        default=None, description="what a model must score to be good enough for this campaign (hfp capable)")

    @model_validator(mode="after")
    def _mode(self) -> Scenario:
        if self.mode == "interactive" and self.interactive is None:
            raise ValueError("mode 'interactive' needs an 'interactive' block (concurrency, latency_limit_s, turns)")
        if self.mode == "bulk" and self.interactive is not None:
            raise ValueError("an 'interactive' block is only allowed with mode 'interactive'")
        if "{topic}" in self.proxy_prompt and not self.proxy_topics:
            raise ValueError("proxy_prompt uses {topic} but proxy_topics is empty")
        try:
            self.proxy_prompt.format(topic="", output_words=1)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"proxy_prompt may only use the placeholders {{topic}} and {{output_words}} ({e})") from e
        return self

    @property
    def turns(self) -> int:
        """Replies per conversation (1 for bulk items)."""
        return self.interactive.turns if self.interactive else 1

    @property
    def deadline_s(self) -> float:
        """The deadline in seconds."""
        return self.deadline_hours * 3600.0

    def context_high(self) -> int:
        """Context one sequence must hold (planning bound): the last turn's history plus its reply."""
        turns = self.turns
        return self.system_tokens + turns * self.prompt_tokens.high() + turns * self.output_tokens.high()

    def mean_context(self) -> float:
        """Mean context at which a reply is decoded, averaged over turns and over the reply's own tokens."""
        p, o, t = self.prompt_tokens.mean, self.output_tokens.mean, self.turns
        # turn i (1-based) starts decoding at system + i*p + (i-1)*o; the mean over i = 1..t is (t+1)/2.
        start = self.system_tokens + (t + 1) / 2 * p + (t - 1) / 2 * o
        return start + o / 2


_CATALOG = Catalog("scenarios", Scenario, "scenario")
load = _CATALOG.load  # a scenario by file path, or by name on the search path
sources = _CATALOG.sources  # every scenario file on the search path by name, with where it came from
load_all = _CATALOG.load_all  # every scenario on the search path (or in one folder), keyed by file stem


def load_many(names_or_paths: list[str] | tuple[str, ...]) -> dict[str, Scenario]:
    """The named scenarios (names or paths; ``all`` or nothing means every shipped one), keyed by name."""
    if not names_or_paths or "all" in names_or_paths:
        return load_all()
    loaded = [load(n) for n in names_or_paths]
    return {s.name: s for s in loaded}
