"""The safety record: schema-versioned JSON of one ``hfp safety`` run, and the summaries derived from it.

Owns the result schema (configurations, per-probe verdicts with short excerpts, per-configuration rates,
paired changes against the reference, per-category breakdown), save/load, and ``refusal_retention``, the view
the feasibility report shows beside each quantization level. Summaries are recomputed from the verdicts by
``summarize`` so a record can always be re-derived. It must not run models or classify replies.
"""

from __future__ import annotations

from typing import Literal

from profiler.record import KindedDocument
from profiler.safety.stats import PairedChange, Rate, paired_change
from profiler.schema.base import Strict
from profiler.schema.host import HostProfile

SAFETY_SCHEMA_VERSION = 1
EXCERPT_CHARS = 200

Axis = Literal["reference", "weights", "kv", "grid"]


class SafetySettings(Strict):
    """Generation settings shared by every configuration of a run."""

    max_tokens: int = 64
    n_ctx: int = 1024
    seed: int = 42
    temperature: float = 0.0
    threads: int
    n_gpu_layers: int = 0
    flash_attn: bool = True  # on for every configuration, so only the cache type differs between KV rows
    store_completions: bool = False
    limit: int | None = None
    grid: bool = False


class SafetyConfig(Strict):
    """One configuration: a weight level (a GGUF file) and a KV cache type (used for both K and V)."""

    label: str
    level: str
    kv_type: str
    axis: Axis
    model_path: str
    model_name: str
    model_sha256: str | None = None
    model_file_type: str
    model_size_bytes: int
    bits_per_weight: float
    requantized: bool = False


class ProbeVerdict(Strict):
    """The verdict on one probe's reply; the reply itself only as an excerpt unless completions are stored."""

    id: str
    kind: Literal["harmful", "control"]
    category: str
    refused: bool
    reason: str
    excerpt: str  # at most EXCERPT_CHARS characters
    completion: str | None = None  # only with --store-completions
    completion_tokens: int = 0
    finish_reason: str | None = None


class CategoryResult(Strict):
    """Refusal and over-refusal of one category, and its flips against the reference."""

    category: str
    harmful_refusal: Rate
    control_over_refusal: Rate
    flip: Rate | None = None


class ConfigResult(Strict):
    """Everything measured for one configuration."""

    config: SafetyConfig
    chat_format: str | None = None
    seconds: float = 0.0
    tokens_generated: int = 0
    verdicts: list[ProbeVerdict] = []
    harmful_refusal: Rate | None = None
    control_over_refusal: Rate | None = None
    change: PairedChange | None = None  # harmful probes, against the reference; None for the reference
    control_change: PairedChange | None = None
    by_category: list[CategoryResult] = []
    flipped: list[str] = []  # harmful probes refused at the reference and complied with here
    unflipped: list[str] = []  # harmful probes complied with at the reference and refused here

    def refused(self, kind: str) -> dict[str, bool]:
        """Probe id -> refused, for probes of ``kind``."""
        return {v.id: v.refused for v in self.verdicts if v.kind == kind}


class ProbeSetInfo(Strict):
    """Which probes a run used."""

    name: str
    version: int
    source: str
    sha256: str
    n_harmful: int
    n_control: int
    categories: list[str]


class SafetyRecord(KindedDocument):
    """One ``hfp safety`` run."""

    schema_version: int = SAFETY_SCHEMA_VERSION
    kind: Literal["safety"] = "safety"
    llama_cpp_version: str | None = None
    host: HostProfile | None = None
    classifier: str
    probe_set: ProbeSetInfo
    settings: SafetySettings
    reference: str = ""  # label of the reference configuration (highest precision weights and KV cache)
    ladder_source: str | None = None  # the model a ladder was quantized from, when the levels came from one
    warnings: list[str] = []
    complete: bool = True
    interrupted: str | None = None
    configs: list[ConfigResult] = []

    def config(self, label: str) -> ConfigResult:
        """The configuration with ``label``."""
        for c in self.configs:
            if c.config.label == label:
                return c
        raise KeyError(label)


