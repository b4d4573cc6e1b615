"""Memory planning: how many bytes a model needs for a given context, parallel count and offload, and where.

Owns the prediction (weights + KV cache + compute buffer + output buffer) and the fit check against free RAM and
VRAM, so a model that will not fit is refused before anything is loaded. It must not load models or measure.

Resident memory is predicted in two parts, the way the process sensor measures it (``/proc/<pid>/statm``):

- **anonymous** (``ram_anon_bytes``): memory only swap could free: weights llama.cpp's CPU backend copies into
  an extra buffer (``CPU_REPACK`` / ``AMX``), all weights when mmap is off, the KV cache, the pages of the
  compute buffer a batch touches, the output (logits) buffer, and the runtime (vocabulary, graph metadata);
- **file-backed**: with mmap on, the span of the GGUF file that stays mapped (llama.cpp maps the file with
  ``MAP_POPULATE``, then unmaps what lies before the first and after the last tensor it reads in place), and the
  code pages of llama.cpp's kernels that the first batches touch.

``ram_bytes`` is their sum, the peak RSS above the process's pre-load baseline. The fit check uses
``ram_fit_bytes``: the anonymous part plus the mapped weights read on every token (the working set); mapped pages
of tensors that were repacked are never read again, so the kernel may reclaim them. The rules come from the
llama.cpp source vendored in llama-cpp-python 0.3.36; docs/performance-model.md ("Memory rules") cites the lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from profiler.errors import ConfigError, ModelError, ModelTooLargeError
from profiler.gguf import TensorInfo, read_header
from profiler.schema.base import Strict
from profiler.schema.memory import MemoryPlan as MemoryPlan
from profiler.schema.model import ModelFile
from profiler.schema.units import KV_CACHE_GGML_TYPE as KV_CACHE_GGML_TYPE
from profiler.schema.units import KV_CACHE_TYPES as KV_CACHE_TYPES
from profiler.schema.units import GiB as GiB
from profiler.schema.units import MiB as MiB
from profiler.schema.units import cache_type_bytes as cache_type_bytes
from profiler.schema.units import fmt_mib

# Memory a llama.cpp process holds beyond the model's own buffers, and what an OS needs to stay usable;
# explicit so that plans are reproducible.
GPU_RUNTIME_OVERHEAD_BYTES = 400 * MiB  # CUDA context and cuBLAS workspace
# Anonymous memory of the loaded vocabulary (llama_vocab: id_to_token strings and scores, the token_to_id hash
# map, the token-to-piece cache) per token, and of its BPE merge ranks (a std::map of string pairs) per merge.
# Estimated from two loads on llama-cpp-python 0.3.36: SmolLM2's 49,152 tokens + 48,900 merges took 15.97 MiB,
# the same tokenizer padded to 128,256 tokens 33.63 MiB (benchmarks/validate_memory.py, docs/validation.md).
VOCAB_BYTES_PER_TOKEN = 234
VOCAB_BYTES_PER_MERGE = 107
# Anonymous memory of a context beyond its buffers (graph and scheduler metadata, thread-pool stacks touched):
# estimated from the same measurements (context creation adds ~0.5-1 MiB over KV + output, the first batch ~1 MiB).
CONTEXT_OVERHEAD_BYTES = int(2.5 * MiB)
# File-backed pages of llama.cpp's own code that the first batches touch (CPU kernels): estimated from the RSS
# minus the anonymous part with mmap off (3.7-3.8 MiB, benchmarks/validate_memory.py).
CODE_PAGES_BYTES = 4 * MiB
PAGE = 4096


def kv_cache_bytes(
    model: ModelFile, n_ctx: int, n_parallel: int = 1, type_k: str = "f16", type_v: str = "f16", n_ubatch: int = 512
) -> int:
    """Bytes llama.cpp allocates for the KV cache of ``n_ctx`` cells shared by ``n_parallel`` sequences.

    Global-attention layers hold every cell. Sliding-window layers hold at most window + ubatch cells per
    sequence (llama.cpp's SWA cache, ``swa_full=false``), which is what keeps Gemma-style models small.
    llama.cpp clears the buffer when it creates the cache, so all of it is resident.
    """
    full, swa = model.kv_bytes_per_token(type_k, type_v)
    total = full * n_ctx
    if swa:
        per_seq = min(n_ctx // max(n_parallel, 1), (model.sliding_window or n_ctx) + n_ubatch)
        total += swa * min(n_ctx, per_seq * n_parallel)
    return int(total)


def compute_buffer_bytes(model: ModelFile, n_ctx: int, n_ubatch: int, flash_attn: bool, n_parallel: int = 1) -> int:
    """Estimated size of llama.cpp's compute (graph) buffer, which it reserves for a worst-case ubatch.

    The allocator reuses memory, so the buffer is about the largest live set: the logits of a full ubatch
    (vocab x ubatch, F32) or, without flash attention, the attention scores (heads x cells per sequence x
    ubatch), plus a few activations of width n_embd. Checked against llama.cpp's own "compute buffer size"
    log within a few percent for the default model (docs/architecture.md).
    """
    ub = min(n_ubatch, n_ctx)
    logits = model.n_vocab * ub * 4
    scores = 0 if flash_attn else model.n_heads * (n_ctx // max(n_parallel, 1)) * ub * 4
    return int(max(logits, scores) + 4 * model.n_embd * ub * 4)


def compute_working_bytes(
    model: ModelFile, n_ctx: int, n_tokens: int, n_outputs: int, flash_attn: bool, n_parallel: int = 1
) -> int:
    """Pages of the compute buffer (and the CPU backend's work buffer) that a batch of ``n_tokens`` touches.

    The reservation is sized for logits of a whole ubatch, but hfp (like llama-server) asks for logits of one
    token per sequence, and ggml's graph allocator packs a smaller graph into the start of the buffer, whose
    untouched pages are never resident. The live set is the residual stream and its norm (2 x n_embd), the
    feed-forward gate, up and product (3 x n_ff) per token, the logits of the outputs, the int8 copy of the
    activations the quantized matmuls make, and without flash attention the attention scores.
    """
    n_ff = model.n_ff or 4 * model.n_embd
    per_token = (2 * model.n_embd + 3 * n_ff) * 4 + n_ff  # F32 activations + Q8 work copy of the widest input
    scores = 0 if flash_attn else model.n_heads * _pad(n_ctx // max(n_parallel, 1), 256) * n_tokens * 4
    return int(n_tokens * per_token + n_outputs * model.n_vocab * 4 + scores)


def runtime_bytes(model: ModelFile, n_merges: int | None = None) -> int:
    """Anonymous memory of a loaded model and context beyond its buffers: vocabulary and graph metadata.

    ``n_merges``: BPE merges in the file's tokenizer (None when unknown: as many as tokens, as in
    Llama-3/Qwen-style BPE vocabularies)."""
    merges = model.n_vocab if n_merges is None else n_merges
    return VOCAB_BYTES_PER_TOKEN * model.n_vocab + VOCAB_BYTES_PER_MERGE * merges + CONTEXT_OVERHEAD_BYTES


def _pad(x: int, to: int) -> int:
    return (x + to - 1) // to * to


# --- CPU features and the weight buffers llama.cpp's CPU backend chooses ---------------------------------


class CpuFeatures(Strict):
    """What llama.cpp's CPU backend was built for, as far as it decides where weights live.

    From ``llama_print_system_info()`` (``AVX2 = 1 | … | REPACK = 1``) on this host, or guessed from a hardware
    profile's CPU model for a declared tier.
    """

    avx2: bool = False
    avx512: bool = False
    neon: bool = False
    dotprod: bool = False
    i8mm: bool = False  # MATMUL_INT8
    amx: bool = False  # AMX_INT8 (built only with GGML_NATIVE on a CPU that has it)
    repack: bool = True  # GGML_CPU_REPACK, on by default
    source: str

    @classmethod
    def from_system_info(cls, system_info: str) -> CpuFeatures:
        """Parse llama.cpp's system-info line."""
        on = {k for k, v in re.findall(r"([A-Z0-9_]+) = (\d)", system_info) if v == "1"}
        return cls(avx2="AVX2" in on, avx512="AVX512" in on, neon="NEON" in on, dotprod="DOTPROD" in on,
                   i8mm="MATMUL_INT8" in on, amx="AMX_INT8" in on, repack="REPACK" in on,
                   source="measured:llama_print_system_info")

    @classmethod
    def guess(cls, cpu_model: str | None) -> CpuFeatures:
        """Features a stock llama.cpp build would have on a CPU named like a hardware profile's ``cpu.model``.

        x86 desktop and laptop CPUs have AVX2; AMD Zen 4/5 (Ryzen 7000/9000, AI Max) also AVX-512. Arm cores:
        NEON and dot product (Cortex-A76 and newer, Apple M1); int8 matmul on Apple M2 and later and on Armv9
        cores (Cortex-X925/A725). AMX is never assumed (stock builds leave it out).
        """
        name = (cpu_model or "").lower()
        label = f"estimated:cpu-model({cpu_model or 'unknown'})"
        arm = any(k in name for k in ("apple", "cortex", "arm", "snapdragon", "grace", "bcm27", "neoverse"))
        if arm:
            i8mm = bool(re.search(r"apple m[2-9]|x925|a725|neoverse-v2|grace", name))
            return cls(neon=True, dotprod=True, i8mm=i8mm, source=label)
        zen45 = bool(re.search(r"ryzen (?:\d+ )?[79]\d{3}|ryzen ai|epyc 9\d{3}", name))
        return cls(avx2=True, avx512=zen45, source=label)


def host_cpu_features(system_info: str | None, extra_bufts: bool = True) -> CpuFeatures | None:
    """This host's features from llama.cpp's system-info line; None (no repacking predicted) when extra buffer
    types are off (``Settings.extra_bufts``) or the line is unknown."""
    if not extra_bufts or not system_info:
        return None
    return CpuFeatures.from_system_info(system_info)


# Types the CPU_REPACK buffer takes, and the CPU features each needs; rows must be a multiple of the interleave.
# ggml/src/ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type (llama-cpp-python 0.3.36).
def _repack_rows(type_name: str, f: CpuFeatures) -> int | None:
    """Row multiple (ne[1]) the repacked layout of ``type_name`` needs on a CPU with ``f``, or None."""
    t = type_name.upper()
    if t == "Q4_0":
        return 8 if f.avx2 else 4 if f.neon and (f.i8mm or f.dotprod) else None
    if t == "Q4_K":
        return 8 if f.avx2 or (f.neon and (f.i8mm or f.dotprod)) else None
    if t == "Q2_K":
        return 8 if f.avx512 else None
    if t in ("Q5_K", "Q6_K"):
        return 8 if f.neon and (f.i8mm or f.dotprod) else None
    if t in ("IQ4_NL", "MXFP4"):
        return 8 if f.avx2 else 4 if f.neon and f.dotprod else None
    if t == "Q8_0":
        return 4 if f.neon and (f.i8mm or f.dotprod) else None
    return None


# ggml/src/ggml-cpu/amx/common.h qtype_has_amx_kernels and amx.cpp supports_op: K alignment per type.
_AMX_K_ALIGN = {"Q4_0": 32, "Q4_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256, "IQ4_XS": 256, "F16": 16}
_AMX_EXTRA_PER_BLOCK = {"Q8_0": 4, "Q4_K": 4, "Q5_K": 4, "IQ4_XS": 2}  # amx/mmq.cpp get_row_size
# Tensors read with GGML_OP_GET_ROWS (llama-arch.cpp LLM_TENSOR_INFOS), never given to an extra buffer.
_GET_ROWS = ("token_embd.", "position_embd.", "token_types.", "per_layer_token_embd.")


@dataclass(frozen=True)
class WeightLayout:
    """Where a model's weights live on the host for one configuration."""

    gpu_bytes: int  # offloaded to the GPU
    repacked_bytes: int  # anonymous copies in CPU_REPACK / AMX buffers
    cpu_bytes: int  # in the plain CPU buffer (mapped from the file with mmap, anonymous without)
    mapped_span_bytes: int  # with mmap: file span that stays mapped (and, populated at load, resident)
    n_repacked: int
    source: str


@lru_cache(maxsize=64)
def _tensors(path: str, size: int, mtime_ns: int) -> tuple[int, tuple[TensorInfo, ...], int]:
    header = read_header(Path(path))
    return header.data_offset, tuple(header.tensors), header.array_lengths.get("tokenizer.ggml.merges", 0)


def _read_tensors(model: ModelFile) -> tuple[int, tuple[TensorInfo, ...], int] | None:
    p = Path(model.path)
    try:
        st = p.stat()
        return _tensors(str(p), st.st_size, st.st_mtime_ns)
    except (OSError, ModelError):  # no file (a declared spec, a record from elsewhere): estimate
        return None


def _layer(name: str) -> int | None:
    m = re.match(r"blk\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def extra_buffer_bytes(t: TensorInfo, f: CpuFeatures) -> int | None:
    """Bytes of ``t`` in an extra buffer (AMX first, then CPU_REPACK, as ggml-cpu.cpp orders them), or None."""
    ne = t.shape
    mul_mat = len(ne) == 2 and ne[1] > 1
    mul_mat_id = len(ne) == 3 and "_exps." in t.name
    if not (mul_mat or mul_mat_id) or t.name.startswith(_GET_ROWS) or not t.name.endswith(".weight"):
        return None
    if any(k in t.name for k in ("ssm_", "conv", "_norm")):
        return None
    tn = t.type_name.upper()
    if f.amx and mul_mat and tn in _AMX_K_ALIGN and ne[1] % 32 == 0 and ne[0] % _AMX_K_ALIGN[tn] == 0:
        if tn == "F16":
            return t.nbytes
        blocks = ne[0] // (32 if tn in ("Q4_0", "Q4_1", "Q8_0") else 256)
        return t.nbytes + ne[1] * blocks * _AMX_EXTRA_PER_BLOCK.get(tn, 0)
    rows = _repack_rows(tn, f) if f.repack else None
    if rows and ne[1] % rows == 0 and ne[0] % 8 == 0:
        return t.nbytes
    return None


# llamafile's tinyBLAS (GGML_USE_LLAMAFILE, on in stock builds) takes a matmul of two or more token rows for these
# weight types when they sit in the plain CPU buffer (ggml-cpu.c ggml_compute_forward_mul_mat ->
# llamafile/sgemm.cpp llamafile_sgemm, x86 AVX2/AVX-512 paths); one token row goes through ggml's vec_dot (gemv).
_TINYBLAS_TYPES = ("Q8_0", "Q4_0", "Q5_0", "IQ4_NL")


def tinyblas_bytes(model: ModelFile, features: CpuFeatures | None) -> int:
    """Bytes of the model's CPU matmul weights whose kernel changes from gemv (one token row) to llamafile's
    tinyBLAS (two or more) on an x86 host: of a type tinyBLAS takes and not in an extra buffer (a tied output is
    ``token_embd`` used as a matmul weight). 0 without the file's tensor table, off x86 or with unknown features.
    Shapes whose hidden size is not a multiple of 256 have their K-quant tensors fall back to Q5_0/Q8_0 and so
    end up here (docs/performance-model.md, batched decode)."""
    table = _read_tensors(model) if features is not None and features.avx2 else None
    if table is None or features is None:
        return 0
    tensors = table[1]
    tied = "output.weight" not in {t.name for t in tensors}
    total = 0
    for t in tensors:
        as_output = tied and t.name == "token_embd.weight"
        if t.type_name.upper() not in _TINYBLAS_TYPES or len(t.shape) != 2 or not t.name.endswith(".weight"):
            continue
        if as_output:
            rows = _repack_rows(t.type_name, features) if features.repack else None
            if rows and t.shape[1] % rows == 0 and t.shape[0] % 8 == 0:
                continue
        elif t.name.startswith(_GET_ROWS) or extra_buffer_bytes(t, features) is not None:
            continue
        total += t.nbytes
    return total


# Share of a file type's bytes in repackable tensors, for models known only by their metadata (no tensor table).
_FALLBACK_SHARE = {"Q4_0": ("Q4_0", 0.97), "IQ4_NL": ("IQ4_NL", 0.97), "Q4_K_S": ("Q4_K", 0.9),
                   "Q4_K_M": ("Q4_K", 0.7), "Q2_K": ("Q2_K", 0.5), "Q8_0": ("Q8_0", 0.97), "Q6_K": ("Q6_K", 0.97),
                   "Q5_K_S": ("Q5_K", 0.9), "Q5_K_M": ("Q5_K", 0.7), "MXFP4_MOE": ("MXFP4", 0.9)}


def weight_layout(model: ModelFile, features: CpuFeatures | None, n_gpu_layers: int = 0,
                  use_mmap: bool = True) -> WeightLayout:
    """Split the model's weights into GPU, repacked, plain CPU and the mapped file span.

    With the tensor table (the GGUF file is here) the split follows llama.cpp tensor by tensor: the last
    ``n_gpu_layers`` layers (and the output layer once all are offloaded) go to the GPU; a 2-D matmul weight
    (3-D for experts) that an extra buffer supports goes there; everything else to the CPU buffer. A tied output
    (no ``output.weight``) is ``token_embd`` loaded a second time as a matmul weight, so it is repacked as a
    separate copy when its type qualifies. Without the file, a per-file-type share is assumed (an estimate).
    """
    f = features or CpuFeatures(repack=False, source="none")
    n_layers = model.n_layers
    first_gpu = n_layers - min(n_gpu_layers, n_layers)
    output_on_gpu = n_gpu_layers > n_layers
    table = _read_tensors(model)
    if table is None:
        share_of = (min(n_gpu_layers, n_layers) / n_layers) if n_layers else 0.0
        gpu = int(model.repeating_bytes * share_of
                  + ((model.tensor_bytes - model.repeating_bytes) // 2 if output_on_gpu else 0))
        typ, share = _FALLBACK_SHARE.get(model.file_type.upper(), ("", 0.0))
        rows = _repack_rows(typ, f) if f.repack and typ else None
        repacked = int(model.repeating_bytes * (1 - share_of) * share) if rows else 0
        cpu = model.tensor_bytes - gpu - repacked
        return WeightLayout(gpu, repacked, cpu, cpu + repacked if use_mmap else 0, -1,
                            f"estimated:file-type-share({f.source})")
    data_offset, tensors, _ = table
    gpu = repacked = cpu = n_rep = 0
    lo, hi = None, None
    names = {t.name for t in tensors}
    for t in tensors:
        layer = _layer(t.name)
        on_gpu = (layer is not None and layer >= first_gpu) or (
            layer is None and output_on_gpu and not t.name.startswith(_GET_ROWS))
        if on_gpu:
            gpu += t.nbytes
            continue
        extra = extra_buffer_bytes(t, f)
        if extra is not None:
            repacked += extra
            n_rep += 1
            continue
        cpu += t.nbytes
        start = data_offset + t.offset
        lo = start if lo is None else min(lo, start)
        hi = start + t.nbytes if hi is None else max(hi, start + t.nbytes)
        if t.name.startswith("token_embd.") and "output.weight" not in names and output_on_gpu:
            gpu += t.nbytes  # the tied output's copy on the GPU
        elif t.name.startswith("token_embd.") and "output.weight" not in names:
            tied = TensorInfo("output.weight", t.shape, t.type_id, t.offset)
            extra = extra_buffer_bytes(tied, f)
            if extra is not None:  # the duplicate lands in another buffer type: a second, repacked copy
                repacked += extra
                n_rep += 1
    span = (_pad(hi, PAGE) - (lo // PAGE) * PAGE) if use_mmap and lo is not None and hi is not None else 0
    return WeightLayout(gpu, repacked, cpu, span, n_rep, f"predicted:tensor-table({f.source})")


def plan(
    model: ModelFile,
    n_ctx: int,
    n_parallel: int = 1,
    n_gpu_layers: int = 0,
    n_ubatch: int = 512,
    type_k: str = "f16",
    type_v: str = "f16",
    flash_attn: bool = False,
    ram_available: int | None = None,
    vram_available: int | None = None,
    use_mmap: bool = True,
    cpu_features: CpuFeatures | None = None,
    n_tokens: int | None = None,
) -> MemoryPlan:
    """Predict memory for a configuration and check it against the available RAM and VRAM.

    ``cpu_features`` decides which weights the CPU backend repacks (None: no repacking is predicted);
    ``n_tokens`` is the largest batch the workload sends (default: a full ubatch), which sets how much of the
    compute buffer becomes resident. ``fits`` compares ``ram_fit_bytes`` (anonymous + the mapped weights read
    every token) with ``ram_available``.
    """
    if n_ctx < 1 or n_parallel < 1:
        raise ConfigError("n_ctx and parallel must be positive")
    gpu_layers = max(0, min(n_gpu_layers, model.n_layers + 1))
    layer_frac = min(gpu_layers, model.n_layers) / model.n_layers if model.n_layers else 0.0
    layout = weight_layout(model, cpu_features, gpu_layers, use_mmap)
    kv = kv_cache_bytes(model, n_ctx, n_parallel, type_k, type_v, n_ubatch)
    gpu_kv = int(kv * layer_frac)
    compute = compute_buffer_bytes(model, n_ctx, n_ubatch, flash_attn, n_parallel)
    batch = min(n_tokens if n_tokens is not None else n_ubatch, n_ubatch, n_ctx)
    working = compute_working_bytes(model, n_ctx, max(batch, 1), min(n_parallel, max(batch, 1)), flash_attn,
                                    n_parallel)
    output = model.n_vocab * 4 * n_parallel
    table = _read_tensors(model)
    runtime = runtime_bytes(model, table[2] if table is not None else None)
    vram = layout.gpu_bytes + gpu_kv + (compute + GPU_RUNTIME_OVERHEAD_BYTES if gpu_layers else 0)
    cpu_compute = working if not gpu_layers else min(working, compute // 4)  # a CPU buffer stays for what's left
    weights_anon = layout.repacked_bytes + (0 if use_mmap else layout.cpu_bytes)
    anon = weights_anon + (kv - gpu_kv) + output + cpu_compute + runtime
    ram = anon + layout.mapped_span_bytes + CODE_PAGES_BYTES
    fit = anon + (layout.cpu_bytes if use_mmap else 0)
    placement: Literal["cpu", "full_offload", "partial_offload"] = (
        "cpu" if gpu_layers == 0 else "full_offload" if gpu_layers >= model.n_layers else "partial_offload"
    )
    fits, reason = _fit_verdict(fit, vram, ram_available, vram_available if gpu_layers else None, placement)
    if gpu_layers and vram_available is None and fits:
        reason += "; VRAM not checked (no NVML reading of free GPU memory)"
    return MemoryPlan(
        n_ctx=n_ctx, n_parallel=n_parallel, n_gpu_layers=gpu_layers, type_k=type_k, type_v=type_v,
        weights_bytes=model.tensor_bytes, kv_cache_bytes=kv, compute_buffer_bytes=compute,
        output_buffer_bytes=output, overhead_bytes=runtime, ram_bytes=ram, vram_bytes=vram,
        ram_available_bytes=ram_available, vram_available_bytes=vram_available, placement=placement,
        fits=fits, reason=reason, source=layout.source, ram_anon_bytes=anon, ram_fit_bytes=fit,
        use_mmap=use_mmap, weights_repacked_bytes=layout.repacked_bytes, weights_cpu_bytes=layout.cpu_bytes,
        weights_mapped_bytes=layout.mapped_span_bytes, compute_working_bytes=cpu_compute, kv_ram_bytes=kv - gpu_kv,
        cpu_features=cpu_features.source if cpu_features else None,
    )


def _fit_verdict(ram: int, vram: int, ram_available: int | None, vram_available: int | None,
                 placement: str) -> tuple[bool, str]:
    """Whether ``ram`` and ``vram`` bytes fit what is free (None: not checked), and the reason in words."""
    problems = []
    if ram_available is not None and ram > ram_available:
        problems.append(f"needs {ram / GiB:.2f} GiB RAM, {ram_available / GiB:.2f} GiB free")
    if vram_available is not None and vram > vram_available:
        problems.append(f"needs {vram / GiB:.2f} GiB VRAM, {vram_available / GiB:.2f} GiB free")
    return not problems, "; ".join(problems) or f"fits ({placement.replace('_', ' ')})"


def breakdown_text(p: MemoryPlan) -> str:
    """The resident parts of a plan, one per line, for ``hfp inspect``."""
    anon = p.ram_anon_bytes if p.ram_anon_bytes is not None else p.ram_bytes
    rows = [
        ("weights mapped", p.weights_mapped_bytes, "file-backed: file span left mapped, populated at load"),
        ("weights repacked", p.weights_repacked_bytes, "anonymous: CPU_REPACK/AMX copies of matmul weights"),
        ("weights in RAM", 0 if p.use_mmap else p.weights_cpu_bytes, "anonymous: read into the CPU buffer (no mmap)"),
        ("KV cache", p.kv_ram_bytes if p.kv_ram_bytes is not None else p.kv_cache_bytes, "anonymous (host share)"),
        ("compute touched", p.compute_working_bytes or 0,
         f"anonymous: of a {fmt_mib(p.compute_buffer_bytes, 1, thousands=True)} MiB reservation"),
        ("output buffer", p.output_buffer_bytes, "anonymous: logits"),
        ("runtime", p.overhead_bytes, "anonymous: vocabulary, graph metadata"),
        ("code pages", CODE_PAGES_BYTES, "file-backed: llama.cpp kernels' code"),
        ("anonymous", anon, "what only swap can free"),
        ("resident (RSS)", p.ram_bytes, "anonymous + mapped"),
        ("fit check", p.ram_fit_bytes if p.ram_fit_bytes is not None else p.ram_bytes,
         "anonymous + mapped weights read every token"),
    ]
    lines = [f"{k:>16}: {fmt_mib(v, 1, thousands=True)} MiB  ({why})" for k, v, why in rows]
    lines.append(f"{'CPU features':>16}: {p.cpu_features or 'none given (no repacking predicted)'}")
    return "\n".join(lines)


def fit_sentence(memory_plan: MemoryPlan) -> str:
    """One sentence saying what "fits" means for this plan, for reports."""
    anon = memory_plan.ram_anon_bytes if memory_plan.ram_anon_bytes is not None else memory_plan.ram_bytes
    fit = memory_plan.ram_fit_bytes if memory_plan.ram_fit_bytes is not None else memory_plan.ram_bytes
    return (f"Fits means the memory only swap could free ({anon / GiB:.2f} GiB: repacked weights, KV cache, "
            f"buffers) plus the mapped weights read on every token ({(fit - anon) / GiB:.2f} GiB) fit in the "
            "available memory; mapped file pages beyond that are page cache the OS can reclaim.")


def require_fit(memory_plan: MemoryPlan, model: ModelFile) -> None:
    """Refuse, before loading, a configuration that will not fit, with the numbers."""
    if not memory_plan.fits:
        raise ModelTooLargeError(
            f"{model.label} will not fit: {memory_plan.reason} (weights {memory_plan.weights_bytes / GiB:.2f} GiB, "
            f"KV cache {memory_plan.kv_cache_bytes / GiB:.2f} GiB at n_ctx={memory_plan.n_ctx}); "
            "try a smaller quantization, a shorter context or fewer parallel sequences"
        )
