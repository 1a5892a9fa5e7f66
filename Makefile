# DIMO Phase 1.2 — every command a developer or CI types. `make demo` and `make test`
# install what is missing first (`make setup` is idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.toolchain/solcx
export PYTHONPATH := $(CURDIR)
# Invariant depth for `make test`: 64 runs x 200 calls = 12,800 calls per invariant.
FORGE_PROFILE ?= ci

PY := .venv/bin/python

.PHONY: help setup build test test-contracts test-forge test-python lint lint-python lint-solidity snapshot demo deploy up down status console bench clean lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## venv, pinned npm tools and the shared solc front (idempotent)
	@tools/setup.sh

build: setup ## compile contracts/ with forge and ape (same sources, same compiler)
	@forge build
	@ape compile

# The suites run at the same time (the Python ones mostly wait on nodes and workers); each one's
# output is printed whole when it ends; each runs to its end and `make test` fails if any failed.
test: build ## every suite at once: forge (unit, fuzz, invariant) then slither, pytest (ape, workers), ruff
	@$(MAKE) --no-print-directory --keep-going -j3 --output-sync=recurse test-python test-contracts lint-python

# forge first, then slither: both are CPU-bound and the Python suites need a core meanwhile.
test-contracts:
	@$(MAKE) --no-print-directory test-forge
	@$(MAKE) --no-print-directory lint-solidity

test-forge:
	FOUNDRY_PROFILE=$(FORGE_PROFILE) forge test
	forge snapshot --check --tolerance 2 --no-match-test 'testFuzz|invariant'

test-python:
	@tools/run-pytest.sh

lint: lint-python ## ruff over the Python code, slither over the contracts
	@$(MAKE) --no-print-directory lint-solidity

lint-python:
	ruff check .
	ruff format --check .

# slither compiles with `forge build --force --skip tests`: into .slither/, never into the out/
# and cache/ that forge tests and the Python suites (test contracts' artifacts) read meanwhile.
lint-solidity: ## slither: fails on any high or medium finding not triaged in slither.db.json (docs/slither-triage.md)
	FOUNDRY_OUT=.slither/out FOUNDRY_CACHE_PATH=.slither/cache slither . --fail-medium --triage-database slither.db.json

snapshot: build ## rewrite the committed gas snapshot (.gas-snapshot)
	forge snapshot --no-match-test 'testFuzz|invariant'

deploy: build ## deploy every contract to RPC_URL from DEPLOYER_KEY; REDEPLOY=1 to replace; PRODUCTION=1: the deployer keeps no role
	$(PY) -m scripts.deploy $(if $(REDEPLOY),--redeploy,) $(if $(PRODUCTION),--production,)

demo: build ## start anvil, deploy, run the story, stop everything
	$(PY) -m scripts.demo

bench: build ## print gas and throughput tables with ratios against baselines
	$(PY) -m scripts.bench

clean: ## remove build output and local state (keeps .venv and node_modules)
	rm -rf out cache .slither contracts/.cache .build .run deployments/local.json .pytest_cache .ruff_cache build *.egg-info

lock: ## re-resolve pyproject.toml (the runtime and every extra: `.[dev]`) into requirements.lock
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet '.[dev]'
	.lock-venv/bin/pip freeze --exclude dimo-workers > requirements.lock
	rm -rf .lock-venv build *.egg-info

up: build ## start the local stack in the background (.run/stack.json)
	$(PY) -m scripts.stack up

down: ## stop everything `make up` started
	$(PY) -m scripts.stack down

status: ## what the local stack runs, and where
	$(PY) -m scripts.stack status

console: build ## ape console on the devnet at 127.0.0.1:8545 with the deployment loaded
	ape console --network ethereum:local:node
