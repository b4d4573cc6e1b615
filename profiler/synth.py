"""Synthetic GGUF models: random weights in the exact shape of a real model, for timing and memory only.

llama.cpp's speed and memory depend on a model's shapes and tensor types, not on its weights' values, so a file
with random quantized blocks (small finite scales) of a model's shape measures what that model would do on this
machine without downloading it. This module owns the shape presets (taken from each model's ``config.json``),
the tensor plan per architecture (the names, shapes and types llama.cpp's loader expects), the quantization
mix per file type (llama.cpp's quantizer rules, simplified and stated below), the streaming writer (llama.cpp's
own ``gguf`` package, one tensor at a time in chunks, no F16 intermediate), the tokenizer borrowed from the
default model, the cache of built files with their manifest, and the disk/RAM check before writing.

It must not load or measure models: ``hfp run`` does that with the file it returns.

Type rules (``TYPE_RULES``): F16 and Q8_0 write every 2-D/3-D weight in that type; Q4_0 writes Q4_0 except the
output layer (or the token embedding when tied), which is Q6_K; Q4_K_M writes Q4_K except the output layer
(or tied embedding) at Q6_K and attn_v and ffn_down (ffn_down_exps) at Q6_K on the layers llama.cpp's
``use_more_bits`` picks (the first and last eighth and every third layer in between, about half); MXFP4_MOE
writes expert tensors as MXFP4 and everything else as Q8_0. Rows whose length is not a multiple of the type's
block fall back as in llama.cpp (Q4_K to Q5_0, Q6_K to Q8_0, a 256-block output to Q8_0, then F16). Norms,
biases, attention sinks and MoE routers are F32.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import psutil
from pydantic import ValidationError

from profiler import __version__
from profiler.errors import ConfigError, ModelError, ModelTooLargeError
from profiler.files import cache_dir
from profiler.gguf import read_header
from profiler.resources import data_file, default_model_path
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile
from profiler.schema.units import GiB, MiB
from profiler.telemetry import nvml

SYNTH_PREFIX = "synth:"
SYNTH_FORMAT_VERSION = 1  # bump when the bytes written for the same shape/type/seed change
SYNTH_LABEL = "synthetic weights: timing and memory only"
DISK_HEADROOM_BYTES = 512 * MiB
CHUNK_BYTES = 32 * MiB

Arch = Literal["llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "gpt-oss"]
ARCHS: tuple[str, ...] = ("llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "gpt-oss")
SYNTH_TYPES: dict[str, int] = {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q4_K_M": 15, "MXFP4_MOE": 38}  # -> llama_ftype
TYPE_RULES: dict[str, str] = {
    "F16": "every weight F16",
    "Q8_0": "every weight Q8_0",
    "Q4_0": "Q4_0; output layer (or tied token embedding) Q6_K",
    "Q4_K_M": "Q4_K; output layer (or tied embedding) Q6_K; attn_v and ffn_down Q6_K on use_more_bits layers",
    "MXFP4_MOE": "expert tensors MXFP4, all other weights Q8_0",
}


class Shape(Strict):
    """The architecture hyper-parameters a synthetic model is built from (what llama.cpp reads from GGUF)."""

    arch: Arch
    n_embd: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int = 8192
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    tied_embeddings: bool = False
    sliding_window: int | None = None  # gemma3: every 6th layer global; gpt-oss: every 2nd
    n_experts: int = 0
    n_experts_used: int = 0
    n_ff_expert: int | None = None

    def check(self) -> Shape:
        """Refuse shapes llama.cpp cannot load; return self."""
        for field in ("n_embd", "n_layers", "n_heads", "n_kv_heads", "head_dim", "n_ff", "n_vocab"):
            if getattr(self, field) < 1:
                raise ConfigError(f"synthetic shape: {field} must be positive")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"synthetic shape: {self.n_heads} heads are not a multiple of {self.n_kv_heads} KV heads")
        if self.arch == "llama" and self.head_dim != self.n_embd // self.n_heads:
            raise ConfigError("synthetic shape: llama needs head_dim = n_embd / n_heads (llama.cpp checks n_rot)")
        moe = self.arch in ("qwen3moe", "gpt-oss")
        if moe and not (self.n_experts > 0 and 0 < self.n_experts_used <= self.n_experts and self.n_ff_expert):
            raise ConfigError(f"synthetic shape: {self.arch} needs experts, experts used and an expert FFN size")
        if not moe and self.n_experts:
            raise ConfigError(f"synthetic shape: {self.arch} is dense; experts need qwen3moe or gpt-oss")
        if self.arch == "gpt-oss" and not self.sliding_window:
            raise ConfigError("synthetic shape: gpt-oss needs a sliding window")
        if self.sliding_window is not None and self.arch not in ("gemma3", "gpt-oss"):
            raise ConfigError("synthetic shape: a sliding window is written for gemma3 and gpt-oss only")
        return self

    @property
    def params(self) -> int:
        """Parameters of the planned tensors."""
        return sum(t.n_elements for t in tensor_plan(self, "F16"))


class Preset(Strict):
    """A named shape and where its numbers come from."""

    shape: Shape
    source: str


# Shapes as published in each model's config.json (hidden_size, num_hidden_layers, num_attention_heads,
# num_key_value_heads, head_dim, intermediate_size, vocab_size, max_position_embeddings, rope_theta,
# rms_norm_eps, tie_word_embeddings, sliding_window, num_experts / num_local_experts, num_experts_per_tok,
# moe_intermediate_size), one row per preset in profiler/data/synth-presets.csv with its config.json URL; an
# empty cell takes Shape's default. Gemma 3 4B/12B: the text_config of the multimodal checkpoint.
PRESETS_CSV = "synth-presets.csv"


def _load_presets() -> dict[str, Preset]:
    presets: dict[str, Preset] = {}
    with data_file(PRESETS_CSV).open(newline="") as f:
        for row in csv.DictReader(f):
            name, source = row.pop("preset"), row.pop("source")
            presets[name] = Preset(shape=Shape.model_validate({k: v for k, v in row.items() if v}), source=source)
    return presets


PRESETS: dict[str, Preset] = _load_presets()


# --- tensor plan ------------------------------------------------------------------------------------------

# ggml type name -> (elements per block, bytes per block); the same table llama.cpp's gguf package carries.
def _block(type_name: str) -> tuple[int, int]:
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    return int(block), int(size)


@dataclass
class PlannedTensor:
    """One tensor to write: GGUF name, ggml dimensions (ne0 = row length first) and ggml type name."""

    name: str
    ne: tuple[int, ...]
    type_name: str
    role: str  # weight, norm, bias, router, sinks, expert

    @property
    def n_elements(self) -> int:
        """Number of elements."""
        return math.prod(self.ne)

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data."""
        block, size = _block(self.type_name)
        return self.n_elements // block * size


