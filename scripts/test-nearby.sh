#!/usr/bin/env bash
# Nearby devices: `ferry send` announces its room over multicast DNS in one network namespace,
# `ferry receive --nearby` in another lists it and joins with the password; with
# --no-announce nothing is listed and the receiver says so. Two namespaces joined by a veth
# pair, a signaling server reachable from both; all created here and removed on every exit.
# Needs root (skipped with a message otherwise, or where namespaces cannot be made).
# Bounded: every process runs under `timeout`, the whole script well under 30 s once built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "nearby: skipped (needs root for ip netns; CI runs as root)"
  exit 0
fi
command -v ip >/dev/null || { echo "nearby: skipped (no ip command)"; exit 0; }

# scripts/test.sh turns announcing off for every other test; this one is about it.
unset FERRY_NO_ANNOUNCE
prefix="fnb$$"
ns_a="${prefix}a"
ns_b="${prefix}b"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap removes the namespaces then too.
trap 'exit 130' INT TERM HUP

if ! ip netns add "$ns_a" 2>/dev/null; then
  echo "nearby: skipped (cannot create a network namespace here)"
  exit 0
fi
ip netns add "$ns_b"
ip link add "${prefix}x" type veth peer name "${prefix}y"
ip link set "${prefix}x" netns "$ns_a"
ip link set "${prefix}y" netns "$ns_b"
for side in "a ${prefix}x 10.231.7.1" "b ${prefix}y 10.231.7.2"; do
  read -r n dev addr <<<"$side"
  ns="${prefix}${n}"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev "$dev"
  ip -n "$ns" link set "$dev" multicast on up
  # No default route, as on a direct cable or a LAN without a router: WebRTC's own mDNS
  # join is then refused (ENODEV), and the transfer must still connect.
done

# FERRY_NEARBY_BUILT=1: the binaries are already built (a quicker rerun).
[ "${FERRY_NEARBY_BUILT:-0}" = 1 ] || bash scripts/build.sh
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ferry="$target_dir/debug/ferry"
signal="$target_dir/debug/ferry-signal"

