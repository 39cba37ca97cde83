# Yizhan — two commands do everything on a machine with only python3:
#   make serve   create .venv, install, start the API on the bundled registry
#   make test    create .venv, install, run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REGISTRY ?= yizhan/data/zhengzhou.geojson
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-all lint typecheck contracts check fuzz wheel bench schema clean venv demo-seoul demo-helsinki

venv: $(STAMP)

# The asset manifest is a prerequisite too: a new pin is fetched by the next `make`.
$(STAMP): pyproject.toml yizhan/assets.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/yizhan assets fetch
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/yizhan serve --registry $(REGISTRY) --host $(HOST) --port $(PORT)

# The bundled Seoul study (heat shelters, people aged 65+): coverage, gaps and five suggested
# sites on real data, in one HTML file that opens offline.
demo-seoul: $(STAMP)
	$(BIN)/yizhan map --study seoul --sites 5 --lang en -o seoul.html
	@echo "open seoul.html"

# Walking distance on real streets: central Helsinki's public toilets, fountains, libraries
# and community centres (OpenStreetMap, ODbL) as the registry, its street network built from
# the bundled extract, served with it. Try /nearest?lon=24.9445&lat=60.1675&metric=walk,
# /isochrone?lon=24.9445&lat=60.1675&minutes=5,10,15, /coverage?metric=walk&minutes=5 and
# /maps/coverage?lang=en (the 15-minute walking areas beside the 1 km circles).
HELSINKI_NETWORK ?= build/helsinki.network
demo-helsinki: $(STAMP)
	mkdir -p $(dir $(HELSINKI_NETWORK))
	$(BIN)/yizhan network build tests/data/network/helsinki.osm.pbf -o $(HELSINKI_NETWORK)
	YIZHAN_DISTRICTS=tests/data/network/helsinki-quarters.geojson YIZHAN_HEX_SIZE_M=100 \
	YIZHAN_TIMEZONE=Europe/Helsinki \
	$(BIN)/yizhan serve --registry yizhan/data/helsinki-amenities.geojson \
	    --network $(HELSINKI_NETWORK) --host $(HOST) --port $(PORT)

# `make test`: the suite without the suites marked slow (CI runs them: `make check`).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check yizhan tests bench
	$(BIN)/ruff format --check yizhan tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The layer contracts in pyproject.toml ([tool.importlinter]).
contracts: $(STAMP)
	$(BIN)/lint-imports

# Everything CI checks, the same way every time: lint, types, layers, the whole suite.
check: lint typecheck contracts test-all

# Exploratory fuzzing: many more schemathesis examples, fresh randomness each run.
fuzz: $(STAMP)
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=200 $(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider

# A wheel with the bundled data and assets (tests/test_packaging.py installs one too).
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -w dist .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

schema: $(STAMP)
	$(BIN)/python -m yizhan.stations.schema

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
