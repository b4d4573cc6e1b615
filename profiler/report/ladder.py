"""The report's view of a local ladder calibration (``hfp calibrate --ladder``): synthetic sizes measured on this
host beside the prediction for the same sizes on every tier.

Owns which ladder record a report uses (an explicit path, or the newest ``*.ladder.json`` of the run's host in
``<cache>/calibration/``), the model each rung stands for (as the record describes it, else its run record, its
GGUF file or its preset shape), the ladder's own workload as a scenario (the rungs' prompt and output tokens, one
sequence) so that the tier predictions are made for exactly what was measured, and the ``LadderSection`` the
templates show. Measured rates come straight from the record; every predicted rate comes from
``profiler.feasibility.estimate`` (called here through ``ladder_estimates``, as ``capable.py`` calls
``profiler.capability``). It must not measure or draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from profiler import feasibility, models
from profiler.errors import HfpError
from profiler.feasibility import Assumptions, Calibration, Estimate, ModelSpec
from profiler.feasibility.calibration import CalibrationPoint, record_backend
from profiler.feasibility.ladder import LadderResult, LadderRung, newest_record, parse_rungs
from profiler.profiles import HardwareProfile
from profiler.record import RunRecord
from profiler.report.figures import EstimateRates
from profiler.scenarios import Scenario, TokenSpread
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile

HOW_TO_GET = ("No ladder calibration of this host was found: run `hfp calibrate --ladder` (synthetic models of "
              "several sizes measured here, about 10 minutes on a 2-core machine; `--quick` for a short one), then "
              "rebuild the report (it uses the newest ladder of this host, or `hfp report --ladder PATH`).")
FITTED_LABEL = "predicted: roofline + calibration:local-ladder (in-sample fit to these measurements)"


class LadderRate(Strict):
    """Decode (all sequences together) and prefill rates at one parallel level, with their label."""

    parallel: int
    decode_tok_s: float | None = None
    prefill_tok_s: float | None = None
    label: str


class LadderPrediction(EstimateRates):
    """One rung predicted on one tier for the ladder's workload (one sequence)."""

    profile: str
    fits: bool
    configuration: str
    prefill_source: str | None = None


class LadderRow(Strict):
    """One synthetic size: measured here, fitted here, predicted on every tier."""

    rung: str
    params: int
    weight_bytes: int
    model_source: str | None = None  # where the shape predicted from came from (run record, gguf, preset)
    measured: list[LadderRate]
    fitted: list[LadderRate]
    predicted: list[LadderPrediction] = []


class LadderSection(Strict):
    """A ladder calibration as the report shows it."""

    record_id: str
    path: str
    host: str
    same_host: bool
    anchors: bool  # whether this ladder's fit is the calibration behind the report's predictions
    started: str
    duration_s: float
    prompt_tokens: int
    output_tokens: int
    parallel: list[int]
    synthetic_note: str
    t0_s: float
    bandwidth_eff_gbps: float
    flops_eff_tflops: float
    rel_rms: float
    calibration_source: str
    rows: list[LadderRow]
    profile_names: dict[str, str] = {}
    skipped: list[str] = []
    measured_label: str
    predicted_label: str = "predicted: roofline per tier (efficiency source named per tier)"

    def method(self) -> list[str]:
        """The method paragraph when this ladder's fit is the report's calibration."""
        if not self.anchors:
            return []
        return [f"Calibrated across sizes: the fit of ladder {self.record_id} ({len(self.rows)} synthetic models "
                f"measured on {self.host} by `hfp calibrate --ladder`, {self.synthetic_note}) replaces this run's "
                "own fit as the local calibration: the same roofline, fitted to every size's decode and prefill "
                "points."]

    def limitations(self) -> list[str]:
        """What a reader must keep in mind about this ladder."""
        out = []
        if not self.same_host:
            out.append(f"The ladder calibration {self.record_id} was measured on {self.host}, not on this run's "
                       "host; it is shown for comparison and the predictions do not use it.")
        elif not self.anchors:
            out.append(f"The ladder calibration {self.record_id} used another backend than this run; the "
                       "predictions do not use it.")
        if self.rel_rms > 0.15:
            out.append(f"The ladder calibration fits its own measurements to within {self.rel_rms:.0%} (RMS of log "
                       "residuals); predictions anchored on it inherit at least that error.")
        return out

    def tiers(self) -> list[tuple[str, str]]:
        """(profile key, name) of the tiers predicted, in the order of the first row that has them."""
        keys = dict.fromkeys(p.profile for r in self.rows for p in r.predicted)
        return [(k, self.profile_names.get(k, k)) for k in keys]


