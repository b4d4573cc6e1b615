"""Backend efficiency factors: what fraction of a device's peak bandwidth and FLOPS llama.cpp achieves.

Owns the public llama.cpp results (``profiler/data/llamacpp-public.csv``), the per-backend factors derived from
them (``eta_bw`` from decode rates, ``eta_f`` from prompt-processing rates) with their spread, and the
``Efficiency`` value the roofline model consumes. It must not read run records (``calibration`` does) or know
about scenarios.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from profiler.errors import ConfigError

PUBLIC_CSV = Path(__file__).resolve().parent.parent / "data" / "llamacpp-public.csv"
# llama-bench's tg128 decodes 128 tokens from an empty context: the mean context of a step is 64 tokens.
TG_MEAN_CONTEXT = 64
POOLED = "pooled"
BACKENDS = ("cpu", "cuda", "rocm", "metal", "vulkan", "sycl")


class PublicResult(BaseModel):
    """One row of the public results file: a device, a model shape and its llama.cpp rates."""

    model_config = ConfigDict(extra="forbid")

    device: str
    backend: str
    bandwidth_gbps: float
    fp16_tflops: float
    model: str
    params: float
    weight_bytes: float
    layers: int
    kv_heads: int
    head_dim: int
    tg_tok_s: float | None
    pp_tok_s: float | None
    source: str

    @property
    def kv_bytes_per_token(self) -> float:
        """F16 K and V for every layer (llama-bench's default cache type)."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * 2.0

    def eta_bw(self) -> float | None:
        """Bandwidth efficiency implied by the decode rate: bytes read per token x rate / peak bandwidth."""
        if not self.tg_tok_s:
            return None
        bytes_per_token = self.weight_bytes + TG_MEAN_CONTEXT * self.kv_bytes_per_token
        return self.tg_tok_s * bytes_per_token / (self.bandwidth_gbps * 1e9)

    def eta_f(self) -> float | None:
        """Compute efficiency implied by the prompt rate: 2 x params FLOP per token x rate / peak FLOPS."""
        if not self.pp_tok_s:
            return None
        return self.pp_tok_s * 2.0 * self.params / (self.fp16_tflops * 1e12)


class Efficiency(BaseModel):
    """Efficiencies for one backend, their relative spread (log standard deviation) and where they come from."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    eta_bw: float = Field(gt=0)
    eta_f: float = Field(gt=0)
    t0_s: float = Field(default=0.0, ge=0)
    sigma_bw: float = Field(ge=0, description="relative error of decode predictions (log sd)")
    sigma_f: float = Field(ge=0, description="relative error of prefill predictions (log sd)")
    source_bw: str
    source_f: str
    n_rows_bw: int = 0
    n_rows_f: int = 0


def load_public(path: Path = PUBLIC_CSV) -> list[PublicResult]:
    """Read the public results file (``#`` lines are comments; blank cells are unreported)."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        raise ConfigError(f"{path}: public calibration file not found") from None
    rows = []
    for i, raw in enumerate(csv.DictReader(lines), start=1):
        data: dict[str, object] = {k: (v.strip() if v and v.strip() else None) for k, v in raw.items()}
        try:
            rows.append(PublicResult.model_validate(data))
        except ValueError as e:
            raise ConfigError(f"{path}: row {i}: {e}") from e
    return rows


@lru_cache(maxsize=4)
def _cached_public(path: Path) -> tuple[PublicResult, ...]:
    return tuple(load_public(path))


def public_rows(path: Path = PUBLIC_CSV) -> list[PublicResult]:
    """The public results, read once per process."""
    return list(_cached_public(Path(path)))


def _log_sd(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    logs = [math.log(v) for v in values]
    return statistics.pstdev(logs)


def derive(rows: Iterable[PublicResult], backend: str) -> Efficiency | None:
    """Per-backend efficiencies from public rows: the median of each row's implied factor.

    A factor with no row of that backend falls back to the median over all backends (labelled ``pooled``);
    a spread from fewer than two rows falls back to the pooled spread. Returns None when no row has a rate.
    """
    rows = list(rows)
    mine = [r for r in rows if r.backend == backend] if backend != POOLED else rows
    all_bw = [e for r in rows if (e := r.eta_bw()) is not None]
    all_f = [e for r in rows if (e := r.eta_f()) is not None]
    if not all_bw or not all_f:
        return None
    bw = [e for r in mine if (e := r.eta_bw()) is not None]
    f = [e for r in mine if (e := r.eta_f()) is not None]
    pooled_sd_bw = _log_sd(all_bw) or 0.0
    pooled_sd_f = _log_sd(all_f) or 0.0
    label = f"public-{backend}"
    return Efficiency(
        backend=backend,
        eta_bw=statistics.median(bw) if bw else statistics.median(all_bw),
        eta_f=statistics.median(f) if f else statistics.median(all_f),
        sigma_bw=(_log_sd(bw) if len(bw) >= 2 else None) or pooled_sd_bw,
        sigma_f=(_log_sd(f) if len(f) >= 2 else None) or pooled_sd_f,
        source_bw=label if bw else f"public-{POOLED}",
        source_f=label if f else f"public-{POOLED}",
        n_rows_bw=len(bw) or len(all_bw),
        n_rows_f=len(f) or len(all_f),
    )


def public_efficiencies(rows: Iterable[PublicResult] | None = None) -> dict[str, Efficiency]:
    """Efficiency per backend present in the public rows, plus ``pooled`` (all rows) for the others."""
    rows = public_rows() if rows is None else list(rows)
    result: dict[str, Efficiency] = {}
    for backend in sorted({r.backend for r in rows}) + [POOLED]:
        eff = derive(rows, backend)
        if eff is not None:
            result[backend] = eff
    return result
