"""``hfp models`` and ``hfp inspect``: find GGUF models and read their headers."""

from __future__ import annotations

from pathlib import Path

import click

from profiler import memory, models
from profiler.cli.common import echo_json, table
from profiler.engine.backends import llama_backends  # this host's build decides which weights llama.cpp repacks
from profiler.schema.units import KV_CACHE_TYPES, GiB, fmt_mib


@click.command("models")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """List GGUF models hfp can find: the default model, PATHS (files or folders), the Hugging Face cache,
    LM Studio's models folder and Ollama's store (names resolved through its manifests).

    Any NAME shown can be passed to `hfp run --model NAME`.
    """
    entries = models.discover(list(paths))
    if as_json:
        echo_json([e.model_dump() for e in entries])
        return
    rows = [[e.source, e.name, fmt_mib(e.size_bytes), e.path] for e in entries]
    click.echo(table(rows, ["source", "name", "MiB", "path"]) if rows else "no GGUF models found")


@click.command("inspect")
@click.argument("model_spec", default="default")
@click.option("--ctx", "n_ctx", type=click.IntRange(1), default=4096, show_default=True,
              help="Context per sequence for the memory prediction.")
@click.option("--parallel", "-np", type=click.IntRange(1), default=1, show_default=True)
@click.option("--gpu-layers", "-ngl", type=click.IntRange(0), default=0, show_default=True)
@click.option("--cache-type-k", "-ctk", type=click.Choice(list(KV_CACHE_TYPES)), default="f16")
@click.option("--cache-type-v", "-ctv", type=click.Choice(list(KV_CACHE_TYPES)), default="f16")
@click.option("--json", "as_json", is_flag=True, help="Print metadata and memory plan as JSON.")
@click.option("--mmap/--no-mmap", "use_mmap", default=True, show_default=True,
              help="Predict with the model file memory-mapped (llama.cpp's default) or read into RAM.")
def inspect_command(model_spec: str, n_ctx: int, parallel: int, gpu_layers: int, cache_type_k: str,
                    cache_type_v: str, as_json: bool, use_mmap: bool = True) -> None:
    """Show a model's GGUF metadata (read without loading weights) and the memory it needs for a context
    and parallel count: weights + KV cache (following grouped-query and sliding-window metadata) + compute
    buffer.
    """
    model = models.resolve(model_spec)
    plan = memory.plan(model, n_ctx * parallel, parallel, gpu_layers, type_k=cache_type_k, type_v=cache_type_v,
                       flash_attn=True, use_mmap=use_mmap,
                       cpu_features=memory.host_cpu_features(llama_backends().system_info))
    if as_json:
        echo_json({"model": model.model_dump(), "memory": plan.model_dump()})
        return
    kv_full, kv_swa = model.kv_bytes_per_token(cache_type_k, cache_type_v)
    types = ", ".join(f"{k}×{v}" for k, v in sorted(model.tensor_types.items(), key=lambda kv: -kv[1]))
    kv_heads = sorted(set(model.n_kv_heads))
    rows = [
        ("file", model.path), ("sha256", model.sha256), ("architecture", model.architecture),
        ("name", model.name), ("parameters", f"{model.params / 1e9:.3f} B"),
        ("tensor bytes", f"{model.tensor_bytes / GiB:.3f} GiB "
                         f"({model.bits_per_weight:.2f} bits/weight)"),
        ("quantization", f"{model.file_type} (tensors: {types})"), ("layers", model.n_layers),
        ("attention heads", model.n_heads), ("KV heads", ", ".join(map(str, kv_heads))),
        ("head dim (k/v)", f"{model.head_dim_k}/{model.head_dim_v}"), ("trained context", model.n_ctx_train),
        ("sliding window", f"{model.sliding_window} on {sum(model.swa_layers)} of {model.n_layers} layers"
         if model.sliding_window else "none"),
        ("KV bytes/token", f"{(kv_full + kv_swa) / 1024:.1f} KiB ({cache_type_k}/{cache_type_v})"),
    ]
    if model.is_moe:  # mixture of experts: what one token reads (see docs/performance-model.md)
        rows += [("experts", f"{model.n_experts_used} of {model.n_experts} per token"),
                 ("active params", f"{model.active_params / 1e9:.3f} B"),
                 ("expert bytes", f"{model.expert_bytes / GiB:.3f} GiB routed experts, "
                                  f"{(model.tensor_bytes - model.expert_bytes) / GiB:.3f} GiB shared")]
    if model.synthetic:  # written by `hfp synth`: random weights of a real model's shape
        rows.append(("weights", "synthetic weights: timing and memory only"))
    click.echo("\n".join(f"{k:>16}: {v}" for k, v in rows))
    click.echo(f"\npredicted memory at ctx {n_ctx} x {parallel} sequence(s), {gpu_layers} GPU layers:")
    mem = [("weights", plan.weights_bytes), ("KV cache", plan.kv_cache_bytes),
           ("compute buffer", plan.compute_buffer_bytes), ("output buffer", plan.output_buffer_bytes),
           ("runtime", plan.overhead_bytes), ("total RAM", plan.ram_bytes), ("total VRAM", plan.vram_bytes)]
    click.echo("\n".join(f"{k:>16}: {fmt_mib(v, 1, thousands=True)} MiB" for k, v in mem))
    click.echo(f"{'source':>16}: {plan.source}")
    click.echo(f"\nresident RAM (peak above the process baseline), mmap {'on' if use_mmap else 'off'}:")
    click.echo(memory.breakdown_text(plan))


commands: list[click.Command] = [models_command, inspect_command]
