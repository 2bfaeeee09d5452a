#!/usr/bin/env bash
# Builds the binaries the test scripts run (ferry, ferry-signal, ferry-app, ferry-bench).
# Always the whole workspace with all targets: cargo unifies features over what one command
# selects, so `-p ferry-signal` after `cargo test --workspace` resolved other features and
# recompiled ~190 crates a second time (4 such builds cost CI about 15 minutes). This
# selection resolves like `cargo test --workspace`, so after it everything is fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q --workspace --all-targets
