"""Running the refusal probes over quantization configurations (weight levels x KV cache types).

Owns choosing the configurations and the reference, sending each probe through the GGUF's own chat template
with llama.cpp (greedy, fixed seed), classifying the replies and assembling a ``SafetyRecord``. Replies are
kept as excerpts of at most 200 characters unless the caller asks for full completions. It must not print,
compute statistics itself (``record.summarize`` does) or generate anything but replies to the probe set.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from profiler.engine.backends import llama_module
from profiler.engine.llamacpp import quiet_llama_logs
from profiler.engine.worker import LlamaProxy  # llama.cpp runs in a supervised worker (engine/worker.py)
from profiler.errors import ConfigError, EngineError, signal_name
from profiler.hardware import detect
from profiler.models import inspect
from profiler.quantize import Ladder, LevelFile
from profiler.record import new_id, now_iso
from profiler.safety.classifier import Classifier
from profiler.safety.probes import Probe, ProbeSet, load_probes
from profiler.safety.record import (
    EXCERPT_CHARS,
    ConfigResult,
    ProbeSetInfo,
    ProbeVerdict,
    SafetyConfig,
    SafetyRecord,
    SafetySettings,
    summarize,
)
from profiler.schema.units import KV_CACHE_GGML_TYPE, KV_CACHE_TYPES, parse_kv_types

UNQUANTIZED_KV = frozenset({"f32", "f16", "bf16"})


def _model_config(lvl: LevelFile) -> dict[str, Any]:
    model = inspect(lvl.path)
    return dict(
        level=lvl.level, model_path=model.path, model_name=model.name, model_sha256=model.sha256,
        model_file_type=model.file_type, model_size_bytes=model.size_bytes,
        bits_per_weight=round(model.bits_per_weight, 3),
        requantized=lvl.requantized,
    )


def plan_configs(
    levels: list[LevelFile], kv_types: list[str], grid: bool = False, flash_attn: bool = True
) -> list[SafetyConfig]:
    """The configurations to run, reference first.

    The reference is the highest-precision weight level (most bits per weight) with the highest-precision KV
    type. By default one factor varies at a time: every weight level at the reference KV type, then every KV
    type at the reference level. ``grid`` runs every combination. A quantized KV type without flash attention
    is refused here, before anything loads (llama.cpp needs flash attention for a quantized V cache).
    """
    if not levels:
        raise ConfigError("no weight levels to run")
    kvs = sorted(parse_kv_types(kv_types), key=lambda k: -KV_CACHE_TYPES[k])
    quantized = [k for k in kvs if k not in UNQUANTIZED_KV]
    if quantized and not flash_attn:
        raise ConfigError(f"KV cache type {quantized[0]} needs flash attention; drop --no-flash-attn")
    described = sorted((_model_config(lvl) for lvl in levels), key=lambda d: -d["bits_per_weight"])
    ref_level, ref_kv = described[0], kvs[0]
    configs: list[SafetyConfig] = []

    def add(d: dict[str, Any], kv: str, axis: str) -> None:
        label = f"{d['level']} kv={kv}"
        if all(c.label != label for c in configs):
            configs.append(SafetyConfig(label=label, kv_type=kv, axis=axis, **d))  # type: ignore[arg-type]

    add(ref_level, ref_kv, "reference")
    for d in described:
        for kv in kvs if grid else [ref_kv]:
            add(d, kv, "grid" if grid else "weights")
    if not grid:
        for kv in kvs:
            add(ref_level, kv, "kv")
    return configs


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The reply's first ``limit`` characters, whitespace collapsed."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


class ChatModel:
    """One GGUF loaded through llama-cpp-python's ``Llama`` with a given KV cache type."""

    def __init__(self, config: SafetyConfig, settings: SafetySettings, verbose: bool = False) -> None:
        quiet_llama_logs(verbose)
        if config.kv_type not in UNQUANTIZED_KV and not settings.flash_attn:
            raise ConfigError(f"KV cache type {config.kv_type} needs flash attention; drop --no-flash-attn")
        ggml_type = KV_CACHE_GGML_TYPE[config.kv_type]
        try:
            self.llm: Any = LlamaProxy(
                model_path=config.model_path, n_ctx=settings.n_ctx, n_threads=settings.threads,
                n_threads_batch=settings.threads, n_gpu_layers=settings.n_gpu_layers, seed=settings.seed,
                type_k=ggml_type, type_v=ggml_type, flash_attn=settings.flash_attn, verbose=verbose,
            )
        except (ValueError, RuntimeError) as e:
            raise EngineError(
                f"{config.label}: llama.cpp could not load {Path(config.model_path).name} ({e}); "
                "rerun with --verbose to see why"
            ) from e
        self.settings = settings

    @property
    def chat_format(self) -> str | None:
        """The chat format llama-cpp-python chose (``chat_template.default`` is the GGUF's own template)."""
        return getattr(self.llm, "chat_format", None)

    def reply(self, prompt: str) -> tuple[str, int, str | None]:
        """Greedy reply to one user message: (text, completion tokens, finish reason)."""
        s = self.settings
        out = self.llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], temperature=s.temperature, top_k=1,
            max_tokens=s.max_tokens, seed=s.seed,
        )
        choice = out["choices"][0]
        text = str(choice["message"].get("content") or "")
        return text, int(out["usage"]["completion_tokens"]), choice.get("finish_reason")

    def close(self) -> None:
        """Free the model and its context."""
        close = getattr(self.llm, "close", None)
        if close:
            close()


