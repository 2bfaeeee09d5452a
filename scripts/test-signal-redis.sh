#!/usr/bin/env bash
# The signaling server's whole test suite again, with every test server keeping its rooms in
# a real redis-server of its own (ferry-signal --redis) instead of SQLite. The multi-node
# tests (signaling-server/tests/redis_*.rs) already ran in the workspace step.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "SKIP signaling suite on Redis: redis-server is not installed (scripts/install-deps.sh)"
  exit 0
fi
FERRY_SIGNAL_TEST_REDIS=1 cargo test -p ferry-signal --locked
