# One environment for everything: .venv, pinned by requirements-dev.txt (torch==2.13.0 CPU wheel).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean spec-sweep gpu-check

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

# every GPU check in one script: portable noise on a CUDA GPU (bit identity with the CPU, timings) and the stochastic
# samplers' and euler_frames' trajectories, CPU vs CUDA bit for bit -> benchmarks/results/gpu.md. Runs with any
# Python that has a CUDA build of torch (GPU_PYTHON), from the source tree, nothing to install.
GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=src $(GPU_PYTHON) benchmarks/gpu_check.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) out build src/*.egg-info .pytest_cache .hypothesis
