# One environment for everything: .venv, pinned by requirements-dev.txt (torch==2.13.0 CPU wheel).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean spec-sweep

$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flowsched plan --out out/plan.safetensors --plot out/schedule.png

test: $(STAMP)
	$(PY) -m pytest -q

# every 32-bit word through the compiled (numba) transform against the numpy one: about a minute on 2 cores
spec-sweep: $(STAMP)
	$(PY) tests/spec_sweep.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) out build src/*.egg-info .pytest_cache .hypothesis
