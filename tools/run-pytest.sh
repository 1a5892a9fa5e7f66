#!/usr/bin/env bash
# Runs the Python suites: the ape suites through `ape test` (ape's foundry provider
# starts anvil) and the worker suites with plain pytest (they start their own anvil,
# Redis, Celery workers). pytest's exit code 5 ("no tests collected") is an error here:
# a suite directory that collects nothing means tests went missing.
#
# The worker suites run on PYTEST_PROCESSES processes (pytest-xdist, default 3: they mostly
# wait on nodes and workers), one test file at a time each, in collection order
# (tests/workers/conftest.py puts the longest files first). Each test file starts its own anvils,
# Redis, SQLite file or PostgreSQL database on free ports and fresh names, so the processes
# share nothing. PYTEST_PROCESSES=0 runs them in this process, one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."

run_suite() {
  local name=$1; shift
  echo "==> $name"
  "$@"
  local code=$?
  if [ "$code" -eq 5 ]; then
    echo "error: the $name suite collected no tests" >&2
    return 1
  fi
  return "$code"
}

status=0
run_suite "ape suites (tests/ape)" ape test tests/ape -q -p no:cacheprovider "$@" || status=1
run_suite "worker suites (tests/workers)" pytest -p no:ape_test -q tests/workers \
  -n "${PYTEST_PROCESSES:-3}" --dist loadfile --no-loadscope-reorder --durations=15 "$@" || status=1
exit $status
