"""One function per tool: move `src` from a sender process to a receiver process and time it
end to end — from launching the sender until the receiver has exited with the data on disk
(ferry verifies BLAKE3 before it exits; every tool is then byte-compared by the harness).

Each returns a dict: ok, secs, rss_send_kib, rss_recv_kib, and extras (ttfb_secs, error).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import Proc, free_port, json_lines, same_tree, spawn, tree_size, wait_port

TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))


class Skip(Exception):
    """Tool not installed or not runnable here; reported as skipped, not failed."""


def _fail(msg: str, *procs: Proc) -> dict:
    tails = "\n".join(f"[{p.name}] {p.stderr_tail()}" for p in procs if p.stderr_tail())
    return {"ok": False, "error": msg + (("\n" + tails) if tails else "")}


def _finish(src: Path, dst: Path, secs: float, send: Proc, recv: Proc, **extra) -> dict:
    if not dst.exists() or not same_tree(src, dst):
        return _fail(f"output differs from source ({dst})", send, recv)
    return {"ok": True, "secs": secs, "bytes": tree_size(src), "rss_send_kib": send.rss_kib(),
            "rss_recv_kib": recv.rss_kib(), **extra}


# ---------------------------------------------------------------- ferry

class FerryServer:
    """`ferry serve` on a free loopback port, shared by every ferry run (like a deployed
    server would be); the CLI's embedded server would otherwise be timed as part of the
    sender's start-up."""

    def __init__(self, ferry: Path, workdir: Path, host: str = "127.0.0.1", netns: str | None = None):
        self.port = free_port()
        self.host = host
        self.url = f"ws://{host}:{self.port}/ws"
        self.proc = spawn("ferry-serve", [str(ferry), "serve", "--listen", f"{host}:{self.port}"],
                          workdir, measure=False, netns=netns)
        self.embedded = False
        if not wait_port(self.port, host=host, netns=netns):
            self.proc.stop()
            # Fall back to the sender's embedded server (its start-up is then timed too).
            self.embedded = True
            first = next((l for l in self.proc.stderr_tail(40).splitlines() if "panicked" in l
                          or "rror" in l), "no listener")
            print(f"bench: ferry serve failed ({first.strip()}); using the sender's embedded "
                  "signaling server", file=sys.stderr)

    def stop(self) -> None:
        self.proc.stop()


