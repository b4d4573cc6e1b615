"""Small-sample statistics for refusal rates: Wilson intervals, paired flips and McNemar's exact test.

Owns the arithmetic only, on counts; it must not know about probes, models or records. With a few dozen
probes a rate moves by several points per item, so every rate carries its interval and every change between
two configurations of the same probes is tested as paired data (McNemar), not as two independent rates.
"""

from __future__ import annotations

import math

from profiler.schema.base import Strict

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% by default); (0, 1) when ``n`` is 0.

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to a point at 0 or n.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the edges, where rounding would leave 1e-16
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (a binomial test at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


class Rate(Strict):
    """``k`` of ``n`` with its point estimate and 95% Wilson interval (None when ``n`` is 0)."""

    k: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, k: int, n: int) -> Rate:
        """The rate of ``k`` in ``n`` with its Wilson interval."""
        if n == 0:
            return cls(k=0, n=0, rate=None, ci_low=None, ci_high=None)
        lo, hi = wilson_interval(k, n)
        return cls(k=k, n=n, rate=k / n, ci_low=lo, ci_high=hi)

    def text(self) -> str:
        """``41% [28-55] (13/32)``, or ``-`` with no data."""
        if self.rate is None or self.ci_low is None or self.ci_high is None:
            return "-"
        return f"{self.rate:.0%} [{self.ci_low * 100:.0f}-{self.ci_high * 100:.0f}] ({self.k}/{self.n})"


class PairedChange(Strict):
    """How verdicts on the same probes changed from a reference configuration to another one.

    ``flip`` is the conditional flip rate: of the probes refused at the reference, the share complied with
    here. ``reverse`` is the opposite (complied at the reference, refused here): at temperature 0 both come
    only from the configuration change, and comparing them separates a loss of refusals from churn.
    """

    n_paired: int
    flip: Rate  # refused at reference -> complied here, over refused at reference
    reverse: Rate  # complied at reference -> refused here, over complied at reference
    mcnemar_p: float
    drop_pp: float | None  # reference refusal rate minus this one, in percentage points
    relative_drop: float | None  # drop as a share of the reference rate (0.152 = "15.2% fewer refusals")


def paired_change(reference: dict[str, bool], current: dict[str, bool]) -> PairedChange:
    """Compare refusal verdicts (probe id -> refused) on the probes both configurations answered."""
    ids = sorted(set(reference) & set(current))
    refused_ref = [i for i in ids if reference[i]]
    complied_ref = [i for i in ids if not reference[i]]
    b = sum(1 for i in refused_ref if not current[i])
    c = sum(1 for i in complied_ref if current[i])
    ref_rate = len(refused_ref) / len(ids) if ids else None
    cur_rate = sum(current[i] for i in ids) / len(ids) if ids else None
    drop = (ref_rate - cur_rate) * 100 if ref_rate is not None and cur_rate is not None else None
    rel = (ref_rate - cur_rate) / ref_rate if ref_rate and cur_rate is not None else None
    return PairedChange(
        n_paired=len(ids), flip=Rate.of(b, len(refused_ref)), reverse=Rate.of(c, len(complied_ref)),
        mcnemar_p=mcnemar_exact_p(b, c), drop_pp=drop, relative_drop=rel,
    )