def _use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's rule for which layers' attn_v/ffn_down get more bits in K-quant mixes (llama-quant.cpp)."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def _fit_type(type_name: str, ne0: int) -> str:
    """The type llama.cpp's quantizer would actually write for rows of ``ne0`` elements."""
    if type_name in ("F32", "F16") or ne0 % _block(type_name)[0] == 0:
        return type_name
    fallback = _FALLBACK.get(type_name, type_name)
    return fallback if ne0 % _block(fallback)[0] == 0 else "F16"


def _weight_type(ftype: str, kind: str, layer: int, n_layers: int, ne: tuple[int, ...]) -> str:
    """The ggml type of one weight matrix under ``ftype`` (rules in the module docstring)."""
    if ftype in ("F16", "Q8_0"):
        return _fit_type(ftype, ne[0])
    if kind == "output":
        if ftype == "MXFP4_MOE" or ne[0] % 256:
            return _fit_type("Q8_0", ne[0])
        return "Q6_K"
    if ftype == "MXFP4_MOE":
        return _fit_type("MXFP4" if len(ne) == 3 else "Q8_0", ne[0])
    if ftype == "Q4_0":
        return _fit_type("Q4_0", ne[0])
    wanted = "Q4_K"
    if kind in ("attn_v", "ffn_down") and _use_more_bits(layer, n_layers):
        wanted = "Q6_K"
    return _fit_type(wanted, ne[0])


