"""Campaign feasibility: a calibrated roofline model of llama.cpp on declared hardware profiles.

The public API (stable; reports and the CLI use only these names):

- ``estimate(record_or_model, profiles, scenarios, assumptions) -> list[Estimate]``
- ``frontier(profiles, quants, assumptions) -> list[FrontierPoint]``
- ``calibrate(record_path, out) -> (Calibration, Path)`` and ``fit(record) -> Calibration``
- ``resolve_model(...)`` turns what the user named (GGUF, run record, spec) into an estimate input
- ``Assumptions``, ``Estimate``, ``Band``, ``FrontierPoint``, ``Calibration``, ``ModelSpec``, ``Efficiency``
- ``public_model()`` -> ``PublicModel``: the factors fitted to the public llama.cpp results, with LODO residuals

It predicts; it must not measure (``profiler.runner`` does) or print (``profiler.cli`` does).
"""

from __future__ import annotations

from pathlib import Path

from profiler import models
from profiler.config import validated
from profiler.errors import ConfigError
from profiler.feasibility.assumptions import Assumptions
from profiler.feasibility.calibration import Calibration, calibrate, fit
from profiler.feasibility.campaign import (
    Band,
    ConcurrencyCurve,
    CurvePoint,
    Estimate,
    ModelInput,
    concurrency_curve,
    estimate,
)
from profiler.feasibility.efficiency import Efficiency, public_efficiencies
from profiler.feasibility.frontier import DEFAULT_QUANTS, FrontierPoint, frontier
from profiler.feasibility.public_model import PublicModel, public_model
from profiler.feasibility.spec import BITS_PER_WEIGHT, ModelSpec, load_spec
from profiler.record import RunRecord

__all__ = [
    "Assumptions", "Band", "BITS_PER_WEIGHT", "Calibration", "ConcurrencyCurve", "CurvePoint", "concurrency_curve",
    "DEFAULT_QUANTS", "Efficiency", "Estimate",
    "FrontierPoint", "ModelInput", "ModelSpec", "PublicModel", "calibrate", "estimate", "fit", "frontier",
    "load_spec", "public_efficiencies", "public_model", "resolve_model",
]


def resolve_model(model: str | None = None, spec_file: str | Path | None = None, **spec: object) -> ModelInput:
    """What ``hfp estimate`` estimates for: a spec (``spec_file`` and/or ``params=…, layers=…`` fields), a run
    record (a ``.json`` path) or a GGUF model (a path or a name ``profiler.models.resolve`` knows; default model
    when nothing is given)."""
    given = {k: v for k, v in spec.items() if v is not None}
    if spec_file is not None or given:
        if model is not None:
            raise ConfigError("give either --model or a model spec (--params … / --model-spec), not both")
        base = load_spec(spec_file).model_dump(exclude_unset=True) if spec_file is not None else {}
        return validated(ModelSpec, {**base, **given}, "model spec")
    if model is not None and model.endswith(".json"):
        return RunRecord.load(model)
    return models.resolve(model, with_hash=False)
