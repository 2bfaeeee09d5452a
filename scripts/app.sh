#!/usr/bin/env bash
# Run the Ferry desktop app from a checkout: installs what's missing, builds the UI, starts
# the app. With no settings it runs its own signaling server, so it works with zero setup.
# Extra arguments go to the app (e.g. a ferry://join/... link).
set -euo pipefail
cd "$(dirname "$0")/.."

need_deps=0
for tool in node npm cargo pkg-config; do command -v "$tool" >/dev/null || need_deps=1; done
if [ "$(uname -s)" = Linux ] && ! pkg-config --exists webkit2gtk-4.1 2>/dev/null; then need_deps=1; fi
[ -d ui/node_modules ] || need_deps=1
if [ "$need_deps" = 1 ]; then
  if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null; then
    bash scripts/install-deps.sh
  else
    echo "Missing prerequisites: see docs/APP.md (Node.js 20+, Rust stable, platform WebView)." >&2
    [ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
  fi
fi

(cd ui && npx vite build --logLevel warn)
exec cargo run -p ferry-app -- "$@"
