#!/usr/bin/env bash
# The vendored rtc-sctp, rtc-ice, rtc and rtc-dtls (see vendor/README.md) are outside the workspace, so `cargo
# test --workspace` does not run their suites: upstream's tests plus the ones for Ferry's patches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked -q --manifest-path vendor/rtc-sctp/Cargo.toml --target-dir target/vendor
echo "vendor: rtc-sctp suite passed"
cargo test --locked -q --manifest-path vendor/rtc-ice/Cargo.toml --target-dir target/vendor
echo "vendor: rtc-ice suite passed"
# rtc's unit tests (the data-channel handler's among them); upstream's examples and integration
# tests, and the dev-dependencies only they use, are not vendored.
cargo test --locked -q --manifest-path vendor/rtc/Cargo.toml --target-dir target/vendor --lib
echo "vendor: rtc unit suite passed"
# rtc-dtls carries no dev-dependencies of its own, so it builds from the workspace's lock file.
cargo test --locked -q -p rtc-dtls
echo "vendor: rtc-dtls suite passed"
