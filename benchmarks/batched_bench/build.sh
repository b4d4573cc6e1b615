#!/usr/bin/env bash
# Build llama.cpp's `llama-batched-bench` from the SAME vendored llama.cpp source that the installed
# llama-cpp-python ships (its PyPI sdist carries vendor/llama.cpp), with the CMake settings llama-cpp-python's
# own build uses by default: Release, shared libraries, LLAMA_CURL off, and llama.cpp's defaults otherwise
# (GGML_NATIVE on, i.e. -march=native for this host; OpenMP on; CPU repack on). Only the llama-batched-bench
# target is built. CMAKE_ARGS, if set (as for a custom llama-cpp-python install), is passed on too.
#
# Output (git-ignored): benchmarks/batched_bench/build/bin/llama-batched-bench (a link to cmake/bin) and build-info.json (version,
# CMake flags, compiler, llama.cpp's system info from the new binary's libraries and from the installed wheel).
#
#   benchmarks/batched_bench/build.sh            # or: make batched-bench
#   JOBS=4 benchmarks/batched_bench/build.sh     # parallel compile jobs (default 2)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$HERE/build"
JOBS="${JOBS:-2}"
[ -x "$PY" ] || { echo "error: $PY not found; run make install first (or set PYTHON)" >&2; exit 2; }
command -v cmake >/dev/null || { echo "error: cmake not found; install cmake >= 3.21 and a C++ compiler" >&2; exit 2; }

VERSION="$("$PY" -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")"
SDIST_DIR="$OUT/sdist"
SRC="$OUT/src/llama_cpp_python-$VERSION"
mkdir -p "$SDIST_DIR" "$OUT/src"

sdist="$(ls "$SDIST_DIR"/llama_cpp_python-"$VERSION".tar.gz 2>/dev/null || true)"
if [ -z "$sdist" ]; then
  echo "fetching the llama-cpp-python $VERSION sdist from PyPI (pip's cache is used if it has it)"
  "$PY" -m pip download --quiet --no-binary :all: --no-deps \
    "llama-cpp-python==$VERSION" -d "$SDIST_DIR"
  sdist="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"
fi
if [ ! -f "$SRC/vendor/llama.cpp/CMakeLists.txt" ]; then
  echo "unpacking $sdist"
  tar -xzf "$sdist" -C "$OUT/src"
fi

LLAMA_SRC="$SRC/vendor/llama.cpp"
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_COMMON=ON
             -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF)
# shellcheck disable=SC2206  # CMAKE_ARGS is a space-separated list of -D options, as pip/scikit-build read it
EXTRA=(${CMAKE_ARGS:-})
echo "configuring llama.cpp from $LLAMA_SRC"
cmake -S "$LLAMA_SRC" -B "$OUT/cmake" "${CMAKE_FLAGS[@]}" "${EXTRA[@]}" >"$OUT/configure.log" 2>&1 || { tail -20 "$OUT/configure.log"; exit 1; }
echo "building llama-batched-bench with -j$JOBS (minutes on 2 cores; log: $OUT/build.log)"
cmake --build "$OUT/cmake" --target llama-batched-bench -j "$JOBS" >"$OUT/build.log" 2>&1 || { grep -m5 -B2 -A5 "error:" "$OUT/build.log"; exit 1; }

BIN="$OUT/cmake/bin"  # llama.cpp's CMakeLists puts executables and shared libraries here
ln -sfn cmake/bin "$OUT/bin"
"$PY" "$HERE/build_info.py" --binary "$BIN/llama-batched-bench" --version "$VERSION" \
  --cmake-cache "$OUT/cmake/CMakeCache.txt" --flags "${CMAKE_FLAGS[*]} ${EXTRA[*]:-}" --out "$OUT/build-info.json"
echo "built $OUT/bin/llama-batched-bench"