t0=$(date +%s)
fail() { echo "nearby: FAIL: $*"; for f in "$work"/*.log "$work"/*.err; do [ -e "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }

# The signaling server, on namespace a's address so that b reaches it over the link.
server="ws://10.231.7.1:7780/ws"
FERRY_SIGNAL_DB="$work/signal.db" FERRY_SIGNAL_LISTEN=10.231.7.1:7780 timeout 60 ip netns exec "$ns_a" "$signal" >"$work/signal.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  ip netns exec "$ns_b" bash -c 'exec 3<>/dev/tcp/10.231.7.1/7780' 2>/dev/null && break
  sleep 0.1
done

head -c 3000000 /dev/urandom >"$work/photo.jpg"
printf 'second sender\n' >"$work/note.txt"

# $1 log name, rest: ferry send arguments. Runs in namespace a; waits for its room.
start_sender() {
  local log="$1"; shift
  FERRY_DB="$work/$log.db" timeout 40 ip netns exec "$ns_a" "$ferry" send --json \
    --server "$server" "$@" </dev/null >"$work/$log.log" 2>"$work/$log.err" &
  pids+=($!)
  last_pid=$!
  for _ in $(seq 100); do
    grep -q '"room-created"' "$work/$log.log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$log: no room after 10 s"
}
room_of() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "room-created": print(e["room"]); break' "$work/$1.log"; }

# 1. Two senders announce; the receiver lists both and joins the one it picks by name.
# The first is bound to its link's address, so it announces on that interface only.
start_sender photo --password pw-nearby --bind 10.231.7.1:0 --device-name $'Test\a laptop\e' "$work/photo.jpg"
photo_pid=$last_pid
# The second serves many receivers: that kind of room is announced too.
start_sender note --password other-pw --receivers 2 --device-name "Second desk" "$work/note.txt"
room="$(room_of photo)"
other="$(room_of note)"
mkdir -p "$work/out"
rc=0
FERRY_DB="$work/recv.db" timeout 40 ip netns exec "$ns_b" "$ferry" receive --nearby \
  --pick "test laptop" --password pw-nearby --yes --json --out "$work/out" \
  >"$work/recv.log" 2>"$work/recv.err" </dev/null || rc=$?
[ "$rc" -eq 0 ] || fail "receive --nearby exited $rc"
grep -q "Test laptop" "$work/recv.err" || fail "the sender's device name is not listed"
grep -q "${room:0:5}-${room:5}" "$work/recv.err" || grep -q "$room" "$work/recv.err" || fail "room $room not listed"
grep -q "Second desk" "$work/recv.err" || fail "the second sender is not listed"
grep -q "${other:0:5}-${other:5}" "$work/recv.err" || grep -q "$other" "$work/recv.err" || fail "room $other not listed"
if grep -q $'\e' "$work/recv.err"; then fail "a control character in the device name reached the terminal"; fi
if grep -q "pw-nearby\|other-pw\|photo.jpg\|note.txt" "$work/recv.err"; then
  fail "the list shows a password or a file name"
fi
cmp "$work/photo.jpg" "$work/out/photo.jpg" || fail "received file differs"
wait "$photo_pid" || fail "sender exited $?"
echo "nearby: listed both senders, picked by name, 3 MB byte-exact"

# 2. With --no-announce nothing is listed, and the receiver says why it may be so.
for p in "${pids[@]}"; do [ "$p" = "${pids[0]}" ] || kill "$p" 2>/dev/null || true; done
start_sender quiet --password pw-quiet --no-announce "$work/note.txt"
rc=0
FERRY_DB="$work/recv2.db" timeout 20 ip netns exec "$ns_b" "$ferry" receive --nearby \
  --nearby-wait 2s --password pw-quiet --yes --out "$work/out2" \
  >"$work/recv2.log" 2>"$work/recv2.err" </dev/null || rc=$?
[ "$rc" -eq 11 ] || fail "receive --nearby with nothing announced exited $rc, not 11"
grep -q "no nearby rooms found; multicast may be blocked" "$work/recv2.err" || fail "no specific message"
[ ! -e "$work/out2/note.txt" ] || fail "a file arrived from an unannounced room"
echo "nearby: --no-announce: nothing listed, receiver exits 11 with the multicast message"

# 3. A script must say which room: without --pick (and no terminal) it lists and stops. Then a
# network that drops multicast: the receiver ends after its wait with the specific message.
start_sender third --password pw-third --device-name "Third desk" "$work/note.txt"
rc=0
FERRY_DB="$work/recv3.db" timeout 20 ip netns exec "$ns_b" "$ferry" receive --nearby \
  --nearby-wait 2s --password pw-third --yes --out "$work/out3" \
  >"$work/recv3.log" 2>"$work/recv3.err" </dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "receive --nearby without --pick exited $rc, not 2"
grep -q "Third desk" "$work/recv3.err" || fail "the third sender is not listed"
grep -q "choose a room with --pick" "$work/recv3.err" || fail "no hint to use --pick"
echo "nearby: without --pick and no terminal: listed, exit 2 with the --pick hint"
if command -v nft >/dev/null; then
  printf 'table inet %s {\n chain in {\n  type filter hook input priority 0;\n  udp dport 5353 drop\n }\n}\n' "$prefix" \
    | ip netns exec "$ns_b" nft -f -
  rc=0
  t1=$(date +%s)
  FERRY_DB="$work/recv4.db" timeout 20 ip netns exec "$ns_b" "$ferry" receive --nearby \
    --nearby-wait 2s --pick 1 --password pw-third --yes --out "$work/out4" \
    >"$work/recv4.log" 2>"$work/recv4.err" </dev/null || rc=$?
  [ "$rc" -eq 11 ] || fail "receive --nearby with multicast dropped exited $rc, not 11"
  grep -q "no nearby rooms found; multicast may be blocked" "$work/recv4.err" || fail "no specific message when multicast is dropped"
  [ $(( $(date +%s) - t1 )) -le 8 ] || fail "the receiver took more than 8 s with multicast dropped"
  echo "nearby: multicast dropped: the receiver ends after its wait with the multicast message"
else
  echo "nearby: nft missing; skipped the dropped-multicast check"
fi
echo "nearby: passed in $(( $(date +%s) - t0 )) s"
