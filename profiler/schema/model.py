"""A GGUF model as read from its header: its shape, quantization and bytes (``profiler.models`` reads it).

What the memory planner, the performance model and the run record need of a model file.
"""

from __future__ import annotations

from pydantic import model_validator

from profiler.schema.base import Strict
from profiler.schema.units import cache_type_bytes


class ModelFile(Strict):
    """A GGUF model as read from its header: what the memory planner and the performance model need."""

    path: str
    name: str
    sha256: str | None = None
    size_bytes: int
    gguf_version: int
    architecture: str
    file_type: str
    tensor_types: dict[str, int]
    params: int
    tensor_bytes: int
    repeating_bytes: int = 0  # bytes of the per-layer (blk.N.*) tensors, the part that GPU offload moves
    n_layers: int
    n_embd: int
    n_ff: int | None = None
    n_vocab: int
    n_heads: int
    n_kv_heads: list[int]
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    sliding_window: int | None = None
    swa_layers: list[bool] = []
    synthetic: bool = False  # written by `hfp synth` (random weights): timing and memory only
    # mixture of experts (0 for dense models): experts per layer, experts each token uses, and the parameters and
    # bytes of the routed-expert tensors (``*_exps``); shared experts and every other tensor are read every token
    n_experts: int = 0
    n_experts_used: int = 0
    expert_params: int = 0
    expert_bytes: int = 0
    # parameters of the output projection (``output.weight``, or ``token_embd.weight`` when the embeddings are tied):
    # a prefill computes it once per sequence (only the last prompt token's logits), not per prompt token
    output_params: int = 0
    # an untied input embedding (``token_embd.weight`` beside an ``output.weight``): a decode step looks up one row
    # per token, it does not stream or multiply the matrix (a tied one is read whole, as the output projection)
    lookup_params: int = 0
    lookup_bytes: int = 0

    @model_validator(mode="after")
    def _per_layer_lists(self) -> ModelFile:
        # a damaged record or header must be refused here, not as an IndexError in the KV-cache formula
        if len(self.n_kv_heads) < self.n_layers:
            raise ValueError(f"n_kv_heads has {len(self.n_kv_heads)} entries for {self.n_layers} layers")
        if self.swa_layers and len(self.swa_layers) < self.n_layers:
            raise ValueError(f"swa_layers has {len(self.swa_layers)} entries for {self.n_layers} layers")
        return self

    @property
    def is_moe(self) -> bool:
        """Whether only some experts' weights are read per token."""
        return self.n_experts > 1 and 0 < self.n_experts_used < self.n_experts and self.expert_params > 0

    @property
    def active_params(self) -> int:
        """Parameters one token uses: all shared ones plus ``n_experts_used / n_experts`` of the experts'."""
        if not self.is_moe:
            return self.params
        return int(self.params - self.expert_params * (1 - self.n_experts_used / self.n_experts))

    @property
    def bits_per_weight(self) -> float:
        """Average bits per parameter of the file's tensors (0 when the header gives no parameter count)."""
        return self.tensor_bytes * 8 / self.params if self.params else 0.0

    @property
    def label(self) -> str:
        """Name and quantization, for tables."""
        return f"{self.name} {self.file_type}"

    def kv_bytes_per_token(self, type_k: str = "f16", type_v: str = "f16") -> tuple[float, float]:
        """KV cache bytes per token of context, split into (global layers, sliding-window layers).

        Follows the metadata: grouped-query KV heads per layer and separate K/V head dims.
        """
        bk, bv = cache_type_bytes(type_k), cache_type_bytes(type_v)
        full = swa = 0.0
        for layer in range(self.n_layers):
            per = self.n_kv_heads[layer] * (self.head_dim_k * bk + self.head_dim_v * bv)
            if self.swa_layers and self.swa_layers[layer]:
                swa += per
            else:
                full += per
        return full, swa
