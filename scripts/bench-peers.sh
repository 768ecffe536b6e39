#!/usr/bin/env bash
# Installs the benchmarks' peers (bench/peers/package.json: better-sqlite3) into
# bench/peers/node_modules, once; `npm run bench` calls it, `npm ci` never does.
# better-sqlite3 downloads a prebuilt binary where it can; where it cannot (these machines
# reach only the npm registry) it compiles SQLite and its binding with node-gyp (python3,
# make, g++): 92 s of CPU, 6 min of wall time on a busy 2-core machine (2026-12-04). When
# that fails the runner skips the better-sqlite3-tx peer and says so; the rest runs.
# Usage: scripts/bench-peers.sh
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/bench/peers"

if node -e "require('$peers/node_modules/better-sqlite3')(':memory:').close()" 2>/dev/null; then
  exit 0
fi

echo "bench-peers: installing better-sqlite3 for the peer comparison into bench/peers/ (once)." >&2
echo "bench-peers: without a downloadable prebuilt binary it compiles from source with node-gyp (python3, make, g++): 1.5 min of CPU, 6 min on a busy 2-core machine." >&2
started=$SECONDS
if npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error >&2 &&
  node -e "require('$peers/node_modules/better-sqlite3')(':memory:').close()"; then
  echo "bench-peers: better-sqlite3 installed in $((SECONDS - started)) s." >&2
else
  echo "bench-peers: better-sqlite3 could not be installed (see above); the better-sqlite3-tx peer will be skipped." >&2
fi
exit 0
