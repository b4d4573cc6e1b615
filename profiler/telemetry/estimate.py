"""The last-resort energy estimate: TDP x utilisation, labelled ``estimated:tdp``.

Owns the assumptions (TDP, idle share) as explicit fields. It is used only when no hardware counter or power
sensor is readable, and its figures are always labelled as estimates.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

# Rough package power of a desktop/laptop x86 CPU under all-core load: a base plus a per-core share.
# Used only when the user gives no --tdp; documented in docs/architecture.md.
BASE_W = 10.0
PER_CORE_W = 10.0


def cpu_tdp_w(physical_cores: int) -> float:
    """A plausible TDP for a CPU with ``physical_cores`` cores, capped at 250 W."""
    return min(BASE_W + PER_CORE_W * physical_cores, 250.0)


class TdpModel(BaseModel):
    """Power = idle share x TDP + (1 - idle share) x TDP x utilisation."""

    tdp_w: float = Field(gt=0)
    idle_fraction: float = Field(default=0.3, ge=0, le=1)
    source: str = "estimated:tdp"

    def power_w(self, utilisation: float) -> float:
        """Estimated package power at a CPU utilisation in [0, 1]."""
        u = min(max(utilisation, 0.0), 1.0)
        return self.tdp_w * (self.idle_fraction + (1 - self.idle_fraction) * u)

    @property
    def idle_w(self) -> float:
        """Estimated power with the CPU idle."""
        return self.tdp_w * self.idle_fraction

    def energy_j(self, duration_s: float, utilisation: float) -> float:
        """Estimated package energy over ``duration_s`` seconds at a mean CPU utilisation in [0, 1]."""
        return self.power_w(utilisation) * max(duration_s, 0.0)
