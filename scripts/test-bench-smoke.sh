#!/usr/bin/env bash
# Keeps the benchmark harness from rotting: a 16 MiB random file, one run, ferry and the raw
# WebRTC ceiling only (no installs, debug build shared with the test suite). The real
# comparison is `python3 bench/run.py` (see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp -d /tmp/ferry-bench-smoke.XXXXXX)"
trap 'rm -rf "$out"' EXIT

nice -n 10 bash scripts/build.sh

passed=0
failed=0
check() { # name, command...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "bench-smoke: $name ok"
  else failed=$((failed + 1)); echo "bench-smoke: $name FAILED"; fi
}

# The raw ceiling on its own: proves the webrtc loop and its JSON report still work.
raw_ok() {
  local line
  line="$(timeout 60 target/debug/raw-ceiling --bytes 16MiB --timeout-secs 50 | tail -n 1)" || return 1
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["bytes"] == 16 << 20 and r["mb_per_s"] > 0, r' "$line"
}

# The harness end to end: ferry must move and verify the file, or the exit code says so; the
# slow-disk case (its fsync shim built with cc) runs too.
harness_ok() {
  BENCH_TIMEOUT=50 timeout 100 python3 bench/run.py --size 16M --runs 1 --tools ferry,raw \
    --no-compressible --slow-sync 20 --profile debug --no-build --require ferry,raw \
    --out "$out" >"$out/table.md" || { cat "$out/table.md"; return 1; }
  cat "$out/table.md"
  python3 - "$out/results.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
ok = {(r["tool"], "fsync" in r["case"]) for r in doc["results"] if r.get("ok")}
assert {("ferry", False), ("raw", False), ("ferry", True)} <= ok, doc["results"]
EOF
}

check raw-ceiling raw_ok
check harness harness_ok
echo "bench-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
