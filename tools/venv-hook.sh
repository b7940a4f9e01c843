#!/bin/sh
# Printed into .venv/bin/activate so that plain `ape compile` / `ape test` work in the
# activated venv: Anvil (through tools/bin) and Hardhat from node_modules, and the solc-js bridge for py-solc-x.
cat <<HOOK

# --- lever: npm tools and the solc-js bridge ---
export PATH="$1/tools/bin:$1/node_modules/.bin:\$PATH"
export SOLCX_BINARY_PATH="$1/.venv/solcx"
HOOK
