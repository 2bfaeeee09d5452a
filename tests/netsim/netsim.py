#!/usr/bin/env python3
"""Ferry across simulated NATs: one namespace topology per case (see topo.py), real ferry-signal,
real coturn, two real `ferry` peers. Each case prints one line

    netsim <case>: candidate=<type> connect=<ms>ms throughput=<MB/s> hash=ok

and the run ends with `netsim: N passed, M failed[, K skipped]`. Needs root (namespaces).

Usage: netsim.py --ferry PATH --signal PATH [--only CASE ...] [--size-mb N] [--topology-only]
`--topology-only` runs just the network checks (NAT mapping behaviour, TURN reachability with
coturn's own client), which need no ferry binaries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from services import (  # noqa: E402
    TURN_CA,
    TURN_PORT,
    TURN_TLS_PORT,
    new_secret,
    self_signed_cert,
    start_coturn,
    start_signal,
    turn_rest_credential,
)
from topo import PUB_IP, PUB_IP2, Topology  # noqa: E402

@dataclass
class Case:
    name: str
    mode: str  # router mode for both homes, see topo.MODES
    # Candidate types each peer may report for its selected pair (the engine reports the "least
    # direct" end: relay > prflx > srflx > host). prflx appears when a peer's connectivity check
    # arrives before its trickled candidate: with no NAT that is still a LAN address, behind an
    # endpoint-independent NAT it is the NAT's mapping (= the srflx address).
    expect: tuple[str, ...]
    link_flap_s: float = 0.0  # take the sender's LAN link down this long mid-transfer
    expected_fail: str = ""  # non-empty: engine limitation, printed verbatim when it fails
    rate_mbit: int = 0  # shape the sender's uplink so a flap lands mid-transfer
    # TURN URLs the signaling server hands out; default: UDP on 3478, TCP and TLS on 443.
    turn: tuple[str, ...] = ("udp", "tcp", "tls")
    size_mb: int = 0  # file size for this case; 0: --size-mb
    budget_s: float = 45.0  # from the sender's start to `done` (plus 3x any link flap)


CASES = [
    Case("a-no-nat", "route", ("host", "prflx")),
    # Endpoint-independent mapping: direct through each NAT's mapping; a host pair is impossible.
    Case("b-eim-nat", "eim", ("srflx", "prflx")),
    Case("c-symmetric-nat", "symmetric", ("relay",)),
    # Only TCP/443 gets out: relayed over TURN on a stream (engine: turn_tcp.rs), once offered
    # as plain TCP and once as TLS, each alone so that each is proven.
    # A small file and a longer budget: relayed over a stream, SCTP's bursts overflow coturn's
    # relay sockets and a loss at a burst's tail waits out a retransmission timeout (RTO_MIN 1 s,
    # doubling), so a transfer can stall for tens of seconds (docs/DEPLOY.md, "Limitations").
    Case("d-udp-blocked-tcp", "udp-blocked", ("relay",), turn=("tcp",), size_mb=1, budget_s=75),
    Case("d-udp-blocked-tls", "udp-blocked", ("relay",), turn=("tls",), size_mb=1, budget_s=75),
    Case("e-outage-10s", "eim", ("srflx", "prflx"), link_flap_s=10.0, rate_mbit=24),
]


class Failure(Exception):
    pass


class ConnectFailure(Failure):
    """Signaling worked (room created, receiver joined) but no peer connection came up."""


# -- network checks (no ferry needed) -------------------------------------------------------------
def stun_mapping(topo: Topology, short: str) -> dict:
    r = topo.exec(short, [sys.executable, str(HERE / "stun_probe.py"),
                          f"{PUB_IP}:{TURN_PORT}", f"{PUB_IP2}:{TURN_PORT}"])
    if r.returncode != 0:
        raise Failure(f"stun probe failed: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout)


def check_network(topo: Topology, secret: str) -> str:
    """Prove the router mode behaves as claimed before blaming (or crediting) the engine."""
    m = stun_mapping(topo, "ha")
    mapped = m["mapped"]
    local_port = m["local"].rsplit(":", 1)[1]
    if topo.mode == "route":
        ok = all(x == f"100.64.1.2:{local_port}" for x in mapped)
        what = "no translation"
    elif topo.mode == "eim":
        ok = None not in mapped and len(set(mapped)) == 1 and mapped[0].startswith("203.0.113.11:")
        what = "same mapping for both servers (endpoint-independent)"
    elif topo.mode == "symmetric":
        ok = None not in mapped and len(set(mapped)) == 2
        what = "a different mapping per server (symmetric)"
    else:
        ok = mapped == [None, None]
        what = "UDP blocked"
    if not ok:
        raise Failure(f"router mode {topo.mode}: expected {what}, STUN saw {mapped}")
    notes = [f"nat={what}"]
    user, cred = turn_rest_credential(secret, "netsim")
    # coturn's own client proves the relay path the engine should find: over UDP where direct
    # paths are impossible, over TCP and TLS on 443 where UDP is blocked. (Elsewhere the ferry
    # transfer itself exercises the path.) Each run costs 5-15 s of fixed waits, hence in parallel.
    probes = {"symmetric": [("udp", ["-p", str(TURN_PORT)])],
              "udp-blocked": [("tcp443", ["-t", "-p", str(TURN_TLS_PORT)]),
                              ("tls443", ["-t", "-S", "-p", str(TURN_TLS_PORT)])]}.get(topo.mode, [])
    running = []
    for label, flags in probes:
        # -y: two clients relay to each other through their allocations; -n: messages each.
        argv = ["ip", "netns", "exec", topo.ns("ha"), "turnutils_uclient", *flags, "-y", "-n", "3",
                "-z", "5", "-u", user, "-w", cred, PUB_IP]
        running.append((label, subprocess.Popen(argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True)))
    for label, proc in running:
        try:
            out, _ = proc.communicate(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        got = [ln for ln in out.splitlines() if "start_mclient: tot_send_msgs=" in ln]
        recv = int(got[-1].split("tot_recv_msgs=")[1].split(",")[0]) if got else 0
        if recv == 0:
            raise Failure(f"TURN {label} from the home network relayed nothing: {out[-400:]}")
        notes.append(f"turn-{label}=ok")
    return " ".join(notes)


# -- ferry peers ----------------------------------------------------------------------------------
class Peer:
    """A `ferry ... --json` process whose stdout events are read on a thread and timestamped."""

    def __init__(self, topo: Topology, short: str, argv: list[str], log: str, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        # Each peer its own resume/history database and data dirs, as on two machines.
        env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
               "XDG_CONFIG_HOME": str(home / "config"), "FERRY_DB": str(home / "ferry.sqlite"),
               "RUST_LOG": os.environ.get("NETSIM_RUST_LOG", "info"),
               # Trust the simulation's CA for TURN over TLS (rustls-native-certs reads it).
               "SSL_CERT_FILE": str(topo.workdir / TURN_CA)}
        self.started = time.monotonic()
        self.proc = topo.spawn(short, argv, log, env=env, stdout_pipe=True)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[tuple[float, dict]] = []
        self.log = topo.workdir / log
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log.with_suffix(".events"), "ab") as rec:
            for raw in self.proc.stdout:
                rec.write(raw)
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(ev, dict):
                    self.events.put((time.monotonic(), ev))
        self.events.put((time.monotonic(), {"type": "__eof__"}))

    def wait_for(self, kinds: set[str], deadline: float) -> tuple[float, dict]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"timed out waiting for {sorted(kinds)}; last events: {self.tail()}")
            try:
                t, ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append((t, ev))
            kind = kind_of(ev)
            if kind in kinds:
                return t, ev
            if kind == "error":
                raise Failure(f"ferry error: {json.dumps(ev)[:300]}")
            if kind == "__eof__":
                raise Failure(f"ferry exited ({self.proc.wait()}) before {sorted(kinds)}: "
                              f"{self.stderr_tail()}")

    def drain(self) -> None:
        """Move events that nobody waited for into `seen`."""
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return

    def tail(self) -> str:
        return "; ".join(json.dumps(ev)[:120] for _, ev in self.seen[-3:])

    def stderr_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-400:].replace("\n", " | ")
        except OSError:
            return ""


def kind_of(ev: dict) -> str:
    return str(ev.get("type") or ev.get("event") or "")


def candidate_types(ev: dict) -> list[str]:
    """The selected pair's type from a `connected` event (`kind`: host/srflx/prflx/relay)."""
    kind = str(ev.get("kind") or "").lower()
    return [kind] if kind else []


