#!/usr/bin/env python3
"""Runs this folder's configuration without Docker, on loopback ports only: coturn with
turnserver.conf, and ferry-signal with exactly the flags docker-compose.yml gives it. Proves that
the credentials ferry-signal mints are accepted by coturn, that wrong ones are not, that TLS
works, and that denied-peer-ip keeps the relay out of private ranges.

    selftest.py --compose-json FILE [--signal PATH]

FILE is `docker-compose config` rendered as JSON (scripts/test-lint-deploy.sh makes it).
Prints one line per check and `deploy-selftest: N passed, M failed`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOOP = "127.0.0.1"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}", flush=True)
        return ok


def free_port() -> int:
    """A port free for both TCP and UDP on loopback (TURN listens on both)."""
    for _ in range(50):
        port = random.randint(20000, 39999)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                 socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind((LOOP, port))
                u.bind((LOOP, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free loopback port")


def wait_tcp(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOP, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def rest_credential(secret: str, name: str, ttl: int = 600) -> tuple[str, str]:
    username = f"{int(time.time()) + ttl}:{name}"
    return username, base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


class Coturn:
    def __init__(self, work: Path, secret: str, allow_loopback_peers: bool):
        self.port, self.tls_port = free_port(), free_port()
        relay_lo = random.randint(40000, 59000)
        cert, key = work / "cert.pem", work / "key.pem"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=turn.ferry.test", "-keyout", str(key), "-out",
                            str(cert)], check=True, capture_output=True, timeout=30)
        self.log = work / f"turn-{self.port}.log"
        # The deployment's file, with only what a loopback test must change given on the command
        # line (coturn applies the command line after the file).
        argv = ["turnserver", "-c", str(HERE / "turnserver.conf"),
                f"--listening-ip={LOOP}", f"--relay-ip={LOOP}",
                f"--listening-port={self.port}", f"--tls-listening-port={self.tls_port}",
                f"--min-port={relay_lo}", f"--max-port={relay_lo + 50}",
                f"--static-auth-secret={secret}", "--realm=ferry.test",
                f"--cert={cert}", f"--pkey={key}",
                f"--pidfile={work / f'turn-{self.port}.pid'}", f"--db={work / f'turndb-{self.port}'}"]
        if allow_loopback_peers:
            # Loopback is denied by turnserver.conf (as it must be in production); the relay test
            # between two loopback allocations needs this one exception.
            argv += ["--allow-loopback-peers", f"--allowed-peer-ip={LOOP}"]
        # turnserver.conf logs to stdout (what a container wants), and coturn lets that line win
        # over --log-file, so stdout is the log here too.
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if not wait_tcp(self.port):
            self.stop()
            raise RuntimeError(f"coturn did not listen: {self.log_tail()}")

    def relay(self, user: str, password: str) -> tuple[int, str]:
        """Two TURN clients relay a few messages to each other; returns messages received."""
        flags = ["-p", str(self.port)]
        try:
            r = subprocess.run(["turnutils_uclient", *flags, "-y", "-n", "3", "-z", "5",
                                "-u", user, "-w", password, LOOP],
                               capture_output=True, text=True, timeout=25)
            out = r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            out = str(e.stdout or "")
        lines = [ln for ln in out.splitlines() if "start_mclient: tot_send_msgs=" in ln]
        recv = int(lines[-1].split("tot_recv_msgs=")[1].split(",")[0]) if lines else 0
        return recv, out[-300:].replace("\n", " | ")

    def tls_binding(self) -> str:
        """A STUN Binding over TLS on the TLS port; returns the TLS version used.

        (turnutils_uclient -S stalls against `no-tlsv1` although real TLS 1.2 clients are
        served, so TLS is checked with Python's ssl module instead.)"""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
        tid = secrets.token_bytes(12)
        with socket.create_connection((LOOP, self.tls_port), timeout=5) as raw, \
             ctx.wrap_socket(raw) as tls:
            tls.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
            reply = tls.recv(2048)
            if len(reply) < 20 or reply[:2] != b"\x01\x01" or reply[8:20] != tid:
                raise RuntimeError(f"no Binding success over TLS: {reply[:40]!r}")
            return str(tls.version())

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def signal_argv(compose: dict, binary: str, port: int, db: Path) -> list[str]:
    """ferry-signal's command line from the compose file, with listen/db moved to the test's."""
    argv = [binary]
    for arg in compose["services"]["signal"]["command"]:
        if arg.startswith("--listen="):
            arg = f"--listen={LOOP}:{port}"
        elif arg.startswith("--db="):
            arg = f"--db={db}"
        argv.append(arg)
    return argv


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read().decode(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def check_signal(c: Checks, compose: dict, binary: str, work: Path, turn: Coturn,
                 secret: str) -> None:
    port = free_port()
    argv = signal_argv(compose, binary, port, work / "signal.sqlite")
    log = open(work / "signal.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, **{k: str(v) for k, v in
                            compose["services"]["signal"].get("environment", {}).items()}}
    # The image's built page, stood in for by a one-file page in the same place.
    web = env.get("FERRY_SIGNAL_WEB_DIR")
    if web:
        env["FERRY_SIGNAL_WEB_DIR"] = str(work / "web")
        (work / "web").mkdir(exist_ok=True)
        (work / "web" / "web.html").write_text("<!doctype html><title>Ferry</title>")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        up = wait_tcp(port)
        if not c.record("signal starts with the compose flags", up,
                        (work / "signal.log").read_text(errors="replace")[-400:] if not up else ""):
            return
        status, _ = http("GET", f"http://{LOOP}:{port}/healthz")
        c.record("signal /healthz", status == 200, f"HTTP {status}")
        if web:
            page = urllib.request.urlopen(f"http://{LOOP}:{port}/j/ABCDE-FGHJK", timeout=5)
            csp = page.headers.get("content-security-policy", "")
            c.record("signal serves the web page at /j/ROOM with its CSP",
                     page.status == 200 and b"Ferry" in page.read()
                     and "script-src 'self' 'wasm-unsafe-eval'" in csp, csp)
        hc = subprocess.run([binary, "healthcheck", "--url", f"http://{LOOP}:{port}/healthz"],
                            capture_output=True, text=True, timeout=15)
        c.record("ferry-signal healthcheck (the image's HEALTHCHECK)", hc.returncode == 0,
                 hc.stderr[-200:])
        dead = free_port()
        hc = subprocess.run([binary, "healthcheck", "--url", f"http://{LOOP}:{dead}/healthz"],
                            capture_output=True, text=True, timeout=15)
        c.record("healthcheck fails when nothing answers", hc.returncode != 0)
        status, body = http("POST", f"http://{LOOP}:{port}/api/room/create", {})
        servers = body.get("ice_servers", []) if isinstance(body, dict) else []
        turn_entries = [s for s in servers if s.get("username")]
        ok = status == 200 and bool(turn_entries)
        if not c.record("room create hands out TURN credentials", ok,
                        f"{len(servers)} ICE servers" if ok else f"HTTP {status} {str(body)[:200]}"):
            return
        entry = turn_entries[0]
        user, cred = entry["username"], entry["credential"]
        expiry, _, _ = user.partition(":")
        expected = base64.b64encode(hmac.new(secret.encode(), user.encode(),
                                             hashlib.sha1).digest()).decode()
        ttl = int(expiry) - int(time.time()) if expiry.isdigit() else -1
        c.record("credential is the TURN REST HMAC of the compose secret",
                 cred == expected and 0 < ttl <= 24 * 3600, f"user={user} ttl={ttl}s")
        recv, out = turn.relay(user, cred)
        c.record("coturn accepts ferry-signal's credential and relays", recv > 0,
                 f"{recv} messages relayed" if recv else out)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compose-json", type=Path, required=True)
    ap.add_argument("--signal", help="ferry-signal binary; its checks are skipped without it")
    args = ap.parse_args()
    compose = json.loads(args.compose_json.read_text())
    secret = next(a.split("=", 1)[1] for a in compose["services"]["coturn"]["command"]
                  if a.startswith("--static-auth-secret="))
    signal_secret = compose["services"]["signal"]["environment"]["FERRY_SIGNAL_TURN_SECRET"]
    c = Checks()
    c.record("compose gives coturn and ferry-signal the same TURN secret", secret == signal_secret)
    work = Path(tempfile.mkdtemp(prefix="ferry-deploy-selftest-"))
    skipped = 0
    try:
        turn = Coturn(work, secret, allow_loopback_peers=True)
        try:
            user, cred = rest_credential(secret, "selftest")
            recv, out = turn.relay(user, cred)
            c.record("coturn (turnserver.conf) relays with a REST credential", recv > 0,
                     out if not recv else f"{recv} messages")
            recv, out = turn.relay(user, base64.b64encode(secrets.token_bytes(20)).decode())
            c.record("coturn refuses a wrong credential", recv == 0 and "Cannot complete Allocation" in out, out)
            old_user, old_cred = rest_credential(secret, "selftest", ttl=-60)
            recv, out = turn.relay(old_user, old_cred)
            c.record("coturn refuses an expired credential", recv == 0 and "Cannot complete Allocation" in out, out)
            try:
                c.record("coturn answers over TLS (no TLS 1.0/1.1)", True, turn.tls_binding())
            except (OSError, RuntimeError) as err:
                c.record("coturn answers over TLS (no TLS 1.0/1.1)", False, str(err))
            if args.signal:
                check_signal(c, compose, args.signal, work, turn, secret)
            else:
                skipped += 1
                print("skip ferry-signal checks (no binary with the compose flags yet)")
        finally:
            turn.stop()
        strict = Coturn(work, secret, allow_loopback_peers=False)
        try:
            recv, out = strict.relay(user, cred)
            c.record("denied-peer-ip keeps the relay off loopback/private peers",
                     recv == 0 and "403" in out, out)
        finally:
            strict.stop()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        c.record("deploy selftest ran", False, str(err))
    finally:
        if c.failed == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")
    summary = f"deploy-selftest: {c.passed} passed, {c.failed} failed"
    print(summary + (f", {skipped} skipped" if skipped else ""))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
