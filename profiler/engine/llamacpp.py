"""llama.cpp through llama-cpp-python's low-level API: the engine every measurement uses.

Owns model and context lifetimes, batching (prompt chunks of ``n_batch``, one token per sequence per decode
step, up to ``parallel`` sequences in one batch, as ``llama-batched-bench`` does) and llama.cpp's own timer.
Python work per generated token is kept to a few ctypes stores and one sampler call, so the harness rate stays
within a few percent of llama.cpp's. It must not compute metrics or read sensors.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from profiler.engine.common import PhaseTimings, PointTimings
from profiler.errors import EngineError
from profiler.record import Settings
from profiler.schema.units import KV_CACHE_GGML_TYPE

FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}
_log_callback: Any = None
_backend_ready = False


def llama_module() -> Any:
    """The ``llama_cpp`` bindings (an ``EngineError`` naming the fix when they are not importable)."""
    try:
        import llama_cpp  # optional native bindings: imported on first use, so a host without a build still works
    except ImportError as e:  # pragma: no cover - a broken install
        raise EngineError(f"llama-cpp-python is not importable ({e}); run `make install`") from e
    return llama_cpp


def system_info() -> str:
    """``llama_print_system_info()`` of the installed build (``CPU : SSE3 = 1 | AVX2 = 1 | ...``), as text."""
    info = llama_module().llama_print_system_info()
    return info.decode(errors="replace").strip() if isinstance(info, bytes) else str(info)


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version."""
    return str(getattr(llama_module(), "__version__", "unknown"))


def quiet_llama_logs(verbose: bool = False) -> None:
    """Silence llama.cpp's and ggml's log output unless ``verbose``."""
    global _log_callback
    llama_cpp = llama_module()
    if verbose:  # llama-cpp-python's own callback prints to stderr
        from llama_cpp import _logger  # part of the optional native bindings (see llama_module)

        _logger.set_verbose(True)
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        return
    if _log_callback is None:  # keep a reference: ctypes callbacks must outlive their registration

        @llama_cpp.llama_log_callback
        def _silent(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            return None

        _log_callback = _silent
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p())


def set_params(struct: Any, **values: object) -> None:
    """Write ``values`` into a llama.cpp ctypes parameter struct, refusing fields the installed bindings lack.

    ctypes accepts an assignment to a name that is not one of the struct's ``_fields_`` as a plain Python
    attribute, which llama.cpp never sees: a setting would be silently ignored while the record says it was
    applied. Every write into a llama.cpp parameter struct goes through here. Integer and boolean fields are
    read back, so a value ctypes would truncate is refused too.
    """
    kind = type(struct)
    fields = {name: ctype for name, ctype, *_ in getattr(kind, "_fields_", ())}
    for name, value in values.items():
        if name not in fields:
            raise EngineError(
                f"llama-cpp-python {llama_cpp_version()} has no field {kind.__name__}.{name}; hfp cannot apply "
                f"{name}={value!r} with this version (supported: llama-cpp-python>=0.3.30,<0.4)"
            )
        setattr(struct, name, value)
        if isinstance(value, (bool, int)) and getattr(struct, name) != value:
            raise EngineError(f"{kind.__name__}.{name} cannot hold {value!r} (read back {getattr(struct, name)!r})")


def mmap_params(params_type: type, use_mmap: bool) -> dict[str, object]:
    """The model-parameter fields that make llama.cpp map the weights (or read them) in the installed bindings.

    Older bindings have ``use_mmap``; newer ones replace it with ``load_mode`` (``LLAMA_LOAD_MODE_MMAP`` or
    ``LLAMA_LOAD_MODE_NONE``). Anything else is refused rather than silently ignored.
    """
    llama = llama_module()
    fields = {f[0] for f in getattr(params_type, "_fields_", ())}
    if "use_mmap" in fields:
        return {"use_mmap": use_mmap}
    mode = getattr(llama, "LLAMA_LOAD_MODE_MMAP" if use_mmap else "LLAMA_LOAD_MODE_NONE", None)
    if "load_mode" in fields and mode is not None:
        return {"load_mode": mode}
    raise EngineError(
        f"llama-cpp-python {llama_cpp_version()} has neither llama_model_params.use_mmap nor a load_mode with "
        f"LLAMA_LOAD_MODE_{'MMAP' if use_mmap else 'NONE'}; hfp cannot apply use_mmap={use_mmap}"
    )


def backend_init() -> None:
    """Initialise llama.cpp's backends (loads its shared libraries) once per process."""
    global _backend_ready
    if not _backend_ready:
        llama_module().llama_backend_init()
        _backend_ready = True


