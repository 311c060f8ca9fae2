# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all test-avx2 test-gpu bench bench-gpu clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt pip
	$(PY) -m pip install -c constraints.txt --build-constraint constraints.txt -e '.[dev,tensorboard,photo,export,app]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m regaze.cli demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

# Everything, the slow tests included (multi-process DDP, realism detector, long learnability runs).
test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

# The default suite with ATen's and oneDNN's AVX2 kernels on any x86 CPU (this project's machines are
# AVX2 or AVX-512; torch 2.13.0's oneDNN crashed on AVX2 only, see regaze/model/layers.py:PointwiseConv2d).
test-avx2: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

# On a CUDA machine: the GPU recipe's training and inference rates, peak memory and the data loader's rate
# (benchmarks/gpu.py, about 5 minutes); without a GPU it says so and exits 2.
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu

# The tests marked `gpu` (a short CUDA training run, save / resume on CUDA, the GPU benchmark's figures).
test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
