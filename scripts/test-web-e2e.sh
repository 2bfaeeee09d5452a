#!/usr/bin/env bash
# The browser peer end to end: headless Chromium (Debian's `chromium`, driven by
# playwright-core; nothing downloads a browser) runs the built web page and receives from the
# real `ferry send` (ui/e2e/web-receive.e2e.mjs) and sends to the real `ferry receive` and to
# another page (ui/e2e/web-send.e2e.mjs) through a real `ferry-signal`, all on 127.0.0.1.
# WEB_E2E_MB / WEB_SEND_MB size the random file each way (default 256 MiB).
# Skips, saying so, only when no Chromium can be installed; any other problem fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$CHROMIUM" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "-- chromium not found; installing it"
  if $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; then
    CHROMIUM="$(command -v chromium || true)"
  fi
  if [ -z "$CHROMIUM" ]; then
    echo "web-e2e: SKIPPED: chromium is not installed and could not be installed (apt-get install chromium)"
    exit 0
  fi
fi

echo "-- building the wasm module, the web page and the binaries"
bash scripts/build-wasm.sh
(cd ui && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; })
# The sender's loop against the receiver's over an in-memory link needs the wasm just built
# (scripts/test-ui.sh skips that part when it is missing).
(cd ui && npx vitest run tests/web-send.test.ts)
# The same build as scripts/build.sh (so no rebuild after it): with every target, ferry-core
# gets its test hooks, which the corrupted-chunk case needs (FERRY_TEST_CORRUPT_CHUNK).
bash scripts/build.sh
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

WORK=$(mktemp -d /tmp/ferry-web-e2e.XXXXXX)
trap '[ -n "${KEEP_E2E_WORK:-}" ] || rm -rf "$WORK"' EXIT
(cd ui && npx vite build --mode web --outDir "$WORK/dist" --emptyOutDir --logLevel warn)

export FERRY_CLI_BIN="$TARGET_DIR/debug/ferry" FERRY_SIGNAL_BIN="$TARGET_DIR/debug/ferry-signal" \
  WEB_DIST="$WORK/dist" CHROMIUM="$CHROMIUM" E2E_WORK="$WORK"
status=0
timeout 300 node ui/e2e/web-receive.e2e.mjs || status=1
timeout 90 node ui/e2e/web-served.e2e.mjs || status=1
# The page's screens from a real transfer (WEB_SCREENSHOTS=docs/screenshots refreshes the README's).
timeout 90 node ui/e2e/web-screens.mjs || status=1
if FIREFOX="${FIREFOX:-$(command -v firefox-esr || true)}" && [ -n "$FIREFOX" ] && [ -d ui/node_modules/puppeteer-core ]; then FIREFOX="$FIREFOX" timeout 120 node ui/e2e/web-firefox.e2e.mjs || status=1; else echo "web-firefox-e2e: SKIPPED: needs firefox-esr (apt-get install firefox-esr) and puppeteer-core (npm ci in ui/)"; fi
# The send checks' own cap grows with WEB_SEND_MB (ui/e2e/web-send.e2e.mjs).
timeout 1800 node ui/e2e/web-send.e2e.mjs || status=1
exit $status
