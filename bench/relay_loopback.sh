#!/usr/bin/env bash
# One transfer on loopback, direct or with both peers relay-only through a coturn started
# here (UDP, loopback peers allowed), with a `ferry serve` that hands out TURN REST
# credentials. Prints the path, whether the copy is byte-exact, and the receiver's time
# (start to exit) and rate.
# Usage: bash bench/relay_loopback.sh relay|direct [size_mib] (default 256), after
#   cargo build --release -p ferry-cli; needs turnserver (coturn) on the PATH.
# FERRY=path/to/ferry picks another build (for A/B runs).
set -euo pipefail
MODE=${1:?relay or direct}
SIZE=${2:-256}
FERRY=${FERRY:-$(cd "$(dirname "$0")/.." && pwd)/target/release/ferry}
DIR=$(mktemp -d /tmp/ferry-relay-bench.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$DIR"' EXIT
PORT=$((20000 + RANDOM % 20000))
cat > "$DIR/turn.conf" <<EOF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$PORT
min-port=$((PORT + 1))
max-port=$((PORT + 40))
use-auth-secret
static-auth-secret=bench-secret
realm=ferry-bench
fingerprint
no-cli
no-tls
no-dtls
allow-loopback-peers
no-multicast-peers
simple-log
log-file=$DIR/turn.log
pidfile=$DIR/turn.pid
EOF
turnserver -c "$DIR/turn.conf" > /dev/null 2>&1 & PIDS+=($!)
"$FERRY" serve --listen 127.0.0.1:0 --turn-url "turn:127.0.0.1:$PORT?transport=udp" \
  --turn-secret bench-secret > "$DIR/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -qo 'ws://127.0.0.1:[0-9]*' "$DIR/serve.log" && break; sleep 0.1; done
SERVER=$(grep -o 'ws://127.0.0.1:[0-9]*' "$DIR/serve.log" | head -1)
SRC=${SRC:-/tmp/ferry-relay-bench-$SIZE.bin}
[ -f "$SRC" ] || head -c $((SIZE * 1048576)) /dev/urandom > "$SRC"
[ "$MODE" = relay ] && export FERRY_RELAY_ONLY=true
FERRY_DB="$DIR/s.db" "$FERRY" send --json --server "$SERVER" --password bench-pw "$SRC" \
  > "$DIR/send.json" 2> "$DIR/send.err" & PIDS+=($!)
for _ in $(seq 100); do grep -q room-created "$DIR/send.json" 2>/dev/null && break; sleep 0.1; done
ROOM=$(grep -o '"room":"[^"]*"' "$DIR/send.json" | head -1 | cut -d'"' -f4)
T0=$(date +%s.%N)
FERRY_DB="$DIR/r.db" "$FERRY" receive "$ROOM" --json --yes --server "$SERVER" \
  --password bench-pw --out "$DIR/out" > "$DIR/recv.json" 2> "$DIR/recv.err"
T1=$(date +%s.%N)
LINK=$(grep -o '"event":"connected"[^}]*"path":"[a-z]*"' "$DIR/recv.json" | grep -o '"path":"[a-z]*"' | cut -d'"' -f4)
cmp -s "$SRC" "$DIR/out/$(basename "$SRC")" && SAME=byte-exact || SAME=DIFFERENT
python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'$MODE path=$LINK $SAME {t:.2f} s {$SIZE*1.048576/t:.1f} MB/s')" "$T0" "$T1"
