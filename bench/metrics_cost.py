"""What Prometheus metrics cost a manifest GET: server CPU seconds per request, metrics on and off.

    .venv/bin/python bench/metrics_cost.py [--rounds 3] [--duration 8] [--workers 2]

Starts `cargohold serve` twice per round (without and with `metrics_port`, alternating which goes
first), pushes a small image, runs wrk on `GET /v2/bench/hot/manifests/latest` and reads the
CPU time of the server's whole process tree (psutil) before and after. CPU per request is much
steadier than requests per second on a shared machine: other processes take cores, not cycles
of this one.

`--in-process` measures the middleware alone, without HTTP: it pushes the image through a
server, stops it, opens the same data directory in this process and sends the manifest GET to
the ASGI application directly, in pairs of adjacent blocks of 100 requests (one with metrics,
one without, in random order), and reports the median of the pairs' ratios of CPU per request
(the process's CPU time): adjacent blocks share the machine's load. Much less noise than
any served measurement; it leaves out uvicorn's own work per request, so it overstates the share.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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


def prepare_data(work: Path) -> tuple[Path, str]:
    """A data directory holding the image at HOT_REPOSITORY:latest, and the Authorization
    header that reads it."""
    server = Cargohold("in-process", work / "in-process-data", work / "in-process.log")
    server.start()
    try:
        image = generate_image(work / "in-process-image", 1 * MIB, 1)
        server.prepare_repository(HOT_REPOSITORY)
        env = clients.client_env(work) | {"NO_PROXY": "127.0.0.1,localhost"}
        clients.push(
            image, f"{server.host}/{HOT_REPOSITORY}:latest", env=env, creds=server.skopeo_creds()
        )
        header = server.auth_header()
        assert header is not None
        return server.data_dir, header
    finally:
        server.stop()


async def in_process(data_dir: Path, auth: str, blocks: int) -> dict[str, list[float]]:
    """CPU microseconds per request of `blocks` pairs of blocks of 100 manifest GETs, with metrics
    off and on, in random order."""
    from cargohold import metrics
    from cargohold.app import Application, Node
    from cargohold.config import load

    config = load(overrides={"data_dir": str(data_dir), "metrics_port": 9}, environ={})
    app = Application(config)
    node = app.node = await Node.open(config)
    unobserved = getattr(app, "observer", None)  # (None: a version without observers)
    wrapped = metrics.wrap(app, config)
    observer = getattr(app, "observer", None)
    path = f"/v2/{HOT_REPOSITORY}/manifests/latest"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", auth.encode()),
            (b"accept", b"application/vnd.oci.image.manifest.v1+json"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 5000),
    }
    statuses: set[int] = set()

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))  # type: ignore[call-overload]

    async def block(on: bool, count: int) -> float:
        if observer is not None:
            node.audit.observer = observer if on else unobserved
        target = wrapped if on else app
        started = time.process_time()
        for _ in range(count):
            await target(dict(scope), receive, send)
            await asyncio.sleep(0)  # a turn of the loop, as between a server's requests
        return (time.process_time() - started) / count * 1e6

    for _ in range(100):  # warm up both
        await block(False, 3)
        await block(True, 3)
    assert statuses == {200}, statuses
    found: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(blocks):  # pairs of adjacent blocks, in random order: the same load on both
        pair = [False, True]
        random.shuffle(pair)
        for on in pair:
            found["on" if on else "off"].append(await block(on, 100))
    await node.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--duration", type=float, default=8, help="wrk seconds (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="the application in this process, without HTTP (default: served by cargohold serve)",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=400,
        help="--in-process: pairs of blocks of 100 requests (400)",
    )
    args = parser.parse_args()
    if args.in_process:
        return run_in_process(args.blocks)
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


def run_in_process(blocks: int) -> int:
    work = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    try:
        data_dir, auth = prepare_data(work)
        directory = work / "prometheus"
        directory.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # as `serve` sets it
        found = asyncio.run(in_process(data_dir, auth, blocks))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for which, values in found.items():
        ordered = sorted(values)
        print(f"metrics {which:3}: median {ordered[len(ordered) // 2]:.1f} µs CPU/request")
    ratios = sorted(on / off for on, off in zip(found["on"], found["off"], strict=True))
    quartiles = [100 * (ratios[len(ratios) * q // 4] - 1) for q in (1, 2, 3)]
    print(
        f"CPU per request with metrics, median of {len(ratios)} adjacent pairs: "
        f"{quartiles[1]:+.1f} % (quartiles {quartiles[0]:+.1f} %, {quartiles[2]:+.1f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
