#!/usr/bin/env bash
# Network simulation suite: ferry between two home networks behind (simulated) NATs, through a
# real ferry-signal and coturn, all inside network namespaces this script creates and removes.
# Needs root; skipped with a message otherwise. Bounded: the whole suite is killed after 5.5 min.
#   FERRY_NETSIM_ONLY="b c"   run only those cases      FERRY_NETSIM_SIZE_MB=32   file size
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "netsim: skipped (needs root for ip netns / nftables; CI runs as root)"
  exit 0
fi
for tool in ip nft tc ss turnserver turnutils_uclient openssl python3; do
  command -v "$tool" >/dev/null || { echo "netsim: missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done

# Every namespace of this run is named "$prefix<case letter>-<role>".
prefix="fns$$x"
cleanup() {
  # netsim.py tears down after each case; this catches anything left if it was killed hard.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

bash scripts/build.sh
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ferry="$target_dir/debug/ferry"
signal="$target_dir/debug/ferry-signal"

args=(--size-mb "${FERRY_NETSIM_SIZE_MB:-16}")
for c in ${FERRY_NETSIM_ONLY:-}; do args+=(--only "$c"); done
if ! "$ferry" send --help 2>/dev/null | grep -q -- '--json'; then
  # Until the CLI can send with JSON events, only the network half of the suite can run.
  echo "netsim: $ferry has no 'send --json' yet; running the network checks only"
  args+=(--topology-only)
else
  args+=(--ferry "$ferry" --signal "$signal")
fi

# SIGTERM at the limit lets netsim.py unwind its teardown; SIGKILL 15 s later if it hangs.
PYTHONDONTWRITEBYTECODE=1 timeout -k 15 330 python3 tests/netsim/netsim.py --prefix "$prefix" "${args[@]}"
