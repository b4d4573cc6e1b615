"""Feasibility reports people read, and comparisons of runs: derived from run records, rebuildable from them.

Data flows one way, with no import cycle between the modules:

    records + estimates -> data.ReportData (data.py) -> plots (plots.py) and tables (view.py)
                        -> Jinja2 templates (templates/*.j2 through templating.py) -> report.html, report.md

The public API:

- ``build(record_path_or_record, scenarios=None, profiles=None, out_dir=None, ...) -> ReportPaths``: load a record,
  derive calibration, estimates and the capability frontier (``profiler.feasibility``) and each scenario's
  smallest capable model and the capability trend (``profiler.capability``), and render.
- ``render(record, estimates, out_dir, ...) -> ReportPaths``: write ``report.html`` (one self-contained file),
  ``report.md`` with ``plots/*.png`` beside it, and ``summary.json`` (``ReportData``).
- ``compare_runs(records) -> Comparison``, ``render_comparison(records, out_dir) -> ComparePaths``,
  ``text_table(comparison)``: run records of one model side by side (module ``profiler.report.compare``).

It renders; it must not measure (``profiler.runner``) or predict (``profiler.feasibility``).
"""

from __future__ import annotations

from profiler.report.compare import ComparePaths, Comparison, render_comparison, text_table
from profiler.report.compare import compare as compare_runs
from profiler.report.data import ReportData, ReportPaths, report_data
from profiler.report.render import build, render

__all__ = [
    "ComparePaths", "Comparison", "ReportData", "ReportPaths", "build", "compare_runs", "render", "render_comparison",
    "report_data", "text_table",
]
