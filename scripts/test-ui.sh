#!/usr/bin/env bash
# UI: type check and Vitest unit tests (view logic against mocked Tauri IPC).
set -euo pipefail
cd "$(dirname "$0")/../ui"
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc --noEmit
# The web engine's vectors need the wasm build: scripts/test-web-vectors.sh runs them.
npx vitest run --exclude tests/vectors.test.ts
