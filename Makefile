# Lever. Every target does the set-up it needs (venv, npm packages, the solc bridge, Chromium).
# `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SOLC_VERSION := 0.8.28
SOLCX_DIR := $(CURDIR)/$(VENV)/solcx
SOLC_BIN := $(SOLCX_DIR)/solc-v$(SOLC_VERSION)

export PATH := $(CURDIR)/tools/bin:$(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(SOLCX_DIR)
# ape starts its Anvil on a free port (not 8545, which a developer's own node may hold).
export APE_FOUNDRY_HOST ?= auto

.PHONY: help setup test unit demo node compile layouts lint format docs slither browser postgres fuzz fuzz-nightly \
	mutants bench-gas bench-keeper bench-fuzz bench-attacks bench-index stress bench-stress clean

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed $(SOLC_BIN) ## Python venv, npm packages, the solc bridge

# Python: a venv with the package and its pinned dependency tree (constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/pip || $(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	tools/venv-hook.sh $(CURDIR) >> $(VENV)/bin/activate
	touch $@

# npm: solc-js, Anvil, forge, Hardhat 2, OpenZeppelin, Chainlink and Pyth interfaces, as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# py-solc-x looks for `solc-v<version>` in $SOLCX_BINARY_PATH; this one runs solc-js.
$(SOLC_BIN): tools/solc-bridge.cjs node_modules/.installed
	mkdir -p $(SOLCX_DIR)
	printf '#!/bin/sh\nexec node "%s/tools/solc-bridge.cjs" "$$@"\n' "$(CURDIR)" > $@
	chmod +x $@

compile: setup ## Compile the contracts (ape; --force: incremental builds miss library changes)
	ape compile --force

layouts: setup ## Storage layouts for the fuzz suite's reads (forge build, cached until a contract changes)
	forge build

# Debian's Chromium for the dashboard's browser tests (Playwright cannot download its own here).
browser: ## Chromium for the browser tests (apt)
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Debian's PostgreSQL 15 for the indexer's tests on a real server (each test starts its own).
postgres: ## PostgreSQL server binaries for the indexer tests (apt)
	@test -x /usr/lib/postgresql/15/bin/postgres || (apt-get update && apt-get install -y postgresql-15)

# Everything CI runs: lint and formatting, the docs (strict), Slither, the fuzz suite in process,
# then every test on Anvil (the default network; it includes a short fuzz run on Anvil, the
# keeper, the command line, the dashboard in a real browser), then the order flows on Hardhat.
test: browser postgres compile lint docs slither fuzz ## The whole suite (what CI runs)
	ape test tests -q
	ape test tests/test_smoke.py tests/test_orders.py -q --network ethereum:local:hardhat

unit: setup ## The pure tests, no chain (well under 30 s)
	python -m pytest tests/unit tests/keeper/test_core.py tests/fuzz/test_machine_parts.py -p no:ape_test -q \
		-k "not drives_the_machine"

# Slither over the contracts through forge build (foundry.toml: the solc-js bridge as compiler);
# fails on a high or medium finding not explained in security/slither-triage.toml.
slither: setup ## Static analysis; every high/medium finding triaged
	python scripts/slither_check.py

lint: setup ## ruff (lint and format), mypy strict, forge fmt
	ruff check src tests scripts
	ruff format --check src tests scripts
	mypy src
	forge fmt --check

format: setup ## Format Python and Solidity in place
	ruff format src tests scripts
	ruff check --fix src tests scripts
	forge fmt

docs: setup ## Build the documentation (mkdocs, strict: a broken link fails)
	mkdocs build --strict --site-dir build/site

# LEVER_FUZZ_PROFILE: ci (default, >= 20,000 steps), nightly (>= 1,000,000 steps), dev.
fuzz: compile layouts ## The fuzz suite in process (two cores)
	python -m pytest tests/fuzz -p no:ape_test -n 2 -q

fuzz-nightly: compile layouts ## The long fuzz run, both backends
	LEVER_FUZZ_PROFILE=nightly python -m pytest tests/fuzz -p no:ape_test -n 2 -q
	LEVER_FUZZ_PROFILE=nightly ape test tests/fuzz -q -k on_anvil

mutants: compile layouts ## Deliberately broken contracts: the ci profile must catch every one
	python scripts/mutants.py

bench-fuzz: compile layouts ## Steps/s on both backends, invariants, adversaries, mutants -> build/bench/fuzz.json
	python scripts/bench_fuzz.py

bench-attacks: compile ## The named attacks, each measured in USDC -> build/bench/attacks.json
	LEVER_ATTACKS_JSON=build/bench/attacks.json ape test tests/test_economics.py -q

demo: compile ## Deploy, price service, keeper and traders on a local Anvil
	lever demo --network ethereum:local:foundry

node: setup ## A local Anvil on 8545
	anvil --port 8545

# Anvil on a free port (other nodes may hold 8545); also writes build/bench/gas-profile.json.
bench-gas: compile ## Gas of every user path on a live market, and where it goes -> build/bench/gas.json (3 minutes)
	APE_FOUNDRY_HOST=$${APE_FOUNDRY_HOST:-auto} ape run bench_gas --network ethereum:local:foundry

# The keeper's benchmark -> build/bench/keeper.json: 10,000 accounts (a crash against a naive keeper;
# 3,000 orders due at once). Several minutes; not part of make test. It runs on an Anvil of its own,
# on a free port, without the step tracing ape's launcher enables (which slows big batches), with a
# 30M block gas limit and a base fee starting at 0 (the seeding fills ~100 blocks: from 1 gwei the
# EIP-1559 base fee would grow past what the test accounts hold).
bench-keeper: compile ## The keeper at 10,000 accounts and 3,000 orders -> build/bench/keeper.json
	@mkdir -p build/bench; \
	port=$$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	anvil --port $$port --gas-limit 30000000 --base-fee 0 --silent & pid=$$!; \
	trap "kill $$pid" EXIT; \
	for i in $$(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null && break; sleep 0.1; done; \
	ape run bench_keeper --network http://127.0.0.1:$$port

# 10,000 accounts' history, indexed into SQLite (events/s), then the dashboard's pages over it
# (p95 latency) -> build/bench/index.json. A few minutes; its own Anvil without step tracing.
BENCH_INDEX_PORT ?= 8547
bench-index: compile ## The indexer and dashboard at 10,000 accounts -> build/bench/index.json
	@mkdir -p build; anvil --port $(BENCH_INDEX_PORT) --disable-block-gas-limit --silent & echo $$! > build/.bench-index-anvil.pid; \
	sleep 2; \
	ape run bench_index --network http://127.0.0.1:$(BENCH_INDEX_PORT); status=$$?; \
	kill $$(cat build/.bench-index-anvil.pid); rm -f build/.bench-index-anvil.pid; exit $$status

# The stress lab (`lever stress`): a short default sweep on local processes and its report
# (build/stress/default/report.{json,html}), then the recommendation for the default budget.
stress: setup ## A short stress sweep and the margin it recommends -> build/stress/default/
	lever stress run --name default
	lever stress recommend --report build/stress/default/report.json

# Stress-lab figures -> build/bench/stress.json: engines' speed, their cross-check, the two replays
# on Anvil, a 1,000-cell sweep and the Dask speed-up (about ten minutes; not part of make test).
bench-stress: compile ## The stress lab's speed and agreement figures -> build/bench/stress.json
	python scripts/bench_stress.py

clean: ## Remove build outputs
	rm -rf build .build contracts/.cache

