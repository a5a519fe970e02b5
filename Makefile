# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv on first use: torch==2.13.0 first (the local CPU wheel), then musicprobe with its extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.musicprobe-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint notebooks data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,notebooks]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/musicprobe demo --out demo_output

test: $(STAMP)
	$(BIN)/ruff check musicprobe tests scripts
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env notebooks

lint: $(STAMP)
	$(BIN)/ruff check musicprobe tests scripts
	$(BIN)/ruff format --check musicprobe tests scripts || true

notebooks: $(STAMP)  ## re-execute the notebooks in place with their fast parameters (stores checked outputs)
	for nb in notebooks/*.ipynb; do MUSICPROBE_FAST=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb; done

data: $(STAMP)  ## regenerate data_samples/ from its seed
	$(BIN)/python scripts/make_data_samples.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
