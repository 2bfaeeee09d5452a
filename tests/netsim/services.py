"""The public side of the simulated internet: coturn (STUN + TURN) and ferry-signal, plus the
TURN REST credential both the server and the probes compute."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import subprocess
import time
from pathlib import Path

from topo import PUB_IP, PUB_IP2, SIGNAL_IP, Topology, wait_port

SIGNAL_PORT = 443
TURN_PORT = 3478
TURN_TLS_PORT = 443  # the one port a locked-down network lets out
# The CA that signed coturn's certificate, in each case's work directory.
TURN_CA = "turn-ca.pem"


def turn_rest_credential(secret: str, room: str, ttl_s: int = 600) -> tuple[str, str]:
    """coturn `use-auth-secret`: username "<expiry>:<id>", password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + ttl_s}:{room}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def self_signed_cert(workdir: Path, ip: str = PUB_IP) -> tuple[Path, Path]:
    """A throwaway CA and coturn's certificate for `ip`, signed by it. Clients trust the CA
    through SSL_CERT_FILE (TURN_CA below), as they would a real CA through the platform store.
    bench/shaped_link.py uses it too, for TURN over TLS across an emulated link."""
    ca, ca_key = workdir / TURN_CA, workdir / "turn-ca-key.pem"
    cert, key, csr = workdir / "turn-cert.pem", workdir / "turn-key.pem", workdir / "turn.csr"
    ext = workdir / "turn-cert.ext"
    ext.write_text(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", *ec, "-days", "1", "-subj", "/CN=ferry netsim CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
         "-keyout", str(ca_key), "-out", str(ca)],
        ["req", *ec, "-subj", "/CN=turn.ferry.test", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(cert)],
    ):
        subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=30)
    return cert, key


def start_coturn(topo: Topology, secret: str, tls: tuple[Path, Path] | None) -> None:
    conf = [
        f"listening-ip={PUB_IP}",
        f"listening-ip={PUB_IP2}",
        f"relay-ip={PUB_IP}",
        f"listening-port={TURN_PORT}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        "realm=ferry.test",
        "min-port=49152",
        "max-port=49999",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        # As deploy/turnserver.conf: no relaying into private networks (ICE asks to, for every
        # host candidate; coturn answers 403). 203.0.113.0/24 is this simulation's "public"
        # internet, so unlike in deploy/ it stays allowed here.
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=100.64.0.0-100.127.255.255",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=172.16.0.0-172.31.255.255",
        "denied-peer-ip=192.168.0.0-192.168.255.255",
        f"pidfile={topo.workdir / 'turnserver.pid'}",
        f"log-file={topo.workdir / 'turnserver.log'}",
        "simple-log",
        "no-stdout-log",
    ]
    verbose = os.environ.get("NETSIM_COTURN_VERBOSE", "")
    if verbose:
        # "2": coturn's extra-verbose mode, which logs every request and response.
        conf.append("Verbose" if verbose == "2" else "verbose")
    if tls:
        # TLS (and plain TCP, which coturn also accepts on its TLS port) on 443.
        conf += [f"tls-listening-port={TURN_TLS_PORT}", f"cert={tls[0]}", f"pkey={tls[1]}"]
    else:
        conf += ["no-tls", "no-dtls"]
    path = topo.workdir / "turnserver.conf"
    path.write_text("\n".join(conf) + "\n")
    topo.spawn("pub", ["turnserver", "-c", str(path)], "coturn.out")
    wait_port(topo, "pub", "udp", TURN_PORT)
    if tls:
        wait_port(topo, "pub", "tcp", TURN_TLS_PORT)


def start_signal(topo: Topology, bin_path: Path, secret: str, turn_urls: list[str]) -> str:
    argv = [
        str(bin_path),
        "--listen", f"{SIGNAL_IP}:{SIGNAL_PORT}",
        "--db", str(topo.workdir / "signal.sqlite"),
        "--stun-url", f"stun:{PUB_IP}:{TURN_PORT}",
        "--turn-secret", secret,
    ]
    for url in turn_urls:
        argv += ["--turn-url", url]
    topo.spawn("pub", argv, "signal.log", env={"RUST_LOG": "info"})
    wait_port(topo, "pub", "tcp", SIGNAL_PORT, ip=SIGNAL_IP)
    return f"ws://{SIGNAL_IP}:{SIGNAL_PORT}/ws"


def new_secret() -> str:
    return secrets.token_hex(24)
