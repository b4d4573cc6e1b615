"""The capability frontier: per profile and quantization, the largest dense model that fits and how fast it decodes.

Owns the search over model size (a reference family of dense shapes, ``spec.family_spec``) against a profile's
memory, and the largest published mixture-of-experts model (``spec.REFERENCE_MOE``) that fits, with its total
and active parameters. It must not load models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from profiler.feasibility.assumptions import Assumptions
from profiler.feasibility.calibration import Calibration
from profiler.feasibility.campaign import keyed_profiles
from profiler.feasibility.model import ModelShape, t_decode_step
from profiler.feasibility.placement import Candidate, best_placement
from profiler.feasibility.public_model import PublicModel, public_model
from profiler.feasibility.spec import BPW_SOURCE, bits_per_weight, family_spec, moe_specs
from profiler.feasibility.target import Target
from profiler.profiles import HardwareProfile
from profiler.schema.base import Strict

DEFAULT_QUANTS = ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K")
_MIN_PARAMS, _MAX_PARAMS = 1e8, 4e12


class FrontierPoint(Strict):
    """The largest model of one quantization that fits a profile, anywhere and fully on the GPU."""

    profile: str
    profile_name: str
    quant: str
    bits_per_weight: float
    n_ctx: int
    max_params: float | None  # None: not even the smallest model fits
    weights_bytes: float | None
    placement: str | None
    configuration: str | None
    decode_tok_s: float | None
    max_params_full_offload: float | None
    decode_tok_s_full_offload: float | None
    decode_source: str | None
    size_source: str = BPW_SOURCE
    # the largest published mixture-of-experts model (spec.REFERENCE_MOE) that fits, its total and active
    # parameters, placement and predicted single-stream decode rate (None: none of them fits)
    moe_model: str | None = None
    moe_params: float | None = None
    moe_active_params: float | None = None
    moe_placement: str | None = None
    moe_decode_tok_s: float | None = None


def _largest(fits: Callable[[float], bool]) -> float | None:
    if not fits(_MIN_PARAMS):
        return None
    lo, hi = math.log(_MIN_PARAMS), math.log(_MAX_PARAMS)
    if fits(_MAX_PARAMS):
        return _MAX_PARAMS
    for _ in range(40):  # fits() is monotone in size: bisect in log space
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(math.exp(mid)) else (lo, mid)
    return math.exp(lo)


def frontier_one(profile_key: str, profile: HardwareProfile, quant: str, assumptions: Assumptions,
                 target: Target) -> FrontierPoint:
    """The frontier point of one profile and quantization."""
    n_ctx = assumptions.frontier_context

    def place(params: float) -> Candidate | None:
        c = best_placement(family_spec(params, quant).to_model_file(), profile, n_ctx, 1, assumptions)
        return c if isinstance(c, Candidate) else None

    def rate(params: float) -> tuple[float, Candidate, str]:
        model = family_spec(params, quant).to_model_file()
        cand = place(params)
        assert cand is not None
        shape = ModelShape.of(model, assumptions.type_k, assumptions.type_v)
        t = float(t_decode_step(shape, target.parts(shape, cand), 1, n_ctx / 2))
        return 1.0 / t, cand, cand.describe(model.n_layers)

    moe: dict[str, object] = {}
    for spec in reversed(moe_specs(quant)):  # the largest reference MoE model that fits anywhere
        model = spec.to_model_file()
        cand = best_placement(model, profile, n_ctx, 1, assumptions)
        if isinstance(cand, Candidate):
            shape = ModelShape.of(model, assumptions.type_k, assumptions.type_v)
            t = float(t_decode_step(shape, target.parts(shape, cand), 1, n_ctx / 2))
            moe = dict(moe_model=spec.name.removesuffix(f"-{quant}"), moe_params=spec.params,
                       moe_active_params=spec.active_params, moe_placement=cand.placement, moe_decode_tok_s=1 / t)
            break
    best = _largest(lambda p: place(p) is not None)
    full = _largest(lambda p: (c := place(p)) is not None and c.placement == "full_offload") if profile.gpu else None
    decode = config = placement = source = None
    if best is not None:
        decode, cand, config = rate(best)
        placement = cand.placement
        source = target.labels(cand)[0]
    return FrontierPoint(
        profile=profile_key, profile_name=profile.name, quant=quant, bits_per_weight=bits_per_weight(quant),
        n_ctx=n_ctx, max_params=best, weights_bytes=best * bits_per_weight(quant) / 8 if best else None,
        placement=placement, configuration=config, decode_tok_s=decode, max_params_full_offload=full,
        decode_tok_s_full_offload=rate(full)[0] if full else None, decode_source=source, **moe,  # type: ignore[arg-type]
    )


def frontier(
    profiles: Mapping[str, HardwareProfile] | Sequence[HardwareProfile] | None = None,
    quants: Sequence[str] = DEFAULT_QUANTS,
    assumptions: Assumptions | None = None,
    calibration: Calibration | None = None,
    public: PublicModel | None = None,
) -> list[FrontierPoint]:
    """For every profile and quantization, the largest dense model that fits (at ``frontier_context``, one
    sequence) and its predicted single-stream decode rate."""
    a = assumptions or Assumptions()
    pub = public if public is not None else public_model()
    for q in quants:
        bits_per_weight(q)  # refuse an unknown name before any work
    out = []
    for key, profile in keyed_profiles(profiles).items():
        target = Target.of(profile, calibration, pub, a.min_relative_error)
        out += [frontier_one(key, profile, q, a, target) for q in quants]
    return out
