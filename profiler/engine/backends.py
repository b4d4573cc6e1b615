"""What the installed llama.cpp build offers, for code outside the engine (one way into ``llama_cpp``).

``llama_backends()`` describes the build (version, offload, mmap, CPU kernels, the cached self-check verdict) for
``profiler.hardware``; ``llama_module()`` hands the bindings to code that runs inside a supervised worker
(``profiler.quantize.quantize_file_here``), so nothing outside ``profiler/engine/`` imports ``llama_cpp``.
"""

from __future__ import annotations

from profiler.engine import selfcheck
from profiler.engine.llamacpp import llama_module as llama_module
from profiler.engine.llamacpp import system_info
from profiler.errors import EngineError
from profiler.schema.host import Backends


def llama_backends() -> Backends:
    """Ask the installed llama.cpp what it supports (offload is what a CUDA/Metal/Vulkan build adds)."""
    try:
        llama_cpp = llama_module()
    except EngineError:  # llama-cpp-python not importable: a host without a build still has a profile
        return Backends()
    info = system_info()
    verdict = selfcheck.cached_verdict()
    return Backends(
        llama_cpp_python=getattr(llama_cpp, "__version__", None),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        mmap=bool(llama_cpp.llama_supports_mmap()),
        mlock=bool(llama_cpp.llama_supports_mlock()),
        system_info=info,
        cpu_kernels=selfcheck.cpu_kernels(info),
        cpu_amx_flags=[f for f in selfcheck.cpu_flags()[1] if f.startswith("amx")],
        selfcheck=verdict.summary() if verdict else None,
        extra_bufts_ok=verdict.extra_bufts_ok if verdict else None,
    )
