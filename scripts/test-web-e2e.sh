#!/usr/bin/env bash
# The browser peer end to end: headless Chromium (Debian's `chromium`, driven by
# playwright-core; nothing downloads a browser) runs the built web page and receives from the
# real `ferry send` (ui/e2e/web-receive.e2e.mjs) and sends to the real `ferry receive` and to
# another page (ui/e2e/web-send.e2e.mjs) through a real `ferry-signal`.
# Browsers gather no ICE candidates on loopback alone, so as root (CI) the browsers, the servers
# and the test scripts run in one network namespace and every `ferry` in another, joined by a
# veth pair this script creates and removes. Without root everything runs on 127.0.0.1 and the
# browsers are told to use loopback (ui/e2e/web-harness.mjs).
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
NS_A="" NS_B=""
cleanup() {
  for ns in $NS_A $NS_B; do ip netns del "$ns" 2>/dev/null || true; done
  [ -n "${KEEP_E2E_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
(cd ui && npx vite build --mode web --outDir "$WORK/dist" --emptyOutDir --logLevel warn)

FERRY_CLI_BIN="$TARGET_DIR/debug/ferry"
if [ "$(id -u)" -eq 0 ] && [ -z "${WEB_E2E_LOOPBACK:-}" ]; then
  NS_A="fweb$$a" NS_B="fweb$$b"
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip link add "fwa$$" type veth peer name "fwb$$"
  ip link set "fwa$$" netns "$NS_A"
  ip link set "fwb$$" netns "$NS_B"
  ip -n "$NS_A" addr add 10.231.0.1/24 dev "fwa$$"
  ip -n "$NS_B" addr add 10.231.0.2/24 dev "fwb$$"
  for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
  ip -n "$NS_A" link set "fwa$$" up
  ip -n "$NS_B" link set "fwb$$" up
  # Chromium gathers on the interface of the default route only: without one a page has no
  # host candidate (a CLI peer still reaches it, page to page does not).
  ip -n "$NS_A" route add default via 10.231.0.2
  export E2E_HOST=10.231.0.1 E2E_CLI_HOST=10.231.0.2
  # The scripts start `ferry` through this, so every CLI peer lives across the veth.
  printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS_B" "$FERRY_CLI_BIN" >"$WORK/ferry-in-b"
  chmod +x "$WORK/ferry-in-b"
  FERRY_CLI_BIN="$WORK/ferry-in-b"
  echo "-- browsers in netns $NS_A (10.231.0.1), ferry in netns $NS_B (10.231.0.2), over a veth pair"
else
  echo "-- not root (or WEB_E2E_LOOPBACK set): everything on 127.0.0.1, browsers told to use loopback"
fi
# Runs a command in the browsers' namespace (or here, without one).
in_a() { if [ -n "$NS_A" ]; then ip netns exec "$NS_A" "$@"; else "$@"; fi; }

export FERRY_CLI_BIN FERRY_SIGNAL_BIN="$TARGET_DIR/debug/ferry-signal" \
  WEB_DIST="$WORK/dist" CHROMIUM="$CHROMIUM" E2E_WORK="$WORK"
status=0
in_a timeout 300 node ui/e2e/web-receive.e2e.mjs || status=1
in_a timeout 90 node ui/e2e/web-served.e2e.mjs || status=1
FIREFOX="${FIREFOX:-$(command -v firefox-esr || true)}" in_a timeout 120 node ui/e2e/web-download.e2e.mjs || status=1
in_a timeout 90 node ui/e2e/web-folder.e2e.mjs || status=1
# The page's screens from a real transfer (WEB_SCREENSHOTS=docs/screenshots refreshes the README's).
in_a timeout 90 node ui/e2e/web-screens.mjs || status=1
if FIREFOX="${FIREFOX:-$(command -v firefox-esr || true)}" && [ -n "$FIREFOX" ] && [ -d ui/node_modules/puppeteer-core ]; then FIREFOX="$FIREFOX" in_a timeout 150 node ui/e2e/web-firefox.e2e.mjs || status=1; else echo "web-firefox-e2e: SKIPPED: needs firefox-esr (apt-get install firefox-esr) and puppeteer-core (npm ci in ui/)"; fi
# The send checks' own cap grows with WEB_SEND_MB (ui/e2e/web-send.e2e.mjs).
in_a timeout 1800 node ui/e2e/web-send.e2e.mjs || status=1
exit $status
