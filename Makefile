# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv on first use: torch==2.13.0 first (the local CPU wheel), then musicprobe with its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.musicprobe-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint notebooks notebooks-full data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,notebooks]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/musicprobe demo --out demo_output

# The test command sets the notebooks' fast setting itself, so a user's `make test` and CI run the same suite.
test: $(STAMP)
	$(BIN)/ruff check musicprobe tests scripts
	$(BIN)/python -m pytest -q tests
	MUSICPROBE_FAST=1 $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env notebooks/*.ipynb

lint: $(STAMP)
	$(BIN)/ruff check musicprobe tests scripts
	$(BIN)/ruff format --check musicprobe tests scripts || true

notebooks: $(STAMP)  ## sync each notebook from its percent script, re-execute with the fast parameters (stores outputs)
	for nb in notebooks/*.ipynb; do $(BIN)/jupytext --sync $$nb && MUSICPROBE_FAST=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb; done

notebooks-full: $(STAMP)  ## run every notebook with its full parameters (slow: tens of minutes on 2 cores)
	MUSICPROBE_FAST=0 CI=false $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env notebooks/*.ipynb

data: $(STAMP)  ## regenerate data_samples/ from its seed
	$(BIN)/python scripts/make_data_samples.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
