"""Models the user does not have: a declared shape (``--params``, ``--layers`` … or a small YAML) and a family
of reference shapes for the capability frontier, both turned into a ``ModelFile`` the planners accept.

Owns the bits-per-weight table of llama.cpp quantizations, the reference dense-transformer shapes and the
resolution of what ``hfp estimate --model`` names (GGUF, run record, spec). It must not read weights.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profiler.config import load_yaml_model
from profiler.errors import ConfigError
from profiler.models import ModelFile

# Effective bits per weight of llama.cpp's quantization mixes, from the file sizes `llama-quantize --help`
# lists for Llama-3-8B (8.03e9 parameters; sizes in GiB): bpw = GiB * 2^30 * 8 / 8.03e9.
BITS_PER_WEIGHT: dict[str, float] = {
    "F16": 16.0, "BF16": 16.0, "Q8_0": 8.51, "Q6_K": 6.57, "Q5_K_M": 5.70, "Q5_K_S": 5.57, "Q5_1": 6.04,
    "Q5_0": 5.57, "Q4_K_M": 4.90, "Q4_K_S": 4.67, "Q4_1": 5.11, "Q4_0": 4.64, "Q3_K_L": 4.31, "Q3_K_M": 4.00,
    "Q3_K_S": 3.65, "Q2_K": 3.17,
}
BPW_SOURCE = "llama.cpp tools/quantize (llama-quantize --help sizes for Llama-3-8B)"


def bits_per_weight(quant: str) -> float:
    """Effective bits per weight of a quantization name (``Q4_K_M`` …)."""
    try:
        return BITS_PER_WEIGHT[quant.upper()]
    except KeyError:
        raise ConfigError(f"unknown quantization {quant!r}; choose from {', '.join(BITS_PER_WEIGHT)}") from None


class ModelSpec(BaseModel):
    """A dense transformer described by its shape instead of a file."""

    model_config = ConfigDict(extra="forbid")

    name: str = "model spec"
    params: float = Field(gt=0, description="parameters (e.g. 7e9)")
    weights_bytes: float | None = Field(default=None, gt=0, description="bytes of all weights (GGUF tensor data)")
    quant: str | None = Field(default=None, description="llama.cpp quantization, used when weights_bytes is absent")
    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    n_heads: int | None = Field(default=None, gt=0)
    n_embd: int | None = Field(default=None, gt=0)
    n_ff: int | None = Field(default=None, gt=0)
    vocab: int = Field(default=32000, gt=0)
    context_length: int = Field(default=8192, gt=0)

    @model_validator(mode="after")
    def _weights(self) -> ModelSpec:
        if self.weights_bytes is None and self.quant is None:
            raise ValueError("give weights_bytes or quant (e.g. Q4_K_M)")
        if self.quant is not None and self.quant.upper() not in BITS_PER_WEIGHT:
            raise ValueError(f"unknown quant {self.quant!r}; choose from {', '.join(BITS_PER_WEIGHT)}")
        return self

    def to_model_file(self) -> ModelFile:
        """A ``ModelFile`` with this shape (path ``spec:<name>``) for the memory planner and the roofline."""
        weights = self.weights_bytes or self.params * bits_per_weight(self.quant or "") / 8
        n_embd = self.n_embd or _round_to(math.sqrt(self.params / (12 * self.layers)), self.head_dim)
        n_heads = self.n_heads or max(n_embd // self.head_dim, self.kv_heads)
        head_params = 2 * self.vocab * n_embd  # token embedding + output matrix
        repeating = weights * max(1.0 - head_params / self.params, 0.5)
        return ModelFile(
            path=f"spec:{self.name}", name=self.name, size_bytes=int(weights), gguf_version=0, architecture="spec",
            file_type=(self.quant or "declared").upper(), tensor_types={}, params=int(self.params),
            tensor_bytes=int(weights), repeating_bytes=int(repeating), n_layers=self.layers, n_embd=n_embd,
            n_ff=self.n_ff, n_vocab=self.vocab, n_heads=n_heads, n_kv_heads=[self.kv_heads] * self.layers,
            head_dim_k=self.head_dim, head_dim_v=self.head_dim, n_ctx_train=self.context_length,
        )


def _round_to(value: float, step: int) -> int:
    return max(int(round(value / step)) * step, step)


# Reference dense shapes (params, layers, kv_heads, head_dim, n_embd, vocab) from the models' published configs:
# SmolLM2-135M, Llama-3.2-1B/3B, Llama-3.1-8B, Qwen2.5-14B/32B, Llama-3.1-70B, Mistral-Large-2 (123B),
# Llama-3.1-405B. The frontier interpolates between them (log-linear in parameters).
REFERENCE_SHAPES: list[tuple[float, int, int, int, int, int]] = [
    (0.135e9, 30, 3, 64, 576, 49152),
    (1.24e9, 16, 8, 64, 2048, 128256),
    (3.21e9, 28, 8, 128, 3072, 128256),
    (8.03e9, 32, 8, 128, 4096, 128256),
    (14.8e9, 48, 8, 128, 5120, 152064),
    (32.8e9, 64, 8, 128, 5120, 152064),
    (70.6e9, 80, 8, 128, 8192, 128256),
    (123e9, 88, 8, 128, 12288, 32768),
    (405e9, 126, 8, 128, 16384, 128256),
]


def family_spec(params: float, quant: str) -> ModelSpec:
    """A dense model of ``params`` parameters shaped like its neighbours in ``REFERENCE_SHAPES``."""
    refs = REFERENCE_SHAPES
    if params <= refs[0][0]:
        lo = hi = refs[0]
    elif params >= refs[-1][0]:
        lo = hi = refs[-1]
    else:
        i = next(i for i, r in enumerate(refs) if r[0] >= params)
        lo, hi = refs[i - 1], refs[i]
    w = 0.0 if hi[0] == lo[0] else (math.log(params) - math.log(lo[0])) / (math.log(hi[0]) - math.log(lo[0]))
    layers = max(int(round(lo[1] + w * (hi[1] - lo[1]))), 1)
    if params > refs[-1][0]:  # beyond the largest reference, deepen with the parameter count
        layers = int(round(refs[-1][1] * math.sqrt(params / refs[-1][0])))
    head_dim = hi[3] if w >= 0.5 else lo[3]
    kv_heads = hi[2] if w >= 0.5 else lo[2]
    return ModelSpec(
        name=f"dense-{params / 1e9:.3g}B-{quant}", params=params, quant=quant, layers=layers, kv_heads=kv_heads,
        head_dim=head_dim, vocab=hi[5] if w >= 0.5 else lo[5],
    )


def load_spec(path: Path | str) -> ModelSpec:
    """A model spec from a small YAML file."""
    return load_yaml_model(Path(path), ModelSpec)
