#!/usr/bin/env bash
# The vendored rtc-sctp (see vendor/README.md) is outside the workspace, so `cargo test
# --workspace` does not run its suite: upstream's tests plus the ones for Ferry's patch.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked -q --manifest-path vendor/rtc-sctp/Cargo.toml --target-dir target/vendor
echo "vendor: rtc-sctp suite passed"
