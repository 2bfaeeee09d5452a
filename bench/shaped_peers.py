"""Other tools across the shaped benchmark's emulated link (`--shaped-peers`): magic-wormhole
and sendme, senders in the sender's namespace and receivers in the receiver's, so each figure
sits beside ferry's and plain TCP's taken minutes apart on the same emulator."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import tools
from common import MIB
from shaped_link import Topology, sh

# Controllers that treat random loss as congestion: on a lossy profile they carry a few
# percent of the link, so their runs use the profile's smaller file.
LOSS_BOUND = {"reno", "cubic"}

# Other tools across the same link (`--shaped-peers`). sendme's QUIC stack (iroh's) runs CUBIC
# whatever the machine says, so it is loss-bound like the CUBIC baseline; magic-wormhole's
# transit is a kernel TCP socket with the namespace's default controller, looked up per run.
PEERS = ("wormhole", "sendme")
PEER_LABEL = {"wormhole": "magic-wormhole", "sendme": "sendme"}
PEERS_LOSS_BOUND = {"sendme"}


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
