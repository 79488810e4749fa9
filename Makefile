# One virtual environment, created and filled from pyproject.toml when missing or stale:
# `make run` installs what the bot needs, `make test` adds the development tools.
# (PYTHONWARNINGS=ignore: setuptools' editable-install notices are for package authors, not users.)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "installing the bot's dependencies into $(VENV) (the first time takes about a minute)…"
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e .
	touch $(RUNTIME)

$(DEV): pyproject.toml | $(BIN)/python
	@echo "installing the bot's and the development tools' dependencies into $(VENV)…"
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[dev]'
	touch $(RUNTIME) $(DEV)

.PHONY: install run test lint bench eval
install: $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/python -m bot run $(if $(CONFIG),--config $(CONFIG),)

test: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy

eval: $(RUNTIME)
	$(BIN)/python -m bot eval $(wildcard ../shared/qa/dev.jsonl) tests/data/qa_extra.jsonl tests/data/qa_holdout.jsonl tests/data/qa_seeds_blind.jsonl

bench: $(DEV)
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks.bench