class LlamaCppEngine:
    """One loaded model; ``run`` creates a context sized for each workload point."""

    def __init__(self, model_path: str | Path, settings: Settings, verbose: bool = False) -> None:
        self.llama = llama_module()
        self.settings = settings
        quiet_llama_logs(verbose)
        backend_init()
        params = self.llama.llama_model_default_params()
        set_params(params, n_gpu_layers=settings.n_gpu_layers, use_extra_bufts=settings.extra_bufts,
                   **mmap_params(type(params), settings.use_mmap))
        self.model = self.llama.llama_model_load_from_file(str(model_path).encode(), params)
        if not self.model:
            raise EngineError(f"{model_path}: llama.cpp could not load this model (rerun with --verbose to see why)")
        self.vocab = self.llama.llama_model_get_vocab(self.model)
        self.ctx: Any = None
        self.ctx_shape: tuple[int, int] | None = None

    # --- tokens ------------------------------------------------------------------------------------------

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text`` (with BOS where the model adds one, if ``add_special``)."""
        data = text.encode()
        cap = len(data) + 16
        buf = (self.llama.llama_token * cap)()
        n = self.llama.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, False)
        if n < 0:
            raise EngineError(f"tokenizer needs {-n} slots for a {len(data)}-byte text")
        return list(buf[:n])

    def detokenize(self, tokens: list[int]) -> str:
        """Text of ``tokens`` (special tokens omitted)."""
        out = bytearray()
        buf = ctypes.create_string_buffer(256)
        for t in tokens:
            n = self.llama.llama_token_to_piece(self.vocab, t, buf, len(buf), 0, False)
            out += buf.raw[: max(n, 0)]
        return out.decode(errors="replace")

    # --- contexts ----------------------------------------------------------------------------------------

    def _context(self, n_ctx: int, n_seq: int) -> Any:
        if self.ctx is not None and self.ctx_shape == (n_ctx, n_seq):
            self.llama.llama_memory_clear(self.llama.llama_get_memory(self.ctx), True)
            return self.ctx
        self._free_context()
        s = self.settings
        p = self.llama.llama_context_default_params()
        set_params(
            p, n_ctx=n_ctx, n_seq_max=n_seq, n_batch=max(s.n_batch, n_seq),
            n_ubatch=min(s.n_ubatch, max(s.n_batch, n_seq)),
            n_threads=s.threads, n_threads_batch=s.threads_batch, flash_attn_type=FLASH_ATTN[s.flash_attn],
            type_k=KV_CACHE_GGML_TYPE[s.type_k], type_v=KV_CACHE_GGML_TYPE[s.type_v], no_perf=False, swa_full=False,
        )
        ctx = self.llama.llama_init_from_model(self.model, p)
        if not ctx:
            raise EngineError(
                f"llama.cpp could not create a context (n_ctx={n_ctx}, parallel={n_seq}, KV {s.type_k}/{s.type_v}); "
                "a quantized V cache needs flash attention (--flash-attn on); rerun with --verbose to see why"
            )
        self.ctx, self.ctx_shape = ctx, (n_ctx, n_seq)
        return ctx

    def _sampler(self) -> Any:
        llama, s = self.llama, self.settings
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if s.sampling == "greedy":
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
        else:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_k(40))
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(0.8))
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(s.seed))
        return chain

    def _perf(self, ctx: Any) -> PhaseTimings:
        d = self.llama.llama_perf_context(ctx)
        # llama.cpp counts single-token decode calls as "eval" and multi-token ones as "prompt eval", and
        # reports an unused counter as 1 (max(1, n)), so a count only counts when its timer ran.
        tokens = (d.n_p_eval if d.t_p_eval_ms > 0 else 0) + (d.n_eval if d.t_eval_ms > 0 else 0)
        return PhaseTimings(ms=d.t_p_eval_ms + d.t_eval_ms, tokens=tokens)

    # --- the measured path -------------------------------------------------------------------------------

    def run(self, prompts: list[list[int]], output_tokens: int) -> PointTimings:
        """Prefill each prompt as its own sequence, then decode ``output_tokens`` tokens per sequence in lockstep.

        End of sequence is ignored (fixed output length, as llama-bench does).
        """
        llama = self.llama
        n_seq = len(prompts)
        n_ctx = context_size(max(len(p) for p in prompts), output_tokens, n_seq)
        ctx = self._context(n_ctx, n_seq)
        sampler = self._sampler()
        n_batch = max(self.settings.n_batch, n_seq)
        batch = llama.llama_batch_init(n_batch, 0, 1)
        try:
            llama.llama_perf_context_reset(ctx)
            t_start = time.perf_counter()
            last = self._prefill(ctx, batch, sampler, prompts, n_batch)
            t_first = time.perf_counter()
            prefill = self._perf(ctx)
            llama.llama_perf_context_reset(ctx)
            outputs: list[list[int]] = [[t] for t in last]
            step_ends = self._decode(ctx, batch, sampler, last, [len(p) for p in prompts], output_tokens - 1, outputs)
            decode = self._perf(ctx)
        finally:
            llama.llama_batch_free(batch)
            llama.llama_sampler_free(sampler)
        return PointTimings(
            t_start=t_start, t_first_token=t_first, step_ends=step_ends,
            prompt_tokens=sum(len(p) for p in prompts), generated_tokens=sum(len(o) for o in outputs),
            parallel=n_seq, engine_prefill=prefill, engine_decode=decode,
            sample_text=self.detokenize(outputs[0][:48]),
        )

    def _prefill(self, ctx: Any, batch: Any, sampler: Any, prompts: list[list[int]], n_batch: int) -> list[int]:
        """Process all prompts in chunks of ``n_batch``; sample each sequence's first token from its last logits."""
        llama = self.llama
        flat = [(s, pos, tok) for s, prompt in enumerate(prompts) for pos, tok in enumerate(prompt)]
        first: list[int] = [0] * len(prompts)
        for start in range(0, len(flat), n_batch):
            chunk = flat[start : start + n_batch]
            ends = []
            for i, (s, pos, tok) in enumerate(chunk):
                is_last = pos == len(prompts[s]) - 1
                _put(batch, i, tok, pos, s, is_last)
                if is_last:
                    ends.append((s, i))
            batch.n_tokens = len(chunk)
            self._decode_call(ctx, batch)
            for s, i in ends:
                first[s] = llama.llama_sampler_sample(sampler, ctx, i)
        return first

    def _decode(
        self, ctx: Any, batch: Any, sampler: Any, last: list[int], positions: list[int], steps: int,
        outputs: list[list[int]],
    ) -> list[float]:
        """``steps`` decode steps, one token per sequence each; returns the end time of every step."""
        n_seq = len(last)
        pick = self._picker(ctx, sampler, n_seq)
        for s in range(n_seq):
            batch.n_seq_id[s] = 1
            batch.seq_id[s][0] = s
            batch.logits[s] = True
        batch.n_tokens = n_seq
        tokens, pos = batch.token, batch.pos
        ends: list[float] = []
        clock = time.perf_counter
        for step in range(steps):
            for s in range(n_seq):
                tokens[s] = last[s]
                pos[s] = positions[s] + step
            self._decode_call(ctx, batch)
            picked = pick()
            for s in range(n_seq):
                last[s] = picked[s]
                outputs[s].append(picked[s])
            ends.append(clock())
        return ends

    def _picker(self, ctx: Any, sampler: Any, n_seq: int) -> Callable[[], list[int]]:
        """Next token of every sequence after a decode step.

        Greedy decoding takes one NumPy argmax over the logits rows: llama.cpp's greedy sampler first builds a
        candidate array of the whole vocabulary per sequence, which costs more Python-visible time per token
        than the harness can afford. Other sampling goes through the sampler chain.
        """
        llama = self.llama
        if self.settings.sampling != "greedy":
            return lambda: [llama.llama_sampler_sample(sampler, ctx, s) for s in range(n_seq)]
        n_vocab = llama.llama_vocab_n_tokens(self.vocab)

        def argmax() -> list[int]:
            rows = np.ctypeslib.as_array(llama.llama_get_logits(ctx), shape=(n_seq, n_vocab))
            return rows.argmax(axis=1).tolist()  # type: ignore[no-any-return]

        return argmax

    def _decode_call(self, ctx: Any, batch: Any) -> None:
        rc = self.llama.llama_decode(ctx, batch)
        if rc == 1:
            raise EngineError("llama.cpp found no KV cache slot for the batch; raise n_ctx")
        if rc != 0:
            raise EngineError(f"llama_decode failed with status {rc}")

    # --- lifetime ----------------------------------------------------------------------------------------

    def _free_context(self) -> None:
        if self.ctx is not None:
            self.llama.llama_free(self.ctx)
            self.ctx, self.ctx_shape = None, None

    def close(self) -> None:
        """Free the context and the model."""
        self._free_context()
        if getattr(self, "model", None):
            self.llama.llama_model_free(self.model)
            self.model = None

    def __enter__(self) -> LlamaCppEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put(batch: Any, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq
    batch.logits[i] = logits


def context_size(prompt_tokens: int, output_tokens: int, n_seq: int) -> int:
    """KV cells for ``n_seq`` sequences: each gets prompt + output + 1, rounded up to 256 (llama.cpp needs
    n_ctx divisible by the sequence count, and pads cells to 256)."""
    per_seq = (prompt_tokens + output_tokens + 1 + 255) // 256 * 256
    return per_seq * n_seq