def describe(types: list[str]) -> str:
    """`receiver/sender` candidate types, collapsed when both peers agree."""
    return types[0] if len(set(types)) == 1 else "/".join(types)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def run_transfer(topo: Topology, case: Case, ferry: Path, server: str, size_mb: int) -> str:
    src = topo.workdir / "send" / "payload.bin"
    src.parent.mkdir()
    with open(src, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    out = topo.workdir / "recv"
    out.mkdir()
    password = "netsim-" + new_secret()[:12]
    common = ["--server", server, "--password", password, "--json"]
    if case.rate_mbit:
        # tbf, not netem: this kernel has no sch_netem.
        r = topo.exec("ha", ["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
                             f"{case.rate_mbit}mbit", "burst", "64kb", "latency", "200ms"])
        if r.returncode != 0:
            raise Failure(f"could not shape the sender's link: {r.stderr.strip()}")
    budget = case.budget_s + case.link_flap_s * 3
    deadline = time.monotonic() + budget
    sender = Peer(topo, "ha", [str(ferry), "send", str(src), *common], "sender.log",
                  topo.workdir / "home-a")
    _, created = sender.wait_for({"room-created"}, min(deadline, time.monotonic() + 15))
    room = str(created.get("room") or "")
    if not room:
        raise Failure(f"room-created without a room: {created}")
    receiver = Peer(topo, "hb", [str(ferry), "receive", room, *common, "--out", str(out), "--yes"],
                    "receiver.log", topo.workdir / "home-b")
    connect_deadline = min(deadline, time.monotonic() + (20 if case.expected_fail else 30))
    try:
        t_conn, connected = receiver.wait_for({"connected"}, connect_deadline)
    except Failure as err:
        raise ConnectFailure(str(err)) from err
    connect_ms = (t_conn - receiver.started) * 1000
    # `connected` carries `kind` (host/srflx/prflx/relay) next to a readable `path`.
    types = candidate_types(connected)
    try:
        _, sent_connected = sender.wait_for({"connected"}, time.monotonic() + 10)
        types += candidate_types(sent_connected)
    except Failure:
        pass  # the receiver's view is enough to classify the pair
    outage_at = flap(topo, receiver, case, deadline) if case.link_flap_s else None
    receiver.wait_for({"done"}, deadline)
    t_done = receiver.seen[-1][0]
    received = out / src.name
    if not received.exists():
        raise Failure(f"done, but {received.name} is not in the output folder")
    if sha256(received) != sha256(src):
        raise Failure("hash mismatch between sent and received file")
    if not types or not set(types) <= set(case.expect):
        raise Failure(f"selected pair {describe(types) or 'unknown'} (receiver/sender), "
                      f"expected only {'/'.join(case.expect)}")
    mbps = size_mb * (1 << 20) / 1e6 / max(1e-3, t_done - t_conn)
    line = f"candidate={describe(types)} connect={connect_ms:.0f}ms throughput={mbps:.1f}MB/s hash=ok"
    if case.link_flap_s:
        sender.drain()
        receiver.drain()
        seen = {kind_of(ev) for _, ev in receiver.seen} | {kind_of(ev) for _, ev in sender.seen}
        line += (f" outage={case.link_flap_s:.0f}s-at-{outage_at}%"
                 f" recovered-via={'reconnect' if 'reconnecting' in seen else 'same-path'}")
    return line


def flap(topo: Topology, receiver: Peer, case: Case, deadline: float) -> int:
    """Wait until some data has moved, then cut the sender's home link for `link_flap_s`.
    Returns how far the transfer was (percent) when the outage began."""
    while True:
        _, ev = receiver.wait_for({"progress"}, deadline)
        done = ev.get("bytes_done") or 0
        total = ev.get("total") or 0
        if total and done >= total * 0.15:
            break
        if total and done >= total:
            raise Failure("the transfer finished before the outage could start")
    # A silent outage at the sender's router: everything it would forward, both directions, is
    # dropped while links stay up and the NAT keeps its mappings, like an ISP hiccup; nothing
    # tells the peers it happened. (nftables, not netem: this kernel has no sch_netem.)
    outage = "table ip outage {\n chain cut {\n  type filter hook forward priority -10; policy drop;\n }\n}\n"
    r = subprocess.run(["ip", "netns", "exec", topo.ns("ra"), "nft", "-f", "-"], input=outage,
                       text=True, capture_output=True, timeout=10)
    if r.returncode != 0:
        raise Failure(f"could not cut the sender's router: {r.stderr.strip()}")
    time.sleep(case.link_flap_s)
    topo.exec("ra", ["nft", "delete", "table", "ip", "outage"])
    return int(100 * done / total)


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Repeated on every run and explained elsewhere: ICE asks coturn for the private candidates,
# which `denied-peer-ip` refuses, and pings before the remote candidates are in.
NOISE = ("Forbidden IP", "pingAllCandidates")


def digest(workdir: Path) -> str:
    """What a failure needs from both peers, printed: CI keeps the output, not the logs."""
    out = []
    for who in ("sender", "receiver"):
        events = workdir / f"{who}.events"
        if events.exists():
            for line in events.read_text(errors="replace").splitlines()[-4:]:
                out.append(f"  {who} event: {line[:240]}")
        log = workdir / f"{who}.log"
        if log.exists():
            lines = [ANSI.sub("", ln) for ln in log.read_text(errors="replace").splitlines()]
            keep = [ln for ln in lines if (" WARN " in ln or " ERROR " in ln or "ferry_core" in ln
                                           or "connection state" in ln)
                    and not any(n in ln for n in NOISE)]
            out.extend(f"  {who} log: {ln[:240]}" for ln in keep[-8:])
    return "".join("\n" + ln for ln in out)


def run_case(case: Case, args, workroot: Path) -> tuple[str, str]:
    """Returns (status, line) with status in passed / failed / xfail."""
    workdir = workroot / case.name
    workdir.mkdir()
    topo = Topology(prefix=f"{args.prefix}{case.name[0]}", mode=case.mode, workdir=workdir)
    started = time.monotonic()
    try:
        topo.build()
        secret = new_secret()
        start_coturn(topo, secret, self_signed_cert(workdir))
        net = check_network(topo, secret)
        if args.topology_only:
            return "passed", f"netsim {case.name}: network ok ({net})"
        urls = {"udp": f"turn:{PUB_IP}:{TURN_PORT}?transport=udp",
                "tcp": f"turn:{PUB_IP}:{TURN_TLS_PORT}?transport=tcp",
                "tls": f"turns:{PUB_IP}:{TURN_TLS_PORT}?transport=tcp"}
        server = start_signal(topo, args.signal, secret, [urls[t] for t in case.turn])
        result = run_transfer(topo, case, args.ferry, server, case.size_mb or args.size_mb)
        return "passed", f"netsim {case.name}: {result}"
    except (Failure, subprocess.SubprocessError, OSError, TimeoutError) as err:
        took = time.monotonic() - started
        # Only the failure the reason explains counts as expected: signaling must have worked.
        if case.expected_fail and isinstance(err, ConnectFailure):
            return "xfail", (f"netsim {case.name}: expected-fail after {took:.0f}s ({err}) "
                             f"reason: {case.expected_fail}")
        return "failed", (f"netsim {case.name}: FAILED after {took:.0f}s: {err} (logs: {workdir})"
                          + digest(workdir))
    finally:
        topo.teardown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry", type=Path)
    ap.add_argument("--signal", type=Path)
    ap.add_argument("--only", action="append", default=[], help="case name prefix (a, b, ...)")
    ap.add_argument("--size-mb", type=int, default=16)
    ap.add_argument("--topology-only", action="store_true")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--prefix", default=f"fns{os.getpid()}", help="namespace name prefix")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("netsim: skipped (needs root for network namespaces)")
        return 0
    for tool in ("ip", "nft", "tc", "ss", "turnserver", "turnutils_uclient", "openssl"):
        if not shutil.which(tool):
            print(f"netsim: missing tool {tool}")
            return 1
    if not args.topology_only and not (args.ferry and args.signal):
        ap.error("--ferry and --signal are required unless --topology-only")

    # SIGTERM (from `timeout`) unwinds through the finally blocks, which tear everything down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    workroot = Path(tempfile.mkdtemp(prefix="ferry-netsim-"))
    counts = {"passed": 0, "failed": 0, "xfail": 0}
    cases = [c for c in CASES if not args.only or any(c.name.startswith(o) for o in args.only)]
    for case in cases:
        status, line = run_case(case, args, workroot)
        counts[status] += 1
        print(line, flush=True)
    if counts["xfail"]:
        print(f"netsim: {counts['xfail']} expected-fail (engine limitation, reported as skipped)")
    if counts["failed"] == 0 and not args.keep_logs:
        shutil.rmtree(workroot, ignore_errors=True)
    summary = f"netsim: {counts['passed']} passed, {counts['failed']} failed"
    if counts["xfail"]:
        summary += f", {counts['xfail']} skipped"
    print(summary)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
