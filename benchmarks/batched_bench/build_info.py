"""Build information of the llama-batched-bench built by ``build.sh``, beside the installed llama-cpp-python's.

Writes a JSON file with: the llama-cpp-python version whose sdist the source came from, the CMake flags given
and the cache's values of the settings that change speed (build type, GGML_NATIVE, OpenMP, repack ...), the
compiler, the binary's ``--version`` text, and ``llama_print_system_info`` of the newly built library and of
the installed wheel's (they must list the same CPU features for a like-with-like comparison; ``same_cpu_features``
says whether they do). Each library is loaded in its own subprocess so the two builds never share a process.

Usage: build_info.py --binary PATH --version V --cmake-cache PATH --flags "..." --out PATH
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from profiler.engine.selfcheck import cpu_kernels

CACHE_KEYS = ("CMAKE_BUILD_TYPE", "CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER", "CMAKE_C_FLAGS", "CMAKE_CXX_FLAGS",
              "BUILD_SHARED_LIBS", "GGML_NATIVE", "GGML_OPENMP", "GGML_CPU_REPACK", "GGML_LLAMAFILE", "GGML_AVX512",
              "GGML_CPU_ALL_VARIANTS", "GGML_BACKEND_DL", "GGML_BLAS", "GGML_CUDA", "LLAMA_CURL")

BUILT_INFO = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.llama_print_system_info.restype = ctypes.c_char_p
print(lib.llama_print_system_info().decode())
"""
INSTALLED_INFO = "from profiler.engine.llamacpp import system_info; print(system_info())"


def cmake_cache(path: Path) -> dict[str, str]:
    """Values of ``CACHE_KEYS`` in a CMakeCache.txt."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line and "=" in line and not line.startswith(("//", "#")):
            key, rest = line.split(":", 1)
            if key in CACHE_KEYS:
                values[key] = rest.split("=", 1)[1]
    return values


def features(system_info: str) -> list[str]:
    """The ``NAME = 1`` entries of a system-info line, sorted."""
    return sorted(cpu_kernels(system_info))


def run(cmd: list[str]) -> str:
    """stdout + stderr of ``cmd`` (stripped), or the error."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except OSError as e:
        return f"error: {e}"
    return (done.stdout + done.stderr).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--cmake-cache", required=True, type=Path)
    ap.add_argument("--flags", default="")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    lib = args.binary.parent / "libllama.so"
    built = run([sys.executable, "-c", BUILT_INFO, str(lib)])
    installed = run([sys.executable, "-c", INSTALLED_INFO])
    info = {
        "binary": str(args.binary),
        "source": f"llama-cpp-python {args.version} sdist (PyPI), vendor/llama.cpp",
        "cmake_flags": args.flags.split(),
        "cmake_cache": cmake_cache(args.cmake_cache),
        "binary_version": run([str(args.binary), "--version"]),
        "system_info_built": built,
        "system_info_installed": installed,
        "same_cpu_features": features(built) == features(installed),
    }
    args.out.write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps({k: info[k] for k in ("binary_version", "same_cpu_features")}, indent=1))
    if not info["same_cpu_features"]:
        print(f"warning: the built library's CPU features differ from the installed wheel's:\n  built:     {built}\n"
              f"  installed: {installed}", file=sys.stderr)


if __name__ == "__main__":
    main()
