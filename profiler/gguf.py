"""A reader for GGUF headers: metadata and tensor table, without loading weights.

Owns the file format only (magic, versions, value types, ggml tensor sizes). It must not know about llama.cpp
contexts or memory planning; ``profiler.models`` turns what it reads into a ``ModelFile``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from profiler.errors import ModelError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Arrays longer than this (token lists, merges) are skipped, not kept: we only need their length.
_MAX_KEPT_ARRAY = 4096

# ggml type id -> (name, elements per block, bytes per block), from ggml.h / ggml.c.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}
GGML_TYPE_IDS = {name: tid for tid, (name, _, _) in GGML_TYPES.items()}

# general.file_type -> llama_ftype name (llama.h), as llama-quantize prints it.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M",
    32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}
FILE_TYPE_IDS = {name: ftype for ftype, name in FILE_TYPES.items()}

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def type_nbytes(type_id: int, n_elements: int) -> int:
    """Bytes that ``n_elements`` of ggml type ``type_id`` occupy."""
    if type_id not in GGML_TYPES:
        raise ModelError(f"unknown ggml tensor type {type_id}; this GGUF may need a newer hfp")
    _, block, size = GGML_TYPES[type_id]
    return n_elements // block * size


@dataclass
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def n_elements(self) -> int:
        """Number of elements (product of the shape)."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data in the file."""
        return type_nbytes(self.type_id, self.n_elements)

    @property
    def type_name(self) -> str:
        """ggml type name, e.g. ``Q4_K``."""
        return GGML_TYPES.get(self.type_id, (f"type{self.type_id}", 1, 1))[0]


@dataclass
class GGUFHeader:
    """Everything in a GGUF file before the tensor data."""

    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    file_size: int
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def data_end(self) -> int:
        """Offset one past the last tensor byte: a complete file is at least this long."""
        if not self.tensors:
            return self.data_offset
        return self.data_offset + max(t.offset + t.nbytes for t in self.tensors)


class _Reader:
    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f, self.path = f, path

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise ModelError(f"{self.path}: truncated GGUF header (file ends inside the metadata)")
        return b

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > 1 << 24:
            raise ModelError(f"{self.path}: corrupt GGUF header (string of {n} bytes)")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, key: str, lengths: dict[str, int]) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.scalar("<I"), self.scalar("<Q")
            lengths[key] = count
            if etype in _SCALARS and count > _MAX_KEPT_ARRAY:
                self.f.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
                return None
            items = [self.value(etype, key, {}) for _ in range(count)]
            return items if count <= _MAX_KEPT_ARRAY else None
        raise ModelError(f"{self.path}: corrupt GGUF header (unknown value type {vtype} for {key!r})")


def read_header(path: Path) -> GGUFHeader:
    """Parse the header and tensor table of the GGUF file at ``path``; raise ``ModelError`` if it is not one."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; give a .gguf file (or use `hfp models {path}` to list)")
    size = path.stat().st_size
    with path.open("rb") as f:
        magic = f.read(4)
        if magic != MAGIC:
            raise ModelError(f"{path}: not a GGUF file (starts with {magic!r}, expected b'GGUF')")
        r = _Reader(f, path)
        version = r.scalar("<I")
        if version not in (2, 3):
            raise ModelError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
        n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
        if n_tensors > 1 << 20 or n_kv > 1 << 20:
            raise ModelError(f"{path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
        metadata: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for _ in range(n_kv):
            key = r.string()
            metadata[key] = r.value(r.scalar("<I"), key, lengths)
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.scalar("<I")
            shape = tuple(r.scalar("<Q") for _ in range(n_dims))
            tensors.append(TensorInfo(name, shape, r.scalar("<I"), r.scalar("<Q")))
        align = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        data_offset = (f.tell() + align - 1) // align * align
    header = GGUFHeader(version, metadata, tensors, data_offset, size, lengths)
    if size < header.data_end:
        raise ModelError(
            f"{path}: truncated GGUF ({size:,} bytes on disk, the tensor table needs {header.data_end:,}); "
            "the download or copy is incomplete"
        )
    return header
