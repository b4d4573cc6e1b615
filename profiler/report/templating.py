"""The Jinja2 environments that turn report data into HTML and Markdown (templates in ``report/templates/``).

Owns the two environments: HTML with autoescaping on (every value is escaped unless a template marks it safe,
which only the inline CSS is), and Markdown with a ``cell`` filter that makes a value safe for a table cell. Both
load the templates as package data (``jinja2.PackageLoader``), use ``StrictUndefined`` so a misspelt name fails
loudly, and share the ``fmt`` filters. It must not compute figures or read files other than the templates.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from profiler.report import fmt

FILTERS = {
    "sig": fmt.sig, "duration": fmt.duration, "stat": fmt.stat, "mib": fmt.mib, "gib": fmt.gib,
    "plural": fmt.plural, "ratio": fmt.ratio, "params": fmt.params, "money": fmt.money,
}


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so the HTML needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def md_cell(value: object) -> str:
    """A value made safe for a Markdown table cell (pipes and backslashes escaped, no newlines)."""
    text = "—" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


@cache
def environment(kind: str) -> Environment:
    """The ``html`` (autoescaped) or ``md`` environment."""
    env = Environment(
        loader=PackageLoader("profiler.report", "templates"), autoescape=kind == "html", undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["data_uri"] = data_uri
    env.filters["cell"] = md_cell
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>``: ``*.html.j2`` in the HTML environment, ``*.md.j2`` in Markdown's."""
    kind = "html" if template.endswith(".html.j2") else "md"
    return environment(kind).get_template(template).render(**context)
