"""Units and the tables of facts every layer shares: bytes, KV cache element types, byte formatting.

The KV cache type table is written once here: its bytes per element (for memory plans) and its ggml type id (for
llama.cpp's ``llama_context_params.type_k/type_v``).
"""

from __future__ import annotations

from typing import NamedTuple

from profiler.errors import ConfigError

GiB = 1024**3
MiB = 1024**2


class KvCacheType(NamedTuple):
    """One KV cache element type llama.cpp accepts for ``type_k`` / ``type_v``."""

    bytes_per_element: float
    ggml_type: int


# ggml's block sizes (ggml/src/ggml-common.h): e.g. q8_0 stores 32 values in 34 bytes.
KV_CACHE: dict[str, KvCacheType] = {
    "f32": KvCacheType(4.0, 0),
    "f16": KvCacheType(2.0, 1),
    "bf16": KvCacheType(2.0, 30),
    "q8_0": KvCacheType(34 / 32, 8),
    "q5_1": KvCacheType(24 / 32, 7),
    "q5_0": KvCacheType(22 / 32, 6),
    "q4_1": KvCacheType(20 / 32, 3),
    "q4_0": KvCacheType(18 / 32, 2),
    "iq4_nl": KvCacheType(18 / 32, 20),
}
# Views of the one table, by what callers need.
KV_CACHE_TYPES: dict[str, float] = {name: t.bytes_per_element for name, t in KV_CACHE.items()}
KV_CACHE_GGML_TYPE: dict[str, int] = {name: t.ggml_type for name, t in KV_CACHE.items()}


def cache_type_bytes(name: str) -> float:
    """Bytes per element of a KV cache type (``f16``, ``q8_0``, ``q4_0`` …)."""
    try:
        return KV_CACHE_TYPES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown KV cache type {name!r}; choose from {', '.join(KV_CACHE_TYPES)}") from None


def parse_kv_types(names: list[str] | None) -> list[str]:
    """Lower-cased KV cache types (default ``f16``), checked against llama.cpp's, duplicates dropped, order kept."""
    out: list[str] = []
    for raw in names or ["f16"]:
        name = raw.strip().lower()
        if name not in KV_CACHE:
            raise ConfigError(f"unknown KV cache type {raw!r}; choose from {', '.join(KV_CACHE)}")
        if name not in out:
            out.append(name)
    return out


def fmt_mib(n: float, digits: int = 0, thousands: bool = False) -> str:
    """Bytes as a number of MiB, without the unit: ``fmt_mib(3 << 20) == "3"``; ``thousands`` adds ``,``."""
    return f"{n / MiB:{',' if thousands else ''}.{digits}f}"
