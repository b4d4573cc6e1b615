"""``hfp scenarios``, ``hfp profiles``, ``hfp estimate``, ``hfp calibrate`` and ``hfp frontier``.

Each command parses options, calls one function of ``profiler.feasibility`` (``profiler.capability`` for
``hfp estimate --model capable``; or loads declared files) and prints a table or JSON. No prediction logic lives
here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from profiler import capability, feasibility, profiles, scenarios
from profiler.cli.common import data_dir_options, echo_json, parse_str_list, sig3, table
from profiler.cli.ladder import calibrate_ladder
from profiler.errors import ConfigError
from profiler.feasibility import Assumptions, Calibration, Estimate, FrontierPoint
from profiler.feasibility.ladder import DEFAULT_PARALLEL

LADDER_PARALLEL = ",".join(map(str, DEFAULT_PARALLEL))

_DEFAULTS = Assumptions()


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0 and abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.{max(digits, 1 if abs(value) < 10 else 0)}f}" if abs(value) >= 0.1 else f"{value:.3f}"


def _scenario_row(k: str, s: scenarios.Scenario) -> list[object]:
    return [k, s.mode, s.items, f"{s.prompt_tokens.mean:g}±{s.prompt_tokens.sd:g}",
            f"{s.output_tokens.mean:g}±{s.output_tokens.sd:g}", f"{s.deadline_hours:g}", s.category, s.title,
            s.capability.describe() if s.capability else "-"]


def _profile_row(k: str, p: profiles.HardwareProfile) -> list[object]:
    return [k, p.tier, f"{p.price_usd:.0f}", p.cpu.ram_gb, p.cpu.ram_bandwidth_gbps,
            p.gpu.backend if p.gpu else "cpu", p.gpu.vram_gb if p.gpu else "-",
            p.gpu.bandwidth_gbps if p.gpu else "-", p.power.load_w if p.power else "-"]


def _list_command(command_name: str, doc: str, kind: ModuleType, row: Callable[[str, Any], list[object]],
                  headers: list[str]) -> click.Command:
    """``hfp scenarios`` or ``hfp profiles``: ``kind`` is the module that loads them (``load``, ``load_all``,
    ``sources``)."""

    @click.command(command_name, help=doc)
    @data_dir_options
    @click.argument("name", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
    def command(name: str | None, as_json: bool) -> None:
        _list_or_show(name, as_json, kind.load, kind.load_all, kind.sources, row, headers)

    return command


scenarios_command = _list_command(
    "scenarios", "List the campaign scenarios, or show one (NAME or a path to a YAML file) in full.", scenarios,
    _scenario_row, ["name", "mode", "items", "prompt tok", "output tok", "deadline h", "category", "title",
                    "capability"])
profiles_command = _list_command(
    "profiles", "List the declared hardware profiles, or show one (NAME or a path to a YAML file) in full.",
    profiles, _profile_row,
    ["profile", "tier", "price $", "RAM GB", "RAM GB/s", "backend", "VRAM GB", "GPU GB/s", "load W"])


def _list_or_show(name: str | None, as_json: bool, load: Callable[[str], Any], load_all: Callable[[], dict[str, Any]],
                  sources: Callable[[], dict[str, Any]], row: Callable[[str, Any], list[object]],
                  headers: list[str]) -> None:
    """``hfp scenarios`` / ``hfp profiles``: one declared file in full, or all of them with where each came from."""
    if name:
        obj = load(name)
        click.echo(obj.model_dump_json(indent=1) if as_json else _describe(obj.model_dump()))
        return
    found, origins = load_all(), sources()
    if as_json:
        echo_json(list(found.values()))
        return
    click.echo(table([[*row(k, v), origins[k].origin] for k, v in found.items()], [*headers, "from"]))


@click.command("estimate")
@data_dir_options
@click.option("--model", "-m", help="GGUF path or name, or a run record (.json); default: the default model. "
              "`capable`: each scenario's smallest capable open model (see `hfp capable`) at --quant (Q4_K_M).")
@click.option("--model-spec", type=click.Path(path_type=Path), help="YAML file describing a model you do not have.")
@click.option("--params", type=float, help="Spec: parameters, e.g. 7e9 (for a mixture of experts: all of them).")
@click.option("--active-params", type=float,
              help="Spec, mixture of experts: parameters one token uses (e.g. 3.6e9 for gpt-oss-20b).")
@click.option("--experts", type=click.IntRange(2), help="Spec, mixture of experts: routed experts per layer.")
@click.option("--experts-used", type=click.IntRange(1), help="Spec, mixture of experts: experts per token.")
@click.option("--weights-bytes", type=float, help="Spec: bytes of the weights (or give --quant).")
@click.option("--quant", help="Spec: llama.cpp quantization, e.g. Q4_K_M (sets the weight bytes).")
@click.option("--layers", type=int, help="Spec: transformer layers.")
@click.option("--kv-heads", type=int, help="Spec: KV heads per layer.")
@click.option("--head-dim", type=int, help="Spec: head dimension.")
@click.option("--sliding-window", type=click.IntRange(1), help="Spec: tokens a sliding-window layer attends to.")
@click.option("--swa-period", type=click.IntRange(1),
              help="Spec, with --sliding-window: every Nth layer is global (Gemma 3: 6) [default: 1, all windowed].")
@click.option("--scenario", "-s", "scenario_names", multiple=True, help="Scenario name or YAML path (repeatable).")
@click.option("--profile", "-p", "profile_names", multiple=True, help="Profile name or YAML path (repeatable).")
@click.option("--calibration", type=click.Path(path_type=Path), help="A fit saved by `hfp calibrate`.")
@click.option("--price-kwh", type=click.FloatRange(0), default=_DEFAULTS.electricity_usd_per_kwh, show_default=True,
              help="Electricity price, USD per kWh.")
@click.option("--utilisation", type=click.FloatRange(0.01, 1), default=_DEFAULTS.utilisation, show_default=True,
              help="Share of wall time a device spends generating.")
@click.option("--max-parallel", type=click.IntRange(1), default=_DEFAULTS.max_parallel, show_default=True)
@click.option("--parallel", "parallel", type=click.IntRange(1),
              help="Estimate at exactly this many sequences decoded together [default: the planner's choice].")
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True, help="Monte Carlo seed.")
@click.option("--json", "as_json", is_flag=True, help="Print a list of estimate objects as JSON.")
def estimate_command(model: str | None, model_spec: Path | None, params: float | None, active_params: float | None,
                     experts: int | None, experts_used: int | None, weights_bytes: float | None,
                     quant: str | None, layers: int | None, kv_heads: int | None, head_dim: int | None,
                     scenario_names: tuple[str, ...], profile_names: tuple[str, ...], calibration: Path | None,
                     price_kwh: float, utilisation: float, max_parallel: int, seed: int, as_json: bool,
                     parallel: int | None = None, sliding_window: int | None = None,
                     swa_period: int | None = None) -> None:
    """Predict, for each scenario and hardware profile, whether the campaign's text workload is feasible:
    memory fit and configuration, decode/prefill rates, time per item, wall time, devices needed, energy and
    cost, with an uncertainty band. Every figure is predicted from declared specs and calibrated efficiencies.
    """
    if model == "capable":  # each scenario with its smallest capable open model (hfp capable), at --quant
        _echo_capable_estimates(scenario_names, profile_names, quant, calibration, Assumptions(
            electricity_usd_per_kwh=price_kwh, utilisation=utilisation, max_parallel=max_parallel, seed=seed,
            parallel=parallel), as_json)
        return
    source = feasibility.resolve_model(model, model_spec, params=params, weights_bytes=weights_bytes, quant=quant,
                                       layers=layers, kv_heads=kv_heads, head_dim=head_dim,
                                       active_params=active_params, experts=experts, experts_used=experts_used,
                                       sliding_window=sliding_window, swa_period=swa_period)
    assumptions = Assumptions(electricity_usd_per_kwh=price_kwh, utilisation=utilisation,
                              max_parallel=max_parallel, seed=seed, parallel=parallel)
    results = feasibility.estimate(source, profiles.load_many(profile_names), scenarios.load_many(scenario_names),
                                   assumptions, Calibration.load(calibration) if calibration else None)
    if as_json:
        echo_json(results)
    else:
        click.echo(_estimate_table(results))


@click.command("calibrate")
@click.argument("record", type=click.Path(path_type=Path), required=False)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the fit (default: the cache dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the fit as JSON.")
@click.option("--ladder", is_flag=True, help="Measure a ladder of synthetic models (1B-8B and a MoE shape) on "
              "this host and fit all of them at once (see `hfp synth`); no RECORD needed.")
@click.option("--rungs", help="Ladder rungs, e.g. qwen2.5-0.5b,llama-3.1-8b:Q4_0,qwen3-30b-a3b/12l "
              "[default: the built-in ladder, less what does not fit in RAM].")
@click.option("--quick", is_flag=True, help="A three-rung ladder of small models (a minute on an idle 2-core host).")
@click.option("--parallel", "ladder_parallel", default=LADDER_PARALLEL, show_default=True,
              help="Parallel levels measured on each rung.")
def calibrate_command(record: Path | None, out: Path | None, as_json: bool, ladder: bool = False,
                      rungs: str | None = None, quick: bool = False, ladder_parallel: str = LADDER_PARALLEL) -> None:
    """Fit the performance model's t0, eta_bw*BW and eta_f*F to RECORD (a run record from `hfp run` with
    several parallel levels) and store the fit with its residuals.

    With --ladder, measure synthetic models of several sizes here instead and fit all their points at once."""
    if ladder or rungs or quick:
        calibrate_ladder(rungs, quick, ladder_parallel, out, as_json)
        return
    if record is None:
        raise click.UsageError("give a RECORD from `hfp run`, or --ladder")
    fit, path = feasibility.calibrate(record, out)
    if as_json:
        echo_json(fit)
        return
    click.echo(f"{fit.model} on {fit.host} ({fit.backend}): t0 {fit.t0_s * 1e3:.3f} ms, "
               f"eta_bw*BW {fit.bandwidth_eff_gbps:.1f} GB/s, eta_f*F {fit.flops_eff_tflops:.3f} TFLOPS; "
               f"eta_bw {_num(fit.eta_bw, 2)}, eta_f {_num(fit.eta_f, 2)} ({fit.reference_source})")
    rows = [[p.kind, p.prompt_tokens, p.output_tokens, p.parallel, f"{p.measured_s * 1e3:.3f}",
             f"{p.predicted_s * 1e3:.3f}", f"{p.rel_error * 100:+.1f}%"] for p in fit.points]
    click.echo(table(rows, ["kind", "prompt", "output", "parallel", "measured ms", "predicted ms", "error"]))
    click.echo(f"rms log error {fit.rel_rms:.3f}; " + "; ".join(fit.notes) + (" " if fit.notes else "")
               + f"saved to {path}")


@click.command("frontier")
@data_dir_options
@click.option("--profile", "-p", "profile_names", multiple=True, help="Profile name or YAML path (repeatable).")
@click.option("--quant", "quants", default=",".join(feasibility.DEFAULT_QUANTS), show_default=True,
              help="Comma-separated quantizations.")
@click.option("--context", type=click.IntRange(1), default=_DEFAULTS.frontier_context, show_default=True,
              help="Context the model must hold.")
@click.option("--calibration", type=click.Path(path_type=Path), help="A fit saved by `hfp calibrate`.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def frontier_command(profile_names: tuple[str, ...], quants: str, context: int, calibration: Path | None,
                     as_json: bool) -> None:
    """The capability frontier: per profile and quantization, the largest dense model that fits (anywhere, and
    fully on the GPU) and its predicted single-stream decode rate, and the largest published mixture-of-experts
    model that fits (total and active parameters)."""
    points = feasibility.frontier(profiles.load_many(profile_names), parse_str_list(quants),
                                  Assumptions(frontier_context=context),
                                  Calibration.load(calibration) if calibration else None)
    if as_json:
        echo_json(points)
    else:
        click.echo(_frontier_table(points))


def _describe(data: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines += [f"{indent}{key}:", _describe(value, indent + "  ")]
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:" + ("" if value else " []"))
            lines += [f"{indent}  - {v}" for v in value]
        else:
            lines.append(f"{indent}{key}: {' '.join(str(value).split())}")
    return "\n".join(lines)


def _estimate_table(results: list[Estimate]) -> str:
    rows = [[e.scenario, e.profile, e.configuration if e.fits else "does not fit", _num(e.decode_tok_s),
             _num(e.batched_decode_tok_s), _num(e.prefill_tok_s), _num(e.time_per_item_s, 2),
             _num(e.items_per_hour), _num(e.wall_time_s / 3600 if e.wall_time_s else None, 1), e.devices_needed or "-",
             _num(e.energy_kwh, 1), _num(e.hardware_usd), e.verdict] for e in results]
    headers = ["scenario", "profile", "configuration", "tok/s 1", "tok/s batch", "prefill tok/s", "s/item",
               "items/h", "wall h (1 dev)", "devices", "kWh", "hardware $", "verdict"]
    sources = sorted({e.decode_source for e in results if e.decode_source})
    return table(rows, headers) + "\nsources: " + ", ".join(sources or ["-"])


def _echo_capable_estimates(scenario_names: tuple[str, ...], profile_names: tuple[str, ...], quant: str | None,
                            calibration: Path | None, assumptions: Assumptions, as_json: bool) -> None:
    """``hfp estimate --model capable``: each scenario with its smallest capable model at ``quant``."""
    if quant is None:
        quant = "Q4_K_M"
    done = capability.estimate_capable(scenarios.load_many(scenario_names), profiles.load_many(profile_names),
                                       quant, assumptions, Calibration.load(calibration) if calibration else None)
    if not any(estimates for _, estimates in done):
        raise ConfigError("no scenario has a capable model with a known shape in the capability data")
    if as_json:
        echo_json([e for _, estimates in done for e in estimates])
        return
    for choice, estimates in done:
        what = (f"{choice.model} at {choice.quant} ({sig3(choice.params_total_b)}B total, "
                f"{sig3(choice.params_active_b)}B active; scores {choice.score:g})" if choice.model else choice.note)
        click.echo(f"{choice.scenario}: needs {choice.requirement} -> {what}")
        if choice.smaller_without_shape:
            click.echo(f"  smaller capable models without a known shape: {', '.join(choice.smaller_without_shape)}")
        if estimates:
            click.echo(_estimate_table(estimates))
        click.echo("")


def _frontier_table(points: list[FrontierPoint]) -> str:
    rows = [[p.profile, p.quant, _num(p.max_params / 1e9 if p.max_params else None, 1),
             (p.placement or "-").replace("_", " "), _num(p.decode_tok_s, 1),
             _num(p.max_params_full_offload / 1e9 if p.max_params_full_offload else None, 1),
             _num(p.decode_tok_s_full_offload, 1),
             f"{p.moe_model} ({p.moe_params / 1e9:.0f}B/{(p.moe_active_params or 0) / 1e9:.1f}B active)"
             if p.moe_model and p.moe_params else "-", _num(p.moe_decode_tok_s, 1)] for p in points]
    return table(rows, ["profile", "quant", "max B params", "placement", "tok/s", "max B on GPU", "tok/s on GPU",
                        "largest MoE (total/active)", "MoE tok/s"])


commands: list[click.Command] = [
    scenarios_command, profiles_command, estimate_command, calibrate_command, frontier_command,
]
