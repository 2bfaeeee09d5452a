"""Shaped links: does Ferry fill a link with a given rate, delay and loss?

The link is emulated between three network namespaces (shaped_link.py says how). Per profile
the link is checked before Ferry runs on it: a UDP ping must show the configured RTT, and a
plain TCP stream with BBR and one with CUBIC (the yardstick of what the shaped path carries at
all) their rates. Then ferry crosses it, directly or through coturn (`Relay`), once per SCTP
congestion controller asked for.

On request (`Peers`, shaped_peers.py) magic-wormhole and sendme cross the same link in the
same run, so each figure sits beside ferry's and plain TCP's taken minutes apart on the same
emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import tools
from common import MIB, free_port, make_random, spawn
from shaped_link import (TCP_FOREVER, TCP_SINK, Relay, Topology, netem_bin, tcp_baseline,
                         udp_ping)
from shaped_peers import LOSS_BOUND, PEER_LABEL, PEERS, Peers

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