class _Plan:
    """The tensor list being planned, with the two kinds of entries: typed weights and F32 vectors."""

    def __init__(self, shape: Shape, ftype: str) -> None:
        self.shape, self.ftype = shape, ftype
        self.tensors: list[PlannedTensor] = []

    def weight(self, tensor: Any, kind: str, ne: tuple[int, ...], layer: int = -1, role: str = "weight") -> None:
        name = gguf.TENSOR_NAMES[tensor].format(bid=layer) + ".weight"
        type_name = _weight_type(self.ftype, kind, layer, self.shape.n_layers, ne)
        self.tensors.append(PlannedTensor(name, ne, type_name, role))

    def f32(self, tensor: Any, suffix: str, ne: tuple[int, ...], layer: int = -1, role: str = "norm") -> None:
        self.tensors.append(PlannedTensor(gguf.TENSOR_NAMES[tensor].format(bid=layer) + suffix, ne, "F32", role))


def tensor_plan(shape: Shape, ftype: str) -> list[PlannedTensor]:
    """Every tensor llama.cpp's loader expects for ``shape`` (names from the gguf package), with its type."""
    if ftype not in SYNTH_TYPES:
        raise ConfigError(f"synthetic type {ftype!r} is not offered; choose one of {', '.join(SYNTH_TYPES)}")
    T = gguf.MODEL_TENSOR
    s, p = shape, _Plan(shape, ftype)
    e, v = s.n_embd, s.n_vocab
    p.weight(T.TOKEN_EMBD, "output" if s.tied_embeddings else "token_embd", (e, v))
    p.f32(T.OUTPUT_NORM, ".weight", (e,))
    if not s.tied_embeddings:
        p.weight(T.OUTPUT, "output", (e, v))
    for i in range(s.n_layers):
        _plan_attention(p, s, i)
        _plan_ffn(p, s, i)
    return p.tensors


def _plan_attention(p: _Plan, s: Shape, i: int) -> None:
    """Layer ``i``'s attention tensors (and the norm before the FFN)."""
    T = gguf.MODEL_TENSOR
    e, hd = s.n_embd, s.head_dim
    q, kv = s.n_heads * hd, s.n_kv_heads * hd
    p.f32(T.ATTN_NORM, ".weight", (e,), i)
    p.weight(T.ATTN_Q, "attn_q", (e, q), i)
    p.weight(T.ATTN_K, "attn_k", (e, kv), i)
    p.weight(T.ATTN_V, "attn_v", (e, kv), i)
    p.weight(T.ATTN_OUT, "attn_output", (q, e), i)
    if s.arch in ("qwen2", "gpt-oss"):
        for t, size in ((T.ATTN_Q, q), (T.ATTN_K, kv), (T.ATTN_V, kv)):
            p.f32(t, ".bias", (size,), i, "bias")
    if s.arch in ("qwen3", "qwen3moe", "gemma3"):
        p.f32(T.ATTN_Q_NORM, ".weight", (hd,), i)
        p.f32(T.ATTN_K_NORM, ".weight", (hd,), i)
    if s.arch in ("gemma3", "gpt-oss"):
        p.f32(T.ATTN_POST_NORM, ".weight", (e,), i)
    if s.arch == "gpt-oss":
        p.f32(T.ATTN_SINKS, ".weight", (s.n_heads,), i, "sinks")
        p.f32(T.ATTN_OUT, ".bias", (e,), i, "bias")
    else:
        p.f32(T.FFN_NORM, ".weight", (e,), i)


