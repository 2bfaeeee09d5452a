#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests, UI tests, real-window
# app E2E, network simulation. The same command CI runs (after scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# `ferry send` announces its room on the local network; tests keep to loopback and their own
# namespaces (scripts/test-nearby.sh turns it back on inside its namespaces).
export FERRY_NO_ANNOUNCE=1

t0=$(date +%s)
# Each step says when it starts, so a slow CI run shows where its time went.
step() { printf '\n==> [%ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

# A fresh machine gets its packages here; on a prepared one this only checks (a few seconds).
if [ "${FERRY_SKIP_INSTALL:-0}" != 1 ]; then
  step "install-deps"
  bash scripts/install-deps.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

for part in scripts/test-*.sh; do
  [ -e "$part" ] || continue
  step "$part"
  bash "$part"
done
step "all passed"
