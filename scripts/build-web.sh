#!/usr/bin/env bash
# Builds the browser peer's page for serving (`ferry-signal --web-dir OUT`, or embedding with
# FERRY_WEB_EMBED=OUT): the wasm module, then `vite build --mode web` into OUT (default
# ui/dist-web), then OUT/SHA256SUMS over every file, the list a release publishes so anyone
# can compare what a server serves (docs/DEPLOY.md, "Bundle hash").
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-ui/dist-web}")"
bash scripts/build-wasm.sh
(cd ui && { [ -d node_modules/vite ] || npm ci --no-audit --no-fund; } &&
  npx vite build --mode web --outDir "$out" --emptyOutDir --logLevel warn)
(cd "$out" && find . -type f ! -name SHA256SUMS -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > SHA256SUMS.tmp &&
  mv SHA256SUMS.tmp SHA256SUMS)
echo "build-web: $out ($(wc -l <"$out/SHA256SUMS") files; sha256 of SHA256SUMS: $(sha256sum "$out/SHA256SUMS" | cut -d' ' -f1))"