# --- finding and reading a ladder record ---------------------------------------------------------------------


def load_ladder(path: Path | str) -> LadderResult:
    """Read a ladder record; a missing or malformed file is one ``ConfigError`` line."""
    return LadderResult.load(path)


def newest_for_host(host: str, folder: Path | None = None) -> Path | None:
    """The newest readable ladder record of ``host`` (``feasibility.ladder.newest_record``), or None."""
    return newest_record(host, folder)


def find_ladder(record: RunRecord, ladder: Path | str | None = "auto") -> Path | None:
    """The ladder record a report uses: ``None``/``"none"`` none, ``"auto"`` the newest of the run's host, else
    the path given (which must exist)."""
    if ladder is None or str(ladder) == "none":
        return None
    if str(ladder) == "auto":
        return newest_for_host(record.host.hostname)
    return Path(ladder)


# --- the model each rung stands for, and the ladder's workload --------------------------------------------------


def rung_model(rung: LadderRung) -> tuple[ModelFile | None, str | None]:
    """The rung's model: as the ladder record describes it, else from its run record, else its GGUF file, else
    its preset's shape (with the recorded parameters and weight bytes); (None, None) when none is available."""
    if rung.model is not None:
        return rung.model, "ladder record"
    if rung.record_path and Path(rung.record_path).is_file():
        try:
            return RunRecord.load(rung.record_path).model, "run record"
        except HfpError:
            pass
    if Path(rung.file).is_file():
        try:
            return models.inspect(rung.file, with_hash=False), "gguf"
        except HfpError:
            pass
    spec = _preset_spec(rung)
    return (spec.to_model_file(), "preset shape") if spec else (None, None)


def _preset_spec(rung: LadderRung) -> ModelSpec | None:
    try:
        [r] = parse_rungs(rung.rung)
    except (HfpError, ValueError):
        return None
    s = r.shape()
    moe = s.n_experts > 1 and s.n_ff_expert
    # active parameters: all but the routed experts a token does not use (3 matrices of n_embd x n_ff_expert)
    unused = 3 * s.n_embd * (s.n_ff_expert or 0) * (s.n_experts - s.n_experts_used) * s.n_layers if moe else 0
    return ModelSpec(
        name=rung.rung, params=rung.params, weights_bytes=rung.weight_bytes, layers=s.n_layers,
        kv_heads=s.n_kv_heads, head_dim=s.head_dim, n_heads=s.n_heads, n_embd=s.n_embd, n_ff=s.n_ff,
        vocab=s.n_vocab, context_length=s.n_ctx_train, active_params=rung.params - unused if moe else None,
        experts=s.n_experts if moe else None, experts_used=s.n_experts_used if moe else None,
    )


def workload(result: LadderResult) -> Scenario:
    """The ladder's own workload as a scenario: its prompt and output tokens, one sequence, one item."""
    return Scenario(
        name="ladder-workload", title=f"ladder workload ({result.prompt_tokens} prompt / {result.output_tokens} "
        "output tokens, one sequence)", category="benign-reference",
        description="The workload each ladder rung was measured on.", mode="bulk", items=1,
        prompt_tokens=TokenSpread(mean=result.prompt_tokens), output_tokens=TokenSpread(mean=result.output_tokens),
        deadline_hours=1.0, max_parallel=1, proxy_prompt="the ladder's benign proxy prompt",
        rationale="the same token counts as the measurement", sources=[f"ladder record {result.id}"],
    )


