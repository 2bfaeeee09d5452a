#!/usr/bin/env python3
"""Sweeps raw-ceiling's transport knobs (the same knobs as ferry_core's RtcTuning) and prints
a Markdown table: one row per setting, median MB/s over interleaved repetitions, and the
change against the webrtc defaults measured in the same pass.

    python3 bench/sweep.py                        # 512 MiB per run, 3 repetitions
    python3 bench/sweep.py --bytes 256M --reps 2 --bin target/release/raw-ceiling
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BEST = ["--msg-size=256KiB", "--max-message-size=256KiB", "--recv-buffer=4MiB", "--mtu=1400",
        "--high=4MiB", "--low=2MiB"]

# What docs/BENCHMARKS.md proposes for RtcTuning: the combined gains, memory bounded by the
# blocking send limit, and the TURN-safe default MTU.
PROPOSED = ["--msg-size=256KiB", "--max-message-size=256KiB", "--recv-buffer=16MiB", "--reactor=1",
            "--send-buffer-limit=4MiB"]

# (label, flags). Flags not given keep webrtc 0.21.1's defaults: 64 KiB messages and
# max-message-size, 1 MiB receive buffer, SCTP MTU 1191, no dedicated reactor, pause at
# 1 MiB buffered / resume at 512 KiB.
CONFIGS = [
    ("defaults (64 KiB msgs, rwnd 1 MiB, MTU 1191)", []),
    ("16 KiB messages", ["--msg-size=16KiB"]),
    ("256 KiB messages, max-message-size 256 KiB", ["--msg-size=256KiB", "--max-message-size=256KiB"]),
    ("rwnd 4 MiB", ["--recv-buffer=4MiB"]),
    ("rwnd 16 MiB", ["--recv-buffer=16MiB"]),
    ("SCTP MTU 1400", ["--mtu=1400"]),
    ("SCTP MTU 8000 (loopback/jumbo only)", ["--mtu=8000"]),
    ("dedicated reactor", ["--reactor=1"]),
    ("high 4 MiB / low 2 MiB", ["--high=4MiB", "--low=2MiB"]),
    ("high 256 KiB / low 128 KiB", ["--high=256KiB", "--low=128KiB"]),
    ("blocking send, limit 1 MiB (ferry's RtcTuning default)", ["--send-buffer-limit=1MiB"]),
    ("blocking send, limit 4 MiB", ["--send-buffer-limit=4MiB"]),
    ("2 peer connections", ["--connections=2"]),
    ("combined: 256K msgs+max, rwnd 4M, MTU 1400, 4M/2M", BEST),
    ("combined + dedicated reactor", BEST + ["--reactor=1"]),
    ("combined + 2 peer connections", BEST + ["--connections=2"]),
    ("combined, in one process", BEST + ["--mode=in-process"]),
    ("proposed: 256K msgs+max, rwnd 16M, reactor, blocking send 4M, MTU 1191", PROPOSED),
    ("proposed + SCTP MTU 1400", PROPOSED + ["--mtu=1400"]),
]


def run(binary: str, size: str, flags: list[str], timeout: int) -> dict | None:
    try:
        p = subprocess.run([binary, f"--bytes={size}", f"--timeout-secs={timeout}"] + flags,
                           capture_output=True, text=True, timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        print(f"sweep: {flags} failed: {p.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "target/release/raw-ceiling"))
    ap.add_argument("--bytes", default="512MiB")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", help="comma list of row numbers (1-based) to run")
    ap.add_argument("--timeout", type=int, default=180)
    ap.add_argument("--out", default=str(REPO / "bench-out" / "sweep.json"))
    a = ap.parse_args()

    configs = list(enumerate(CONFIGS, 1))
    if a.only:
        keep = {int(x) for x in a.only.split(",")}
        configs = [c for c in configs if c[0] in keep or c[0] == 1]
    results: dict[int, list[dict]] = {i: [] for i, _ in configs}
    for rep in range(a.reps):
        # Rotate the order each repetition so slow drift in machine load spreads evenly.
        order = configs[rep % len(configs):] + configs[:rep % len(configs)]
        for i, (label, flags) in order:
            r = run(a.bin, a.bytes, flags, a.timeout)
            if r:
                results[i].append(r)
                print(f"sweep: rep {rep} #{i} {label}: {r['mb_per_s']:.0f} MB/s "
                      f"(rss {r.get('sender_rss_peak_kib', 0) // 1024}/"
                      f"{r.get('receiver_rss_peak_kib', 0) // 1024} MiB)", file=sys.stderr)
    base = statistics.median([r["mb_per_s"] for r in results[1]]) if results[1] else None
    lines = ["| # | setting | MB/s median (min–max) | vs defaults | peak RSS send / recv MiB |",
             "| --- | --- | --- | --- | --- |"]
    rows = []
    for i, (label, flags) in configs:
        rs = results[i]
        if not rs:
            lines.append(f"| {i} | {label} | failed | | |")
            continue
        v = [r["mb_per_s"] for r in rs]
        med = statistics.median(v)
        rel = f"{(med / base - 1) * 100:+.0f} %" if base else "–"
        rss_s = max(r.get("sender_rss_peak_kib") or 0 for r in rs) / 1024
        rss_r = max(r.get("receiver_rss_peak_kib") or 0 for r in rs) / 1024
        lines.append(f"| {i} | {label} | {med:.0f} ({min(v):.0f}–{max(v):.0f}) | {rel} | "
                     f"{rss_s:.0f} / {rss_r:.0f} |")
        rows.append({"n": i, "label": label, "flags": flags, "mb_per_s": v, "median": med})
    table = "\n".join(lines)
    print(table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       "bytes": a.bytes, "reps": a.reps, "rows": rows,
                                       "markdown": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
