"""What this machine can do at best, so each result can be read as a fraction of a hard limit.

- SHA-256 on one core: a push must hash every byte it receives once (the digest check).
- sequential write + fsync on the data directory's filesystem: a push must land its bytes durably.
- loopback TCP: every byte pushed or pulled crosses it.
Also a plain description of the machine for the report.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path

from images import RandomStream

MB = 1_000_000
MIB = 1 << 20


def sha256_mb_s(total_bytes: int) -> float:
    """MB/s of hashlib.sha256 on one core over a 64 MiB buffer."""
    buffer = RandomStream().read(min(total_bytes, 64 * MIB))
    rounds = max(1, total_bytes // len(buffer))
    started = time.perf_counter()
    for _ in range(rounds):
        hashlib.sha256(buffer).digest()
    return rounds * len(buffer) / MB / (time.perf_counter() - started)


def disk_write_fsync_mb_s(directory: Path, total_bytes: int) -> float:
    """MB/s of writing ``total_bytes`` in 1 MiB chunks to a new file in ``directory``, fsynced."""
    random = RandomStream()
    chunks = [random.read(MIB) for _ in range(8)]  # distinct data; generating it is not timed
    path = directory / ".fsync-probe"
    try:
        started = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for i in range(total_bytes // MIB):
                os.write(fd, chunks[i % len(chunks)])
            os.fsync(fd)
        finally:
            os.close(fd)
        elapsed = time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)
    return total_bytes // MIB * MIB / MB / elapsed


def _tcp_sink(port: int, total_bytes: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        buffer = memoryview(bytearray(4 * MIB))
        left = total_bytes
        while left > 0:
            n = s.recv_into(buffer)
            if n == 0:
                break
            left -= n
        s.sendall(b"k")  # tell the sender every byte arrived


def loopback_tcp_mb_s(total_bytes: int) -> float:
    """MB/s through one TCP connection on 127.0.0.1, sender and receiver in two processes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sink = multiprocessing.get_context("spawn").Process(
            target=_tcp_sink, args=(port, total_bytes), daemon=True
        )
        sink.start()
        try:
            listener.settimeout(60)
            conn, _ = listener.accept()
            with conn:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MIB)
                buffer = memoryview(RandomStream().read(4 * MIB))
                started = time.perf_counter()
                left = total_bytes
                while left > 0:
                    conn.sendall(buffer[: min(left, len(buffer))])
                    left -= len(buffer)
                conn.recv(1)
                elapsed = time.perf_counter() - started
        finally:
            sink.join(timeout=60)
            if sink.is_alive():
                sink.kill()
    return total_bytes / MB / elapsed


# ---- the machine ---------------------------------------------------------------------------------


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _output(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return (result.stdout or result.stderr).strip()


def describe_disk(directory: Path) -> str:
    """Filesystem, device and size of the disk under ``directory``."""
    lines = _output(["df", "-T", "-B1G", str(directory)]).splitlines()
    if len(lines) < 2:
        return "unknown"
    device, fstype, size = lines[1].split()[:3]
    text = f"{device} ({fstype}, {size} GiB)"
    block = Path("/sys/class/block") / Path(device).name
    rotational = block / "queue" / "rotational"
    if rotational.exists():
        text += f", queue/rotational={rotational.read_text().strip()}"
    model = block / "device" / "model"
    if model.exists():
        text += f", {model.read_text().strip()}"
    return text


def describe_machine(data_dir: Path) -> dict[str, str | int | float]:
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kib) / (1 << 20), 1) if mem_kib.isdigit() else 0,
        "cpu": _first("/proc/cpuinfo", "model name"),
        "kernel": f"{platform.system()} {platform.release()}",
        "disk": describe_disk(data_dir),
        "python": platform.python_version(),
    }


def tool_versions() -> dict[str, str]:
    wrk = _output(["wrk", "-v"]).splitlines()
    return {
        "distribution": _output(["docker-registry", "--version"]),
        "skopeo": _output(["skopeo", "--version"]),
        "wrk": wrk[0].split(" Copyright")[0] if wrk else "unknown",
        "hey": "hey " + _output(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
        "cargohold": _output(["git", "-C", str(Path(__file__).parent), "describe", "--always"])
        + (
            "-dirty"
            if _output(["git", "-C", str(Path(__file__).parent), "status", "--porcelain", "src"])
            else ""
        ),
    }
