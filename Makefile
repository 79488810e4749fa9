# One virtual environment, created and filled from pyproject.toml when missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: install run test lint bench eval
install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run $(if $(CONFIG),--config $(CONFIG),)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true
	$(BIN)/mypy

eval: $(STAMP)
	$(BIN)/python -m bot eval ../shared/qa/dev.jsonl

bench: $(STAMP)
	$(BIN)/python -m bot bench
