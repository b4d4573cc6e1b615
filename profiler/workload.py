"""From a campaign scenario to what can be measured: workload points and the benign proxy prompt text.

Owns ``plan(scenario)`` (prompt tokens, output tokens and parallel levels that represent the scenario's shape,
for ``hfp run --scenario``) and ``render_proxy_prompt`` (the scenario's benign template filled and padded to
about N tokens). It must not tokenize (the engine cuts text to exact token counts) and must never produce
anything but benign text.
"""

from __future__ import annotations

from profiler.record import WorkloadPoint
from profiler.scenarios import Scenario

# English text averages about four characters per BPE token; the engine tokenizes and cuts exactly.
CHARS_PER_TOKEN = 4.0
WORDS_PER_TOKEN = 0.75
DEFAULT_LEVELS = (1, 4, 16)

# Benign background sentences used to pad a proxy prompt to the scenario's prompt length.
FILLER = (
    "The community centre opens at nine on weekdays and at ten on Saturdays.",
    "Volunteers meet in the small hall next to the library entrance.",
    "Last month the gardening group planted tomatoes, beans and a row of sunflowers.",
    "Tea and biscuits are served after every meeting, and everyone is welcome to stay.",
    "The notice board lists the bus times and the dates of the next repair café.",
    "Children from the primary school painted the new signs for the allotments.",
    "The reading group is discussing a novel about a lighthouse keeper this season.",
    "Bicycles can be left in the covered racks behind the building.",
    "The weather forecast promises a dry weekend with light winds from the west.",
    "A local baker has offered bread for the spring fair at no cost.",
)


def plan(
    scenario: Scenario, parallel: list[int] | None = None, max_prompt_tokens: int | None = None
) -> list[WorkloadPoint]:
    """Points that measure the scenario's shape: its mean decode context as the prompt, its mean output length,
    at several parallel levels (default 1, 4, 16, capped by the scenario's concurrency or ``max_parallel``)."""
    cap = scenario.max_parallel or max(DEFAULT_LEVELS)
    if scenario.interactive:
        cap = min(cap, scenario.interactive.concurrency)
    levels = sorted(set(parallel)) if parallel else sorted({min(level, cap) for level in DEFAULT_LEVELS})
    output = max(int(round(scenario.output_tokens.mean)), 1)
    # the context at which an item starts decoding, averaged over turns (the prompt stands in for the history)
    prompt = max(int(round(scenario.mean_context() - scenario.output_tokens.mean / 2)), 1)
    if max_prompt_tokens:
        prompt = min(prompt, max_prompt_tokens)
    return [WorkloadPoint(prompt_tokens=prompt, output_tokens=output, parallel=b) for b in levels]


def render_proxy_prompt(scenario: Scenario, n_tokens: int, variant: int = 0) -> str:
    """The scenario's benign proxy prompt, filled (``{topic}``, ``{output_words}``) and padded with benign
    background sentences to about ``n_tokens`` tokens (at ~4 characters per token); ``variant`` picks the
    topic and rotates the padding so parallel sequences differ."""
    topic = scenario.proxy_topics[variant % len(scenario.proxy_topics)] if scenario.proxy_topics else ""
    words = max(int(round(scenario.output_tokens.mean * WORDS_PER_TOKEN)), 1)
    text = " ".join(scenario.proxy_prompt.format(topic=topic, output_words=words).split())
    target = int(n_tokens * CHARS_PER_TOKEN)
    if len(text) >= target:
        return text[:target].rsplit(" ", 1)[0] if " " in text[:target] else text[:target]
    notes: list[str] = []
    i = variant
    while len(text) + 2 + len("Background notes: ") + sum(len(s) + 1 for s in notes) < target:
        notes.append(FILLER[i % len(FILLER)])
        i += 1
    return f"{text}\n\nBackground notes: {' '.join(notes)}"
