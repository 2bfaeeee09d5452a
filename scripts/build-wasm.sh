#!/usr/bin/env bash
# Builds crates/ferry-wasm (BLAKE3 pieces and LZ4 for the browser peer) into
# ui/src/web/ferry.wasm. Needs the wasm32-unknown-unknown target (scripts/install-deps.sh).
# SIMD kernels on: every browser the web peer supports has wasm SIMD.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || { echo "build-wasm: the wasm32-unknown-unknown target is missing (bash scripts/install-deps.sh)" >&2; exit 1; }
# Per-target flags, so host builds sharing target/ keep their own fingerprints.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128"
cargo build -p ferry-wasm --locked --release --target wasm32-unknown-unknown --features simd
cp target/wasm32-unknown-unknown/release/ferry_wasm.wasm ui/src/web/ferry.wasm
echo "build-wasm: ui/src/web/ferry.wasm ($(wc -c <ui/src/web/ferry.wasm) bytes)"
