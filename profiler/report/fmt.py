"""Number formatting shared by the report writers and the terminal comparison: durations, rates, bytes, ratios.

Owns how a figure reads (significant digits, units, ``mean ± sd``). It must not decide what is shown.
"""

from __future__ import annotations

import math

from profiler.record import Stat
from profiler.schema.units import GiB, MiB


def sig(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and thousands separators; ``—`` for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.{max(digits - 1, 0)}e}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0)
    rounded = round(value, decimals)
    if rounded and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.997 -> 10.0, not 10.00
        decimals = max(decimals - 1, 0)
    return f"{rounded:,.{decimals}f}"


def duration(seconds: float | None) -> str:
    """A duration a reader takes in at a glance: ``45 s``, ``12 min``, ``3.4 h``, ``2.3 days``, ``1.2 years``."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 90:
        return f"{sig(seconds, 2)} s"
    if seconds < 90 * 60:
        return f"{sig(seconds / 60, 2)} min"
    if seconds < 36 * 3600:
        return f"{sig(seconds / 3600, 2)} h"
    if seconds < 730 * 86400:
        return f"{sig(seconds / 86400, 2)} days"
    return f"{sig(seconds / (365.25 * 86400), 2)} years"


def stat(s: Stat | None, scale: float = 1.0, digits: int = 3) -> str:
    """``mean ± stddev`` (scaled), or ``—`` when unmeasured."""
    if s is None or s.mean is None:
        return "—"
    if not s.stddev or s.n < 2:
        return sig(s.mean * scale, digits)
    return f"{sig(s.mean * scale, digits)} ± {sig(s.stddev * scale, 2)}"


def mib(n: float | None) -> str:
    """Bytes as MiB."""
    return "—" if n is None else f"{sig(n / MiB)} MiB"


def gib(n: float | None) -> str:
    """Bytes as GiB."""
    return "—" if n is None else f"{sig(n / GiB)} GiB"


def plural(n: int, unit: str) -> str:
    """``1 post``, ``3 posts``, ``2 replies``, ``4 spoken turns`` (English regular plurals)."""
    if n == 1 or unit.endswith("s"):
        return f"{n:,} {unit}"
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{n:,} {unit[:-1]}ies"
    return f"{n:,} {unit}{'es' if unit.endswith(('sh', 'ch', 'x')) else 's'}"


def ratio(value: float | None) -> str:
    """A ratio against a reference: ``×1.23``."""
    return "—" if value is None or math.isnan(value) else f"×{sig(value, 3)}"


def params(n: float | None) -> str:
    """A parameter count: ``135M``, ``8.0B``."""
    if n is None:
        return "—"
    return f"{sig(n / 1e9, 2)}B" if n >= 1e9 else f"{sig(n / 1e6, 3)}M"


def money(usd: float | None) -> str:
    """US dollars, whole or with cents below 10."""
    if usd is None:
        return "—"
    return f"${usd:,.2f}" if usd < 10 else f"${usd:,.0f}"
