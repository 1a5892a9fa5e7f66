#!/usr/bin/env bash
# Builds the web app (webapp/ -> webapp/dist, served by the gateway at /app) with the pinned
# vite when a source is newer than the last build, or when FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=webapp/dist/index.html
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$stamp" ] \
  || [ -n "$(find webapp -path webapp/dist -prune -o -type f -newer "$stamp" -print -quit)" ] \
  || [ package-lock.json -nt "$stamp" ]; then
  printf '==> building the web app (webapp/dist)\n'
  node_modules/.bin/vite build webapp --logLevel warn
fi
