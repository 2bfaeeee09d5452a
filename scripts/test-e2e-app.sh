#!/usr/bin/env bash
# Real-window E2E of the desktop app: the built app in WebKitGTK under Xvfb, driven over
# WebDriver (tauri-driver + WebKitWebDriver), with the `ferry` CLI as the other peer.
# Bounded: every wait has a timeout and the whole run is capped. Prints `app-e2e: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

fail() { echo "app-e2e: $*" >&2; echo "app-e2e: 0 passed, 1 failed"; exit 1; }
for tool in Xvfb WebKitWebDriver node; do
  command -v "$tool" >/dev/null || fail "$tool not found (run scripts/install-deps.sh)"
done
command -v tauri-driver >/dev/null || PATH="$HOME/.cargo/bin:$PATH"

echo "-- building the UI and the app (debug) and the CLI"
(cd ui && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npx vite build --logLevel warn)
bash scripts/build.sh
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

WORK=$(mktemp -d /tmp/ferry-app-e2e.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_E2E_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# A display of our own; pick a free number.
DISP=""
for n in $(seq 90 120); do
  if [ ! -e "/tmp/.X11-unix/X$n" ] && [ ! -e "/tmp/.X$n-lock" ]; then DISP=":$n"; break; fi
done
[ -n "$DISP" ] || fail "no free X display"
Xvfb "$DISP" -screen 0 1100x820x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X${DISP#:}" ] && break; sleep 0.1; done

mkdir -p "$WORK/home" "$WORK/recv" docs/screenshots
head -c $((24 * 1024 * 1024 + 123)) /dev/urandom >"$WORK/holiday-photos.bin"

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
NATIVE_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

# Everything the app and the CLI write goes under $WORK: settings, history DB, downloads.
export DISPLAY="$DISP"
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share"
export FERRY_DB="$WORK/app.db"
export FERRY_E2E=1
# What tauri-driver sets for the native driver: lets WebKitWebDriver automate the webview.
export TAURI_WEBVIEW_AUTOMATION=true
export FERRY_SIGNAL_BIND=127.0.0.1:0 FERRY_BIND=127.0.0.1:0
export FERRY_E2E_PICK="$WORK/holiday-photos.bin"
export FERRY_E2E_PICK_FOLDER="$WORK/recv"
export NO_AT_BRIDGE=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 LIBGL_ALWAYS_SOFTWARE=1
export FERRY_LOG="${FERRY_LOG:-info}"

# tauri-driver only maps `tauri:options` to WebKitWebDriver's `webkitgtk:browserOptions` on
# Linux; the test sends the latter, so WebKitWebDriver alone serves when tauri-driver is absent.
if command -v tauri-driver >/dev/null; then
  tauri-driver --port "$PORT" --native-port "$NATIVE_PORT" >"$WORK/tauri-driver.log" 2>&1 &
else
  echo "-- tauri-driver not installed; driving WebKitWebDriver directly"
  WebKitWebDriver --port="$PORT" >"$WORK/tauri-driver.log" 2>&1 &
fi
PIDS+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/status" >/dev/null 2>&1 && break
  sleep 0.1
done

set +e
FERRY_APP_BIN="$TARGET_DIR/debug/ferry-app" FERRY_CLI_BIN="$TARGET_DIR/debug/ferry" \
WEBDRIVER_URL="http://127.0.0.1:$PORT" E2E_WORK="$WORK" SHOTS_DIR="$ROOT/docs/screenshots" \
  timeout 600 node ui/e2e/app.e2e.mjs
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "---- tauri-driver / app log (tail) ----"
  tail -n 60 "$WORK/tauri-driver.log" || true
fi
exit $rc
