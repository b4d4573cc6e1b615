"""Model files: find GGUF models where users keep them and describe one from its header.

Owns discovery (the default model, a path or folder, the Hugging Face cache, LM Studio, Ollama) and the
``ModelFile`` description (shape, quantization, sizes, hash). It must not load weights or plan memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from profiler import synth
from profiler.config import describe_validation_error
from profiler.errors import HfpError, ModelError
from profiler.files import cache_dir as cache_dir
from profiler.files import write_atomic
from profiler.gguf import FILE_TYPES, GGUFHeader, TensorInfo, read_header
from profiler.resources import DEFAULT_MODEL_FILE as DEFAULT_MODEL_FILE
from profiler.resources import DEFAULT_MODEL_PACKAGE as DEFAULT_MODEL_PACKAGE
from profiler.resources import default_model_path as default_model_path
from profiler.schema.model import ModelFile as ModelFile

# Layers that attend only to a sliding window, for architectures whose GGUF does not declare the pattern:
# llama.cpp hard-codes these (src/llama-model.cpp). Period N: the last layer of every N is global.
_SWA_PERIOD_BY_ARCH = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2}


def _arch_key(meta: dict[str, Any], arch: str, key: str, default: Any = None) -> Any:
    value = meta.get(f"{arch}.{key}")
    return default if value is None else value


def _per_layer(value: Any, n_layers: int, default: int) -> list[int]:
    if value is None:
        return [default] * n_layers
    if isinstance(value, list):
        return [int(v) for v in value] + [int(value[-1])] * (n_layers - len(value))
    return [int(value)] * n_layers


def _swa_layers(meta: dict[str, Any], arch: str, n_layers: int) -> tuple[int | None, list[bool]]:
    window = _arch_key(meta, arch, "attention.sliding_window")
    if not window:
        return None, []
    pattern = _arch_key(meta, arch, "attention.sliding_window_pattern")
    if isinstance(pattern, list):
        return int(window), [bool(p) for p in pattern][:n_layers]
    period = int(pattern) if pattern else _SWA_PERIOD_BY_ARCH.get(arch)
    if not period:  # a window with no pattern means every layer is windowed (e.g. Mistral v0.1)
        return int(window), [True] * n_layers
    return int(window), [(i % period) < period - 1 for i in range(n_layers)]


def _output_params(tensors: list[TensorInfo]) -> int:
    """Parameters of the output projection: ``output.weight``, or the tied token embedding when there is none."""
    by_name = {t.name: t.n_elements for t in tensors}
    return int(by_name.get("output.weight", by_name.get("token_embd.weight", 0)))


def _lookup_tensor(tensors: list[TensorInfo]) -> TensorInfo | None:
    """The input embedding when it is untied (an ``output.weight`` exists beside it): only looked up per token."""
    names = {t.name: t for t in tensors}
    return names.get("token_embd.weight") if "output.weight" in names else None


def describe(header: GGUFHeader, path: Path) -> ModelFile:
    """Build a ``ModelFile`` from a parsed header."""
    meta = header.metadata
    arch = str(meta.get("general.architecture", "unknown"))
    n_layers = int(_arch_key(meta, arch, "block_count", 0))
    n_embd = int(_arch_key(meta, arch, "embedding_length", 0))
    heads = _per_layer(_arch_key(meta, arch, "attention.head_count"), n_layers, 1)
    n_heads = max(heads) if heads else 1
    kv_heads = _per_layer(_arch_key(meta, arch, "attention.head_count_kv"), n_layers, n_heads)
    head_dim = n_embd // n_heads if n_heads else 0
    n_ff = _arch_key(meta, arch, "feed_forward_length")
    window, swa = _swa_layers(meta, arch, n_layers)
    bytes_by_type: Counter[str] = Counter()
    for t in header.tensors:
        bytes_by_type[t.type_name] += t.nbytes
    ftype = meta.get("general.file_type")
    file_type = FILE_TYPES.get(int(ftype), f"ftype{ftype}") if ftype is not None else _dominant(bytes_by_type)
    lookup = _lookup_tensor(header.tensors)
    vocab = header.array_lengths.get("tokenizer.ggml.tokens") or int(_arch_key(meta, arch, "vocab_size", 0))
    return ModelFile(
        path=str(path.resolve()),
        name=str(meta.get("general.name") or path.stem),
        size_bytes=header.file_size,
        gguf_version=header.version,
        architecture=arch,
        file_type=file_type,
        tensor_types=dict(Counter(t.type_name for t in header.tensors)),
        params=sum(t.n_elements for t in header.tensors),
        tensor_bytes=sum(bytes_by_type.values()),
        repeating_bytes=sum(t.nbytes for t in header.tensors if t.name.startswith("blk.")),
        n_layers=n_layers,
        n_embd=n_embd,
        n_ff=int(max(n_ff)) if isinstance(n_ff, list) else (int(n_ff) if n_ff else None),
        n_vocab=int(vocab),
        n_heads=n_heads,
        n_kv_heads=kv_heads,
        head_dim_k=int(_arch_key(meta, arch, "attention.key_length", head_dim)),
        head_dim_v=int(_arch_key(meta, arch, "attention.value_length", head_dim)),
        n_ctx_train=int(_arch_key(meta, arch, "context_length", 0)),
        sliding_window=window,
        swa_layers=swa,
        synthetic="hfp.synthetic" in meta,
        n_experts=int(_arch_key(meta, arch, "expert_count", 0) or 0),
        n_experts_used=int(_arch_key(meta, arch, "expert_used_count", 0) or 0),
        expert_params=sum(t.n_elements for t in header.tensors if _is_expert(t.name)),
        expert_bytes=sum(t.nbytes for t in header.tensors if _is_expert(t.name)),
        output_params=_output_params(header.tensors),
        lookup_params=lookup.n_elements if lookup else 0,
        lookup_bytes=lookup.nbytes if lookup else 0,
    )


def _is_expert(tensor_name: str) -> bool:
    """Routed-expert tensors (``blk.N.ffn_{gate,up,down,gate_up}_exps.*``, llama.cpp's naming); shared experts
    (``*_shexp``) are read every token."""
    return "_exps" in tensor_name


def _dominant(bytes_by_type: Counter[str]) -> str:
    return bytes_by_type.most_common(1)[0][0] if bytes_by_type else "unknown"


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so large models are hashed once."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_dir() / "sha256" / key
    try:
        cached = memo.read_bytes().decode("ascii", "replace").strip()
        if len(cached) == 64 and all(c in "0123456789abcdef" for c in cached):
            return cached
    except OSError:
        pass  # no memo yet, or an unreadable one: hash again
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    try:
        write_atomic(memo, h.hexdigest())
    except HfpError:
        pass  # a cache: a full disk or a read-only home only costs hashing again next time
    return h.hexdigest()


def inspect(path: str | Path, with_hash: bool = True) -> ModelFile:
    """Read the GGUF header at ``path`` (no weights are loaded) and describe the model."""
    p = Path(path).expanduser()
    try:
        model = describe(read_header(p), p)
    except ModelError:
        raise
    except OSError as e:  # unreadable (permissions, a special file, an I/O error)
        raise ModelError(f"{p}: cannot read ({e.strerror or e})") from None
    except (ValueError, TypeError, ArithmeticError, LookupError, RecursionError, struct.error) as e:
        # a header that parses but whose metadata is the wrong kind (a string where a count belongs, a zero
        # alignment, …): refused here, before llama.cpp ever sees the file
        detail = describe_validation_error(e) if isinstance(e, ValidationError) else f"{type(e).__name__}: {e}"
        raise ModelError(f"{p}: invalid GGUF metadata ({' '.join(detail.split())[:300]})") from None
    if with_hash:
        model.sha256 = sha256_of(p)
    return model


# --- discovery -------------------------------------------------------------------------------------------


class ModelEntry(BaseModel):
    """One model found on disk, for listing."""

    source: str
    name: str
    path: str
    size_bytes: int



def hf_cache_root(env: dict[str, str] | None = None, home: Path | None = None) -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it."""
    env = dict(os.environ) if env is None else env
    home = home or Path.home()
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    hf_home = Path(env["HF_HOME"]) if env.get("HF_HOME") else home / ".cache" / "huggingface"
    return hf_home / "hub"


def lmstudio_roots(home: Path | None = None) -> list[Path]:
    """LM Studio's model folders (current and pre-0.3 layouts)."""
    home = home or Path.home()
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def ollama_root(env: dict[str, str] | None = None, home: Path | None = None) -> Path:
    """Ollama's model store (``$OLLAMA_MODELS`` or ~/.ollama/models)."""
    env = dict(os.environ) if env is None else env
    return Path(env["OLLAMA_MODELS"]) if env.get("OLLAMA_MODELS") else (home or Path.home()) / ".ollama" / "models"


def _gguf_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
    elif root.is_dir():
        yield from sorted(p for p in root.rglob("*.gguf") if p.is_file())


def _entry(source: str, path: Path, name: str | None = None) -> ModelEntry:
    return ModelEntry(source=source, name=name or path.name, path=str(path), size_bytes=path.stat().st_size)


def ollama_models(root: Path) -> Iterator[ModelEntry]:
    """Models in an Ollama store: each manifest names the blob that holds the GGUF."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        try:
            layers = json.loads(manifest.read_text()).get("layers", [])
        except (OSError, ValueError):
            continue
        for layer in layers:
            if layer.get("mediaType") == "application/vnd.ollama.image.model":
                blob = root / "blobs" / str(layer.get("digest", "")).replace(":", "-")
                if blob.is_file():
                    rel = manifest.relative_to(manifests).parts
                    name = f"{rel[-2]}:{rel[-1]}" if len(rel) >= 2 else rel[-1]
                    if len(rel) >= 3 and rel[-3] != "library":
                        name = f"{rel[-3]}/{name}"
                    yield _entry("ollama", blob, name)


def discover(
    extra: list[Path] | None = None, home: Path | None = None, env: dict[str, str] | None = None
) -> list[ModelEntry]:
    """Every GGUF model hfp can find: default, user paths, HF cache, LM Studio, Ollama."""
    found: list[ModelEntry] = []
    try:
        found.append(_entry("default", default_model_path(), "default (" + DEFAULT_MODEL_FILE + ")"))
    except ModelError:
        pass
    for root in extra or []:
        if not root.exists():
            raise ModelError(f"{root}: no such file or folder")
        found += [_entry("path", p) for p in _gguf_files(root)]
    hub = hf_cache_root(env, home)
    if hub.is_dir():
        for repo in sorted(hub.glob("models--*")):
            repo_name = repo.name.removeprefix("models--").replace("--", "/")
            found += [_entry("huggingface", p, f"{repo_name}/{p.name}") for p in _gguf_files(repo / "snapshots")]
    for root in lmstudio_roots(home):
        found += [_entry("lmstudio", p, str(p.relative_to(root))) for p in _gguf_files(root)]
    found += list(ollama_models(ollama_root(env, home)))
    return found


def resolve_path(spec: str | None, home: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """Turn what the user typed (``default``, a path, an Ollama ``name:tag``, a name in a store) into a file."""
    if spec in (None, "", "default"):
        return default_model_path()
    assert spec is not None
    if synth.is_synth_spec(spec):  # a synthetic model of a preset shape, built on first use
        return synth.resolve(spec)
    path = Path(spec).expanduser()
    if path.exists() or "/" in spec and not spec.startswith("hf:") or spec.endswith(".gguf"):
        if not path.exists():
            raise ModelError(f"{spec}: no such file")
        if path.is_dir():
            files = list(_gguf_files(path))
            if len(files) != 1:
                raise ModelError(f"{spec}: folder holds {len(files)} .gguf files; name one of them")
            return files[0]
        return path
    name = spec.removeprefix("ollama:").removeprefix("hf:")
    entries = discover(home=home, env=env)
    wanted = [name, f"{name}:latest"] if ":" not in name else [name]
    exact = [e for e in entries if e.name in wanted]
    matches = exact or [e for e in entries if name.lower() in e.name.lower() and e.source != "default"]
    if len(matches) == 1:
        return Path(matches[0].path)
    if not matches:
        raise ModelError(f"no model named {spec!r}; `hfp models` lists what hfp can find, or give a .gguf path")
    raise ModelError(f"{spec!r} matches {len(matches)} models ({', '.join(e.name for e in matches[:4])}…); be specific")


def resolve(spec: str | None, with_hash: bool = True) -> ModelFile:
    """Find the model the user named and read its header."""
    return inspect(resolve_path(spec), with_hash=with_hash)
