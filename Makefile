# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -c constraints.txt -e '.[dev,tensorboard]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m regaze.demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

# Everything, the slow tests included (multi-process DDP, realism detector, long learnability runs).
test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
