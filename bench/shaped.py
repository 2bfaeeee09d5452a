"""Shaped links: does Ferry fill a link with a given rate, delay and loss?

Three network namespaces in a line, each hop a veth pair:

    sender (ferry send + ferry serve)  --  router  --  receiver (ferry receive)
    10.231.77.1                   .77.254 | .78.254                 10.231.78.1

This kernel has no `sch_netem` (nor fq/etf), so the link is emulated in userspace by
`tun-netem` (crates/ferry-bench): in the router, policy routing sends everything arriving
from the sender's veth into TUN "a" and everything from the receiver's veth into TUN "b"
(`ip rule add iif <veth> lookup <table>`, that table's default route = the TUN). One
`tun-netem` per TUN holds each packet for its serialization time at the rate plus the
one-way delay (loss on the data direction only) and writes it back into the TUN, whence the
main table routes it to the other veth. So both directions see the delay, both the rate.

Per profile the link is checked before Ferry runs on it: a UDP ping (no `ping` binary
needed) must show the configured RTT, and a plain TCP stream — the yardstick of what the
shaped path carries at all — its rate. Only namespaces created here are touched; they are
removed in a finally/atexit (which also ends the emulators: their TUNs live in the router).

On request (`Peers`) magic-wormhole and sendme cross the same link in the same run, senders
in the sender's namespace and receivers in the receiver's, so each figure sits beside
ferry's and plain TCP's taken minutes apart on the same emulator.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tools
from common import MIB, free_port, json_lines, make_random, spawn

# key (for --shaped-profiles) -> (label, rate Mbit/s (0 = none), RTT ms,
# loss % on the data direction, max bytes for the loss-bound baselines or None).
# Under random loss a loss-based controller (SCTP Reno, TCP CUBIC) carries a few percent of
# the link, so those runs use a smaller file (their rate is what is compared); ferry's
# default controller and TCP BBR move the full size.
PROFILES = {
    "pass": ("no shaping (emulator pass-through)", 0, 0.0, 0.0, None),
    "1g": ("1 Gbit/s, 1 ms RTT", 1000, 1.0, 0.0, None),
    "100m": ("100 Mbit/s, 40 ms RTT", 100, 40.0, 0.0, None),
    "loss": ("100 Mbit/s, 40 ms RTT, 1 % loss", 100, 40.0, 1.0, 16 * MIB),
    # Intercontinental paths, clean and over a lossy last hop.
    "50m150": ("50 Mbit/s, 150 ms RTT", 50, 150.0, 0.0, None),
    "50m150l": ("50 Mbit/s, 150 ms RTT, 0.5 % loss", 50, 150.0, 0.5, 32 * MIB),
    "20m80l1": ("20 Mbit/s, 80 ms RTT, 1 % loss", 20, 80.0, 1.0, 16 * MIB),
}
LOSS_BOUND = {"reno", "cubic"}
# Other tools across the same link (`--shaped-peers`). sendme's QUIC stack (iroh's) runs CUBIC
# whatever the machine says, so it is loss-bound like the CUBIC baseline; magic-wormhole's
# transit is a kernel TCP socket with the namespace's default controller, looked up per run.
PEERS = ("wormhole", "sendme")
PEER_LABEL = {"wormhole": "magic-wormhole", "sendme": "sendme"}
PEERS_LOSS_BOUND = {"sendme"}

S_NET, D_NET = "10.231.77", "10.231.78"  # live only inside the namespaces below


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def netem_bin(bench) -> Path | None:
    env = os.environ.get("BENCH_TUN_NETEM")
    candidates = [Path(env)] if env else []
    candidates += [bench.raw.parent / "tun-netem", bench.ferry.parent / "tun-netem"]
    return next((c for c in candidates if c.exists()), None)


TICK_MS = 100


def stalls(ticks: list[dict], mbit: float) -> dict:
    """Where the data direction carried under a tenth of what it could, between the first and
    the last interval that carried at least half: recovery stalls of whatever used the link."""
    full = (mbit * 1e6 / 8 * TICK_MS / 1000) if mbit else max(t["bytes_out"] for t in ticks)
    busy = [i for i, t in enumerate(ticks) if t["bytes_out"] >= full / 2]
    if not busy:
        return {"busy_ms": 0, "stall_ms": 0, "longest_stall_ms": 0}
    span = ticks[busy[0]:busy[-1] + 1]
    longest = run = total = 0
    for t in span:
        if t["bytes_out"] < full / 10:
            run += 1
            total += 1
            longest = max(longest, run)
        else:
            run = 0
    return {"busy_ms": len(span) * TICK_MS, "stall_ms": total * TICK_MS,
            "longest_stall_ms": longest * TICK_MS,
            "drop_ticks": sum(1 for t in span if t["queue_drops"] or t["lost"])}


class Topology:
    def __init__(self, netem: Path, work: Path) -> None:
        tag = f"{os.getpid() % 100000}"
        self.netem, self.work = netem, work
        self.s, self.r, self.d = (f"fbench-{x}-{tag}" for x in ("snd", "rtr", "rcv"))
        self.vs, self.vra, self.vrb, self.vd = (f"fb{x}{tag}" for x in ("s", "ra", "rb", "d"))
        self.tun_a, self.tun_b = f"fbta{tag}", f"fbtb{tag}"
        self.ip_s, self.ip_d = f"{S_NET}.1", f"{D_NET}.1"
        self.emulators: list = []
        self.tun_drops: dict[str, int] = {}
        self.mbit = 0.0
        atexit.register(self.down)
        for ns in (self.s, self.r, self.d):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        r = ["ip", "netns", "exec", self.r, "sysctl", "-qw"]
        # Set before the router's devices exist so they inherit it: a packet written back
        # into TUN "a" has a source that is routed via the veth, which strict rp_filter drops.
        for key in ("all", "default"):
            sh(*r, f"net.ipv4.conf.{key}.rp_filter=0")
            sh(*r, f"net.ipv4.conf.{key}.send_redirects=0")
        sh(*r, "net.ipv4.ip_forward=1")
        for end, ns, veth, net, table, tun in ((self.vs, self.s, self.vra, S_NET, 101, self.tun_a),
                                               (self.vd, self.d, self.vrb, D_NET, 102, self.tun_b)):
            sh("ip", "link", "add", end, "type", "veth", "peer", "name", veth)
            sh("ip", "link", "set", end, "netns", ns)
            sh("ip", "link", "set", veth, "netns", self.r)
            sh("ip", "-n", ns, "addr", "add", f"{net}.1/24", "dev", end)
            sh("ip", "-n", ns, "link", "set", end, "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"{net}.254")
            # webrtc's mDNS socket fails with ENODEV when no route covers multicast.
            sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", end)
            sh("ip", "-n", self.r, "addr", "add", f"{net}.254/24", "dev", veth)
            sh("ip", "-n", self.r, "link", "set", veth, "up")
            # Persistent TUN: routes survive the emulator being restarted with other flags.
            sh("ip", "-n", self.r, "tuntap", "add", "dev", tun, "mode", "tun")
            sh("ip", "-n", self.r, "link", "set", tun, "txqueuelen", "10000", "up")
            sh("ip", "-n", self.r, "route", "add", "default", "dev", tun, "table", str(table))
            sh("ip", "-n", self.r, "rule", "add", "iif", veth, "lookup", str(table))
            for dev in (veth, tun):
                sh(*r, f"net.ipv4.conf.{dev}.rp_filter=0")

    def shape(self, mbit: float, rtt_ms: float, loss: float, name: str) -> None:
        """(Re)starts both emulators; the data direction (sender -> receiver) gets the loss."""
        self.stop_emulators()
        self.mbit = mbit
        bdp = mbit * 1e6 / 8 * rtt_ms / 1000
        queue = str(int(max(2 * bdp, 128 * 1024)))  # 2x BDP: the queue alone never limits
        for tun, l in ((self.tun_a, loss), (self.tun_b, 0.0)):
            cmd = [str(self.netem), "--dev", tun, "--delay-ms", f"{rtt_ms / 2:g}",
                   "--rate-mbit", f"{mbit:g}", "--loss-pct", f"{l:g}", "--queue-bytes", queue,
                   "--seed", "5", "--rt-priority", "10", "--timeline-ms", str(TICK_MS)]
            p = spawn(f"tun-netem-{name}-{tun}", cmd, self.work, netns=self.r, measure=False)
            if p.wait_line(lambda line: json.loads(line).get("event") == "ready", 10) is None:
                p.stop()
                raise RuntimeError(f"tun-netem did not start: {p.stderr_tail()}")
            self.emulators.append(p)

    def stop_emulators(self) -> dict:
        """Ends the emulators; returns their counters, keyed 'data' / 'ack'."""
        stats = {}
        for which, tun in (("data", self.tun_a), ("ack", self.tun_b)):
            # Packets the kernel could not queue to the emulator (it fell behind reading).
            r = sh("ip", "netns", "exec", self.r, "cat",
                   f"/sys/class/net/{tun}/statistics/tx_dropped", check=False)
            if r.returncode == 0:
                total = int(r.stdout.strip() or 0)
                stats.setdefault(which, {})["tun_tx_dropped"] = total - self.tun_drops.get(tun, 0)
                self.tun_drops[tun] = total
        for which, p in zip(("data", "ack"), self.emulators):
            if p.popen.poll() is None:
                os.killpg(p.popen.pid, 15)
                p.wait(5)
            line = p.wait_line(lambda l: json.loads(l).get("event") == "stats", 2)
            p.stop()
            if line:
                stats.setdefault(which, {}).update(
                    {k: v for k, v in json.loads(line).items() if k not in ("event", "dev")})
            ticks = [e for _, e in json_lines(p) if e.get("event") == "tick"]
            if which == "data" and ticks:
                (self.work / f"{p.name}.timeline.json").write_text(json.dumps(ticks))
                stats[which]["stalls"] = stalls(ticks, self.mbit)
        self.emulators = []
        return stats

    def down(self) -> None:
        self.stop_emulators()
        for ns in (self.s, self.r, self.d):
            sh("ip", "netns", "del", ns, check=False)


UDP_ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind((sys.argv[1],int(sys.argv[2])));s.settimeout(30)\n"
            "while True:\n try: d,a=s.recvfrom(2048)\n except OSError: break\n"
            " if d==b'bye': break\n s.sendto(d,a)\n")
UDP_PING = ("import json,socket,statistics,sys,time\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
            "dst=(sys.argv[1],int(sys.argv[2]));rtts=[]\n"
            "for i in range(25):\n t=time.monotonic();s.sendto(i.to_bytes(4,'big')*16,dst)\n"
            " try:\n  while int.from_bytes(s.recv(2048)[:4],'big')!=i: pass\n"
            "  rtts.append((time.monotonic()-t)*1000)\n except OSError: pass\n time.sleep(0.04)\n"
            "s.sendto(b'bye',dst)\n"
            "print(json.dumps({'n':len(rtts),'median':statistics.median(rtts) if rtts else None,"
            "'min':min(rtts,default=None),'max':max(rtts,default=None)}))\n")


def udp_ping(topo: Topology, work: Path) -> dict:
    """25 probes, 64 bytes, 40 ms apart (the loss draw can eat a few on the lossy profile)."""
    port = free_port()
    echo = spawn("udp-echo", [sys.executable, "-c", UDP_ECHO, topo.ip_d, str(port)], work,
                 netns=topo.d, measure=False)
    time.sleep(0.3)
    ping = spawn("udp-ping", [sys.executable, "-c", UDP_PING, topo.ip_d, str(port)], work,
                 netns=topo.s, measure=False)
    line = ping.wait_line(lambda l: "median" in json.loads(l), 60)
    ping.stop()
    echo.stop()
    return json.loads(line) if line else {}


# A TCP sink that reads until the sender closes, reporting what it has read every 100 ms
# (monotonic clock, shared by every process on the machine; the fairness run reads it).
TCP_SINK = ("import socket,sys,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1);c,_=s.accept();n=0;last=0\n"
            "while True:\n d=c.recv(1<<20)\n if not d: break\n n+=len(d);t=time.monotonic()\n"
            " if t-last>=0.1: print(t,n,flush=True);last=t\n")
# Timed from connect to the sink having read everything (it closes after the last byte);
# the congestion controller is chosen per socket (TCP_CONGESTION), whatever the system's.
TCP_SOURCE = ("import socket,sys,time\nf=open(sys.argv[3],'rb')\nt=time.monotonic()\n"
              "c=socket.socket()\nc.setsockopt(socket.IPPROTO_TCP,socket.TCP_CONGESTION,sys.argv[4].encode())\n"
              "c.connect((sys.argv[1],int(sys.argv[2])))\n"
              "while True:\n d=f.read(1<<20)\n if not d: break\n c.sendall(d)\n"
              "c.shutdown(socket.SHUT_WR);c.recv(1)\nprint(time.monotonic()-t)\n")


def tcp_baseline(topo: Topology, src: Path, work: Path, cc: str = "bbr") -> float | None:
    """Seconds for plain TCP with congestion control `cc` to move `src` across the link."""
    port = free_port()
    sink = spawn(f"tcp-sink-{cc}", [sys.executable, "-c", TCP_SINK, topo.ip_d, str(port)], work,
                 netns=topo.d, measure=False)
    time.sleep(0.5)
    source = spawn(f"tcp-source-{cc}", [sys.executable, "-c", TCP_SOURCE, topo.ip_d, str(port),
                                        str(src), cc], work, netns=topo.s, measure=False)
    rc = sink.wait(tools.TIMEOUT)
    # The source prints its time once the sink has closed; read it off the pipe, whose
    # reader thread may lag the exit.
    line = source.wait_line(lambda l: float(l) > 0, 10) if rc == 0 else None
    source.stop()
    sink.stop()
    return float(line) if line else None


class Relay:
    """coturn in the receiver's namespace and a `ferry-signal` (which mints TURN REST
    credentials) in the sender's, so a relayed transfer crosses the emulated link once:
    sender -> link -> coturn -> receiver. Both ferry processes run `--relay-only`."""

    # TURN over TLS: coturn's certificate is signed by a throwaway CA that both peers trust
    # through SSL_CERT_FILE (set by the caller for the run), as the network simulation does.
    TLS_PORT = 5349

    def __init__(self, signal_bin: Path, topo: Topology, work: Path, transport: str = "udp") -> None:
        import secrets
        secret = secrets.token_hex(16)
        self.port = 3478
        tls: list[str] = ["no-tls"]
        self.ca: Path | None = None
        if transport == "tls":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "netsim"))
            from services import TURN_CA, self_signed_cert
            cert, key = self_signed_cert(work, ip=topo.ip_d)
            self.ca = work / TURN_CA
            tls = [f"tls-listening-port={self.TLS_PORT}", f"cert={cert}", f"pkey={key}"]
        conf = work / "turnserver.conf"
        conf.write_text("\n".join([
            f"listening-ip={topo.ip_d}", f"relay-ip={topo.ip_d}", f"listening-port={self.port}",
            "min-port=50000", "max-port=50999", "use-auth-secret",
            f"static-auth-secret={secret}", "realm=ferry-bench", "fingerprint", "no-cli",
            *tls, "no-dtls", "no-multicast-peers", "simple-log", "no-stdout-log",
            f"log-file={work / 'turnserver.log'}", f"pidfile={work / 'turnserver.pid'}",
        ]) + "\n")
        self.coturn = spawn("coturn", ["turnserver", "-c", str(conf)], work, netns=topo.d,
                            measure=False)
        self.signal_port = free_port()
        self.url = f"ws://{topo.ip_s}:{self.signal_port}/ws"
        urls = {
            "udp": [f"turn:{topo.ip_d}:{self.port}?transport=udp"],
            "tcp": [f"turn:{topo.ip_d}:{self.port}?transport=tcp"],
            "tls": [f"turns:{topo.ip_d}:{self.TLS_PORT}?transport=tcp"],
        }[transport]
        args = [str(signal_bin), "--listen", f"{topo.ip_s}:{self.signal_port}", "--db", ":memory:",
                "--turn-secret", secret]
        for u in urls:
            args += ["--turn-url", u]
        self.signal = spawn("ferry-signal", args, work, netns=topo.s, measure=False)
        time.sleep(1.0)
        self.embedded = False
        self.host = topo.ip_s

    def stop(self) -> None:
        self.signal.stop()
        self.coturn.stop()


class Peers:
    """magic-wormhole and sendme across the emulated link, once per profile.

    wormhole's mailbox server and transit relay run in the sender's namespace on its veth
    address, where ferry's signaling server runs too: the receiver reaches them across the
    link (set-up pays the RTT, as it would with a server near the sender), and a relayed
    transit connection would still cross the link once. wormhole tries the peers' direct
    hints two seconds before the relay; the receiver's "Receiving (->tcp:…)" line says
    which way it went (`wormhole_path`). sendme runs with the relay disabled and a ticket
    carrying the sender's direct addresses, so it can only connect directly. For both, the
    emulator's byte count on the data direction (`<tool>_link_bytes`) shows the file went
    across the link and not around it."""

    def __init__(self, bench, topo: Topology, work: Path, names: list[str],
                 wormhole_cc: str | None = None) -> None:
        self.names = names
        # wormhole has no option for its TCP controller (see tools.run_wormhole's tcp_cc).
        self.wormhole_cc = wormhole_cc
        self.skipped: dict[str, str] = {}
        self.wormhole = None
        self.runs = 0
        if "wormhole" in names:
            try:
                self.wormhole = tools.WormholeServers(bench.venv, work, host=topo.ip_s,
                                                      netns=topo.s)
            except tools.Skip as e:
                self.skipped["wormhole"] = f"skipped ({e})"
        if "sendme" in names and tools.sendme_bin() is None:
            self.skipped["sendme"] = "skipped (not installed: cargo install --locked sendme)"

    def stop(self) -> None:
        if self.wormhole:
            self.wormhole.stop()

    def run_all(self, topo: Topology, work: Path, row: dict, src: Path, slow_src: Path,
                tag: str) -> None:
        """Adds each tool's figures to the profile's `row` (copied into every ferry row)."""
        for name in self.names:
            if name in self.skipped:
                row[f"{name}_error"] = self.skipped[name]
                continue
            self.run_one(name, topo, work, row, src, slow_src, tag)

    def run_one(self, name: str, topo: Topology, work: Path, row: dict, src: Path,
                slow_src: Path, tag: str) -> None:
        nominal = row["nominal_mb_per_s"]
        if name == "wormhole":
            cc = self.wormhole_cc or sh("ip", "netns", "exec", topo.s, "sysctl", "-n",
                                        "net.ipv4.tcp_congestion_control").stdout.strip()
            row["wormhole_tcp_cc"] = cc
            loss_bound = cc in LOSS_BOUND
        else:
            loss_bound = name in PEERS_LOSS_BOUND
        # A loss-based controller carries a few percent of a lossy link: the profile's
        # smaller file, like the CUBIC baseline, so the run ends in minutes.
        f = slow_src if loss_bound else src
        size = f.stat().st_size
        row[f"{name}_bytes"] = size
        topo.shape((nominal or 0) * 8, row["rtt_ms"], row["loss_pct"], f"{tag}-{name}")
        load = os.getloadavg()[0]
        dst = work / f"recv-{name}"
        self.runs += 1
        try:
            if name == "wormhole":
                r = tools.run_wormhole(self.wormhole, src=f, out=dst, workdir=work,
                                       run_id=900 + self.runs, send_ns=topo.s, recv_ns=topo.d,
                                       tcp_cc=self.wormhole_cc)
            else:
                r = tools.run_sendme(f, dst, work, send_ns=topo.s, recv_ns=topo.d)
        except tools.Skip as e:
            r = {"ok": False, "error": f"skipped ({e})"}
        finally:
            emu = topo.stop_emulators()
            shutil.rmtree(dst, ignore_errors=True)
        row[f"emulator_{name}"] = emu
        row[f"{name}_loadavg_1m_before"] = load
        link = (emu.get("data") or {}).get("bytes_out")
        row[f"{name}_link_bytes"] = link
        if not r.get("ok"):
            row[f"{name}_error"] = r.get("error")
            print(f"bench: shaped {row['profile']} {name}: FAILED: {r.get('error')}",
                  file=sys.stderr)
            return
        row[f"{name}_secs"] = r["secs"]
        row[f"{name}_mb_per_s"] = size / r["secs"] / 1e6
        if name == "wormhole":
            row["wormhole_path"] = r.get("path")
            row["wormhole_send_path"] = r.get("send_path")
        if r.get("own_rate_mib_per_s"):
            row[f"{name}_own_mb_per_s"] = r["own_rate_mib_per_s"] * MIB / 1e6
        if r.get("transfer_secs"):
            row[f"{name}_setup_secs"] = r["secs"] - r["transfer_secs"]
            row[f"{name}_transfer_mb_per_s"] = size / r["transfer_secs"] / 1e6
        rate = row.get(f"{name}_transfer_mb_per_s") or row[f"{name}_mb_per_s"]
        if nominal:
            row[f"{name}_of_nominal"] = rate / nominal
        for k in ("tcp_bbr", "tcp_cubic"):
            if row.get(f"{k}_mb_per_s"):
                row[f"{name}_of_{k}"] = rate / row[f"{k}_mb_per_s"]
        # Less on the wire than the file: it did not cross the emulated link.
        row[f"{name}_crossed_link"] = bool(link and link >= size)
        print(f"bench: shaped {row['profile']} {name}: {rate:.2f} MB/s from data start "
              f"({size // MIB} MiB, set-up {row.get(f'{name}_setup_secs') or float('nan'):.2f} s"
              + (f", path {row.get('wormhole_path')}, TCP {row.get('wormhole_tcp_cc')}"
                 if name == "wormhole" else "")
              + f"; {link or 0} bytes on the link's data direction)", file=sys.stderr)


def run_profile(bench, topo: Topology, work: Path, size: int, profile: tuple,
                ccs: list[str | None] | None = None, repeat: int = 1,
                relays: list[str] | None = None, peers: Peers | None = None) -> list[dict]:
    """One link check (ping; plain TCP with BBR and with CUBIC), then ferry `repeat` times per
    SCTP congestion controller in `ccs`, alternating (reno, bbr, reno, bbr…) so a drift in
    machine load hits both alike. None = leave `FERRY_SCTP_CC` as the environment has it."""
    label, mbit, rtt, loss, slow_cap = profile
    slow_size = min(size, slow_cap or size)
    src = bench.data / f"random-{size}.bin"
    make_random(src, size)
    slow_src = bench.data / f"random-{slow_size}.bin"
    make_random(slow_src, slow_size)
    nominal = mbit * 1e6 / 8 / 1e6 if mbit else None  # MB/s
    row = {"profile": label, "nominal_mb_per_s": nominal, "rtt_ms": rtt, "loss_pct": loss,
           "bytes": size}
    tag = "".join(c for c in label if c.isalnum())

    topo.shape(mbit, rtt, loss, f"{tag}-check")
    row["ping_ms"] = udp_ping(topo, work)
    for tcp_cc, f in (("bbr", src), ("cubic", slow_src)):
        secs = tcp_baseline(topo, f, work, tcp_cc)
        row[f"tcp_{tcp_cc}_mb_per_s"] = f.stat().st_size / secs / 1e6 if secs else None
        row[f"tcp_{tcp_cc}_bytes"] = f.stat().st_size
    # The plain-TCP reference the ratios use: the best of the two.
    row["tcp_mb_per_s"] = max((row[k] for k in ("tcp_bbr_mb_per_s", "tcp_cubic_mb_per_s")
                               if row[k]), default=None)
    row["emulator_tcp"] = topo.stop_emulators()
    ping = row["ping_ms"]
    print(f"bench: shaped self-check {label}: UDP ping RTT median "
          f"{ping.get('median') or float('nan'):.2f} ms (min {ping.get('min') or float('nan'):.2f}, "
          f"max {ping.get('max') or float('nan'):.2f}, {ping.get('n', 0)}/25 answered; set {rtt:g} ms), "
          f"plain TCP BBR {row['tcp_bbr_mb_per_s'] or 0:.2f} MB/s, "
          f"CUBIC {row['tcp_cubic_mb_per_s'] or 0:.2f} MB/s"
          + (f" (nominal {nominal:g})" if nominal else "")
          + f"; emulator {row['emulator_tcp'].get('data')}", file=sys.stderr)
    if peers:
        peers.run_all(topo, work, row, src, slow_src, tag)

    rows = []
    for i in range(max(1, repeat)):
        for cc in ccs or [None]:
            r = dict(row, run=i + 1)
            if cc:
                r["profile"] = f"{label} [{cc} #{i + 1}]"
                r["sctp_cc"] = cc
            f = slow_src if cc in LOSS_BOUND else src
            r["bytes"] = f.stat().st_size
            # Copied before the direct run fills `r` in: a relayed run that fails must show
            # its error, not the direct run's figures.
            base = dict(r)
            rows.append(run_ferry_once(bench, topo, work, f, r, cc, tag))
            for transport in relays or []:
                rr = dict(base, relay=transport)
                rr["profile"] = f"{r['profile']} via coturn/{transport}"
                rows.append(run_ferry_once(bench, topo, work, f, rr, cc, tag, relay=transport))
    return rows


def run_ferry_once(bench, topo: Topology, work: Path, src: Path, row: dict, cc: str | None,
                   tag: str, relay: str | None = None) -> dict:
    label, size, nominal = row["profile"], row["bytes"], row["nominal_mb_per_s"]
    mbit, rtt, loss = (nominal or 0) * 8, row["rtt_ms"], row["loss_pct"]
    topo.shape(mbit, rtt, loss,
               f"{tag}-ferry{'-' + cc if cc else ''}{'-' + relay if relay else ''}-{row['run']}")
    # The machine is shared: a figure means little without the load it was taken under.
    row["loadavg_1m_before"] = os.getloadavg()[0]
    saved = os.environ.get("FERRY_SCTP_CC")
    if cc:
        os.environ["FERRY_SCTP_CC"] = cc
    if relay:
        # Only the stream TURN URL is offered for a TCP or TLS run (the UDP one would win ICE).
        os.environ["FERRY_RELAY_ONLY"] = "true"
        server = Relay(signal_bin(bench), topo, work, transport=relay)
        if server.ca:
            os.environ["SSL_CERT_FILE"] = str(server.ca)
    else:
        server = tools.FerryServer(bench.ferry, work, host=topo.ip_s, netns=topo.s)
    try:
        r = tools.run_ferry(bench.ferry, server, src, work / "recv", work,
                            send_ns=topo.s, recv_ns=topo.d, recv_bind=f"{topo.ip_d}:0")
    finally:
        if cc:
            if saved is None:
                os.environ.pop("FERRY_SCTP_CC", None)
            else:
                os.environ["FERRY_SCTP_CC"] = saved
        os.environ.pop("FERRY_RELAY_ONLY", None)
        os.environ.pop("SSL_CERT_FILE", None)
        server.stop()
        row["emulator_ferry"] = topo.stop_emulators()
        row["loadavg_1m_after"] = os.getloadavg()[0]
    if r.get("ok"):
        row["ferry_secs"] = r["secs"]
        row["ferry_mb_per_s"] = size / r["secs"] / 1e6
        if r.get("connected_secs") is not None:
            # From the data channel opening to the file verified on disk: the link-filling part.
            row["ferry_setup_secs"] = r["connected_secs"]
            row["ferry_transfer_mb_per_s"] = size / (r["secs"] - r["connected_secs"]) / 1e6
        rate = row.get("ferry_transfer_mb_per_s") or row["ferry_mb_per_s"]
        if nominal:
            row["ferry_of_nominal"] = rate / nominal
        for k in ("tcp", "tcp_bbr", "tcp_cubic"):
            if row.get(f"{k}_mb_per_s"):
                row[f"ferry_of_{k}"] = rate / row[f"{k}_mb_per_s"]
        for name in PEERS:
            other = row.get(f"{name}_transfer_mb_per_s") or row.get(f"{name}_mb_per_s")
            if other:
                row[f"ferry_over_{name}"] = rate / other
    else:
        row["error"] = r.get("error")
    print(f"bench: shaped {label}: {row}", file=sys.stderr)
    return row


# A TCP source that sends until killed (the competing flow of the fairness run).
TCP_FOREVER = ("import socket,sys\nc=socket.socket()\n"
               "c.setsockopt(socket.IPPROTO_TCP,socket.TCP_CONGESTION,sys.argv[3].encode())\n"
               "c.connect((sys.argv[1],int(sys.argv[2])));b=bytes(1<<20)\nwhile True: c.sendall(b)\n")


def fairness(bench, topo: Topology, work: Path, size: int, mbit: float = 50, rtt: float = 40,
             tcp_cc: str = "cubic", warmup: float = 8.0) -> dict:
    """One TCP flow (CUBIC by default) fills the bottleneck; ferry then sends `size` across
    the same link. The TCP flow's share of the link while ferry runs is what matters: a
    sender that ignored congestion would starve it."""
    label = f"fairness: ferry vs TCP {tcp_cc}, {mbit:g} Mbit/s, {rtt:g} ms"
    src = bench.data / f"random-{size}.bin"
    make_random(src, size)
    nominal = mbit * 1e6 / 8 / 1e6
    topo.shape(mbit, rtt, 0.0, "fairness")
    port = free_port()
    sink = spawn("fair-sink", [sys.executable, "-c", TCP_SINK, topo.ip_d, str(port)], work,
                 netns=topo.d, measure=False)
    time.sleep(0.5)
    source = spawn("fair-source", [sys.executable, "-c", TCP_FOREVER, topo.ip_d, str(port), tcp_cc],
                   work, netns=topo.s, measure=False)
    time.sleep(warmup)
    server = tools.FerryServer(bench.ferry, work, host=topo.ip_s, netns=topo.s)
    t0 = time.monotonic()
    try:
        r = tools.run_ferry(bench.ferry, server, src, work / "recv", work,
                            send_ns=topo.s, recv_ns=topo.d, recv_bind=f"{topo.ip_d}:0")
    finally:
        server.stop()
    t_end = time.monotonic()
    source.stop()
    sink.stop()
    topo.stop_emulators()
    ticks = [tuple(map(float, line.split())) for _, line in sink.all_lines if line]
    row = {"profile": label, "nominal_mb_per_s": nominal, "bytes": size}
    if not r.get("ok") or not ticks:
        row["error"] = r.get("error") or "no TCP progress recorded"
        return row
    # Ferry's data phase: from its data channel opening to the end.
    start = t0 + (r.get("connected_secs") or 0.0)
    inside = [(t, n) for t, n in ticks if start <= t <= t_end]
    before = [(t, n) for t, n in ticks if t < start]
    if len(inside) >= 2:
        tcp_rate = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) / 1e6
        row["tcp_during_mb_per_s"] = tcp_rate
        row["tcp_share"] = tcp_rate / nominal
    if len(before) >= 2:
        row["tcp_alone_mb_per_s"] = ((before[-1][1] - before[0][1])
                                     / (before[-1][0] - before[0][0]) / 1e6)
    secs = t_end - start
    row["ferry_transfer_mb_per_s"] = size / secs / 1e6
    row["ferry_share"] = row["ferry_transfer_mb_per_s"] / nominal
    print(f"bench: shaped {label}: {row}", file=sys.stderr)
    return row


def signal_bin(bench) -> Path:
    return Path(os.environ.get("BENCH_FERRY_SIGNAL") or bench.ferry.with_name("ferry-signal"))


def run(bench, size: int, keys: list[str] | None = None, ccs: list[str] | None = None,
        repeat: int = 1, relays: list[str] | None = None, fair: bool = False,
        peer_names: list[str] | None = None, wormhole_cc: str | None = None) -> list[dict]:
    keys = [] if keys == ["none"] else (keys or list(PROFILES))
    unknown = [k for k in keys if k not in PROFILES]
    if unknown:
        return [{"profile": "all", "error": f"unknown shaped profile(s) {unknown}; "
                 f"choose from {list(PROFILES)}"}]
    if os.geteuid() != 0:
        msg = "skipped: shaped links need root (network namespaces + TUN devices)"
        print(f"bench: {msg}", file=sys.stderr)
        return [{"profile": "all", "error": msg}]
    if not bench.ferry.exists():
        return [{"profile": "all", "error": "skipped: ferry not built"}]
    netem = netem_bin(bench)
    if netem is None:
        return [{"profile": "all", "error": "skipped: tun-netem not built "
                 "(cargo build --release -p ferry-bench, or set BENCH_TUN_NETEM)"}]
    work = bench.work / "shaped"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    topo = None
    peers = None
    try:
        topo = Topology(netem, work)
        if peer_names:
            peers = Peers(bench, topo, work, peer_names, wormhole_cc)
        for profile in (PROFILES[k] for k in keys):
            rows += run_profile(bench, topo, work, size, profile, ccs, repeat, relays, peers)
        if fair:
            rows.append(fairness(bench, topo, work, min(size, 128 * MIB)))
    except (subprocess.CalledProcessError, RuntimeError) as e:
        why = (e.stderr or "").strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
        rows.append({"profile": "all", "error": f"skipped: could not build the shaped link: {why}"})
    finally:
        if peers:
            peers.stop()
        if topo:
            topo.down()
    return rows


def markdown(rows: list[dict]) -> str:
    def f(v, spec=".2f", pct=False):
        if v is None:
            return "–"
        return f"{v * 100:.0f} %" if pct else format(v, spec)

    out = ["| shaped link | size | UDP ping RTT ms (median) | nominal MB/s | TCP BBR MB/s "
           "| TCP CUBIC MB/s | ferry set-up s | ferry MB/s (end to end) "
           "| ferry MB/s (channel open → verified) | ÷ nominal | ÷ TCP BBR | ÷ TCP CUBIC |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "bytes" not in r or "tcp_share" in r:
            note = r.get("error", "")
            if "tcp_share" in r:
                note = (f"TCP alone {f(r.get('tcp_alone_mb_per_s'))} MB/s; while ferry ran TCP "
                        f"kept {f(r.get('tcp_share'), pct=True)} of the link, ferry took "
                        f"{f(r.get('ferry_share'), pct=True)}")
            out.append(f"| {r['profile']} | {note} | | | | | | | | | | |")
            continue
        p = r.get("ping_ms") or {}
        ping = f"{p['median']:.1f}" if p.get("median") is not None else "–"
        fe = (f(r.get("ferry_mb_per_s")) if r.get("ferry_mb_per_s")
              else f"failed: {str(r.get('error'))[:60]}")
        out.append(f"| {r['profile']} | {r['bytes'] // MIB} MiB | {ping} | {f(r['nominal_mb_per_s'])} "
                   f"| {f(r.get('tcp_bbr_mb_per_s'))} | {f(r.get('tcp_cubic_mb_per_s'))} "
                   f"| {f(r.get('ferry_setup_secs'))} | {fe} | {f(r.get('ferry_transfer_mb_per_s'))} "
                   f"| {f(r.get('ferry_of_nominal'), pct=True)} | {f(r.get('ferry_of_tcp_bbr'), pct=True)} "
                   f"| {f(r.get('ferry_of_tcp_cubic'), pct=True)} |")
    peers = peers_markdown(rows)
    return "\n".join(out) + ("\n\n" + peers if peers else "")


def peers_markdown(rows: list[dict]) -> str:
    """Ferry beside magic-wormhole and sendme on the same link, each rate from its data start;
    empty when no peer ran."""
    names = [n for n in PEERS if any(f"{n}_bytes" in r or f"{n}_error" in r for r in rows)]
    if not names:
        return ""

    def f(v, spec=".2f", pct=False):
        if v is None:
            return "–"
        return f"{v * 100:.0f} %" if pct else format(v, spec)

    head = "| shaped link | nominal MB/s | TCP BBR MB/s | ferry MB/s | ÷ nominal | ÷ TCP BBR |"
    rule = "| --- | --- | --- | --- | --- | --- |"
    for n in names:
        head += f" {PEER_LABEL[n]} MB/s | ÷ nominal | ÷ TCP BBR | ferry ÷ {PEER_LABEL[n]} |"
        rule += " --- | --- | --- | --- |"
    out = [head + " notes |", rule + " --- |"]
    for r in rows:
        if not any(f"{n}_bytes" in r or f"{n}_error" in r for n in names):
            continue
        cells = [r["profile"], f(r["nominal_mb_per_s"]), f(r.get("tcp_bbr_mb_per_s")),
                 f(r.get("ferry_transfer_mb_per_s") or r.get("ferry_mb_per_s")),
                 f(r.get("ferry_of_nominal"), pct=True), f(r.get("ferry_of_tcp_bbr"), ".2f")]
        notes = []
        for n in names:
            rate = r.get(f"{n}_transfer_mb_per_s") or r.get(f"{n}_mb_per_s")
            if rate is None:
                cells += [f"failed: {str(r.get(f'{n}_error'))[:60]}", "–", "–", "–"]
                continue
            cells += [f"{rate:.2f} ({r[f'{n}_bytes'] // MIB} MiB)", f(r.get(f"{n}_of_nominal"), pct=True),
                      f(r.get(f"{n}_of_tcp_bbr")), f(r.get(f"ferry_over_{n}"))]
            note = f"{PEER_LABEL[n]}: set-up {f(r.get(f'{n}_setup_secs'))} s"
            if n == "wormhole":
                note += f", transit {r.get('wormhole_path')}, TCP {r.get('wormhole_tcp_cc')}"
            if r.get(f"{n}_own_mb_per_s"):
                note += f", own report {r[f'{n}_own_mb_per_s']:.2f} MB/s"
            if not r.get(f"{n}_crossed_link"):
                note += ", NOT across the link"
            notes.append(note)
        out.append("| " + " | ".join(cells) + " | " + "; ".join(notes) + " |")
    return "\n".join(out)