def ladder_estimates(result: LadderResult, profiles: Mapping[str, HardwareProfile], assumptions: Assumptions,
                     calibration: Calibration | None) -> dict[str, tuple[str | None, list[Estimate]]]:
    """Rung label -> (where its shape came from, its estimates on every tier for the ladder's workload)."""
    scenario = workload(result)
    out: dict[str, tuple[str | None, list[Estimate]]] = {}
    for rung in result.rungs:
        model, source = rung_model(rung)
        out[rung.rung] = (source, feasibility.estimate(model, profiles, {scenario.name: scenario}, assumptions,
                                                       calibration) if model is not None else [])
    return out


# --- the section -------------------------------------------------------------------------------------------------


def _rate(point: CalibrationPoint | None, fitted: bool, tokens: int) -> float | None:
    seconds = (point.predicted_s if fitted else point.measured_s) if point else None
    return tokens / seconds if seconds else None


def _rates(result: LadderResult, rung: str, fitted: bool, label: str) -> list[LadderRate]:
    out = []
    for b in sorted({p.point.parallel for p in result.points if p.rung == rung}):
        pts = [p.point for p in result.points if p.rung == rung and p.point.parallel == b]
        dec = next((p for p in pts if p.kind == "decode"), None)
        pre = next((p for p in pts if p.kind == "prefill"), None)
        out.append(LadderRate(parallel=b, decode_tok_s=_rate(dec, fitted, b),
                              prefill_tok_s=_rate(pre, fitted, pre.prompt_tokens * b) if pre else None, label=label))
    return out


def _prediction(e: Estimate) -> LadderPrediction:
    return LadderPrediction(**LadderPrediction.fields_of(e), profile=e.profile, fits=e.fits,
                            configuration=e.configuration, prefill_source=e.prefill_source)


def ladder_section(result: LadderResult, path: Path | str, record: RunRecord, anchors: bool,
                   estimates: Mapping[str, tuple[str | None, Sequence[Estimate]]]) -> LadderSection:
    """The ladder as the report shows it: each rung measured and fitted here, and predicted on every tier
    (``estimates`` from ``ladder_estimates``); ``anchors`` says whether the report's predictions use its fit."""
    measured_label = f"measured: llama.cpp on {result.host}, ladder {result.id}"
    rows = []
    for rung in result.rungs:
        source, found = estimates.get(rung.rung, (None, []))
        rows.append(LadderRow(
            rung=rung.rung, params=rung.params, weight_bytes=rung.weight_bytes, model_source=source,
            measured=_rates(result, rung.rung, False, measured_label),
            fitted=_rates(result, rung.rung, True, FITTED_LABEL), predicted=[_prediction(e) for e in found]))
    c = result.calibration
    return LadderSection(
        record_id=result.id, path=str(path), host=result.host, same_host=result.host == record.host.hostname,
        anchors=anchors, started=result.started, duration_s=result.duration_s, prompt_tokens=result.prompt_tokens,
        output_tokens=result.output_tokens, parallel=result.parallel, synthetic_note=result.label, t0_s=c.t0_s,
        bandwidth_eff_gbps=c.bandwidth_eff_gbps, flops_eff_tflops=c.flops_eff_tflops, rel_rms=c.rel_rms,
        calibration_source=c.source, rows=rows, skipped=result.skipped, measured_label=measured_label,
        profile_names={e.profile: e.profile_name for _, found in estimates.values() for e in found},
    )


def anchors_report(result: LadderResult, record: RunRecord) -> bool:
    """Whether a ladder's fit should be the report's calibration: measured on the run's host, same backend."""
    return result.host == record.host.hostname and result.calibration.backend == record_backend(record)
