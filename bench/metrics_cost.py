"""What Prometheus metrics cost a manifest GET: server CPU seconds per request, metrics on and off.

    .venv/bin/python bench/metrics_cost.py [--rounds 3] [--duration 8] [--workers 2]

Starts `cargohold serve` twice per round (without and with `metrics_port`, alternating which goes
first), pushes a small image, runs wrk on `GET /v2/bench/hot/manifests/latest` and reads the
CPU time of the server's whole process tree (psutil) before and after. CPU per request is much
steadier than requests per second on a shared machine: other processes take cores, not cycles
of this one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, run as a script

import clients
from images import generate_image
from registries import Cargohold, free_port
from run import HOT_REPOSITORY

MIB = 1024 * 1024


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children so far."""
    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(work: Path, name: str, *, metrics: bool, duration: float) -> tuple[float, float]:
    """(requests per second, CPU microseconds per request) of one server."""
    os.environ.pop("CARGOHOLD_METRICS_PORT", None)
    if metrics:
        os.environ["CARGOHOLD_METRICS_PORT"] = str(free_port())
    server = Cargohold(name, work / f"{name}-data", work / f"{name}.log")
    server.start()
    try:
        image = generate_image(work / f"{name}-image", 1 * MIB, 1)
        server.prepare_repository(HOT_REPOSITORY)
        env = clients.client_env(work) | {"NO_PROXY": "127.0.0.1,localhost"}
        dest = f"{server.host}/{HOT_REPOSITORY}:latest"
        clients.push(image, dest, env=env, creds=server.skopeo_creds())
        script = clients.write_wrk_script(
            work / f"{name}.lua",
            method="GET",
            url_path=f"/v2/{HOT_REPOSITORY}/manifests/latest",
            auth_header=server.auth_header(),
        )
        clients.run_wrk(server.url, script, threads=2, connections=64, duration_s=2)  # warm up
        before = tree_cpu(server.pid)
        result = clients.run_wrk(server.url, script, threads=2, connections=64, duration_s=duration)
        used = tree_cpu(server.pid) - before
        return result.requests_per_s, used / result.requests * 1e6
    finally:
        server.stop()
        os.environ.pop("CARGOHOLD_METRICS_PORT", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--duration", type=float, default=8, help="wrk seconds (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    args = parser.parse_args()
    os.environ["CARGOHOLD_WORKERS"] = str(args.workers)
    work = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    found: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    try:
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for metrics in order:
                name = f"r{round_}-{'on' if metrics else 'off'}"
                rate, cpu = measure(work, name, metrics=metrics, duration=args.duration)
                found[metrics].append((rate, cpu))
                print(f"{name}: {rate:8.0f} req/s  {cpu:7.1f} µs CPU/request", flush=True)
                time.sleep(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for metrics in (False, True):
        rates = sorted(r for r, _ in found[metrics])
        cpus = sorted(c for _, c in found[metrics])
        print(
            f"metrics {'on ' if metrics else 'off'}: median {rates[len(rates) // 2]:.0f} req/s, "
            f"{cpus[len(cpus) // 2]:.1f} µs CPU/request"
        )
    off = sorted(c for _, c in found[False])[len(found[False]) // 2]
    on = sorted(c for _, c in found[True])[len(found[True]) // 2]
    print(f"CPU per request with metrics: {100 * (on / off - 1):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