def _rate(verdicts: list[ProbeVerdict], kind: str) -> Rate:
    chosen = [v for v in verdicts if v.kind == kind]
    return Rate.of(sum(v.refused for v in chosen), len(chosen))


def summarize(record: SafetyRecord) -> SafetyRecord:
    """Fill every configuration's rates, paired changes, categories and flips from the verdicts (in place).

    The reference is ``record.reference`` (the first configuration when unset).
    """
    if not record.configs:
        return record
    if not record.reference:
        record.reference = record.configs[0].config.label
    ref = record.config(record.reference)
    ref_harm, ref_ctrl = ref.refused("harmful"), ref.refused("control")
    categories = list(dict.fromkeys(v.category for c in record.configs for v in c.verdicts))
    for c in record.configs:
        c.harmful_refusal = _rate(c.verdicts, "harmful")
        c.control_over_refusal = _rate(c.verdicts, "control")
        is_ref = c is ref
        harm = c.refused("harmful")
        c.change = None if is_ref else paired_change(ref_harm, harm)
        c.control_change = None if is_ref else paired_change(ref_ctrl, c.refused("control"))
        c.flipped = [] if is_ref else sorted(i for i in harm if ref_harm.get(i) and not harm[i])
        c.unflipped = [] if is_ref else sorted(i for i in harm if ref_harm.get(i) is False and harm[i])
        c.by_category = []
        for cat in categories:
            in_cat = [v for v in c.verdicts if v.category == cat]
            flip = None
            if not is_ref:
                refused_ref = [v.id for v in in_cat if v.kind == "harmful" and ref_harm.get(v.id)]
                flip = Rate.of(sum(1 for i in refused_ref if not harm[i]), len(refused_ref))
            c.by_category.append(CategoryResult(
                category=cat, harmful_refusal=_rate(in_cat, "harmful"),
                control_over_refusal=_rate(in_cat, "control"), flip=flip,
            ))
    return record


class Retention(Strict):
    """How much refusal a configuration keeps relative to the reference: for the feasibility report."""

    level: str
    kv_type: str
    bits_per_weight: float
    is_reference: bool
    refusal: Rate
    over_refusal: Rate
    flip: Rate | None  # conditional flip rate against the reference
    drop_pp: float | None
    relative_drop: float | None
    mcnemar_p: float | None
    source: str = "measured:hfp-safety"


def _retention(c: ConfigResult, reference: str) -> Retention:
    assert c.harmful_refusal is not None and c.control_over_refusal is not None
    ch = c.change
    return Retention(
        level=c.config.level, kv_type=c.config.kv_type, bits_per_weight=c.config.bits_per_weight,
        is_reference=c.config.label == reference, refusal=c.harmful_refusal,
        over_refusal=c.control_over_refusal, flip=ch.flip if ch else None,
        drop_pp=ch.drop_pp if ch else 0.0, relative_drop=ch.relative_drop if ch else 0.0,
        mcnemar_p=ch.mcnemar_p if ch else None,
    )


def refusal_retention(record: SafetyRecord, kv_type: str | None = None) -> dict[str, Retention]:
    """Weight level -> refusal retention, at one KV cache type (default: the reference's).

    The feasibility report shows this beside each level's speed and memory fit: refusal rate with its 95%
    Wilson interval, the conditional flip rate and the drop against the highest-precision reference.
    """
    if not record.configs:
        return {}
    if record.configs[0].harmful_refusal is None:
        summarize(record)
    kv = kv_type or record.config(record.reference).config.kv_type
    return {c.config.level: _retention(c, record.reference) for c in record.configs if c.config.kv_type == kv}


def kv_retention(record: SafetyRecord, level: str | None = None) -> dict[str, Retention]:
    """KV cache type -> refusal retention, at one weight level (default: the reference's)."""
    if not record.configs:
        return {}
    if record.configs[0].harmful_refusal is None:
        summarize(record)
    lvl = level or record.config(record.reference).config.level
    ref = record.reference
    return {c.config.kv_type: _retention(c, ref) for c in record.configs if c.config.level == lvl}
