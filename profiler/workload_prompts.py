"""Benign proxy prompts of an exact token length.

Campaign runs measure shape, not substance: every prompt is benign filler text cut to the token count the
workload asks for. This module owns that text and its tokenization to exact lengths.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_PROXY_TEXT = (
    "You are a helpful assistant for a community library. A patron writes: I would like to know the opening "
    "hours on weekends, whether the reading room can be booked for a study group of six people, and how to "
    "renew a book online. Please answer politely, list the steps clearly, and suggest two upcoming events "
    "about gardening, local history or cooking that might interest a family with children. "
)


def exact_prompt(
    tokenize: Callable[[str, bool], list[int]], n_tokens: int, variant: int = 0, text: str = DEFAULT_PROXY_TEXT
) -> list[int]:
    """Token ids of exactly ``n_tokens``: the model's BOS (if it adds one) and benign text, repeated and cut.

    ``variant`` rotates the text so parallel sequences do not share an identical prompt.
    """
    words = text.split()
    shift = variant % len(words)
    rotated = " ".join(words[shift:] + words[:shift]) + " "
    head = tokenize("", True)  # BOS or nothing
    body = tokenize(rotated, False) or tokenize(DEFAULT_PROXY_TEXT, False)
    tokens = list(head)
    while len(tokens) < n_tokens:
        tokens += body
    return tokens[:n_tokens]
