# Lever — every target does the set-up it needs (venv, npm packages, the solc bridge).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SOLC_VERSION := 0.8.28
SOLCX_DIR := $(CURDIR)/$(VENV)/solcx
SOLC_BIN := $(SOLCX_DIR)/solc-v$(SOLC_VERSION)

export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(SOLCX_DIR)

.PHONY: setup test demo node bench-gas bench-keeper bench-fuzz fuzz fuzz-nightly mutants compile clean lint slither

setup: $(VENV)/.installed node_modules/.installed $(SOLC_BIN)

# Python: a venv with the package and its pinned dependency tree (constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	tools/venv-hook.sh $(CURDIR) >> $(VENV)/bin/activate
	touch $@

# npm: solc-js, Anvil, Hardhat 2, OpenZeppelin, Chainlink interfaces — exactly as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# py-solc-x looks for `solc-v<version>` in $SOLCX_BINARY_PATH; this one runs solc-js.
$(SOLC_BIN): tools/solc-bridge.cjs node_modules/.installed
	mkdir -p $(SOLCX_DIR)
	printf '#!/bin/sh\nexec node "%s/tools/solc-bridge.cjs" "$$@"\n' "$(CURDIR)" > $@
	chmod +x $@

# --force: ape's incremental compile can miss a change in an imported library.
compile: setup
	ape compile --force

# Slither (every high/medium finding triaged), the invariant fuzz suite in process (eight shards
# over the two cores), then the suite on Anvil (the real node, the default network; it includes a
# short fuzz run on Anvil), then on EthTester.
test: compile lint slither fuzz
	ape test tests -q
	ape test tests -q --network ethereum:local:test

# Slither over the contracts through forge build (foundry.toml: the solc-js bridge as compiler);
# fails on a high or medium finding not explained in security/slither-triage.toml.
slither: setup
	python scripts/slither_check.py

# LEVER_FUZZ_PROFILE: ci (default, >= 20,000 steps), nightly (>= 1,000,000 steps), dev.
fuzz: compile
	python -m pytest tests/fuzz -p no:ape_test -n 2 -q

fuzz-nightly: compile
	LEVER_FUZZ_PROFILE=nightly python -m pytest tests/fuzz -p no:ape_test -n 2 -q
	LEVER_FUZZ_PROFILE=nightly ape test tests/fuzz -q -k on_anvil

# Deliberately broken contracts (scripts/mutants.py): the ci profile must catch every one.
mutants: compile
	python scripts/mutants.py

# Steps/s on both backends and the mutation score -> build/bench/fuzz.json (several minutes).
bench-fuzz: compile
	python scripts/bench_fuzz.py

demo: compile
	lever demo --network ethereum:local:foundry

node: setup
	anvil --port 8545

# Gas per operation on a live market -> build/bench/gas.json (a minute). Anvil on a free port
# (other nodes may hold 8545); LEVER_GAS_PROFILE=1 adds build/bench/gas-profile.json.
bench-gas: compile
	APE_FOUNDRY_HOST=$${APE_FOUNDRY_HOST:-auto} ape run bench_gas --network ethereum:local:foundry

# 10,000 accounts and a naive baseline: several minutes, not part of make test. It runs on its
# own Anvil, started without the step tracing ape's launcher enables (which slows big batches).
BENCH_PORT ?= 8546
bench-keeper: compile
	@anvil --port $(BENCH_PORT) --gas-limit 30000000 --silent & echo $$! > build/.bench-anvil.pid; \
	sleep 2; \
	ape run bench_keeper --network http://127.0.0.1:$(BENCH_PORT); status=$$?; \
	kill $$(cat build/.bench-anvil.pid); rm -f build/.bench-anvil.pid; exit $$status

lint: setup
	ruff check src tests scripts
	mypy src

clean:
	rm -rf build .build contracts/.cache
