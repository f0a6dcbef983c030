# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and (re)installs when pyproject.toml changed, then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/tradeagent demo

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check tools portfolio agent prompts evals memory schedules tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/bench_indicators.py
	$(PY) benchmarks/bench_graph.py
	$(PY) benchmarks/bench_baselines.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_quant.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
