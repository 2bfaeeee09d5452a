#!/usr/bin/env bash
# Installs everything the app, the tests and CI need on a fresh Debian 12 machine.
# Idempotent: a second run only checks. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages (one list; keep sorted by purpose) -------------------------
APT_PKGS=(
  # Tauri 2 on Linux
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev
  libsoup-3.0-dev build-essential libssl-dev file pkg-config
  # real-window E2E tests of the app
  xvfb webkit2gtk-driver imagemagick
  # the browser peer's E2E (scripts/test-web-e2e.sh): headless, driven by playwright-core
  # (Chromium) and by puppeteer-core over WebDriver BiDi (Firefox)
  chromium firefox-esr
  # network simulation (namespaces, NAT, netem) and TURN
  iproute2 nftables coturn
  # deploy checks (compose rendering without an engine) and TLS material for TURN tests
  docker-compose openssl
  # cross-check that the engine, CLI and server still build for Windows
  gcc-mingw-w64-x86-64
  # multi-node signaling tests (ferry-signal --redis)
  redis-server
  # misc test helpers
  curl jq procps time
)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Rust components ------------------------------------------------------------
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Windows standard library for scripts/test-cross-windows.sh (it skips, saying so, without it).
rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1 || true
# WebAssembly standard library for the browser peer's hashing and LZ4 (scripts/build-wasm.sh).
rustup target add wasm32-unknown-unknown >/dev/null

# No cargo tools: the app E2E speaks WebDriver to WebKitWebDriver directly (on Linux
# tauri-driver only forwards to it), which saves CI a several-minute cargo install.

# --- fuzzing (scripts/test-fuzz.sh) ---------------------------------------------
# cargo-fuzz needs a nightly compiler (sanitizer flags); minimal profile, about a minute.
# cargo-fuzz itself is the one cargo tool installed here (about a minute to build, once).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# --- UI (npm) -------------------------------------------------------------------
if [ -f ui/package.json ]; then
  (cd ui && npm ci --no-audit --no-fund)
fi
