"""Shaped links: two network namespaces joined by a veth pair with `tc netem` on each end.
Ferry's sender and signaling server live in one namespace, the receiver in the other, and
the question is whether Ferry fills the link. A plain TCP stream over the same link is
measured alongside, as the yardstick of what the shaped path carries at all.

Only namespaces created here are touched, and they are removed in a finally/atexit.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from pathlib import Path

import tools
from common import free_port, make_random, spawn

# (label, rate in Mbit/s, RTT ms, loss % on the data direction)
PROFILES = [
    ("1 Gbit/s, 1 ms RTT", 1000, 1.0, 0.0),
    ("100 Mbit/s, 40 ms RTT", 100, 40.0, 0.0),
    ("100 Mbit/s, 40 ms RTT, 1% loss", 100, 40.0, 1.0),
]

SUBNET = "10.231.77"  # lives only inside the two namespaces below


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


class Link:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.a, self.b = f"fbench-a-{tag}", f"fbench-b-{tag}"
        self.va, self.vb = f"fba{tag}", f"fbb{tag}"
        self.ip_a, self.ip_b = f"{SUBNET}.1", f"{SUBNET}.2"
        atexit.register(self.down)
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        sh("ip", "link", "add", self.va, "type", "veth", "peer", "name", self.vb)
        sh("ip", "link", "set", self.va, "netns", self.a)
        sh("ip", "link", "set", self.vb, "netns", self.b)
        for ns, dev, ip in ((self.a, self.va, self.ip_a), (self.b, self.vb, self.ip_b)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # webrtc's mDNS socket fails with ENODEV when no route covers multicast.
            sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)

    def shape(self, mbit: int, rtt_ms: float, loss: float) -> bool:
        """Shapes both directions; returns whether the delay could be applied.

        netem does rate, delay and loss in one qdisc. Kernels built without sch_netem (this
        machine's) get tbf for the rate and an nftables `numgen random` rule for the loss, and
        no added delay: tc has no other delay qdisc without an eBPF program.
        """
        one_way = f"{rtt_ms / 2:g}ms"
        # Queue deep enough for 2x the bandwidth-delay product so netem itself drops nothing.
        limit = str(max(1000, int(mbit * 1e6 / 8 * rtt_ms / 1000 * 2 / 1200)))
        netem = True
        for ns, dev, l in ((self.a, self.va, loss), (self.b, self.vb, 0.0)):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
            sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "fbench", check=False)
            cmd = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "netem",
                   "delay", one_way, "rate", f"{mbit}mbit", "limit", limit]
            if l:
                cmd += ["loss", f"{l:g}%"]
            if netem and sh(*cmd, check=False).returncode == 0:
                continue
            netem = False
            burst = "256kb" if mbit >= 500 else "64kb"
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
               f"{mbit}mbit", "burst", burst, "latency", "50ms")
            if l:
                rules = (f"table inet fbench {{ chain out {{ type filter hook output priority 0; "
                         f"oifname \"{dev}\" numgen random mod 1000 < {int(l * 10)} drop; }}; }}")
                sh("ip", "netns", "exec", ns, "nft", rules)
        return netem

    def down(self) -> None:
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)


TCP_SINK = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1);c,_=s.accept();n=0\n"
            "while True:\n d=c.recv(1<<20)\n if not d: break\n n+=len(d)\nprint(n)\n")
TCP_SOURCE = ("import socket,sys,time\nc=socket.create_connection((sys.argv[1],int(sys.argv[2])))\n"
              "f=open(sys.argv[3],'rb')\nwhile True:\n d=f.read(1<<20)\n if not d: break\n c.sendall(d)\n"
              "c.shutdown(socket.SHUT_WR);c.recv(1)\n")


def tcp_baseline(link: Link, src: Path, work: Path) -> float | None:
    port = free_port()
    sink = spawn("tcp-sink", [sys.executable, "-c", TCP_SINK, link.ip_b, str(port)], work,
                 netns=link.b, measure=False)
    time.sleep(0.5)
    t0 = time.monotonic()
    source = spawn("tcp-source", [sys.executable, "-c", TCP_SOURCE, link.ip_b, str(port), str(src)],
                   work, netns=link.a, measure=False)
    rc = sink.wait(tools.TIMEOUT)
    secs = time.monotonic() - t0
    source.stop()
    sink.stop()
    return secs if rc == 0 else None


def run(bench, size: int) -> list[dict]:
    if os.geteuid() != 0:
        msg = "skipped: shaped links need root (network namespaces + tc netem)"
        print(f"bench: {msg}", file=sys.stderr)
        return [{"profile": "all", "error": msg}]
    if not bench.ferry.exists():
        return [{"profile": "all", "error": "skipped: ferry not built"}]
    src = bench.data / f"random-{size}.bin"
    make_random(src, size)
    work = bench.work / "shaped"
    rows = []
    link = None
    try:
        link = Link()
        for label, mbit, rtt, loss in PROFILES:
            delayed = link.shape(mbit, rtt, loss)
            if not delayed:
                label = label.replace(f", {rtt:g} ms RTT", ", no added delay (no sch_netem)")
            nominal = mbit * 1e6 / 8 / 1e6  # MB/s
            row = {"profile": label, "nominal_mb_per_s": nominal, "bytes": size, "delay_applied": delayed}
            tcp = tcp_baseline(link, src, work)
            row["tcp_mb_per_s"] = size / tcp / 1e6 if tcp else None
            server = tools.FerryServer(bench.ferry, work, host=link.ip_a, netns=link.a)
            try:
                r = tools.run_ferry(bench.ferry, server, src, work / "recv", work,
                                    send_ns=link.a, recv_ns=link.b, recv_bind=f"{link.ip_b}:0")
            finally:
                server.stop()
            if r.get("ok"):
                row["ferry_mb_per_s"] = size / r["secs"] / 1e6
                row["ferry_of_nominal"] = row["ferry_mb_per_s"] / nominal
            else:
                row["error"] = r.get("error")
            print(f"bench: shaped {label}: {row}", file=sys.stderr)
            rows.append(row)
    except subprocess.CalledProcessError as e:
        rows.append({"profile": "all", "error": f"skipped: could not build namespaces: {e.stderr.strip()}"})
    finally:
        if link:
            link.down()
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| shaped link | nominal MB/s | plain TCP MB/s | ferry MB/s | ferry ÷ nominal |",
           "| --- | --- | --- | --- | --- |"]
    for r in rows:
        if "nominal_mb_per_s" not in r:
            out.append(f"| {r['profile']} | {r.get('error', '')} | | | |")
            continue
        tcp = f"{r['tcp_mb_per_s']:.1f}" if r.get("tcp_mb_per_s") else "–"
        fe = f"{r['ferry_mb_per_s']:.1f}" if r.get("ferry_mb_per_s") else f"failed: {str(r.get('error'))[:60]}"
        pct = f"{r['ferry_of_nominal'] * 100:.0f} %" if r.get("ferry_of_nominal") else "–"
        out.append(f"| {r['profile']} | {r['nominal_mb_per_s']:.1f} | {tcp} | {fe} | {pct} |")
    return "\n".join(out)
