"""Refusal under quantization: probes, a refusal classifier, small-sample statistics and the probe runner.

Owns ``hfp safety``'s library API, re-exported here. It measures whether replies refuse, never whether they
are harmful, and stores verdicts and short excerpts only. It must not print (the CLI does) or write reports.
"""

from __future__ import annotations

from profiler.safety.classifier import (
    Classifier,
    JudgeClassifier,
    PatternClassifier,
    Verdict,
    get_classifier,
)
from profiler.safety.probes import BUILTIN_PROBES, Probe, ProbeSet, load_probes
from profiler.safety.record import (
    ConfigResult,
    ProbeVerdict,
    Retention,
    SafetyConfig,
    SafetyRecord,
    SafetySettings,
    kv_retention,
    refusal_retention,
    summarize,
)
from profiler.safety.runner import default_settings, parse_kv_types, plan_configs, reclassify, run_safety
from profiler.safety.stats import PairedChange, Rate, mcnemar_exact_p, paired_change, wilson_interval

__all__ = [
    "BUILTIN_PROBES", "Classifier", "ConfigResult", "JudgeClassifier", "PairedChange", "PatternClassifier",
    "Probe", "ProbeSet", "ProbeVerdict", "Rate", "Retention", "SafetyConfig", "SafetyRecord",
    "SafetySettings", "Verdict", "default_settings", "get_classifier", "kv_retention", "load_probes",
    "mcnemar_exact_p", "paired_change", "parse_kv_types", "plan_configs", "refusal_retention",
    "reclassify", "run_safety", "summarize", "wilson_interval",
]
