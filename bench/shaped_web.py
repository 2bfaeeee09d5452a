"""Set-up across a long link, the browser page against the CLI (root; network namespaces).

Builds the emulated link of the shaped benchmark (shaped_link.py) with one profile, then runs
ui/e2e/web-setup-bench.mjs in the sender's namespace: the senders (CLI or page), the signaling
server and the page's files on one side, every receiver (CLI or Chromium) across the link.
It prints, per direction, how long the receiver took from its launch (for the page: opening
the join link) to the offer, and to `connected`.

    python3 bench/shaped_web.py --profile 50m150 --runs 3

Needs release binaries (`cargo build --release -p ferry-cli -p ferry-signal -p ferry-bench`),
the wasm module (`bash scripts/build-wasm.sh`), `ui/node_modules` and Debian's Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from shaped import PROFILES
from shaped_link import Topology

ROOT = Path(__file__).resolve().parent.parent


def wrapper(path: Path, netns: str, program: str) -> Path:
    path.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {program} "$@"\n')
    path.chmod(0o755)
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="50m150", choices=[k for k in PROFILES if k != "pass"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bin-dir", default=str(ROOT / "target" / "release"))
    args = p.parse_args()
    if os.geteuid() != 0:
        print("shaped_web: needs root (network namespaces and TUN devices)", file=sys.stderr)
        return 2
    bins = Path(args.bin_dir)
    netem = Path(os.environ.get("BENCH_TUN_NETEM") or bins / "tun-netem")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    missing = [str(b) for b in (bins / "ferry", bins / "ferry-signal", netem) if not b.exists()]
    if not chromium:
        missing.append("chromium")
    if not (ROOT / "ui" / "src" / "web" / "ferry.wasm").exists():
        missing.append("ui/src/web/ferry.wasm (bash scripts/build-wasm.sh)")
    if missing:
        print(f"shaped_web: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    label, mbit, rtt, loss, _ = PROFILES[args.profile]
    work = Path(tempfile.mkdtemp(prefix="ferry-shaped-web."))
    topo = None
    try:
        subprocess.run(["npx", "vite", "build", "--mode", "web", "--outDir", str(work / "dist"),
                        "--emptyOutDir", "--logLevel", "warn"], cwd=ROOT / "ui", check=True)
        topo = Topology(netem, work)
        topo.shape(mbit, rtt, loss, "web-setup")
        env = dict(os.environ,
                   E2E_HOST=topo.ip_s, E2E_CLI_HOST=topo.ip_d,
                   FERRY_NEAR_BIN=str(bins / "ferry"),
                   FERRY_CLI_BIN=str(wrapper(work / "ferry-far", topo.d, str(bins / "ferry"))),
                   CHROMIUM=chromium,
                   CHROMIUM_FAR=str(wrapper(work / "chromium-far", topo.d, chromium)),
                   FERRY_SIGNAL_BIN=str(bins / "ferry-signal"), WEB_DIST=str(work / "dist"),
                   E2E_WORK=str(work), BENCH_RUNS=str(args.runs))
        r = subprocess.run(["ip", "netns", "exec", topo.s, "node", "ui/e2e/web-setup-bench.mjs"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                           timeout=120 + args.runs * 120)
        lines = r.stdout.splitlines()
        print("\n".join(l for l in lines if not l.startswith("{")), file=sys.stderr)
        result = next((json.loads(l) for l in reversed(lines) if l.startswith("{")), None)
        if r.returncode != 0 or result is None:
            print(f"shaped_web: the run failed (exit {r.returncode})", file=sys.stderr)
            return 1
    finally:
        if topo:
            topo.down()
        shutil.rmtree(work, ignore_errors=True)

    def cell(rows: list[dict], key: str) -> str:
        xs = [r[key] for r in rows if key in r]
        if not xs:
            return "–"
        return f"{statistics.median(xs):.2f} s ({' / '.join(f'{x:.2f}' for x in xs)})"

    print(f"Receiver set-up across {label} ({args.runs} rounds, in turn; median, then each):\n")
    print("| sender → receiver | launch → offer | launch → `connected` | page loaded |")
    print("| --- | --- | --- | --- |")
    for name, rows in result["rows"].items():
        print(f"| {name} | {cell(rows, 'offer')} | {cell(rows, 'connected')} | {cell(rows, 'load')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