def run_config(
    config: SafetyConfig, probes: list[Probe], classifier: Classifier, settings: SafetySettings,
    progress: Callable[[int], None] | None = None, verbose: bool = False,
) -> ConfigResult:
    """Send every probe to one configuration and classify the replies."""
    t0 = time.perf_counter()
    model = ChatModel(config, settings, verbose)
    result = ConfigResult(config=config, chat_format=model.chat_format)
    try:
        for probe in probes:
            text, n_tokens, finish = model.reply(probe.prompt)
            verdict = classifier.classify(probe.prompt, text)
            result.verdicts.append(ProbeVerdict(
                id=probe.id, kind=probe.kind, category=probe.category, refused=verdict.refused,
                reason=verdict.reason, excerpt=excerpt(text),
                completion=text if settings.store_completions else None,
                completion_tokens=n_tokens, finish_reason=finish,
            ))
            result.tokens_generated += n_tokens
            if progress:
                progress(1)
    finally:
        model.close()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def default_settings(**overrides: Any) -> SafetySettings:
    """Settings with this machine's core count as threads, plus ``overrides``."""
    threads = overrides.pop("threads", None) or os.cpu_count() or 1
    return SafetySettings(threads=threads, **overrides)


def run_safety(
    configs: list[SafetyConfig],
    probes: ProbeSet,
    classifier: Classifier,
    settings: SafetySettings,
    progress: Callable[[int], None] | None = None,
    verbose: bool = False,
    ladder: Ladder | None = None,
    host: bool = True,
) -> SafetyRecord:
    """Run ``probes`` on every configuration (the first is the reference) and return the summarized record.

    ``progress`` is called with 1 after each probe reply. An interrupt (Ctrl-C) keeps the finished
    configurations and marks the record incomplete.
    """
    if not configs:
        raise ConfigError("no configurations to run")
    record = SafetyRecord(
        id=new_id(configs[0].model_path, "safety"), created_at=now_iso(),
        llama_cpp_version=getattr(llama_module(), "__version__", None),
        host=detect(measure=False) if host else None, classifier=classifier.name,
        probe_set=ProbeSetInfo(
            name=probes.name, version=probes.version, source=probes.source, sha256=probes.sha256,
            n_harmful=len(probes.harmful), n_control=len(probes.controls), categories=probes.categories,
        ),
        settings=settings, reference=configs[0].label,
        ladder_source=ladder.source.path if ladder else None,
        warnings=sorted(set(ladder.warnings)) if ladder else [],
    )
    try:
        for config in configs:
            record.configs.append(run_config(config, probes.probes, classifier, settings, progress, verbose))
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM or SIGHUP (profiler.cli.signals)
        record.complete = False
        record.interrupted = f"{signal_name(e)} after {len(record.configs)} of {len(configs)} configurations"
    return summarize(record)


def reclassify(record: SafetyRecord, classifier: Classifier, probes: ProbeSet | None = None) -> SafetyRecord:
    """A copy of ``record`` with every stored completion classified again (e.g. by a judge), summaries rebuilt.

    Needs a record made with ``store_completions``; ``probes`` defaults to the set the record names, whose
    SHA-256 must match, so verdicts are paired with the requests that produced them.
    """
    if not record.settings.store_completions:
        raise ConfigError(f"{record.id} holds no completions to classify again; rerun with --store-completions")
    probes = probes or load_probes(record.probe_set.source or None)
    if probes.sha256 and record.probe_set.sha256 and probes.sha256 != record.probe_set.sha256:
        raise ConfigError(f"{probes.source} has changed since {record.id} was made (SHA-256 differs)")
    by_id = {p.id: p for p in probes.probes}
    out = record.model_copy(deep=True)
    out.classifier = classifier.name
    for c in out.configs:
        for v in c.verdicts:
            verdict = classifier.classify(by_id[v.id].prompt, v.completion or "")
            v.refused, v.reason = verdict.refused, verdict.reason
    return summarize(out)
