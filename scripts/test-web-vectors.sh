#!/usr/bin/env bash
# The browser peer's engine against the native one: builds crates/ferry-wasm, then runs the
# Vitest suite that must reproduce every value of tests/vectors/ferry-v1.json (written by
# crates/ferry-core/tests/vectors.rs, which `cargo test` runs and which fails when the file
# is stale). scripts/test-ui.sh runs the other UI tests and leaves this one to here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-wasm.sh
cd ui
[ -d node_modules ] || npm ci --no-audit --no-fund
npx vitest run tests/vectors.test.ts
