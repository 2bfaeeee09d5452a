"""Network namespaces that model "the internet" on one machine.

    ha (100.64.1.2) -- ra [NAT] --+                       +-- rb [NAT] -- hb (100.64.2.2)
                                  |  pub: br0 203.0.113.0/24  |
                     ra wan .11 --+-- .10 (+ .20): signal,   -+-- .12 rb wan
                                       STUN and TURN (coturn)

Faults use nftables and tbf: this kernel has no sch_netem.

Only documentation (203.0.113.0/24, TEST-NET-3) and shared (100.64.0.0/10) addresses are used, and
only inside namespaces created here. No interface is ever connected to the host's namespace, so
nothing started in these namespaces can reach anything outside them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PUB_IP = "203.0.113.10"
# A second public address on the same server: a symmetric NAT maps the same socket to different
# ports for the two, an endpoint-independent one to the same port; that is how each mode is checked.
PUB_IP2 = "203.0.113.20"
# The signaling server has an address of its own so that it can listen on 443 (the one port a
# locked-down network lets out) next to coturn's TLS listener on PUB_IP:443.
SIGNAL_IP = "203.0.113.30"
# Next hop of the public segment's default route; nothing answers there (see Topology.build).
INTERNET_GW = "203.0.113.254"
WAN_IP = {"a": "203.0.113.11", "b": "203.0.113.12"}
LAN_NET = {"a": "100.64.1", "b": "100.64.2"}

# Router behaviours. Every NAT mode filters unsolicited inbound traffic like a home router does
# (conntrack: only replies to flows the LAN opened), so a host candidate is never reachable.
MODES = ("route", "eim", "symmetric", "udp-blocked")


def run(*args: str, check: bool = True, input_: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args), check=check, text=True, input=input_, capture_output=True, timeout=30
    )


def nft_ruleset(mode: str) -> str:
    """nftables for a home router: `lan0` inside, `wan0` towards the public segment."""
    if mode == "route":
        return ""
    # `masquerade` keeps a flow's source port when it is free and reuses the mapping of a source
    # socket for every destination: endpoint-independent mapping. `random` draws a fresh port for
    # each new flow (each destination), which is what a symmetric NAT does.
    masq = "masquerade random" if mode == "symmetric" else "masquerade"
    forward_out = 'iifname "lan0" accept'
    if mode == "udp-blocked":
        # A restrictive corporate/hotel network: nothing leaves but TCP to port 443.
        forward_out = 'iifname "lan0" tcp dport 443 accept\n    iifname "lan0" drop'
    return f"""
table ip ferrynat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" {masq}
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    {forward_out}
  }}
  # Unsolicited packets to the router itself are dropped like on a home router. This matters for
  # hole punching: a peer's first packet can reach this NAT before our host has sent anything; if
  # it were accepted, its conntrack entry would occupy the mapping our host is about to use and
  # masquerade would move our host to another port. Dropped here, the entry is never confirmed.
  chain input {{
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    iifname "lan0" accept
  }}
}}
"""


@dataclass
class Topology:
    prefix: str
    mode: str
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def ns(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    # -- building ----------------------------------------------------------------------------
    def add_ns(self, short: str) -> str:
        name = self.ns(short)
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def ip(self, short: str, *args: str) -> None:
        run("ip", "-n", self.ns(short), *args)

    def sysctl(self, short: str, key: str, value: str) -> None:
        run("ip", "netns", "exec", self.ns(short), "sysctl", "-qw", f"{key}={value}")

    def build(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown router mode {self.mode}")
        for short in ("pub", "ra", "rb", "ha", "hb"):
            self.add_ns(short)
        self.ip("pub", "link", "add", "br0", "type", "bridge")
        self.ip("pub", "addr", "add", f"{PUB_IP}/24", "dev", "br0")
        self.ip("pub", "addr", "add", f"{PUB_IP2}/24", "dev", "br0")
        self.ip("pub", "addr", "add", f"{SIGNAL_IP}/24", "dev", "br0")
        self.ip("pub", "link", "set", "br0", "up")
        # The rest of the internet: a default route to a gateway that swallows everything, as a
        # real server has. Without it a relay's send to a private candidate address (which ICE
        # tries) fails with ENETUNREACH, and coturn then marks that allocation's relay socket
        # to-be-closed and silently relays nothing more for it (the old case-c failure).
        run("ip", "-n", self.ns("pub"), "neigh", "add", INTERNET_GW, "lladdr", "02:00:00:00:00:fe",
            "dev", "br0", "nud", "permanent")
        self.ip("pub", "route", "add", "default", "via", INTERNET_GW, "dev", "br0")
        for side in ("a", "b"):
            r, h = f"r{side}", f"h{side}"
            # WAN: router <-> a port on the public bridge.
            self.ip("pub", "link", "add", f"p{side}", "type", "veth", "peer", "name", "wan0",
                    "netns", self.ns(r))
            self.ip("pub", "link", "set", f"p{side}", "master", "br0", "up")
            self.ip(r, "addr", "add", f"{WAN_IP[side]}/24", "dev", "wan0")
            self.ip(r, "link", "set", "wan0", "up")
            # LAN: router <-> home host.
            self.ip(r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                    "netns", self.ns(h))
            self.ip(r, "addr", "add", f"{LAN_NET[side]}.1/24", "dev", "lan0")
            self.ip(r, "link", "set", "lan0", "up")
            self.ip(h, "addr", "add", f"{LAN_NET[side]}.2/24", "dev", "eth0")
            self.ip(h, "link", "set", "eth0", "up")
            self.ip(h, "route", "add", "default", "via", f"{LAN_NET[side]}.1")
            self.sysctl(r, "net.ipv4.ip_forward", "1")
            rules = nft_ruleset(self.mode)
            if rules:
                run("ip", "netns", "exec", self.ns(r), "nft", "-f", "-", input_=rules)
        if self.mode == "route":
            # Without NAT the home networks are routed like public ones: host candidates work.
            self.sysctl("pub", "net.ipv4.ip_forward", "1")
            for side, other in (("a", "b"), ("b", "a")):
                self.ip("pub", "route", "add", f"{LAN_NET[side]}.0/24", "via", WAN_IP[side])
                self.ip(f"r{side}", "route", "add", f"{LAN_NET[other]}.0/24", "via", WAN_IP[other])

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, short: str, argv: list[str], log: str, env: dict | None = None,
              stdout_pipe: bool = False) -> subprocess.Popen:
        """Start `argv` inside a namespace; stderr (and stdout unless piped) go to a log file."""
        logf = open(self.workdir / log, "ab")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(short), *argv],
            stdout=subprocess.PIPE if stdout_pipe else logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: teardown ends it and its children
        )
        self.procs.append(p)
        return p

    def exec(self, short: str, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns(short), *argv], text=True,
                              capture_output=True, timeout=timeout)

    def teardown(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=3)
        self.procs.clear()
        # Deleting a namespace removes its veths (and their peers) and nft tables with it.
        for name in reversed(self.namespaces):
            run("ip", "netns", "del", name, check=False)
        self.namespaces.clear()


def wait_port(topo: Topology, short: str, proto: str, port: int, timeout: float = 10,
              ip: str = "") -> None:
    """Wait until something listens on [ip:]port inside a namespace (ss, no traffic sent)."""
    flag = "-ltn" if proto == "tcp" else "-lun"
    filt = ["src", f"{ip}:{port}"] if ip else [f"sport = :{port}"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = topo.exec(short, ["ss", "-H", flag, *filt]).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {proto}/{port} in {short}")
