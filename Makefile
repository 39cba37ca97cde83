# Yizhan — two commands do everything on a machine with only python3:
#   make serve   create .venv, install, start the API on the bundled registry
#   make test    create .venv, install, run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REGISTRY ?= data/zhengzhou.geojson
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint typecheck check bench schema clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/yizhan assets fetch
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/yizhan serve --registry $(REGISTRY) --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check yizhan tests bench
	$(BIN)/ruff format --check yizhan tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

schema: $(STAMP)
	$(BIN)/python -m yizhan.stations.schema

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
