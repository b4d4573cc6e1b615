"""An estimate's figures as the report keeps them: its predicted rates (the feasibility matrix, the ladder) and its
outcome (the matrix, the answer-first line), each taken from an ``Estimate`` in one place."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from profiler.feasibility import Estimate
from profiler.schema.base import Strict


class EstimateRates(Strict):
    """Decode per sequence with its band and source, and prefill: the figures a feasibility cell and a ladder rung's
    prediction on a tier both show."""

    decode_tok_s: float | None = Field(default=None, description="one sequence's decode rate, tokens/s")
    decode_tok_s_low: float | None = None
    decode_tok_s_high: float | None = None
    prefill_tok_s: float | None = None
    decode_source: str | None = Field(default=None, description="e.g. predicted:roofline+calibration:local")

    @staticmethod
    def fields_of(e: Estimate) -> dict[str, Any]:
        """This model's fields taken from an estimate (a subclass adds its own)."""
        band = e.decode_tok_s_band
        return {"decode_tok_s": e.decode_tok_s, "decode_tok_s_low": band.low if band else None,
                "decode_tok_s_high": band.high if band else None, "prefill_tok_s": e.prefill_tok_s,
                "decode_source": e.decode_source}


class EstimateOutcome(Strict):
    """The verdict, wall time with its band, devices, energy and cost of an estimate (None where no estimate was
    chosen)."""

    verdict: str | None = None
    verdict_kind: str | None = Field(default=None, description="feasible, needs_devices, too_slow, does_not_fit")
    wall_time_s: float | None = Field(default=None, description="the whole campaign on one device")
    wall_time_low_s: float | None = None
    wall_time_high_s: float | None = None
    devices_needed: int | None = None
    energy_kwh: float | None = None
    electricity_usd: float | None = Field(default=None, description="energy_kwh x assumptions.electricity_usd_per_kwh")
    hardware_usd: float | None = None

    @staticmethod
    def outcome_of(e: Estimate) -> dict[str, Any]:
        """This model's fields taken from an estimate."""
        band = e.wall_time_s_band
        return {"verdict": e.verdict, "verdict_kind": e.verdict_kind, "wall_time_s": e.wall_time_s,
                "wall_time_low_s": band.low if band else None, "wall_time_high_s": band.high if band else None,
                "devices_needed": e.devices_needed, "energy_kwh": e.energy_kwh, "electricity_usd": e.electricity_usd,
                "hardware_usd": e.hardware_usd}
