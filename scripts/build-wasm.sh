#!/usr/bin/env bash
# Builds crates/ferry-wasm (BLAKE3 pieces and LZ4 for the browser peer) into ui/src/web/:
# ferry.wasm with BLAKE3's SIMD kernels, ferry-scalar.wasm without, for a browser that has
# no wasm SIMD (`simdSupported()` in ui/src/web/wasm.ts picks one). Needs the
# wasm32-unknown-unknown target (scripts/install-deps.sh). Cargo keeps both builds cached.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || { echo "build-wasm: the wasm32-unknown-unknown target is missing (bash scripts/install-deps.sh)" >&2; exit 1; }
out=target/wasm32-unknown-unknown/release/ferry_wasm.wasm
cargo build -p ferry-wasm --locked --release --target wasm32-unknown-unknown
cp "$out" ui/src/web/ferry-scalar.wasm
# Per-target flags, so host builds sharing target/ keep their own fingerprints.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
  cargo build -p ferry-wasm --locked --release --target wasm32-unknown-unknown --features simd
cp "$out" ui/src/web/ferry.wasm
echo "build-wasm: ui/src/web/ferry.wasm ($(wc -c <ui/src/web/ferry.wasm) bytes)," \
  "ui/src/web/ferry-scalar.wasm ($(wc -c <ui/src/web/ferry-scalar.wasm) bytes)"