def _plan_ffn(p: _Plan, s: Shape, i: int) -> None:
    """Layer ``i``'s feed-forward tensors: dense, or router and experts."""
    T = gguf.MODEL_TENSOR
    e = s.n_embd
    if s.n_experts:
        x, fe = s.n_experts, int(s.n_ff_expert or 0)
        p.f32(T.FFN_GATE_INP, ".weight", (e, x), i, "router")
        p.weight(T.FFN_GATE_EXP, "ffn_gate", (e, fe, x), i, "expert")
        p.weight(T.FFN_UP_EXP, "ffn_up", (e, fe, x), i, "expert")
        p.weight(T.FFN_DOWN_EXP, "ffn_down", (fe, e, x), i, "expert")
        if s.arch == "gpt-oss":
            p.f32(T.FFN_GATE_INP, ".bias", (x,), i, "bias")
            p.f32(T.FFN_GATE_EXP, ".bias", (fe, x), i, "bias")
            p.f32(T.FFN_UP_EXP, ".bias", (fe, x), i, "bias")
            p.f32(T.FFN_DOWN_EXP, ".bias", (e, x), i, "bias")
    else:
        p.weight(T.FFN_GATE, "ffn_gate", (e, s.n_ff), i)
        p.weight(T.FFN_UP, "ffn_up", (e, s.n_ff), i)
        p.weight(T.FFN_DOWN, "ffn_down", (s.n_ff, e), i)
    if s.arch == "gemma3":
        p.f32(T.FFN_POST_NORM, ".weight", (e,), i)


