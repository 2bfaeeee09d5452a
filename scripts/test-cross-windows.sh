#!/usr/bin/env bash
# The desktop app ships for Windows, but CI here is Linux: type-check the engine, the CLI and
# the signaling server for x86_64-pc-windows-gnu (mingw builds ring's C parts), so unix-only
# code in shared paths fails here rather than on a user's machine. The app itself is built for
# Windows by .github/workflows/release.yml (WebView2 needs the MSVC toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "cross-windows: SKIPPED: Rust target $TARGET is not installed (rustup target add $TARGET)"
  exit 0
fi
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  echo "cross-windows: SKIPPED: x86_64-w64-mingw32-gcc missing (apt-get install gcc-mingw-w64-x86-64)"
  exit 0
fi
# Own target dir: a different target would evict nothing, but keeps host builds' locks free.
export CARGO_TARGET_DIR="${FERRY_CROSS_TARGET_DIR:-target/cross-windows}"
start=$(date +%s)
cargo check --locked --target "$TARGET" -p ferry-proto -p ferry-core -p ferry-cli -p ferry-signal
echo "cross-windows: ok ($(( $(date +%s) - start )) s)"
