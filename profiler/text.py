"""Plain-text tables for the terminal: columns aligned, numbers right-aligned.

At the bottom of the layers (docs/architecture.md) so that console summaries (``profiler.summary``,
``profiler.safety.tables``) and the CLI share it without library code importing ``profiler.cli``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [fmt(r) for r in cells[1:]])


def _numeric(text: str) -> bool:
    return bool(text) and text.replace(".", "", 1).replace("±", "").replace(" ", "").replace("-", "").isdigit()
