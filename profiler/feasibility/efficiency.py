"""Efficiency factors as ``target`` consumes them: what share of a device's peak bandwidth and FLOPS llama.cpp
reaches, how sure we are (relative error) and where it comes from.

Owns the ``Efficiency`` value (a local calibration, a profile's declared factors, or a summary of the public
model) and ``public_efficiencies()``, the per-backend summary of the public model. The public results and the
fit itself live in ``public_model``; this module re-exports their loaders for older callers. It must not read
run records (``calibration`` does) or know about scenarios.
"""

from __future__ import annotations

from pydantic import Field

from profiler.feasibility.model import ModelShape
from profiler.feasibility.public_model import (
    BACKENDS,
    BW_REF_GBPS,
    PUBLIC_CSV,
    DeviceFacts,
    PublicModel,
    PublicResult,
    load_public,
    public_model,
    public_rows,
)
from profiler.schema.base import Strict

POOLED = "pooled"
# llama-bench's tg128 decodes 128 tokens from an empty context: the mean context of a step is 64 tokens.
TG_MEAN_CONTEXT = 64
# the summary's reference model: a dense 32-layer 8B at 4.9 bits per weight (decode's share of peak is the same for
# every dense model, a MoE model's is 1/rho of it; the fixed time per step depends on its layers)
_REF_SHAPE = ModelShape(params=8e9, weight_bytes=4.9e9, kv_full=131072.0, n_layers=32)

__all__ = ["POOLED", "PUBLIC_CSV", "TG_MEAN_CONTEXT", "Efficiency", "PublicResult", "load_public",
           "public_efficiencies", "public_rows"]


class Efficiency(Strict):
    """Efficiencies for one backend, their relative spread (log standard deviation) and where they come from.

    ``eta_bw``/``eta_f``/``t0_s`` are fixed numbers for a local calibration or a profile's declared factors; for
    the public model (sources ``public-<backend>``/``public-pooled``) they summarise it at 400 GB/s and a
    32-layer dense model, and the device's own facts decide the figures (``public_model.PublicModel.device``).
    """

    backend: str
    eta_bw: float | None = Field(default=None, gt=0)
    eta_f: float | None = Field(default=None, gt=0)
    t0_s: float = Field(default=0.0, ge=0)
    sigma_bw: float = Field(ge=0, description="relative error of decode predictions (log sd)")
    sigma_f: float = Field(ge=0, description="relative error of prefill predictions (log sd)")
    source_bw: str
    source_f: str
    n_rows_bw: int = 0
    n_rows_f: int = 0
    tau_layer_s: float | None = Field(
        default=None, ge=0, description="fixed decode-step time per layer (a ladder calibration, fitted across "
        "sizes): a model's t0 is tau_layer_s x its layers; None: t0_s for every model")
    eta_batch: float | None = Field(
        default=None, gt=0, description="batched-decode FLOP rate as a share of the effective prefill FLOP rate "
        "(None: the public batched factor of the backend, profiler.feasibility.batched)")
    eta_batch_curve: list[tuple[int, float]] = Field(
        default=[], description="a ladder's batched ratio at each parallel level it measured, (B, ratio); "
        "between levels interpolated in log B, beyond them held (empty: eta_batch at every B)")
    tinyblas_gbps: float | None = Field(
        default=None, gt=0, description="rate of the extra pass a CPU step of two or more tokens makes over "
        "weights llamafile's tinyBLAS takes (a ladder with such a rung; None: no such pass)")
    tinyblas_token_gbps: float | None = Field(
        default=None, gt=0, description="rate of that pass repeated per token after the first")

    @property
    def is_public(self) -> bool:
        """Whether the public model decides this processor's figures."""
        return self.source_bw.startswith("public-")


def public_summary(model: PublicModel, backend: str) -> Efficiency:
    """The public model's factors for ``backend`` (pooled ones when the public rows have none of it)."""
    d = model.decode
    at_ref = model.bandwidth_bps(DeviceFacts(backend, BW_REF_GBPS), _REF_SHAPE) / (BW_REF_GBPS * 1e9)
    mine = model.has_backend(backend, "decode")
    label = f"public-{backend}" if mine else f"public-{POOLED}"
    label_f = f"public-{backend}" if model.has_backend(backend, "prefill") else f"public-{POOLED}"
    return Efficiency(
        backend=backend, eta_bw=at_ref,
        t0_s=32 * d.tau_layer_s.get(backend, d.tau_layer_pooled_s),
        sigma_bw=model.sigma(backend, "decode"), sigma_f=model.sigma(backend, "prefill"),
        source_bw=label, source_f=label_f, n_rows_bw=model.n_rows_decode.get(backend, 0),
        n_rows_f=model.n_rows_prefill.get(backend, 0),
    )


def public_efficiencies(model: PublicModel | None = None) -> dict[str, Efficiency]:
    """The public model summarised per backend it has rows for, plus ``pooled`` for the others."""
    model = model or public_model()
    out = {b: public_summary(model, b) for b in BACKENDS if model.has_backend(b, "decode")}
    out[POOLED] = public_summary(model, POOLED)
    return out
