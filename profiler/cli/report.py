"""``hfp report`` (HTML/Markdown/JSON feasibility report from a run record) and ``hfp compare`` (runs side by side)."""

from __future__ import annotations

from pathlib import Path

import click

from profiler import report
from profiler.cli.common import echo_json, parse_str_list
from profiler.report import compare


@click.command("report")
@click.argument("record")
@click.option("--scenarios", help="Comma-separated scenario names or YAML paths [default: every shipped scenario].")
@click.option("--profiles", help="Comma-separated hardware profile names or YAML paths [default: every profile].")
@click.option("--safety", "safety_record", help="An `hfp safety` record: adds refusal under quantization.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [default: reports/<record id>/].")
@click.option("--quant", default="Q4_K_M", show_default=True,
              help="Quantization the scenarios' smallest capable models are estimated at.")
@click.option("--as-of", "as_of", help="Choose capable models released by this date (YYYY-MM-DD) [default: today].")
@click.option("--ladder", default="auto", show_default=True,
              help="An `hfp calibrate --ladder` record (*.ladder.json) to show beside the tier predictions; `auto` "
                   "takes the newest of the run's host, `none` leaves it out.")
def report_command(record: str, scenarios: str | None, profiles: str | None, safety_record: str | None,
                   out: str | None, quant: str, as_of: str | None, ladder: str) -> None:
    """Render a feasibility report from a run record: report.html (one self-contained file, figures embedded),
    report.md with plots/*.png beside it, and summary.json. Estimates are recomputed from the record. The report
    opens with what a campaign would use (each scenario's smallest capable open model on every tier), then what
    you measured.

    \b
    Examples:
      hfp report reports/runs/20250101T120000Z-model.json
      hfp report run.json --scenarios disinformation-posts,scam-chat --profiles rtx-4060-laptop,raspberry-pi-5-8gb
      hfp report run.json --safety reports/runs/safety-20250101T130000Z.json
      hfp report run.json --quant Q8_0 --as-of 2024-12-31
      hfp report run.json --ladder ~/.cache/hfp/calibration/20250101T120000Z-ladder.ladder.json
    """
    paths = report.build(record, parse_str_list(scenarios) if scenarios else None,
                         parse_str_list(profiles) if profiles else None, Path(out) if out else None,
                         safety=safety_record, quant=quant, as_of=as_of, ladder=ladder)
    click.echo(f"report: {paths.html}\nmarkdown: {paths.markdown} ({len(paths.plots)} plots)\n"
               f"summary: {paths.summary}")


@click.command("compare")
@click.argument("records", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), help="Also write compare.html, compare.md and plots here.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of a table.")
def compare_command(records: tuple[str, ...], out: str | None, as_json: bool) -> None:
    """Put run records of the same model side by side: workload points aligned by (prompt tokens, output
    tokens, parallel), each metric's ratio to the first record. Records of different models are refused.

    \b
    Examples:
      hfp compare laptop.json desktop.json
      hfp compare threads2.json threads4.json --out reports/threads
    """
    runs = compare.load(records)
    comparison = compare.compare(runs, names=records)
    echo_json(comparison) if as_json else click.echo(compare.text_table(comparison))
    if out:
        paths = compare.render_comparison(runs, Path(out), comparison)
        click.echo(f"comparison: {paths.html}", err=as_json)


commands: list[click.Command] = [report_command, compare_command]
