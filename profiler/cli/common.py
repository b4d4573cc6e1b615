"""Helpers shared by CLI modules: parsing lists, printing tables and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from pydantic import BaseModel


def parse_int_list(text: str, name: str) -> list[int]:
    """Parse ``1,4,16`` into ints, with a click error naming the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=name) from None
    if not values or any(v <= 0 for v in values):
        raise click.BadParameter(f"expected positive integers, got {text!r}", param_hint=name)
    return values


def parse_str_list(text: str) -> list[str]:
    """Parse ``a,b,c`` into stripped strings."""
    return [v.strip() for v in text.split(",") if v.strip()]


def echo_json(obj: Any) -> None:
    """Print a pydantic model, or a list/dict of them, as JSON on stdout."""
    if isinstance(obj, BaseModel):
        click.echo(obj.model_dump_json(indent=1))
        return
    click.echo(json.dumps(obj, indent=1, default=lambda o: o.model_dump(mode="json")))


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