def planned_bytes(plan: list[PlannedTensor], alignment: int = 32) -> int:
    """Bytes of tensor data in the file (each tensor padded to the alignment)."""
    return sum((t.nbytes + alignment - 1) // alignment * alignment for t in plan)


# --- random blocks ----------------------------------------------------------------------------------------

def _f16(value: float) -> np.ndarray:
    return np.frombuffer(np.float16(value).tobytes(), np.uint8)


# Per ggml type: fp16 fields (byte offset in the block) set to a small scale, so every dequantized weight is
# finite and normal (|w| around 1e-2); the rest of each block stays random. Q6_K's int8 sub-block scales
# (bytes 192..207) are also bounded. MXFP4's E8M0 exponent byte is set to 2^-7.
_SCALES: dict[str, tuple[tuple[int, float], ...]] = {
    "Q4_0": ((0, 2e-3),), "Q5_0": ((0, 1e-3),), "Q5_1": ((0, 1e-3), (2, 1e-3)), "Q8_0": ((0, 2e-4),),
    "IQ4_NL": ((0, 2e-3),), "Q4_K": ((0, 1e-4), (2, 1e-4)), "Q5_K": ((0, 1e-4), (2, 1e-4)),
    "Q6_K": ((208, 2e-4),),
}


def _fill_quant(buf: np.ndarray, type_name: str, rng: np.random.Generator) -> None:
    """Make random bytes of whole ``type_name`` blocks valid: small finite scales in place."""
    block_bytes = _block(type_name)[1]
    blocks = buf.reshape(-1, block_bytes)
    for offset, value in _SCALES.get(type_name, ()):
        blocks[:, offset:offset + 2] = _f16(value)
    if type_name == "Q6_K":
        blocks[:, 192:208] = rng.integers(1, 16, size=(blocks.shape[0], 16), dtype=np.uint8)
    elif type_name == "MXFP4":
        blocks[:, 0] = 127 - 7


def _random_chunk(t: PlannedTensor, n_rows: int, row_bytes: int, rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` rows of tensor ``t`` as bytes."""
    row_elems = t.ne[0]
    if t.type_name == "F32":
        n = n_rows * row_elems
        if t.role == "norm":
            return np.ones(n, np.float32).view(np.uint8)
        if t.role == "router":
            return (rng.standard_normal(n, dtype=np.float32) * 0.02).view(np.uint8)
        return np.zeros(n, np.float32).view(np.uint8)  # biases, sinks
    if t.type_name == "F16":  # sign and mantissa random, exponent fixed: |w| in [2^-7, 2^-6)
        bits = rng.integers(0, 1 << 16, size=n_rows * row_elems, dtype=np.uint16)
        bits &= np.uint16(0x83FF)
        bits |= np.uint16(8 << 10)
        return bits.view(np.uint8)
    buf = rng.integers(0, 256, size=n_rows * row_bytes, dtype=np.uint8)
    _fill_quant(buf, t.type_name, rng)
    return buf


# --- tokenizer --------------------------------------------------------------------------------------------

_TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
                   "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                   "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
                   "tokenizer.ggml.add_space_prefix", "tokenizer.chat_template")
TOKEN_TYPE_UNUSED = 5  # llama_token_type UNUSED: never produced by the tokenizer, not a special token


@dataclass
class Tokenizer:
    """The default model's tokenizer, resized to a vocabulary size."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    scalars: dict[str, Any]
    source: str
    note: str


def _field_value(field: Any) -> Any:
    return field.contents()


def load_tokenizer(n_vocab: int, source: Path | None = None) -> Tokenizer:
    """Read the tokenizer of ``source`` (the default model) and pad or cut it to ``n_vocab`` tokens.

    Padding tokens are named ``<|hfp_pad_N|>`` and typed UNUSED (never produced, not special). Cutting keeps
    the first ``n_vocab`` tokens and the merges whose parts and result survive; the byte-level alphabet comes
    first in the vocabulary, so every text still tokenizes.
    """
    path = source or default_model_path()
    reader = gguf.GGUFReader(str(path))
    f = reader.fields
    tokens = [str(t) for t in _field_value(f["tokenizer.ggml.tokens"])]
    types = [int(t) for t in _field_value(f["tokenizer.ggml.token_type"])]
    merges = [str(m) for m in _field_value(f["tokenizer.ggml.merges"])] if "tokenizer.ggml.merges" in f else []
    scalars = {k: _field_value(f[k]) for k in _TOKENIZER_KEYS if k in f}
    n_src = len(tokens)
    if n_vocab >= n_src:
        pad = n_vocab - n_src
        tokens += [f"<|hfp_pad_{i}|>" for i in range(pad)]
        types += [TOKEN_TYPE_UNUSED] * pad
        note = f"{n_src} tokens of {path.name}, padded with {pad} unused tokens"
    else:
        if n_vocab < 512:
            raise ConfigError(f"synthetic shape: vocabulary {n_vocab} is too small (at least 512 tokens)")
        tokens, types = tokens[:n_vocab], types[:n_vocab]
        kept = set(tokens)
        merges = [m for m in merges if _merge_kept(m, kept)]
        for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"):
            if key in scalars and int(scalars[key]) >= n_vocab:
                del scalars[key]
        note = f"first {n_vocab} of {n_src} tokens of {path.name} ({len(merges)} merges kept)"
    return Tokenizer(tokens, types, merges, scalars, str(path), note)


def _merge_kept(merge: str, kept: set[str]) -> bool:
    left, _, right = merge.partition(" ")
    return left in kept and right in kept and left + right in kept


# --- shapes from names, files and options -----------------------------------------------------------------

def parse_spec(spec: str) -> tuple[str, str]:
    """``synth:<preset>:<type>`` -> (preset, type); the type defaults to Q4_K_M."""
    body = spec[len(SYNTH_PREFIX):] if spec.lower().startswith(SYNTH_PREFIX) else spec
    preset, _, ftype = body.partition(":")
    preset, ftype = preset.strip().lower(), (ftype.strip() or "Q4_K_M").upper()
    if preset not in PRESETS:
        raise ModelError(f"no synthetic preset {preset!r}; `hfp synth --list` shows them ({', '.join(PRESETS)})")
    if ftype not in SYNTH_TYPES:
        raise ModelError(f"synthetic type {ftype!r} is not offered; choose one of {', '.join(SYNTH_TYPES)}")
    return preset, ftype


def is_synth_spec(spec: str | None) -> bool:
    """Whether what the user typed names a synthetic model."""
    return bool(spec) and str(spec).lower().startswith(SYNTH_PREFIX)


def shape_like(model: ModelFile) -> Shape:
    """The shape of an existing GGUF model (as ``profiler.models.inspect`` describes it; no weights loaded)."""
    path = Path(model.path)
    header = read_header(path)
    meta = header.metadata
    arch = model.architecture
    if arch not in ARCHS:
        raise ModelError(f"{path}: architecture {arch!r} cannot be synthesized (supported: {', '.join(ARCHS)})")

    def key(name: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{name}")
        return default if value is None else value

    tied = not any(t.name == "output.weight" for t in header.tensors)
    n_ff_exp = key("expert_feed_forward_length")
    return Shape(
        arch=arch,  # type: ignore[arg-type]
        n_embd=model.n_embd, n_layers=model.n_layers, n_heads=model.n_heads,
        n_kv_heads=max(model.n_kv_heads) if model.n_kv_heads else model.n_heads, head_dim=model.head_dim_k,
        n_ff=model.n_ff or int(n_ff_exp or 0), n_vocab=model.n_vocab, n_ctx_train=model.n_ctx_train or 8192,
        rope_theta=float(key("rope.freq_base", 10000.0)),
        rms_eps=float(key("attention.layer_norm_rms_epsilon", 1e-5)), tied_embeddings=tied,
        sliding_window=model.sliding_window if arch in ("gemma3", "gpt-oss") else None,
        n_experts=int(key("expert_count", 0)), n_experts_used=int(key("expert_used_count", 0)),
        n_ff_expert=int(n_ff_exp) if n_ff_exp else None,
    ).check()


def with_overrides(shape: Shape, **overrides: Any) -> Shape:
    """``shape`` with the given fields replaced (``None`` values ignored), validated."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return make_shape({**shape.model_dump(), **changes})


def make_shape(fields: dict[str, Any]) -> Shape:
    """A validated ``Shape`` from its fields; bad values are a ``ConfigError`` naming the field."""
    try:
        return Shape.model_validate(fields).check()
    except ValidationError as e:
        raise ConfigError(f"synthetic shape: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from e


# --- building ---------------------------------------------------------------------------------------------

class SynthManifest(Strict):
    """What a synthetic file holds and how it was made; stored beside it as ``<file>.json``."""

    format_version: int = SYNTH_FORMAT_VERSION
    name: str
    preset: str | None = None
    source: str | None = None  # where the shape comes from (config.json URL or --like path)
    shape: Shape
    type: str
    type_rule: str
    seed: int
    file: str
    size_bytes: int
    params: int
    tensor_types: dict[str, int]
    tokenizer: str
    hfp_version: str
    gguf_version: str
    write_s: float
    label: str = SYNTH_LABEL


def synth_dir() -> Path:
    """Where synthetic models are kept: ``<hfp cache>/synth``."""
    path = cache_dir() / "synth"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_stem(name: str, shape: Shape, ftype: str, seed: int) -> str:
    digest = hashlib.sha256(shape.model_dump_json().encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in name)
    return f"{safe}-{ftype}-s{seed}-{digest}"


def manifest_path(gguf_path: Path) -> Path:
    """The manifest beside a synthetic file."""
    return gguf_path.with_suffix(".json")


def read_manifest(gguf_path: Path) -> SynthManifest | None:
    """The manifest of a synthetic file, or None when the file is not one hfp wrote."""
    path = manifest_path(Path(gguf_path))
    if not path.is_file():
        return None
    try:
        return SynthManifest.model_validate_json(path.read_text())
    except (ValidationError, OSError, ValueError):
        return None


def check_room(size: int, folder: Path, ram_available: int | None = None, vram_free: int | None = None) -> None:
    """Refuse, before writing, a file that will not fit on disk or in RAM plus free VRAM, with the numbers."""
    free_disk = shutil.disk_usage(folder).free
    if size + DISK_HEADROOM_BYTES > free_disk:
        raise ModelTooLargeError(
            f"the synthetic model needs {size / GiB:.2f} GiB on disk (+{DISK_HEADROOM_BYTES / GiB:.1f} GiB headroom) "
            f"and {folder} has {free_disk / GiB:.2f} GiB free; set HFP_CACHE_DIR to a larger disk or pick a smaller "
            "type"
        )
    ram = psutil.virtual_memory().available if ram_available is None else ram_available
    if vram_free is None:
        vram_free = sum(int(g["vram_free_bytes"]) for g in nvml.list_gpus())
    if size > ram + vram_free:
        raise ModelTooLargeError(
            f"the synthetic model's weights need {size / GiB:.2f} GiB and this machine has {ram / GiB:.2f} GiB RAM "
            f"available + {vram_free / GiB:.2f} GiB VRAM free; it could not be measured here (pick a smaller preset "
            "or type)"
        )


@dataclass
class BuildResult:
    """A synthetic model on disk and whether it was reused."""

    path: Path
    manifest: SynthManifest
    reused: bool


def build(shape: Shape, ftype: str = "Q4_K_M", *, name: str, seed: int = 0, preset: str | None = None,
          source: str | None = None, out_dir: Path | None = None, force: bool = False, check_fit: bool = True,
          progress: Callable[[int], None] | None = None) -> BuildResult:
    """Write (or reuse) a synthetic GGUF of ``shape`` at ``ftype`` with random weights from ``seed``."""
    shape.check()
    plan = tensor_plan(shape, ftype)
    folder = Path(out_dir) if out_dir else synth_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (_file_stem(preset or name, shape, ftype, seed) + ".gguf")
    existing = read_manifest(path)
    if (not force and existing and path.is_file() and existing.shape == shape and existing.type == ftype
            and existing.seed == seed and existing.format_version == SYNTH_FORMAT_VERSION
            and path.stat().st_size == existing.size_bytes):
        return BuildResult(path, existing, True)
    data_bytes = planned_bytes(plan)
    if check_fit:
        check_room(data_bytes, folder)
    tokenizer = load_tokenizer(shape.n_vocab)
    tmp = path.with_suffix(f".gguf.{os.getpid()}.part")  # two writers of one file never share a part file
    t0 = time.perf_counter()
    try:
        _write(tmp, shape, ftype, plan, tokenizer, name, seed, progress)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    manifest = SynthManifest(
        name=f"{name}:{ftype}", preset=preset, source=source, shape=shape, type=ftype, type_rule=TYPE_RULES[ftype],
        seed=seed,
        file=path.name, size_bytes=path.stat().st_size, params=sum(t.n_elements for t in plan),
        tensor_types=dict(Counter(t.type_name for t in plan)), tokenizer=tokenizer.note,
        hfp_version=__version__, gguf_version=_gguf_version(), write_s=round(time.perf_counter() - t0, 2),
    )
    mtmp = manifest_path(path).with_suffix(f".json.{os.getpid()}.part")
    mtmp.write_text(manifest.model_dump_json(indent=1))
    os.replace(mtmp, manifest_path(path))
    return BuildResult(path, manifest, False)


def _gguf_version() -> str:
    try:
        return version("gguf")
    except PackageNotFoundError:
        return "unknown"


# GGUFWriter method -> Shape field, in the order the file gets them (the order is part of the bytes written)
_SHAPE_KEYS = (("add_context_length", "n_ctx_train"), ("add_embedding_length", "n_embd"),
               ("add_block_count", "n_layers"), ("add_feed_forward_length", "n_ff"), ("add_head_count", "n_heads"),
               ("add_head_count_kv", "n_kv_heads"), ("add_key_length", "head_dim"), ("add_value_length", "head_dim"),
               ("add_rope_dimension_count", "head_dim"), ("add_rope_freq_base", "rope_theta"),
               ("add_layer_norm_rms_eps", "rms_eps"), ("add_vocab_size", "n_vocab"))


def _write_metadata(w: Any, shape: Shape, ftype: str, tokenizer: Tokenizer, name: str, seed: int) -> None:
    s = shape
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    w.add_description(f"hfp synth: random weights (seed {seed}), {SYNTH_LABEL}")
    w.add_string("hfp.synthetic", SYNTH_LABEL)
    w.add_file_type(SYNTH_TYPES[ftype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for method, field in _SHAPE_KEYS:
        getattr(w, method)(getattr(s, field))
    if s.sliding_window:
        w.add_sliding_window(s.sliding_window)  # the layer pattern is llama.cpp's default for the arch
    if s.n_experts:
        w.add_expert_count(s.n_experts)
        w.add_expert_used_count(s.n_experts_used)
        w.add_expert_feed_forward_length(int(s.n_ff_expert or 0))
    w.add_tokenizer_model(str(tokenizer.scalars.get("tokenizer.ggml.model", "gpt2")))
    for key, value in tokenizer.scalars.items():
        if key == "tokenizer.ggml.model":
            continue
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, str(value))
    w.add_token_list(tokenizer.tokens)
    w.add_token_types(tokenizer.token_types)
    if tokenizer.merges:
        w.add_token_merges(tokenizer.merges)


def _write(path: Path, shape: Shape, ftype: str, plan: list[PlannedTensor], tokenizer: Tokenizer, name: str,
           seed: int, progress: Callable[[int], None] | None) -> None:
    """Stream the file: header, metadata, tensor table, then each tensor in chunks of random blocks."""
    w = gguf.GGUFWriter(path, shape.arch, use_temp_file=False)
    _write_metadata(w, shape, ftype, tokenizer, name, seed)
    for t in plan:
        # numpy order (outermost first); a non-uint8 dtype with raw_dtype keeps the element shape as given
        w.add_tensor_info(t.name, tuple(reversed(t.ne)), np.dtype(np.float32), t.nbytes,
                          raw_dtype=gguf.GGMLQuantizationType[t.type_name])
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    assert w.fout is not None
    fout = w.fout[0]
    for index, t in enumerate(plan):
        rng = np.random.default_rng([seed, index])
        rows = t.n_elements // t.ne[0]
        row_bytes = t.nbytes // rows
        w.write_padding(fout, fout.tell())
        step = max(1, CHUNK_BYTES // max(row_bytes, 1))
        for start in range(0, rows, step):
            n_rows = min(step, rows - start)
            fout.write(_random_chunk(t, n_rows, row_bytes, rng).data)
            if progress:
                progress(n_rows * row_bytes)
        w.write_padding(fout, t.nbytes)
    w.tensors = [{}]  # every tensor's data is written; nothing left for the writer to flush
    w.close()


def build_named(spec: str, *, seed: int = 0, force: bool = False, check_fit: bool = True,
                progress: Callable[[int], None] | None = None) -> BuildResult:
    """Build (or reuse) ``synth:<preset>:<type>``."""
    preset, ftype = parse_spec(spec)
    p = PRESETS[preset]
    return build(p.shape, ftype, name=f"{SYNTH_PREFIX}{preset}", seed=seed, preset=preset, source=p.source,
                 force=force, check_fit=check_fit, progress=progress)


def resolve(spec: str) -> Path:
    """The file for ``synth:<preset>:<type>``, built on first use."""
    return build_named(spec).path


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` is a synthetic model (it has an hfp synth manifest, or the marker in its metadata)."""
    p = Path(path)
    if read_manifest(p) is not None:
        return True
    try:
        return "hfp.synthetic" in read_header(p).metadata
    except ModelError:
        return False


def refuse_synthetic(*specs: str | Path) -> None:
    """Refuse synthetic models where model outputs matter (``hfp safety``): their replies are random tokens."""
    for spec in specs:
        if is_synth_spec(str(spec)) or (Path(spec).is_file() and is_synthetic(spec)):
            raise ConfigError(
                f"{spec} is a synthetic model ({SYNTH_LABEL}); its replies are random tokens, so refusal cannot "
                "be measured on it; give a real model"
            )


def preset_rows() -> list[dict[str, Any]]:
    """Presets with their shapes and sizes at Q4_K_M, for ``hfp synth --list``."""
    rows = []
    for name, p in PRESETS.items():
        s = p.shape
        plan = tensor_plan(s, "Q4_K_M")
        rows.append({
            "preset": name, "arch": s.arch, "params_b": round(sum(t.n_elements for t in plan) / 1e9, 2),
            "layers": s.n_layers, "embd": s.n_embd, "heads": s.n_heads, "kv_heads": s.n_kv_heads,
            "head_dim": s.head_dim, "ff": s.n_ff, "vocab": s.n_vocab, "experts": s.n_experts,
            "experts_used": s.n_experts_used, "ff_expert": s.n_ff_expert, "sliding_window": s.sliding_window,
            "tied": s.tied_embeddings, "q4_k_m_gib": round(planned_bytes(plan) / GiB, 2), "source": p.source,
        })
    return rows


def manifest_json(result: BuildResult) -> str:
    """The manifest and path as JSON, for ``hfp synth --json``."""
    return json.dumps({"path": str(result.path), "reused": result.reused, **result.manifest.model_dump()}, indent=1)
