"""Shared plumbing for the benchmark harness: processes with peak RSS, test data, stats.

Python standard library only, so the harness runs on a fresh machine with nothing installed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20

TIME_BIN = "/usr/bin/time"


def parse_size(text: str) -> int:
    """'1G', '16MiB', '7g', '200M', '4096' -> bytes (binary units)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in "kmg" else t
    return int(float(num) * mult)


def human(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= size and n % (size // 1024 or 1) == 0:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, netns: str | None = None) -> bool:
    """Polls until something listens on host:port (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns:
            probe = subprocess.run(["ip", "netns", "exec", netns, "bash", "-c",
                                    f"exec 3<>/dev/tcp/{host}/{port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if probe.returncode == 0:
                return True
        else:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                pass
        time.sleep(0.1)
    return False


def have_time_bin() -> bool:
    return os.access(TIME_BIN, os.X_OK)


@dataclass
class Proc:
    """A child process whose stdout lines are collected on a thread and whose peak RSS is
    taken from /usr/bin/time -v when it exits."""

    name: str
    popen: subprocess.Popen
    rss_file: Path | None
    lines: "queue.Queue[tuple[float, str]]" = field(default_factory=queue.Queue)
    all_lines: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def _pump(self, stream) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            item = (time.monotonic(), line)
            self.all_lines.append(item)
            self.lines.put(item)
        self.lines.put((time.monotonic(), None))

    def wait_line(self, pred, timeout: float):
        """Returns the first stdout line for which pred(line) is truthy, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                _, line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            try:
                if pred(line):
                    return line
            except (ValueError, KeyError, TypeError):
                continue

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.popen.poll() is None and self.rss_file:
            # Signal the measured program, not /usr/bin/time: time dies on SIGTERM without
            # writing its report, but reports a child that was terminated.
            try:
                kids = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()
                for kid in kids:
                    os.kill(int(kid), signal.SIGTERM)
                self.popen.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        # Each child leads its own session: signal the whole group so nothing is orphaned.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.popen.pid, sig)
            except OSError:
                break
            try:
                self.popen.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue

    def rss_kib(self) -> int | None:
        if not self.rss_file or not self.rss_file.exists():
            return None
        for line in self.rss_file.read_text(errors="replace").splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1].strip())
        return None

    def stderr_tail(self, n: int = 15) -> str:
        err = getattr(self, "_stderr_path", None)
        if not err or not Path(err).exists():
            return ""
        return "\n".join(Path(err).read_text(errors="replace").splitlines()[-n:])


def spawn(name: str, cmd: list[str], workdir: Path, *, cwd: Path | None = None,
          env: dict | None = None, netns: str | None = None, measure: bool = True,
          wrap: list[str] | None = None) -> Proc:
    """Starts cmd with stdout piped (line-collected) and stderr to a log file. `wrap` is a
    command prefix (such as a fault injector) run inside the RSS measurement."""
    workdir.mkdir(parents=True, exist_ok=True)
    rss_file = workdir / f"{name}.time" if measure and have_time_bin() else None
    full = list(wrap or []) + list(cmd)
    if rss_file:
        full = [TIME_BIN, "-v", "-o", str(rss_file)] + full
    if netns:
        full = ["ip", "netns", "exec", netns] + full
    err_path = workdir / f"{name}.stderr"
    err = open(err_path, "w")
    popen = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             text=True, cwd=cwd, env=env, start_new_session=True)
    err.close()
    proc = Proc(name=name, popen=popen, rss_file=rss_file)
    proc._stderr_path = err_path  # type: ignore[attr-defined]
    threading.Thread(target=proc._pump, args=(popen.stdout,), daemon=True).start()
    return proc


def build_shim(name: str, workdir: Path) -> Path | None:
    """bench/<name>.c built with the C compiler into an LD_PRELOAD library; None without one."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    so = workdir / f"{name}.so"
    src = Path(__file__).resolve().parent / f"{name}.c"
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"bench: building {src.name} failed: {r.stderr.strip()}", file=sys.stderr)
        return None
    return so


def slow_sync_wrap(ms: int, workdir: Path) -> list[str] | None:
    """A command prefix that makes every fsync/fdatasync of the process return `ms` late (a
    USB stick, an SD card, a busy disk): the LD_PRELOAD shim bench/slow_sync.c. None without
    a C compiler."""
    so = build_shim("slow_sync", workdir)
    return ["env", f"LD_PRELOAD={so}", f"SLOW_SYNC_US={ms * 1000}"] if so else None


def json_lines(proc: Proc) -> list[tuple[float, dict]]:
    out = []
    for t, line in list(proc.all_lines):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append((t, obj))
    return out


def make_random(path: Path, size: int) -> None:
    """Incompressible bytes at disk speed: AES-CTR keystream of zeros (seeded, so every run
    and every machine gets the same file); falls back to os.urandom."""
    if path.exists() and path.stat().st_size == size:
        return
    tmp = path.with_suffix(".tmp")
    if shutil.which("openssl"):
        key = "66657272792d62656e63682d6b657921"
        cmd = (f"head -c {size} /dev/zero | openssl enc -aes-128-ctr -nosalt -K {key} "
               f"-iv 00000000000000000000000000000000 > {tmp}")
        subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], check=True)
    else:
        with open(tmp, "wb") as f:
            left = size
            while left:
                n = min(left, 16 * MIB)
                f.write(os.urandom(n))
                left -= n
    tmp.rename(path)


def make_compressible(path: Path, size: int) -> None:
    """Log-like text: compresses ~20x with zstd, like the logs and CSVs people really send."""
    if path.exists() and path.stat().st_size == size:
        return
    lines = []
    for i in range(20000):
        lines.append(f"2026-11-25T04:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z INFO ferry::bench "
                     f"request id={i:08d} path=/api/room/{i % 97} status={200 + (i % 3)} "
                     f"bytes={(i * 7919) % 65536}\n")
    block = "".join(lines).encode()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    tmp.rename(path)


def make_small_files(root: Path, count: int, total: int) -> None:
    """count files, sizes spread 1..2x average, random content, in 100 subfolders."""
    marker = root / ".complete"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    avg = total // count
    seed = 0x5EED
    pool = os.urandom(4 * MIB)
    pos = 0
    for i in range(count):
        seed = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        size = avg // 2 + (seed >> 33) % avg
        sub = root / f"d{i % 100:03d}"
        sub.mkdir(exist_ok=True)
        if pos + size > len(pool):
            pos = 0
        (sub / f"f{i:05d}.bin").write_bytes(pool[pos:pos + size])
        pos += 4099
    marker.write_text("ok\n")


def same_tree(src: Path, dst: Path) -> bool:
    """Byte-for-byte comparison (cmp / diff -r): the receiver's output is the source."""
    if src.is_dir():
        r = subprocess.run(["diff", "-rq", "-x", ".complete", str(src), str(dst)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        r = subprocess.run(["cmp", "-s", str(src), str(dst)])
    return r.returncode == 0


def tree_size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and f.name != ".complete")


def summarize(values: list[float]) -> dict:
    if not values:
        return {}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
