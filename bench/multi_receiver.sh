#!/usr/bin/env bash
# 1 GiB to 1, 2, 3 concurrent receivers on loopback with `ferry send --receivers N --at-once N`
# (release build): total and per-receiver MB/s, sender peak RSS.
# Usage: bash bench/multi_receiver.sh [size_mib] (default 1024), after
#   cargo build --release -p ferry-cli -p ferry-signal
# Writes under $DIR (default a fresh temporary directory, removed at the end).
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
SIZE=${1:-1024}
DIR=${DIR:-$(mktemp -d /tmp/ferry-multi-bench.XXXXXX)}
rm -rf "$DIR"; mkdir -p "$DIR/src"
head -c $((SIZE * 1048576)) /dev/urandom > "$DIR/src/big.bin"
"$BIN/ferry-signal" --listen 127.0.0.1:0 --db "$DIR/sig.db" > "$DIR/sig.log" 2>&1 &
SIG=$!
trap 'kill $SIG 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
for _ in $(seq 50); do grep -qo '127.0.0.1:[0-9]*' "$DIR/sig.log" && break; sleep 0.1; done
ADDR=$(grep -o '127.0.0.1:[0-9]*' "$DIR/sig.log" | head -1)
export FERRY_BIND=127.0.0.1:0
for N in 1 2 3; do
  rm -rf "$DIR"/out* "$DIR"/*.db "$DIR"/send.json
  ( /usr/bin/time -v "$BIN/ferry" --db "$DIR/send.db" send --json \
      --server "ws://$ADDR/ws" --password bench --receivers "$N" --at-once "$N" \
      "$DIR/src/big.bin" < /dev/null > "$DIR/send.json" 2> "$DIR/send.time" ) &
  SEND=$!
  for _ in $(seq 100); do grep -q room-created "$DIR/send.json" 2>/dev/null && break; sleep 0.1; done
  ROOM=$(grep -o '"room":"[^"]*"' "$DIR/send.json" | head -1 | cut -d'"' -f4)
  T0=$(date +%s.%N)
  PIDS=()
  for i in $(seq "$N"); do
    "$BIN/ferry" --db "$DIR/r$i.db" receive "$ROOM" --json --yes --server "ws://$ADDR/ws" \
      --password bench --out "$DIR/out$i" > "$DIR/r$i.json" 2>/dev/null &
    PIDS+=($!)
  done
  for p in "${PIDS[@]}"; do wait "$p"; done
  T1=$(date +%s.%N)
  wait "$SEND" || true
  RSS=$(grep "Maximum resident" "$DIR/send.time" | awk '{print $NF}')
  PER=""
  for i in $(seq "$N"); do
    cmp -s "$DIR/src/big.bin" "$DIR/out$i/big.bin" || { echo "receiver $i: MISMATCH"; exit 1; }
    S=$(grep '"event":"done"' "$DIR/r$i.json" | grep -o '"secs":[0-9.]*' | cut -d: -f2)
    PER="$PER $(echo "$SIZE * 1.048576 / $S" | bc -l | xargs printf '%.0f')"
  done
  TOTAL=$(echo "$N * $SIZE * 1.048576 / ($T1 - $T0)" | bc -l | xargs printf '%.0f')
  echo "receivers=$N wall=$(echo "$T1 - $T0" | bc -l | xargs printf '%.1f')s total_MBps=$TOTAL per_receiver_MBps=[$PER ] sender_peak_rss_MiB=$((RSS / 1024))"
done
