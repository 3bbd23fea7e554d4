# plugmesh: `make run` starts the whole mesh, `make test` runs the tests.
# The Makefile builds its own virtual environment; nothing else needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv debs node-modules gen gen-check run test lint breaking format protodeps clean

# What `make breaking` compares protos/ against: a branch, tag or commit.
AGAINST ?= main

help:
	@echo "make run    start the whole mesh (plugmesh up)"
	@echo "make test   run the test suite"
	@echo "make lint   ruff, mypy, buf lint/format, generated-code check"
	@echo "make gen    regenerate Python code from protos/"
	@echo "make breaking AGAINST=<rev>   buf breaking of protos/ against a revision"

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The Node test plugin's packages (tests/node), exactly as its committed lock file says.
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

node-modules: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# Debian packages some tests need (tools/debian-packages.txt): installed when missing.
debs:
	tools/install_debs.sh

protodeps: $(STAMP)
	$(BIN)/python tools/protodeps.py

gen: protodeps
	$(BIN)/python tools/gen_protos.py

gen-check: protodeps
	$(BIN)/python tools/gen_protos.py --check

run: $(STAMP)
	$(BIN)/plugmesh up

test: $(STAMP) $(NODE_STAMP) debs
	$(BIN)/pytest

lint: protodeps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code protos
	$(BIN)/python tools/gen_protos.py --check

breaking: protodeps
	rm -rf .build/against && mkdir -p .build/against/.build
	git archive $(AGAINST) protos buf.yaml | tar -x -C .build/against
	cp -r .build/protodeps .build/against/.build/protodeps
	$(BIN)/buf breaking --against .build/against

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/buf format -w protos

clean:
	rm -rf $(VENV) .build .mypy_cache .ruff_cache .pytest_cache $(NODE_DIR)/node_modules
