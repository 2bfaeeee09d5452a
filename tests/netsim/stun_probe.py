"""STUN Binding probe (RFC 5389), stdlib only: which public address does a NAT give one socket
towards each of several servers? Run inside a namespace:

    python3 stun_probe.py 203.0.113.10:3478 203.0.113.20:3478

prints one JSON line: {"local": "ip:port", "mapped": ["ip:port" | null, ...]}.
Equal mapped ports for different servers = endpoint-independent mapping; different = symmetric.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

MAGIC = 0x2112A442
XOR_MAPPED_ADDRESS = 0x0020


def binding_request() -> tuple[bytes, bytes]:
    tid = os.urandom(12)
    return struct.pack("!HHI", 0x0001, 0, MAGIC) + tid, tid


def parse_mapped(data: bytes, tid: bytes) -> str | None:
    if len(data) < 20:
        return None
    mtype, length, magic = struct.unpack("!HHI", data[:8])
    if mtype != 0x0101 or magic != MAGIC or data[8:20] != tid:
        return None
    pos, end = 20, min(len(data), 20 + length)
    while pos + 4 <= end:
        atype, alen = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + alen]
        if atype == XOR_MAPPED_ADDRESS and len(value) >= 8 and value[1] == 0x01:
            port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
            addr = struct.unpack("!I", value[4:8])[0] ^ MAGIC
            return f"{socket.inet_ntoa(struct.pack('!I', addr))}:{port}"
        pos += 4 + ((alen + 3) & ~3)
    return None


def probe(servers: list[tuple[str, int]], timeout: float = 1.0, tries: int = 3) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(timeout)
    mapped: list[str | None] = []
    for server in servers:
        result = None
        for _ in range(tries):
            req, tid = binding_request()
            sock.sendto(req, server)
            try:
                while result is None:
                    data, _ = sock.recvfrom(2048)
                    result = parse_mapped(data, tid)
            except (TimeoutError, socket.timeout):
                continue
            break
        mapped.append(result)
    local = sock.getsockname()
    sock.close()
    return {"local": f"{local[0]}:{local[1]}", "mapped": mapped}


def main() -> int:
    servers = []
    for arg in sys.argv[1:]:
        host, port = arg.rsplit(":", 1)
        servers.append((host, int(port)))
    print(json.dumps(probe(servers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
