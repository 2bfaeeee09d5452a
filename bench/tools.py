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

from common import MIB, Proc, free_port, json_lines, same_tree, spawn, tree_size, wait_port

TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))


class Skip(Exception):
    """Tool not installed or not runnable here; reported as skipped, not failed."""


def _tail(p: Proc, n: int = 15) -> str:
    """The end of what a process said: its stderr log, or its stdout when stderr was merged
    into it (see MERGE_STDERR)."""
    return p.stderr_tail(n) or "\n".join(line for _, line in p.all_lines[-n:] if line)


def _fail(msg: str, *procs: Proc) -> dict:
    tails = "\n".join(f"[{p.name}] {_tail(p)}" for p in procs if _tail(p))
    return {"ok": False, "error": msg + (("\n" + tails) if tails else "")}


# A command prefix that sends a tool's stderr into its stdout pipe, where every line gets a
# timestamp as it arrives: wormhole and sendme say on stderr when the data starts flowing.
# `exec` keeps the tool itself as the measured process (peak RSS, signals).
MERGE_STDERR = ["sh", "-c", 'exec "$@" 2>&1', "sh"]


def _first_line_at(proc: Proc, marker: str) -> tuple[float, str] | tuple[None, None]:
    """When (monotonic) the process first printed a line containing `marker`, and the line."""
    return next(((t, line) for t, line in list(proc.all_lines) if line and marker in line),
                (None, None))


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
    """Its own mailbox server and transit relay, as magic-wormhole's docs describe for a
    private deployment: on loopback, or on `host` inside namespace `netns` (shaped links put
    them on the sender's side, like ferry's signaling server)."""

    def __init__(self, venv: Path, workdir: Path, host: str = "127.0.0.1",
                 netns: str | None = None):
        self.bin = venv / "bin"
        if not (self.bin / "wormhole").exists() or not (self.bin / "twist").exists():
            raise Skip("not installed (python3 -m venv bench/.venv && "
                       "bench/.venv/bin/pip install -r bench/requirements.txt)")
        self.host = host
        self.mport, self.tport = free_port(), free_port()
        db = workdir / "wormhole-mailbox.sqlite"
        db.unlink(missing_ok=True)
        self.mailbox = spawn("wormhole-mailbox", [str(self.bin / "twist"), "wormhole-mailbox",
                                                  f"--port=tcp:{self.mport}:interface={host}",
                                                  f"--channel-db={db}"],
                             workdir, cwd=workdir, measure=False, netns=netns)
        self.relay = spawn("wormhole-relay", [str(self.bin / "twist"), "transitrelay",
                                              f"--port=tcp:{self.tport}:interface={host}"],
                           workdir, cwd=workdir, measure=False, netns=netns)
        if not (wait_port(self.mport, host=host, netns=netns)
                and wait_port(self.tport, host=host, netns=netns)):
            self.stop()
            raise Skip("wormhole mailbox/transit relay did not start: "
                       + self.mailbox.stderr_tail() + self.relay.stderr_tail())

    def args(self) -> list[str]:
        return [str(self.bin / "wormhole"), "--relay-url", f"ws://{self.host}:{self.mport}/v1",
                "--transit-helper", f"tcp:{self.host}:{self.tport}"]

    def stop(self) -> None:
        self.mailbox.stop()
        self.relay.stop()


# Loaded by wormhole's Python at start-up (sitecustomize on PYTHONPATH): every TCP socket it
# opens gets the controller BENCH_TCP_CC; accepted ones inherit their listener's. wormhole has
# no option for it, and a namespace's default can only be set to what the host allows
# unprivileged sockets (net.ipv4.tcp_allowed_congestion_control), a host-wide setting.
TCP_CC_SITECUSTOMIZE = """\
import os, socket
_cc = os.environ.get("BENCH_TCP_CC", "").encode()


class _Socket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        super().__init__(family, type, proto, fileno)
        if fileno is None and self.type == socket.SOCK_STREAM and \\
                self.family in (socket.AF_INET, socket.AF_INET6):
            self.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, _cc)


if _cc:
    socket.socket = _Socket
"""


