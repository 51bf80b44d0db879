# One virtual environment, .venv, built in two layers from the repository's own files (torch==2.13.0, the CPU wheel,
# and every other version pinned by requirements-dev.txt):
#   make demo   installs what a user needs to run the demo: flowsched with its plot extra (about 1.2 GB, mostly torch)
#   make test   adds the development set on top (pytest, hypothesis, diffusers, numba, Triton's compiler ...)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
USER_STAMP := $(VENV)/.installed-user
DEV_STAMP  := $(VENV)/.installed-dev

.PHONY: demo test test-fast test-diffusers-old bench lint clean spec-sweep gpu-check

$(PY):
	$(PYTHON) -m venv $(VENV)

$(USER_STAMP): pyproject.toml requirements-dev.txt | $(PY)
	$(PIP) install -c requirements-dev.txt -e '.[plot]'
	touch $@

$(DEV_STAMP): $(USER_STAMP) requirements-dev.txt pyproject.toml
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

demo: $(USER_STAMP)
	$(VENV)/bin/flowsched plan --out out/plan.safetensors --plot out/schedule.png

# everything, slow tests included (what CI runs)
test: $(DEV_STAMP)
	$(PY) -m pytest -q

# the inner loop: without the tests marked slow (each takes seconds: subprocesses, the Triton interpreter, a wheel)
test-fast: $(DEV_STAMP)
	$(PY) -m pytest -q -m "not slow"

# the diffusers adapter's tests against the older diffusers of requirements-diffusers-old.txt, in a virtual environment
# of their own (.venv is not touched); the other versions are requirements-dev.txt's
OLD_VENV  := .venv-diffusers-old
OLD_STAMP := $(OLD_VENV)/.installed
ADAPTER_TESTS := tests/test_diffusers_standin.py tests/test_integration_diffusers.py \
                 tests/test_integration_diffusers_partial.py tests/test_integration_diffusers_per_token.py

$(OLD_STAMP): requirements-dev.txt requirements-diffusers-old.txt
	$(PYTHON) -m venv $(OLD_VENV)
	awk -F'==' 'NR == FNR { if (/^[A-Za-z]/) own[$$1]; next } /^[A-Za-z]/ && !($$1 in own)' \
		requirements-diffusers-old.txt requirements-dev.txt > $(OLD_VENV)/constraints.txt
	$(OLD_VENV)/bin/python -m pip --quiet --disable-pip-version-check install \
		-c $(OLD_VENV)/constraints.txt -r requirements-diffusers-old.txt
	touch $@

test-diffusers-old: $(OLD_STAMP)
	PYTHONPATH=src $(OLD_VENV)/bin/python -m pytest -q -p no:cacheprovider $(ADAPTER_TESTS)

# every 32-bit word through the compiled (numba) transform against the numpy one: about a minute on 2 cores
spec-sweep: $(DEV_STAMP)
	$(PY) tests/spec_sweep.py

# every GPU check in one script: portable noise on a CUDA GPU (the kernel's self-check, bit identity with the CPU,
# timings) and the stochastic samplers' and euler_frames' trajectories, CPU vs CUDA bit for bit ->
# benchmarks/results/gpu.md. Runs with any Python that has a CUDA build of torch (GPU_PYTHON), from the source tree.
GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=src $(GPU_PYTHON) benchmarks/gpu_check.py

bench: $(DEV_STAMP)
	$(PY) benchmarks/run_all.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) $(OLD_VENV) out build dist src/*.egg-info .pytest_cache .hypothesis
