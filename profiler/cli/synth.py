"""``hfp synth``: write a synthetic GGUF (random weights) of a model's shape, for timing and memory only."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import click

from profiler import models, synth
from profiler.cli.common import echo_json, table
from profiler.errors import ConfigError
from profiler.schema.units import GiB


def _list(as_json: bool) -> None:
    rows = synth.preset_rows()
    if as_json:
        echo_json(rows)
        return
    headers = ["preset", "arch", "params B", "layers", "embd", "heads/kv", "head dim", "ffn", "vocab", "experts",
               "swa", "Q4_K_M GiB"]
    body = [[r["preset"], r["arch"], f"{r['params_b']:.2f}", r["layers"], r["embd"], f"{r['heads']}/{r['kv_heads']}",
             r["head_dim"], r["ff_expert"] if r["experts"] else r["ff"], r["vocab"],
             f"{r['experts_used']}/{r['experts']}" if r["experts"] else "", r["sliding_window"] or "",
             f"{r['q4_k_m_gib']:.2f}"] for r in rows]
    click.echo(table(body, headers))
    click.echo("\nshapes from each model's config.json on huggingface.co (URLs: `hfp synth --list --json`); "
               f"types: {', '.join(synth.SYNTH_TYPES)}; ffn is the expert FFN for MoE presets")


@click.command("synth")
@click.argument("preset", required=False)
@click.option("--type", "-q", "ftype", default="Q4_K_M", show_default=True,
              type=click.Choice(list(synth.SYNTH_TYPES), case_sensitive=False), help="Weight type mix.")
@click.option("--like", "like", type=click.Path(dir_okay=False, path_type=Path),
              help="Take the shape from an existing GGUF's metadata.")
@click.option("--arch", type=click.Choice(list(synth.ARCHS)), help="Architecture (explicit shape).")
@click.option("--layers", type=click.IntRange(1))
@click.option("--embd", type=click.IntRange(1), help="Embedding (hidden) size.")
@click.option("--heads", type=click.IntRange(1))
@click.option("--kv-heads", type=click.IntRange(1))
@click.option("--head-dim", type=click.IntRange(1))
@click.option("--ff", type=click.IntRange(1), help="Feed-forward (intermediate) size.")
@click.option("--vocab", type=click.IntRange(512))
@click.option("--experts", type=click.IntRange(0))
@click.option("--experts-used", type=click.IntRange(0))
@click.option("--expert-ff", type=click.IntRange(1))
@click.option("--sliding-window", type=click.IntRange(1))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--name", help="Name of a custom shape (default: from the preset, file or a hash).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder [default: hfp cache/synth].")
@click.option("--force", is_flag=True, help="Rewrite even if a matching file exists.")
@click.option("--list", "list_presets", is_flag=True, help="List the presets with their shapes.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest (or the list) as JSON.")
def synth_command(preset: str | None, ftype: str, like: Path | None, arch: str | None, layers: int | None,
                  embd: int | None, heads: int | None, kv_heads: int | None, head_dim: int | None, ff: int | None,
                  vocab: int | None, experts: int | None, experts_used: int | None, expert_ff: int | None,
                  sliding_window: int | None, seed: int, name: str | None, out: Path | None, force: bool,
                  list_presets: bool, as_json: bool) -> None:
    """Write a GGUF with random weights in the shape of a real model, to measure how fast it would run here
    without downloading it (synthetic weights: timing and memory only; replies are random tokens).

    PRESET is a name from `hfp synth --list` (or `synth:<preset>:<type>`); --like takes the shape from a GGUF
    file; the dimension options override either, or give a whole shape with --arch. The tokenizer is the
    default model's, padded to the shape's vocabulary. Files are cached and reused.

    \b
    Examples:
      hfp synth --list
      hfp synth llama-3.1-8b --type Q4_K_M && hfp run -m synth:llama-3.1-8b:Q4_K_M -p 128 -n 32
      hfp synth --like ~/models/x.gguf --type Q8_0
      hfp synth --arch qwen3 --layers 24 --embd 2048 --heads 16 --kv-heads 8 --head-dim 128 --ff 6144 --vocab 151936
    """
    if list_presets:
        _list(as_json)
        return
    ftype = ftype.upper()
    overrides = dict(arch=arch, n_layers=layers, n_embd=embd, n_heads=heads, n_kv_heads=kv_heads, head_dim=head_dim,
                     n_ff=ff, n_vocab=vocab, n_experts=experts, n_experts_used=experts_used, n_ff_expert=expert_ff,
                     sliding_window=sliding_window)
    shape, label, source, preset_name = _shape(preset, like, overrides)
    if preset and synth.is_synth_spec(preset) and preset.count(":") == 2:
        ftype = synth.parse_spec(preset)[1]
    changed = any(v is not None for v in overrides.values())
    if name is None:
        name = label if not changed or label == "custom" else f"{label}-custom"
    with click.progressbar(length=synth.planned_bytes(synth.tensor_plan(shape, ftype)), label=f"writing {name}",
                           file=sys.stderr, hidden=as_json) as bar:
        result = synth.build(shape, ftype, name=name, seed=seed, preset=None if changed else preset_name,
                             source=source, out_dir=out, force=force, progress=bar.update)
    if as_json:
        click.echo(synth.manifest_json(result))
        return
    m = result.manifest
    how = "reused" if result.reused else f"written in {m.write_s:.1f} s"
    click.echo(f"{result.path}\n  {m.name}: {_params(m.params)} params, {m.size_bytes / GiB:.2f} GiB, {how}")
    click.echo(f"  types: {', '.join(f'{k}×{v}' for k, v in sorted(m.tensor_types.items()))} ({m.type_rule})")
    click.echo(f"  tokenizer: {m.tokenizer}\n  {synth.SYNTH_LABEL}")
    spec = f"synth:{preset_name}:{ftype}" if preset_name and not changed and not out else str(result.path)
    click.echo(f"  measure it: hfp run -m {spec}")


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _shape(preset: str | None, like: Path | None, overrides: Mapping[str, object]
           ) -> tuple[synth.Shape, str, str | None, str | None]:
    """The base shape (preset, --like file, or explicit) with its label, source and preset name."""
    if preset and like:
        raise ConfigError("give a PRESET or --like, not both")
    if preset:
        key = synth.parse_spec(preset)[0] if synth.is_synth_spec(preset) else preset.lower()
        if key not in synth.PRESETS:
            raise ConfigError(f"no synthetic preset {preset!r}; `hfp synth --list` shows them")
        p = synth.PRESETS[key]
        return synth.with_overrides(p.shape, **overrides), f"synth:{key}", p.source, key
    if like:
        base = synth.shape_like(models.inspect(like, with_hash=False))
        return synth.with_overrides(base, **overrides), f"like-{like.stem}", str(like), None
    missing = [k for k in ("arch", "n_layers", "n_embd", "n_heads", "n_ff", "n_vocab") if overrides.get(k) is None]
    if missing:
        raise ConfigError("give a PRESET, --like FILE, or a whole shape (missing: "
                          + ", ".join("--" + m.removeprefix("n_").replace("_", "-") for m in missing) + ")")
    given = {k: v for k, v in overrides.items() if v is not None}
    heads = int(given["n_heads"])  # type: ignore[call-overload]
    given.setdefault("n_kv_heads", heads)
    given.setdefault("head_dim", int(given["n_embd"]) // heads)  # type: ignore[call-overload]
    return synth.make_shape(given), "custom", None, None


commands: list[click.Command] = [synth_command]
