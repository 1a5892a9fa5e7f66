#!/usr/bin/env bash
# Idempotent project setup: a Python venv from requirements.lock, the pinned npm tools
# (solc-js, anvil, forge, cast, OpenZeppelin) from package-lock.json, and the solc
# command-line front that forge and ape-solidity share. Only package registries are used.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SOLC_VERSION=$(node -p 'require("./package-lock.json").packages["node_modules/solc"].version')

step() { printf '==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ requirements.lock -nt .venv/.installed ]; then
  step "installing Python packages from requirements.lock"
  .venv/bin/pip install --quiet --upgrade pip 2>&1 | grep -v 'is ignored' || true
  .venv/bin/pip install --quiet -r requirements.lock 2>&1 | grep -v 'is ignored' || true
  .venv/bin/pip check
  touch .venv/.installed
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm tools from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p .toolchain/solcx
ln -sfn ../../tools/solc.js ".toolchain/solcx/solc-v${SOLC_VERSION}"
step "toolchain ready: $(node tools/solc.js --version | tail -n 1), $(node_modules/.bin/anvil --version | head -n 1)"

tools/build-webapp.sh

# The browser tests drive Debian's Chromium (tests/workers/test_webapp_browser.py): installed
# when missing and apt-get is usable as root; otherwise those tests skip and say why.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  step "installing Debian's chromium for the browser tests"
  apt-get install -y -qq chromium >/dev/null 2>&1 || step "chromium could not be installed: the browser tests will skip"
fi
