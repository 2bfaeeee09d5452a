#!/usr/bin/env python3
"""Ferry benchmark harness: ferry vs magic-wormhole vs sendme vs the raw WebRTC ceiling,
on one machine over loopback (and optionally over shaped links in network namespaces).

    python3 bench/run.py                      # 1 GiB random, 3 runs, every tool
    python3 bench/run.py --size 4G --runs 5
    python3 bench/run.py --tools ferry,raw --size 16M --runs 1 --no-build --profile debug
    python3 bench/run.py --small-files        # + 10,000 files (~200 MB)
    python3 bench/run.py --shaped             # + netem links (root only)
    python3 bench/run.py --shaped --shaped-peers wormhole,sendme   # + those across each link

Tools run alternately (the order rotates every run) so a noisy neighbour hits all of them.
Writes a Markdown table to stdout and everything measured to bench-out/results.json.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shaped  # noqa: E402
import tools  # noqa: E402
from common import (MIB, have_time_bin, human, make_compressible, make_random,  # noqa: E402
                    make_small_files, parse_size, slow_sync_wrap, summarize)

REPO = Path(__file__).resolve().parent.parent
ALL_TOOLS = ["ferry", "raw", "wormhole", "sendme"]
LABEL = {"ferry": "ferry", "raw": "raw ceiling (webrtc, no disk)", "wormhole": "magic-wormhole",
         "sendme": "sendme"}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "os": platform.platform(), "python": platform.python_version()}


def build(profile: str) -> None:
    cmd = ["nice", "-n", "10", "cargo", "build", "-p", "ferry-cli", "-p", "ferry-bench"]
    if profile == "release":
        cmd.append("--release")
    print(f"bench: building ({' '.join(cmd)})", file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, check=True)


def version_of(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.work = self.out / "work"
        self.data = Path(args.data_dir).resolve() if args.data_dir else self.out / "data"
        bin_dir = REPO / "target" / args.profile
        self.ferry = Path(args.ferry_bin) if args.ferry_bin else bin_dir / "ferry"
        self.raw = Path(args.raw_bin) if args.raw_bin else bin_dir / "raw-ceiling"
        self.venv = Path(args.venv).resolve()
        self.results: list[dict] = []
        self.skipped: dict[str, str] = {}
        self.ferry_server = None
        self.wormhole = None

    # -- setup ------------------------------------------------------------------------
    def setup_tools(self, wanted: list[str]) -> list[str]:
        ready = []
        for t in wanted:
            try:
                if t == "ferry":
                    if not self.ferry.exists():
                        raise tools.Skip(f"not built ({self.ferry})")
                    self.ferry_server = tools.FerryServer(self.ferry, self.work)
                elif t == "raw":
                    if not self.raw.exists():
                        raise tools.Skip(f"not built ({self.raw})")
                elif t == "wormhole":
                    self.wormhole = tools.WormholeServers(self.venv, self.work)
                elif t == "sendme":
                    if tools.sendme_bin() is None:
                        raise tools.Skip("not installed (cargo install --locked sendme)")
                ready.append(t)
            except tools.Skip as e:
                self.skipped[t] = f"skipped ({e})"
                print(f"bench: {t}: skipped ({e})", file=sys.stderr)
        return ready

    def teardown(self) -> None:
        if self.ferry_server:
            self.ferry_server.stop()
        if self.wormhole:
            self.wormhole.stop()

    # -- one measurement ----------------------------------------------------------------
    def run_one(self, tool: str, case: str, src: Path, run: int,
                recv_wrap: list[str] | None = None) -> dict:
        dst = self.work / f"recv-{tool}"
        try:
            if tool == "ferry":
                r = tools.run_ferry(self.ferry, self.ferry_server, src, dst, self.work,
                                    recv_wrap=recv_wrap)
            elif tool == "raw":
                r = tools.run_raw(self.raw, src.stat().st_size if src.is_file() else 0, self.work,
                                  self.args.raw_args.split() if self.args.raw_args else None)
            elif tool == "wormhole":
                r = tools.run_wormhole(self.wormhole, src, dst, self.work, run, recv_wrap=recv_wrap)
            elif tool == "sendme":
                r = tools.run_sendme(src, dst, self.work, recv_wrap=recv_wrap)
            else:
                raise ValueError(tool)
        except tools.Skip as e:
            r = {"ok": False, "skipped": True, "error": str(e)}
        shutil.rmtree(dst, ignore_errors=True)
        r.update(tool=tool, case=case, run=run)
        if r.get("ok"):
            r["mb_per_s"] = r["bytes"] / r["secs"] / 1e6
            print(f"bench: {case} run {run} {tool}: {r['secs']:.2f} s, {r['mb_per_s']:.0f} MB/s",
                  file=sys.stderr)
        else:
            print(f"bench: {case} run {run} {tool}: FAILED: {r.get('error')}", file=sys.stderr)
        self.results.append(r)
        return r

    def run_case(self, case: str, src: Path, tool_list: list[str],
                 recv_wrap: list[str] | None = None) -> None:
        if not tool_list:
            return
        for run in range(self.args.runs):
            order = tool_list[run % len(tool_list):] + tool_list[:run % len(tool_list)]
            for tool in order:
                if tool == "raw" and (not src.is_file() or recv_wrap):
                    # The ceiling is one byte stream with no disk: no files, no syncs.
                    continue
                self.run_one(tool, case, src, run, recv_wrap)


def aggregate(results: list[dict], case: str, tool_list: list[str]) -> list[dict]:
    rows = []
    ferry = {r["run"]: r for r in results if r["case"] == case and r["tool"] == "ferry" and r.get("ok")}
    for tool in tool_list:
        rs = [r for r in results if r["case"] == case and r["tool"] == tool]
        if not rs:
            continue
        ok = [r for r in rs if r.get("ok")]
        row = {"case": case, "tool": tool, "runs": len(rs), "failed": len(rs) - len(ok),
               "secs": summarize([r["secs"] for r in ok]),
               "mb_per_s": summarize([r["mb_per_s"] for r in ok]),
               "rss_send_mib": summarize([r["rss_send_kib"] / 1024 for r in ok if r.get("rss_send_kib")]),
               "rss_recv_mib": summarize([r["rss_recv_kib"] / 1024 for r in ok if r.get("rss_recv_kib")]),
               "ttfb_secs": summarize([r["ttfb_secs"] for r in ok if r.get("ttfb_secs") is not None])}
        # ferry's throughput / this tool's, pairing runs with the same index (same conditions).
        ratios = [ferry[r["run"]]["mb_per_s"] / r["mb_per_s"] for r in ok if r["run"] in ferry]
        row["ferry_ratio"] = summarize(ratios)
        if not ok:
            row["error"] = rs[-1].get("error", "")
        rows.append(row)
    return rows


def fmt(s: dict, spec: str = ".2f", spread: bool = True) -> str:
    if not s:
        return "–"
    med = format(s["median"], spec)
    if spread and s["n"] > 1:
        return f"{med} ({format(s['min'], spec)}–{format(s['max'], spec)})"
    return med


def markdown(rows: list[dict], skipped: dict[str, str]) -> str:
    out = ["| case | tool | time s, median (min–max) | MB/s median | ferry ÷ tool (throughput) "
           "| peak RSS send / recv MiB | time to first byte s |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if not r["mb_per_s"]:
            out.append(f"| {r['case']} | {LABEL[r['tool']]} | failed ({r['failed']}/{r['runs']}) "
                       f"| – | – | – | – |")
            continue
        rss = f"{fmt(r['rss_send_mib'], '.0f', False)} / {fmt(r['rss_recv_mib'], '.0f', False)}"
        ratio = "1.00" if r["tool"] == "ferry" else fmt(r["ferry_ratio"], ".2f")
        fails = f" ({r['failed']} failed)" if r["failed"] else ""
        out.append(f"| {r['case']} | {LABEL[r['tool']]}{fails} | {fmt(r['secs'])} | "
                   f"{fmt(r['mb_per_s'], '.0f', False)} | {ratio} | {rss} | {fmt(r['ttfb_secs'], '.3f', False)} |")
    for tool, why in skipped.items():
        out.append(f"| all | {LABEL[tool]} | {why} | | | | |")
    return "\n".join(out)


def shown_command(argv: list[str]) -> str:
    """The command as the user typed it, without what the namespace re-exec appended."""
    args = [a for a in argv if not a.startswith("--in-netns")]
    if len(args) < len(argv) and args and args[-1] == "--no-build":
        args = args[:-1]
    return " ".join(["python3 bench/run.py"] + args)


def reexec_isolated(argv: list[str]) -> int:
    """Runs this harness again inside a fresh network namespace that has only `lo`.

    Every tool then finds 127.0.0.1 as its only address: magic-wormhole's and iroh's direct
    hints and ferry's ICE candidates all stay on loopback (on the host they would advertise
    the machine's LAN address), and nothing can leave the machine.
    """
    ns = f"fbench-lo-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up", "multicast", "on"], check=True)
        # webrtc's mDNS socket fails with ENODEV where no device carries multicast.
        subprocess.run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo"], check=True)
        cmd = ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).resolve())]
        cmd += list(argv) + ["--no-build", f"--in-netns={ns}"]
        return subprocess.run(cmd).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1G", help="random/compressible file size: 1G (default), 4G, 7G, 16M…")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tools", help=f"comma list of {ALL_TOOLS} (default: all)")
    p.add_argument("--no-compressible", action="store_true", help="skip the compressible file case")
    p.add_argument("--small-files", action="store_true", help="add the 10,000 small files (~200 MB) case")
    p.add_argument("--small-count", type=int, default=10000)
    p.add_argument("--small-total", default="200M")
    p.add_argument("--slow-sync", type=int, metavar="MS",
                   help="add the random file again with every receiver fsync/fdatasync delayed by "
                        "MS ms (a USB stick, an SD card, a busy disk; LD_PRELOAD shim slow_sync.c)")
    p.add_argument("--shaped", action="store_true", help="add netem-shaped links (root; namespaces)")
    p.add_argument("--shaped-size", help="file size on shaped links (default: --size; a user's large "
                   "file, so the one-time set-up does not decide the figure)")
    p.add_argument("--shaped-profiles", default="pass,1g,100m,loss",
                   help="which shaped links: comma list of pass, 1g, 100m, loss, 50m150, 50m150l, 20m80l1")
    p.add_argument("--shaped-sctp-cc", default="",
                   help="A/B of SCTP congestion control on shaped links: comma list of reno, bbr "
                        "(FERRY_SCTP_CC per ferry run, alternating; default: the environment's)")
    p.add_argument("--shaped-relay", default="",
                   help="also run ferry relayed through coturn (--relay-only) per shaped link: comma "
                        "list of udp, tcp, tls (needs turnserver and ferry-signal; tls also openssl); "
                        "tcp-autotuned and tls-autotuned run coturn with its fixed TCP socket buffers "
                        "left to the kernel's autotuning (LD_PRELOAD shim tcp_autotune.c)")
    p.add_argument("--shaped-fairness", action="store_true",
                   help="also share a 50 Mbit/s, 40 ms bottleneck with one TCP CUBIC flow and "
                        "report the TCP flow's share while ferry runs")
    p.add_argument("--shaped-peers",
                   help="also run these across each shaped link, once per link: comma list of "
                        "wormhole, sendme (default: those named in an explicit --tools; none "
                        "otherwise, so a plain --shaped run takes no longer)")
    p.add_argument("--shaped-wormhole-cc", choices=["cubic", "reno", "bbr"],
                   help="TCP congestion control for magic-wormhole on shaped links (set on its "
                        "sockets, it has no option of its own), e.g. cubic, the default of stock "
                        "Linux, macOS and Windows; default: this kernel's default")
    p.add_argument("--shaped-repeat", type=int, default=1,
                   help="ferry runs per shaped link and congestion controller")
    p.add_argument("--profile", default="release", choices=["release", "debug"])
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--ferry-bin")
    p.add_argument("--raw-bin")
    p.add_argument("--raw-args", default="", help="extra raw-ceiling flags (same transport knobs as ferry)")
    p.add_argument("--venv", default=str(REPO / "bench" / ".venv"), help="venv holding magic-wormhole")
    p.add_argument("--out", default=str(REPO / "bench-out"))
    p.add_argument("--data-dir", help="where test files are generated (default OUT/data)")
    p.add_argument("--no-isolate", action="store_true",
                   help="don't run inside a private loopback-only network namespace (default when root)")
    p.add_argument("--in-netns", help=argparse.SUPPRESS)
    p.add_argument("--require", default="", help="comma list of tools whose failure makes the exit code non-zero")
    args = p.parse_args(argv)

    wanted = [t for t in (args.tools or ",".join(ALL_TOOLS)).split(",") if t]
    for t in wanted:
        if t not in ALL_TOOLS:
            p.error(f"unknown tool {t}")
    for t in [t for t in args.shaped_relay.split(",") if t]:
        if t not in ("udp", "tcp", "tls", "tcp-autotuned", "tls-autotuned"):
            p.error(f"unknown relay transport {t} (udp, tcp, tls, tcp-autotuned or tls-autotuned)")
    if args.shaped_peers is not None:
        peers = [t for t in args.shaped_peers.split(",") if t]
    else:
        peers = [t for t in wanted if t in shaped.PEERS] if args.tools else []
    for t in peers:
        if t not in shaped.PEERS:
            p.error(f"unknown shaped peer {t}; choose from {list(shaped.PEERS)}")
    if not have_time_bin():
        print("bench: /usr/bin/time missing (apt-get install time): no peak RSS figures", file=sys.stderr)
    if not args.no_build and any(t in wanted for t in ("ferry", "raw")):
        build(args.profile)

    if not args.in_netns and not args.no_isolate and os.geteuid() == 0:
        return reexec_isolated(argv if argv is not None else sys.argv[1:])
    if not args.in_netns and not args.no_isolate:
        print("bench: not root: running on the host's loopback; tools may pick other local "
              "interface addresses", file=sys.stderr)

    b = Bench(args)
    b.work.mkdir(parents=True, exist_ok=True)
    b.data.mkdir(parents=True, exist_ok=True)
    size = parse_size(args.size)
    started = time.time()
    cases = []
    rand = b.data / f"random-{size}.bin"
    print(f"bench: generating test data in {b.data}", file=sys.stderr)
    make_random(rand, size)
    cases.append((f"{human(size)} random", rand))
    if not args.no_compressible:
        comp = b.data / f"text-{size}.log"
        make_compressible(comp, size)
        cases.append((f"{human(size)} compressible", comp))
    if args.small_files:
        small = b.data / f"small-{args.small_count}"
        make_small_files(small, args.small_count, parse_size(args.small_total))
        cases.append((f"{args.small_count} small files", small))

    tool_list = b.setup_tools(wanted)
    rows: list[dict] = []
    shaped_rows: list[dict] = []
    slow = None
    if args.slow_sync:
        slow = slow_sync_wrap(args.slow_sync, b.work)
        if slow is None:
            print("bench: --slow-sync needs a C compiler (cc); skipped", file=sys.stderr)
    try:
        for case, src in cases:
            b.run_case(case, src, tool_list)
            rows += aggregate(b.results, case, tool_list)
        if slow:
            case = f"{human(size)} random, fsync +{args.slow_sync} ms"
            b.run_case(case, rand, tool_list, recv_wrap=slow)
            rows += aggregate(b.results, case, [t for t in tool_list if t != "raw"])
        if args.shaped:
            shaped_rows = shaped.run(b, parse_size(args.shaped_size or args.size),
                                     args.shaped_profiles.split(","),
                                     [c for c in args.shaped_sctp_cc.split(",") if c] or None,
                                     args.shaped_repeat,
                                     [t for t in args.shaped_relay.split(",") if t] or None,
                                     args.shaped_fairness, peers, args.shaped_wormhole_cc)
    finally:
        b.teardown()

    table = markdown(rows, b.skipped)
    print(table)
    if shaped_rows:
        print()
        print(shaped.markdown(shaped_rows))
    versions = {"ferry": version_of([str(b.ferry), "--version"]),
                "magic-wormhole": version_of([str(b.venv / "bin" / "wormhole"), "--version"]),
                "sendme": version_of([str(tools.sendme_bin() or "sendme"), "--version"])}
    doc = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "command": shown_command(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "versions": versions, "size": size, "runs": args.runs,
           "summary": rows, "shaped": shaped_rows, "skipped": b.skipped, "results": b.results,
           "markdown": table}
    b.out.mkdir(parents=True, exist_ok=True)
    (b.out / "results.json").write_text(json.dumps(doc, indent=2))
    print(f"\nbench: wrote {b.out / 'results.json'}", file=sys.stderr)

    required = [t for t in args.require.split(",") if t]
    bad = [r for r in b.results if r["tool"] in required and not r.get("ok")]
    bad += [{"tool": t} for t in required if t in b.skipped]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