def run_wormhole(servers: WormholeServers, src: Path, out: Path, workdir: Path, run_id: int,
                 recv_wrap: list[str] | None = None, send_ns: str | None = None,
                 recv_ns: str | None = None, tcp_cc: str | None = None) -> dict:
    """Extras: `path`, the transit connection as the receiver describes it ("->tcp:IP:PORT"
    direct, "->relay:tcp:…" through the transit relay), and `transfer_secs`, from that line
    (printed once the transit connection is up, right before the data) to the receiver's exit.
    `tcp_cc` picks both sides' TCP congestion control (default: the system's)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    code = f"{100 + run_id}-ferry-bench"
    # Unbuffered, so the receiver's "Receiving (…)" line is timestamped when it is printed.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if tcp_cc:
        site = workdir / "wormhole-tcp-cc"
        site.mkdir(parents=True, exist_ok=True)
        (site / "sitecustomize.py").write_text(TCP_CC_SITECUSTOMIZE)
        env.update(PYTHONPATH=str(site), BENCH_TCP_CC=tcp_cc)
    t0 = time.monotonic()
    send = spawn("wormhole-send", MERGE_STDERR + servers.args()
                 + ["send", "--hide-progress", "--code", code, str(src)],
                 workdir, env=env, netns=send_ns)
    recv = spawn("wormhole-recv", servers.args() + ["receive", "--hide-progress", "--accept-file",
                                                    "-o", str(out / src.name), code], workdir,
                 env=env, netns=recv_ns, wrap=(recv_wrap or []) + MERGE_STDERR)
    try:
        rc = recv.wait(TIMEOUT)
        t_end = time.monotonic()
        if rc != 0:
            return _fail(f"wormhole receive exited {rc}", send, recv)
        send.wait(30)
        t_data, line = _first_line_at(recv, "Receiving (")
        path = line.split("Receiving (", 1)[1].rsplit(")", 1)[0] if line else None
        _, sline = _first_line_at(send, "Sending (")
        send_path = sline.split("Sending (", 1)[1].rsplit(")", 1)[0] if sline else None
        return _finish(src, out / src.name, t_end - t0, send, recv, path=path,
                       send_path=send_path,
                       transfer_secs=(t_end - t_data) if t_data is not None else None)
    finally:
        recv.stop()
        send.stop()


# ---------------------------------------------------------------- sendme

def sendme_bin() -> Path | None:
    found = shutil.which("sendme") or str(Path.home() / ".cargo/bin/sendme")
    return Path(found) if Path(found).exists() else None


def run_sendme(src: Path, out: Path, workdir: Path, recv_wrap: list[str] | None = None,
               send_ns: str | None = None, recv_ns: str | None = None) -> dict:
    """Extras: `transfer_secs`, from the receiver's "getting collection" line (sizes known,
    the download starts) to its exit with the file exported; `own_rate_mib_per_s`, the rate
    sendme prints itself (--verbose: bytes read / time of the download request, no export)."""
    exe = sendme_bin()
    if exe is None:
        raise Skip("not installed (cargo install --locked sendme)")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # No relay: this machine has no route to iroh's public relays; the sender's direct
    # addresses (loopback, or its veth in a shaped run) travel in the ticket.
    env = dict(os.environ, RUST_LOG="warn")
    t0 = time.monotonic()
    send = spawn("sendme-send", [str(exe), "send", "--relay", "disabled", "--ticket-type", "addresses",
                                       "--no-progress", str(src)], workdir,
                 cwd=src.parent, env=env, netns=send_ns)
    try:
        line = send.wait_line(lambda l: "sendme receive " in l, 120)
        if line is None:
            return _fail("sendme send printed no ticket", send)
        ticket = line.split("sendme receive ", 1)[1].split()[0]
        recv = spawn("sendme-recv", [str(exe), "receive", "--relay", "disabled", "--no-progress",
                                     "--verbose", ticket], workdir,
                     cwd=out, env=env, netns=recv_ns, wrap=(recv_wrap or []) + MERGE_STDERR)
        try:
            rc = recv.wait(TIMEOUT)
            t_end = time.monotonic()
            if rc != 0:
                return _fail(f"sendme receive exited {rc}", send, recv)
            # Its rate line comes right before the exit; the pipe's reader may lag the exit.
            recv.wait_line(lambda l: "downloaded " in l, 5)
        finally:
            recv.stop()
        send.stop()  # it serves until told to stop; its RSS report is written on exit
        t_data, _ = _first_line_at(recv, "getting collection")
        return _finish(src, out / src.name, t_end - t0, send, recv,
                       transfer_secs=(t_end - t_data) if t_data is not None else None,
                       own_rate_mib_per_s=_sendme_rate(recv))
    finally:
        send.stop()
        # sendme keeps its blob store next to the cwd; don't let it pile up.
        for junk in src.parent.glob(".sendme-*"):
            shutil.rmtree(junk, ignore_errors=True)
        for junk in out.glob(".sendme-*"):
            shutil.rmtree(junk, ignore_errors=True)


def _sendme_rate(recv: Proc) -> float | None:
    """The MiB/s of sendme's closing "downloaded N files, X. took T (R/s)" line."""
    _, line = _first_line_at(recv, "downloaded ")
    if not line or "(" not in line:
        return None
    num, _, unit = line.rsplit("(", 1)[1].removesuffix(")").removesuffix("/s").partition(" ")
    scale = {"B": 1 / MIB, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}.get(unit.strip())
    try:
        return float(num) * scale if scale else None
    except ValueError:
        return None


def check_cmd(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
