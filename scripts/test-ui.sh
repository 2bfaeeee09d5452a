#!/usr/bin/env bash
# UI: type check and Vitest unit tests (view logic against mocked Tauri IPC).
set -euo pipefail
cd "$(dirname "$0")/../ui"
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc --noEmit
npx vitest run
