"""The emulated link of the shaped benchmark (bench/shaped.py), and what probes it.

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

The probes: a UDP ping (no `ping` binary needed) and plain TCP streams, whose controller is
chosen per socket. `Relay` puts coturn on the link for relayed runs. Only namespaces created
here are touched; they are removed in `Topology.down` (also at exit, which ends the
emulators too: their TUNs live in the router).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import tools
from common import build_shim, free_port, json_lines, spawn


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

# A TCP source that sends until killed (the competing flow of the fairness run).
TCP_FOREVER = ("import socket,sys\nc=socket.socket()\n"
               "c.setsockopt(socket.IPPROTO_TCP,socket.TCP_CONGESTION,sys.argv[3].encode())\n"
               "c.connect((sys.argv[1],int(sys.argv[2])));b=bytes(1<<20)\nwhile True: c.sendall(b)\n")


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
        # "tcp-autotuned": coturn's fixed 64 KiB TCP socket buffers are left to the kernel.
        transport, _, autotuned = transport.partition("-")
        prefix: list[str] = []
        if autotuned:
            so = build_shim("tcp_autotune", work)
            if so is None:
                raise RuntimeError("the relay's autotuned variant needs a C compiler (cc)")
            prefix = ["env", f"LD_PRELOAD={so}"]
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
        self.coturn = spawn("coturn", [*prefix, "turnserver", "-c", str(conf)], work,
                            netns=topo.d, measure=False)
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