def run_ferry(ferry: Path, server: FerryServer, src: Path, out: Path, workdir: Path,
              send_ns: str | None = None, recv_ns: str | None = None,
              recv_bind: str | None = None, recv_wrap: list[str] | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    password = "bench-ferry-password"
    # Fresh resume databases every run: a transfer must not be shortened by an earlier one.
    dbs = [workdir / "ferry-send.sqlite", workdir / "ferry-recv.sqlite"]
    for db in dbs:
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
    # ICE candidates on the address the link is made of (loopback, or the shaped veth).
    bind = {"FERRY_BIND": f"{server.host}:0"}
    env = dict(os.environ, FERRY_DB=str(dbs[0]), **bind)
    t0 = time.monotonic()
    where = (["--listen", f"{server.host}:0"] if server.embedded else ["--server", server.url])
    send = spawn("ferry-send", [str(ferry), "send", str(src), *where,
                                "--password", password, "--json"], workdir, env=env, netns=send_ns)
    try:
        line = send.wait_line(lambda l: json.loads(l).get("event") == "room-created", 30)
        if line is None:
            return _fail("sender never reported room-created", send)
        created = json.loads(line)
        room = created["room"]
        url = created.get("server") if server.embedded else server.url
        env_r = dict(os.environ, FERRY_DB=str(dbs[1]),
                     FERRY_BIND=recv_bind or bind["FERRY_BIND"])
        recv = spawn("ferry-recv", [str(ferry), "receive", room, "--password", password, "--out",
                                    str(out), "--yes", "--server", url, "--json"],
                     workdir, env=env_r, netns=recv_ns, wrap=recv_wrap)
        try:
            rc = recv.wait(TIMEOUT)
            secs = time.monotonic() - t0
            if rc != 0:
                return _fail(f"receiver exited {rc}", send, recv)
            send.wait(30)
        finally:
            recv.stop()
        events = json_lines(send)
        t_room = next((t for t, e in events if e.get("event") == "room-created"), None)
        t_conn = next((t for t, e in events if e.get("event") == "connected"), None)
        path = next((e.get("path") for _, e in events if e.get("event") == "connected"), None)
        ttfb = (t_conn - t_room) if t_room is not None and t_conn is not None else None
        connected = (t_conn - t0) if t_conn is not None else None
        return _finish(src, out / src.name, secs, send, recv, ttfb_secs=ttfb, path=path,
                       connected_secs=connected)
    finally:
        send.stop()


# ---------------------------------------------------------------- raw ceiling

def run_raw(raw: Path, size: int, workdir: Path, extra: list[str] | None = None) -> dict:
    t0 = time.monotonic()
    proc = spawn("raw-ceiling", [str(raw), f"--bytes={size}"] + (extra or []), workdir)
    rc = proc.wait(TIMEOUT)
    secs_wall = time.monotonic() - t0
    proc.stop()
    reports = [e for _, e in json_lines(proc) if e.get("tool") == "raw-ceiling"]
    if rc != 0 or not reports:
        return _fail(f"raw-ceiling exited {rc}", proc)
    r = reports[-1]
    # The transfer time is what is comparable to the tools' byte-moving phase; wall time
    # (incl. setup) is kept too.
    return {"ok": True, "secs": r["secs"] + r["setup_secs"], "transfer_secs": r["secs"],
            "wall_secs": secs_wall, "bytes": r["bytes"], "ttfb_secs": r["setup_secs"],
            "rss_send_kib": r.get("sender_rss_peak_kib"), "rss_recv_kib": r.get("receiver_rss_peak_kib")}


# ---------------------------------------------------------------- magic-wormhole

class WormholeServers:
    """Its own mailbox server and transit relay on loopback, as magic-wormhole's docs
    describe for a private deployment."""

    def __init__(self, venv: Path, workdir: Path):
        self.bin = venv / "bin"
        if not (self.bin / "wormhole").exists() or not (self.bin / "twist").exists():
            raise Skip("not installed (bench/.venv: pip install magic-wormhole "
                       "magic-wormhole-mailbox-server magic-wormhole-transit-relay)")
        self.mport, self.tport = free_port(), free_port()
        db = workdir / "wormhole-mailbox.sqlite"
        db.unlink(missing_ok=True)
        self.mailbox = spawn("wormhole-mailbox", [str(self.bin / "twist"), "wormhole-mailbox",
                                                  f"--port=tcp:{self.mport}:interface=127.0.0.1",
                                                  f"--channel-db={db}"],
                             workdir, cwd=workdir, measure=False)
        self.relay = spawn("wormhole-relay", [str(self.bin / "twist"), "transitrelay",
                                              f"--port=tcp:{self.tport}:interface=127.0.0.1"],
                           workdir, cwd=workdir, measure=False)
        if not (wait_port(self.mport) and wait_port(self.tport)):
            self.stop()
            raise Skip("wormhole mailbox/transit relay did not start: "
                       + self.mailbox.stderr_tail() + self.relay.stderr_tail())

    def args(self) -> list[str]:
        return [str(self.bin / "wormhole"), "--relay-url", f"ws://127.0.0.1:{self.mport}/v1",
                "--transit-helper", f"tcp:127.0.0.1:{self.tport}"]

    def stop(self) -> None:
        self.mailbox.stop()
        self.relay.stop()


def run_wormhole(servers: WormholeServers, src: Path, out: Path, workdir: Path, run_id: int,
                 recv_wrap: list[str] | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    code = f"{100 + run_id}-ferry-bench"
    t0 = time.monotonic()
    send = spawn("wormhole-send", servers.args() + ["send", "--hide-progress", "--code", code, str(src)],
                 workdir)
    recv = spawn("wormhole-recv", servers.args() + ["receive", "--hide-progress", "--accept-file",
                                                    "-o", str(out / src.name), code], workdir,
                 wrap=recv_wrap)
    try:
        rc = recv.wait(TIMEOUT)
        secs = time.monotonic() - t0
        if rc != 0:
            return _fail(f"wormhole receive exited {rc}", send, recv)
        send.wait(30)
        return _finish(src, out / src.name, secs, send, recv)
    finally:
        recv.stop()
        send.stop()


# ---------------------------------------------------------------- sendme

def sendme_bin() -> Path | None:
    found = shutil.which("sendme") or str(Path.home() / ".cargo/bin/sendme")
    return Path(found) if Path(found).exists() else None


def run_sendme(src: Path, out: Path, workdir: Path, recv_wrap: list[str] | None = None) -> dict:
    exe = sendme_bin()
    if exe is None:
        raise Skip("not installed (cargo install --locked sendme)")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # No relay: this machine has no route to iroh's public relays; direct loopback
    # addresses travel in the ticket.
    env = dict(os.environ, RUST_LOG="warn")
    t0 = time.monotonic()
    send = spawn("sendme-send", [str(exe), "send", "--relay", "disabled", "--ticket-type", "addresses",
                                       "--no-progress", str(src)], workdir,
                 cwd=src.parent, env=env)
    try:
        line = send.wait_line(lambda l: "sendme receive " in l, 120)
        if line is None:
            return _fail("sendme send printed no ticket", send)
        ticket = line.split("sendme receive ", 1)[1].split()[0]
        recv = spawn("sendme-recv", [str(exe), "receive", "--relay", "disabled", "--no-progress",
                                           ticket], workdir,
                     cwd=out, env=env, wrap=recv_wrap)
        try:
            rc = recv.wait(TIMEOUT)
            secs = time.monotonic() - t0
            if rc != 0:
                return _fail(f"sendme receive exited {rc}", send, recv)
        finally:
            recv.stop()
        send.stop()  # it serves until told to stop; its RSS report is written on exit
        return _finish(src, out / src.name, secs, send, recv)
    finally:
        send.stop()
        # sendme keeps its blob store next to the cwd; don't let it pile up.
        for junk in src.parent.glob(".sendme-*"):
            shutil.rmtree(junk, ignore_errors=True)
        for junk in out.glob(".sendme-*"):
            shutil.rmtree(junk, ignore_errors=True)


def check_cmd(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
