"""The explicit assumptions of every estimate: prices, utilisation, memory reserves, sampling.

Owns the ``Assumptions`` model and its documented defaults, so that no number that shapes an estimate hides in
code. It must not compute anything.
"""

from __future__ import annotations

from pydantic import Field

from profiler.schema.base import Strict


class Assumptions(Strict):
    """What an estimate assumes beyond the scenario, the profile and the model; every default is documented."""

    electricity_usd_per_kwh: float = Field(
        default=0.17, ge=0, description="US average residential electricity price, 2024 (EIA: about 16-17 c/kWh)"
    )
    utilisation: float = Field(
        default=0.9, gt=0, le=1,
        description="share of wall time a device spends generating (scheduling gaps, tokenization, retries)",
    )
    os_reserve_gb: float = Field(default=2.0, ge=0, description="system RAM left to the OS and other programs")
    vram_reserve_gb: float = Field(default=0.5, ge=0, description="VRAM left to the display and fragmentation")
    max_parallel: int = Field(default=64, gt=0, description="most sequences decoded together (llama-server -np)")
    parallel: int | None = Field(
        default=None, gt=0, description="estimate at exactly this many sequences (None: the planner chooses)")
    type_k: str = Field(default="f16", description="KV cache type for K")
    type_v: str = Field(default="f16", description="KV cache type for V")
    flash_attn: bool = Field(default=True, description="llama.cpp flash attention (smaller compute buffer)")
    n_ubatch: int = Field(default=512, gt=0, description="prompt tokens per ubatch")
    latency_quantile: float = Field(
        default=0.95, gt=0, lt=1, description="share of replies that must meet an interactive latency limit"
    )
    mc_samples: int = Field(default=2000, ge=100, description="Monte Carlo draws per (scenario, profile)")
    seed: int = Field(default=0, description="Monte Carlo seed; identical inputs give identical estimates")
    band_level: float = Field(default=0.9, gt=0, lt=1, description="central probability of uncertainty bands")
    min_relative_error: float = Field(
        default=0.05, ge=0, description="floor on the model's relative error (log sd) when a fit looks too good"
    )
    idle_energy_interactive: bool = Field(
        default=True,
        description="interactive campaigns keep their devices on until the deadline; count idle power for it",
    )
    frontier_context: int = Field(default=4096, gt=0, description="context the capability frontier reserves")
