"""Models the user does not have: a declared shape (``--params``, ``--layers`` … or a small YAML) and a family
of reference shapes for the capability frontier, both turned into a ``ModelFile`` the planners accept.

Owns the bits-per-weight table of llama.cpp quantizations, the reference dense-transformer shapes and the
resolution of what ``hfp estimate --model`` names (GGUF, run record, spec). It must not read weights.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from profiler.config import load_yaml_model
from profiler.errors import ConfigError
from profiler.schema.base import Strict
from profiler.schema.model import ModelFile

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


# Experts per layer and experts per token assumed for a mixture-of-experts spec that gives --active-params but
# not --experts/--experts-used: gpt-oss's 4 of 32 (k/E = 1/8; Mixtral's 2 of 8 is 1/4, Qwen3-30B-A3B's 8 of 128
# is 1/16). Single-stream decode does not depend on it, only how fast batched decode touches more experts.
DEFAULT_EXPERTS = (32, 4)


class ModelSpec(Strict):
    """A transformer described by its shape instead of a file: dense, or mixture-of-experts when
    ``active_params`` (parameters one token uses) is below ``params``."""

    name: str = "model spec"
    # upper bounds far beyond any real model (the largest published have ~2e12 parameters); they keep a typo
    # such as --params 1e308 a one-line refusal instead of an overflow deep in the roofline
    params: float = Field(gt=0, le=1e15, description="parameters (e.g. 7e9); for MoE models all experts counted")
    active_params: float | None = Field(default=None, gt=0, le=1e15, description="MoE: parameters one token uses")
    experts: int | None = Field(default=None, gt=1, le=1_000_000, description="MoE: routed experts per layer")
    experts_used: int | None = Field(default=None, gt=0, le=1_000_000, description="MoE: experts each token uses")
    weights_bytes: float | None = Field(default=None, gt=0, le=1e18,
                                        description="bytes of all weights (GGUF tensor data)")
    quant: str | None = Field(default=None, description="llama.cpp quantization, used when weights_bytes is absent")
    layers: int = Field(gt=0, le=100_000)
    kv_heads: int = Field(gt=0, le=100_000)
    head_dim: int = Field(gt=0, le=1_000_000)
    n_heads: int | None = Field(default=None, gt=0, le=100_000)
    n_embd: int | None = Field(default=None, gt=0, le=10_000_000)
    n_ff: int | None = Field(default=None, gt=0, le=100_000_000)
    vocab: int = Field(default=32000, gt=0, le=100_000_000)
    context_length: int = Field(default=8192, gt=0, le=1_000_000_000)
    sliding_window: int | None = Field(default=None, gt=0, le=1_000_000_000,
                                       description="tokens a sliding-window layer attends to (Gemma 3: 1024)")
    swa_period: int = Field(default=1, gt=0, le=100_000, description="with sliding_window: every Nth layer is "
                            "global, the rest windowed (Gemma 3: 6; 1: every layer windowed, Mistral v0.1)")

    @model_validator(mode="after")
    def _weights(self) -> ModelSpec:
        if self.weights_bytes is None and self.quant is None:
            raise ValueError("give weights_bytes or quant (e.g. Q4_K_M)")
        if self.quant is not None and self.quant.upper() not in BITS_PER_WEIGHT:
            raise ValueError(f"unknown quant {self.quant!r}; choose from {', '.join(BITS_PER_WEIGHT)}")
        if self.active_params is not None and self.active_params > self.params:
            raise ValueError(f"active_params ({self.active_params:g}) is more than params ({self.params:g})")
        if (self.experts is None) != (self.experts_used is None):
            raise ValueError("give both experts and experts_used (or neither)")
        if self.experts is not None and self.experts_used is not None:
            if self.experts_used >= self.experts:
                raise ValueError(f"experts_used ({self.experts_used}) must be below experts ({self.experts})")
            if self.active_params is None:
                raise ValueError("a mixture-of-experts spec needs active_params (parameters one token uses)")
        return self

    @property
    def is_moe(self) -> bool:
        """Whether a token uses fewer parameters than the model has."""
        return self.active_params is not None and self.active_params < self.params

    def expert_shape(self) -> tuple[int, int, float]:
        """(experts, experts used, routed-expert parameters). With ``P`` total and ``A`` active parameters and a
        token using ``k`` of ``E`` experts, the routed experts hold ``X = (P - A) / (1 - k/E)`` parameters (and
        the shared ones ``P - X``); ``DEFAULT_EXPERTS`` when ``E``, ``k`` are not given."""
        if not self.is_moe or self.active_params is None:
            return 0, 0, 0.0
        e, k = (self.experts, self.experts_used) if self.experts and self.experts_used else DEFAULT_EXPERTS
        return e, k, min((self.params - self.active_params) / (1 - k / e), self.params)

    def to_model_file(self) -> ModelFile:
        """A ``ModelFile`` with this shape (path ``spec:<name>``) for the memory planner and the roofline."""
        weights = self.weights_bytes or self.params * bits_per_weight(self.quant or "") / 8
        n_embd = self.n_embd or _round_to(math.sqrt((self.active_params or self.params) / (12 * self.layers)),
                                           self.head_dim)
        n_heads = self.n_heads or max(n_embd // self.head_dim, self.kv_heads)
        head_params = 2 * self.vocab * n_embd  # token embedding + output matrix
        repeating = weights * max(1.0 - head_params / self.params, 0.5)
        n_exp, n_used, expert_params = self.expert_shape()
        return ModelFile(
            path=f"spec:{self.name}", name=self.name, size_bytes=int(weights), gguf_version=0, architecture="spec",
            file_type=(self.quant or "declared").upper(), tensor_types={}, params=int(self.params),
            tensor_bytes=int(weights), repeating_bytes=int(repeating), n_layers=self.layers, n_embd=n_embd,
            n_ff=self.n_ff, n_vocab=self.vocab, n_heads=n_heads, n_kv_heads=[self.kv_heads] * self.layers,
            head_dim_k=self.head_dim, head_dim_v=self.head_dim, n_ctx_train=self.context_length,
            # the same bits per weight for experts and shared tensors (a spec does not say otherwise)
            n_experts=n_exp, n_experts_used=n_used, expert_params=int(expert_params),
            expert_bytes=int(weights * expert_params / self.params),
            sliding_window=self.sliding_window, swa_layers=self._swa_layers(),
        )

    def _swa_layers(self) -> list[bool]:
        """Which layers attend to a window: all but every ``swa_period``-th (all of them with period 1)."""
        if not self.sliding_window:
            return []
        if self.swa_period <= 1:
            return [True] * self.layers
        return [(i + 1) % self.swa_period != 0 for i in range(self.layers)]


class PublishedShape(BaseModel):
    """The model columns shared by the public results files (``llamacpp-public.csv``, the batched one): a model's
    name, quantization and shape as published. Rows extend it with their device facts and rates."""

    model: str
    quant: str
    params: float = Field(gt=0, description="total parameters (every expert of a MoE model)")
    active_params: float | None = Field(default=None, gt=0, description="parameters a token uses; empty: dense")
    weight_bytes: float = Field(gt=0, description="the GGUF's tensor bytes as published")
    layers: int
    kv_heads: int
    head_dim: int
    experts: int | None = None
    experts_used: int | None = None
    sliding_window: int | None = None

    @property
    def is_moe(self) -> bool:
        """A mixture-of-experts model (fewer active than total parameters)."""
        return self.active_params is not None and self.active_params < self.params

    def spec(self, sliding_window: int | None = None, swa_period: int = 1) -> ModelSpec:
        """The row's model as a spec (weights bytes as published, same bits per weight for every tensor); the
        sliding window only where the caller passes it."""
        moe = self.is_moe
        return ModelSpec(
            name=self.model, params=self.params, weights_bytes=self.weight_bytes, layers=self.layers,
            kv_heads=self.kv_heads, head_dim=self.head_dim, active_params=self.active_params if moe else None,
            experts=self.experts if moe and self.experts_used else None,
            experts_used=self.experts_used if moe and self.experts else None,
            sliding_window=sliding_window, swa_period=swa_period,
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


# Published mixture-of-experts models (config.json / model cards): name, total and active parameters, layers,
# KV heads, head dim, experts, experts per token, trained context. DeepSeek-V3's MLA cache (512 + 64 values per
# token and layer) is written as one KV head of 288 (K and V). The frontier reports the largest that fits.
REFERENCE_MOE: list[tuple[str, float, float, int, int, int, int, int, int]] = [
    ("gpt-oss-20b", 20.91e9, 3.61e9, 24, 8, 64, 32, 4, 131072),
    ("Qwen3-30B-A3B", 30.5e9, 3.3e9, 48, 4, 128, 128, 8, 40960),
    ("Mixtral-8x7B", 46.7e9, 12.9e9, 32, 8, 128, 8, 2, 32768),
    ("gpt-oss-120b", 116.8e9, 5.13e9, 36, 8, 64, 128, 4, 131072),
    ("Qwen3-235B-A22B", 235e9, 22e9, 94, 4, 128, 128, 8, 40960),
    ("DeepSeek-V3", 671e9, 37e9, 61, 1, 288, 256, 8, 163840),
]


def moe_specs(quant: str) -> list[ModelSpec]:
    """The reference MoE models at a quantization (the same bits per weight for every tensor), smallest first."""
    return [ModelSpec(name=f"{n}-{quant}", params=p, active_params=a, quant=quant, layers=lay, kv_heads=kv,
                      head_dim=hd, experts=e, experts_used=k, context_length=ctx)
            for n, p, a, lay, kv, hd, e, k, ctx in REFERENCE_MOE]


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
