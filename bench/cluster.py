"""Scale-out, side by side: CNCF Distribution 2.8 with its own S3 driver, cargohold with one node,
and cargohold with three nodes behind HAProxy, all storing blobs in one SeaweedFS.

    .venv/bin/python bench/cluster.py [--size-mib 1024] [--layers 8] [--concurrency 8]
        [--pullers 4] [--wrk-duration 10] [--rounds 5] [--pull-pairs 12] [--quick] [--kill]
        [--node-cores 0.1]

cargohold's nodes share one PostgreSQL schema (created and dropped here, on
--database-url) and one master key. For each target, in turn: push of one image, pull of it,
`--concurrency` concurrent pushes of images of size/concurrency, `--pullers` concurrent pulls
of the first image (aggregate MB/s), and the rate of manifest GETs by tag (wrk), with each node's
peak RSS over all of it. Blob GETs redirect to the store (both registries' default on S3).
Distribution and one node get the same image, so that the store serves the same bytes in the
same layers to both (the three nodes share one node's database and bucket, so they get one of
their own). Every throughput scenario then runs `--rounds` - 1 more times on Distribution and
one node, the two back to back and taking turns at going first, each round pushing a new image
(the same to both) into a new repository, and the medians are reported. Last, after every
push, pulls and concurrent pulls run `--pull-pairs` more times on both, in pairs taking turns
at going first: their medians are the pull rates, as a pull's time varies from run to run by
more than the registries differ (the bytes come from the store). Each measured run
starts after a `sync`, on an idle machine, so that none pays for what the one before left
the store to do; and the store compacts no volume meanwhile (SeaweedFS's vacuum, which
would land on whichever runs are under way); each measured pull follows an unmeasured
one of the same image, so that the store serves it from memory to both. The CPU of the
store, the registry, HAProxy and the clients, and how busy the machine was, are recorded
over the concurrent scenarios (cpuuse.py).

`--kill` adds the scale-out resilience run on the three nodes: the image is pushed while a
node is SIGKILLed, then pulled while another is; skopeo's own retries must complete both, and
the pulled digests are checked. Last, the nodes restart with `redirect = false` and the
aggregate pull is measured through one node and through HAProxy, the bytes streaming through
the nodes. `--node-cores N` then caps each node at N cores (a control group; needs root) and
measures that aggregate pull again through one node and through three: the store and the
clients share one machine, so only nodes capped below their share of it can show what adding
nodes adds. Pulls write to /dev/shm when it has room. Writes bench/results/cluster-<time>.json
and prints a table; `--report FILE` writes docs/PERFORMANCE.md's section from one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import clients  # noqa: E402
import limits  # noqa: E402
from cluster_report import print_table, write_report  # noqa: E402
from cpucap import CpuCap, usable  # noqa: E402
from cpuuse import CpuUse  # noqa: E402
from images import Image, generate_image, layout_size  # noqa: E402
from registries import Distribution, Registry, v2_status  # noqa: E402
from rss import PeakRss  # noqa: E402
from s3clients import start_seaweed, wait_ready  # noqa: E402

MIB = 1024 * 1024
HOT = "bench/hot"
#: skopeo's retries of a copy in the kill run.
KILL_RETRIES = 3
#: The longest wait for an idle machine before a measured run (seconds), and what idle is
#: (percent of all cores busy).
SETTLE_S = 20.0
IDLE_PERCENT = 10.0
SETTLED = {"runs": 0, "timed_out": 0}

DISTRIBUTION_S3 = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: {key}
    secretkey: {secret}
    region: us-east-1
    regionendpoint: {endpoint}
    bucket: distribution
    secure: false
    v4auth: true
    rootdirectory: /
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  # Its purger of stale uploads walks the bucket and panics on SeaweedFS's listing (index out
  # of range in s3-aws doWalk), taking the registry down mid-run.
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {http_secret}
"""


@dataclass
class S3Distribution(Distribution):
    endpoint: str = ""
    key: str = ""
    secret: str = ""

    def command(self) -> list[str]:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry not found: apt-get install -y docker-registry")
        self.config_path = self.data_dir.parent / "distribution.yml"
        self.config_path.write_text(
            DISTRIBUTION_S3.format(
                key=self.key,
                secret=self.secret,
                endpoint=self.endpoint,
                port=self.port,
                http_secret=secrets.token_hex(16),
            )
        )
        return [binary, "serve", str(self.config_path)]


@dataclass
class Node(Registry):
    """One `cargohold serve` on the shared configuration."""

    config: Path | None = None

    def command(self) -> list[str]:
        assert self.config is not None
        return [
            *(sys.executable, "-m", "cargohold", "serve", "--config", str(self.config)),
            *("--port", str(self.port), "--data-dir", str(self.data_dir), "--no-aws-profile"),
        ]

    def login(self) -> tuple[str, str] | None:
        import boto3

        assert self.config is not None
        out = subprocess.run(
            [
                *(sys.executable, "-m", "cargohold", "admin", "credentials"),
                *("--config", str(self.config), "--data-dir", str(self.data_dir)),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = {}
        for word in out.split():
            key, sep, value = word.partition("=")
            if sep and key.startswith("AWS_"):
                found[key] = value.strip("'\"")
        self.ecr = boto3.client(
            "ecr",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=found["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=found["AWS_SECRET_ACCESS_KEY"],
        )
        token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
        self.auth = "Basic, token from ECR GetAuthorizationToken"
        return user, password

    def prepare_repository(self, name: str) -> None:
        with contextlib.suppress(self.ecr.exceptions.RepositoryAlreadyExistsException):
            self.ecr.create_repository(repositoryName=name)


@dataclass
class Balancer(Registry):
    """HAProxy round-robin over `nodes`, checking /health/ready."""

    nodes: tuple[Node, ...] = ()

    def command(self) -> list[str]:
        servers = "\n".join(f"    server n{i} {n.host} check" for i, n in enumerate(self.nodes))
        config = self.data_dir.parent / "haproxy.cfg"
        config.write_text(
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 300s\n"
            "    timeout server 300s\n    retries 3\n    option redispatch\n"
            "    retry-on conn-failure empty-response\n"
            f"frontend f\n    bind 127.0.0.1:{self.port}\n    default_backend nodes\n"
            "backend nodes\n    balance roundrobin\n    option httpchk GET /health/ready\n"
            # A node capped at a tenth of a core (--node-cores) can take longer than the
            # check interval to answer while it streams.
            "    timeout check 5s\n"
            "    default-server inter 500ms fall 2 rise 2\n" + servers + "\n"
        )
        return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(config)]

    def login(self) -> tuple[str, str] | None:
        return self.nodes[0].credentials

    def prepare_repository(self, name: str) -> None:
        self.nodes[0].prepare_repository(name)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_target(
    name: str,
    front: Registry,
    groups: dict[str, list[int]],
    image: Image,
    args: argparse.Namespace,
    work: Path,
    env: Any,
) -> dict[str, Any]:
    """Every scenario on `front`, pushing and pulling `image`; `groups` names the processes
    whose CPU is counted (the registry's under "registry", the store's under "store")."""
    result: dict[str, Any] = {"target": name}
    peaks = [PeakRss(pid) for pid in groups["registry"]]
    for peak in peaks:
        peak.__enter__()
    try:
        result["push_mb_s"] = single_push(front, image, "bench/one", env)
        result["push_rounds"] = [result["push_mb_s"]]
        result["image_bytes"] = image.size_bytes
        result["pull_mb_s"] = single_pull(front, image.size_bytes, args, env)
        result["pull_rounds"] = [result["pull_mb_s"]]
        result["concurrent_push_cpu"] = cpu = {}
        rate = concurrent_push(front, groups, args, work, env, 0, cpu)
        result["concurrent_push_mb_s"] = rate
        result["concurrent_push_rounds"] = [rate]
        result["aggregate_pull_cpu"] = cpu = {}
        result["aggregate_pull_mb_s"] = aggregate_pull(
            front, image.size_bytes, args.pullers, args.pull_dir, env, groups, cpu
        )
        result["aggregate_pull_rounds"] = [result["aggregate_pull_mb_s"]]
        result["manifest_get_per_s"] = manifest_rate(front, image, args, work, env)
    finally:
        for peak in peaks:
            peak.__exit__(None, None, None)
    result["peak_rss_mib_per_node"] = [round(peak.mib, 1) for peak in peaks]
    for key, value in result.items():
        log(f"  {name:<14} {key:<24} {value}")
    return result


def single_push(front: Registry, image: Image, repository: str, env: Any) -> float:
    """MB/s of one skopeo push of `image` into `repository`, made here."""
    front.prepare_repository(repository)
    dest = f"{front.host}/{repository}:latest"
    settle()
    seconds = clients.push(image, dest, env=env, creds=front.skopeo_creds())
    return image.size_bytes / limits.MB / seconds


def single_pull(front: Registry, size: int, args: argparse.Namespace, env: Any) -> float:
    """MB/s of one skopeo pull of bench/one:latest (`size` bytes), checked complete."""
    out = args.pull_dir / f"pull-{front.name}"
    source = f"{front.host}/bench/one:latest"
    warm(front, args.pull_dir, env)
    settle()
    before = pressure()
    seconds = clients.pull(source, out, env=env, creds=front.skopeo_creds())
    log(f"  {front.name:<14} pull: {pressure_note(before)}")
    assert layout_size(out) >= size - 4096
    shutil.rmtree(out)
    return size / limits.MB / seconds


def concurrent_push(
    front: Registry,
    groups: dict[str, list[int]],
    args: argparse.Namespace,
    work: Path,
    env: Any,
    round_number: int,
    cpu: dict[str, Any] | None = None,
) -> float:
    """MB/s of `--concurrency` skopeo pushes at once, of new images into new repositories;
    where the CPU went meanwhile is written into `cpu` when given."""
    total = int(args.size_mib * MIB)
    pairs = []
    for i in range(args.concurrency):
        small = generate_image(
            work / f"images-{front.name}-r{round_number}" / f"c{i}",
            total // args.concurrency,
            args.layers,
        )
        front.prepare_repository(f"bench/r{round_number}c{i}")
        pairs.append((small, f"{front.host}/bench/r{round_number}c{i}:latest"))
    settle()
    with CpuUse(groups) as use:
        seconds = clients.push_concurrently(pairs, env=env, creds=front.skopeo_creds())
    for small, _ in pairs:
        shutil.rmtree(small.layout, ignore_errors=True)
    if cpu is not None:
        cpu.update(use.report())
    sent = sum(each.size_bytes for each, _ in pairs)
    return sent / limits.MB / seconds


def settle() -> None:
    """Before a measured run: what the last one wrote goes to disk now, and what the store
    (or a registry) still does after it ends, before this one starts: until the machine's
    cores are idle over half a second, for `SETTLE_S` seconds at most. `SETTLED` counts the
    waits and those that ran out."""
    subprocess.run(["sync"], check=False)
    deadline = time.monotonic() + SETTLE_S
    SETTLED["runs"] += 1
    while psutil.cpu_percent(interval=0.5) > IDLE_PERCENT:
        if time.monotonic() >= deadline:
            SETTLED["timed_out"] += 1
            log(f"  the machine was still busy after {SETTLE_S:g} s of waiting")
            break


def warm(front: Registry, where: Path, env: Any) -> None:
    """One pull of bench/one from `front`, not measured, before a measured one: the store then
    serves the image from memory on either registry. The bench writes tens of GB through the
    store, and the page cache lets go of one registry's objects before the other's: one
    aggregate pull, unwarmed, read 683 MB from disk and the other registry's none."""
    out = where / f"warm-{front.name}"
    clients.pull(f"{front.host}/bench/one:latest", out, env=env, creds=front.skopeo_creds())
    shutil.rmtree(out)


def pressure() -> tuple[int, int]:
    """Pages the kernel has scanned so far to reclaim memory (by kswapd and directly), and
    bytes read from disks so far."""
    scanned = 0
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name.startswith(("pgscan_kswapd", "pgscan_direct")):
            scanned += int(value)
    counters = psutil.disk_io_counters()
    return scanned, counters.read_bytes if counters is not None else 0


def pressure_note(before: tuple[int, int]) -> str:
    """What memory and the disks did since `before` (`pressure()`), for the log."""
    now = pressure()
    return (
        f"{now[0] - before[0]} pages scanned for reclaim, "
        f"{(now[1] - before[1]) / limits.MB:.0f} MB read from disk"
    )


def record_failure(result: dict[str, Any], key: str, label: str, exc: Exception) -> None:
    """A failed client run, reported and left out of the median: the end of its error under
    `result[key]`, and in the log."""
    failure = f"{label}{str(exc).splitlines()[-1][-300:]}"
    result.setdefault(key, []).append(failure)
    log(f"  {key} FAILED: {failure}")


def more_rounds(
    targets: list[tuple[dict[str, Any], Registry, dict[str, list[int]]]],
    args: argparse.Namespace,
    work: Path,
    env: Any,
) -> None:
    """Further rounds of every throughput scenario. Each scenario runs on the registries back
    to back, in mirrored order from one scenario to the next and from one round to the next
    (A B, B A, ...): other load on the machine comes and goes, a pull runs after the same
    pushes on both, and neither is always first. Each round pushes a new image, the same to
    both, into a new repository. Each result keeps its rounds and their medians."""
    scenarios = ("push", "pull", "concurrent_push", "aggregate_pull")
    for round_number in range(1, args.rounds):
        total = int(args.size_mib * MIB)
        fresh = generate_image(work / f"images-round{round_number}", total, args.layers)
        for index, scenario in enumerate(scenarios):
            mirrored = (round_number + index) % 2 == 1
            for result, front, groups in reversed(targets) if mirrored else targets:
                size = result["image_bytes"]
                run = scenario_run(
                    scenario, size, front, groups, fresh, round_number, args, work, env
                )
                try:
                    rate = run()
                except clients.ClientError as exc:
                    label = f"{result['target']} round {round_number}: "
                    record_failure(result, f"{scenario}_failures", label, exc)
                    continue
                result[f"{scenario}_rounds"].append(rate)
                log(f"  {result['target']:<14} round {round_number} {scenario}: {rate:.1f} MB/s")
        shutil.rmtree(fresh.layout, ignore_errors=True)
    for result, _, _ in targets:
        for scenario in scenarios:
            result[f"{scenario}_mb_s"] = statistics.median(result[f"{scenario}_rounds"])


def pull_series(
    targets: list[tuple[dict[str, Any], Registry, dict[str, list[int]]]],
    args: argparse.Namespace,
    env: Any,
) -> None:
    """`--pull-pairs` more pulls and concurrent pulls of bench/one on each registry, after all
    the pushes, in pairs taking turns at going first (A B, B A, ...). A pull hands the bytes
    to the store and differs between the registries only by a dozen requests, so the store
    and the clients' CPU make up its time, and from one run to the next it varies by more
    than the registries differ; the rounds, each after its pushes, are too few to tell them
    apart. Each result keeps the series, a failed run as None, and its rate becomes the
    series' median."""
    for scenario in ("pull", "aggregate_pull"):
        for pair in range(args.pull_pairs):
            for result, front, _ in reversed(targets) if pair % 2 else targets:
                size = result["image_bytes"]
                run = scenario_run(scenario, size, front, {}, None, 0, args, Path(), env)
                series = result.setdefault(f"{scenario}_series", [])
                try:
                    series.append(run())
                except clients.ClientError as exc:
                    label = f"{result['target']} pair {pair}: "
                    record_failure(result, f"{scenario}_failures", label, exc)
                    series.append(None)
        for result, _, _ in targets:
            rates = [rate for rate in result[f"{scenario}_series"] if rate is not None]
            result[f"{scenario}_mb_s"] = statistics.median(rates)
            log(f"  {result['target']:<14} {scenario} series: {rates}")


def scenario_run(
    scenario: str,
    size: int,
    front: Registry,
    groups: dict[str, list[int]],
    fresh: Image | None,
    round_number: int,
    args: argparse.Namespace,
    work: Path,
    env: Any,
) -> Callable[[], float]:
    """One round of `scenario` on `front` (of `size`-byte images), ready to run: its MB/s."""
    if scenario == "push":
        assert fresh is not None
        return functools.partial(single_push, front, fresh, f"bench/p{round_number}", env)
    if scenario == "pull":
        return functools.partial(single_pull, front, size, args, env)
    if scenario == "concurrent_push":
        return functools.partial(concurrent_push, front, groups, args, work, env, round_number)
    return functools.partial(aggregate_pull, front, size, args.pullers, args.pull_dir, env)


def streaming_pulls(
    nodes: tuple[Node, ...],
    balancer: Balancer,
    store: int,
    args: argparse.Namespace,
    work: Path,
    env: Any,
) -> dict[str, Any]:
    """Aggregate pulls with `redirect = false`: the nodes stream the blobs from the store, so
    the bytes go through them. Through one node, then through the three behind HAProxy."""
    assert nodes[0].config is not None
    text = nodes[0].config.read_text()
    nodes[0].config.write_text(text.replace("redirect = true", "redirect = false"))
    for node in nodes:
        node.stop()
        node.start()
    wait_balanced(balancer)
    image_size = int(args.size_mib * MIB)
    found: dict[str, Any] = {}
    for name, front, pids in (
        ("cargohold-1", nodes[0], [nodes[0].pid]),
        ("cargohold-3", balancer, [node.pid for node in nodes]),
    ):
        groups = {"registry": pids, "store": [store], "balancer": [balancer.pid]}
        cpu: dict[str, Any] = {}
        rate = aggregate_pull(front, image_size, args.pullers, args.pull_dir, env, groups, cpu)
        found[name] = {"aggregate_pull_mb_s": rate, "aggregate_pull_cpu": cpu}
        log(f"  {name:<14} streaming aggregate pull {rate:.1f} MB/s {cpu}")
    nodes[0].config.write_text(text)
    return found


def capped_pulls(
    nodes: tuple[Node, ...],
    balancer: Balancer,
    store: int,
    args: argparse.Namespace,
    env: Any,
) -> dict[str, Any]:
    """Aggregate pulls streaming through the nodes (`redirect = false`, as `streaming_pulls`
    leaves them) with each node capped at `--node-cores` of CPU, as if each ran on a small
    machine of its own while the store and the clients keep the rest: through one node, then
    through the three behind HAProxy, taking turns (1 3 3 1)."""
    image_size = int(args.size_mib * MIB)
    found: dict[str, Any] = {"node_cores": args.node_cores}
    fronts = {
        "cargohold-1": (nodes[0], [nodes[0].pid]),
        "cargohold-3": (balancer, [node.pid for node in nodes]),
    }
    with contextlib.ExitStack() as caps:
        for node in nodes:
            cap = caps.enter_context(CpuCap(node.name, args.node_cores))
            cap.add(node.pid)
        for name in ("cargohold-1", "cargohold-3", "cargohold-3", "cargohold-1"):
            front, pids = fronts[name]
            groups = {"registry": pids, "store": [store], "balancer": [balancer.pid]}
            cpu: dict[str, Any] = {}
            entry = found.setdefault(name, {"rounds": [], "cpu": []})
            try:
                rate = aggregate_pull(
                    front, image_size, args.pullers, args.pull_dir, env, groups, cpu
                )
            except clients.ClientError as exc:
                record_failure(entry, "failures", f"{name} capped streaming: ", exc)
                continue
            entry["rounds"].append(rate)
            entry["cpu"].append(cpu)
            log(f"  {name:<14} capped streaming aggregate pull {rate:.1f} MB/s {cpu}")
    for name in fronts:
        if found[name]["rounds"]:
            found[name]["aggregate_pull_mb_s"] = statistics.median(found[name]["rounds"])
    return found


def wait_balanced(balancer: Balancer) -> None:
    """Until HAProxy routes to every node again (its checks: 2 passes 500 ms apart)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(v2_status(node.url) is not None for node in balancer.nodes):
            time.sleep(2.0)
            return
        time.sleep(0.2)
    raise RuntimeError("the nodes did not come back")


def aggregate_pull(
    front: Registry,
    size: int,
    pullers: int,
    work: Path,
    env: Any,
    groups: dict[str, list[int]] | None = None,
    cpu: dict[str, Any] | None = None,
) -> float:
    """MB/s of `pullers` concurrent pulls of bench/one:latest (`size` bytes), each checked
    complete; where the CPU of `groups` went meanwhile is written into `cpu` when given."""
    outs = [work / f"agg-{front.name}-{i}" for i in range(pullers)]
    warm(front, work, env)
    settle()
    before = pressure()
    failures: list[clients.ClientError] = []

    def pull(out: Path) -> None:
        try:
            clients.pull(f"{front.host}/bench/one:latest", out, env=env, creds=front.skopeo_creds())
        except clients.ClientError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=pull, args=(out,)) for out in outs]
    with CpuUse(groups or {}) as use:
        started = time.perf_counter()
        for each in threads:
            each.start()
        for each in threads:
            each.join()
        seconds = time.perf_counter() - started
    log(f"  {front.name:<14} aggregate pull: {pressure_note(before)}")
    if failures:
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)
        raise failures[0]
    if cpu is not None:
        cpu.update(use.report())
    for out in outs:
        assert layout_size(out) >= size - 4096, f"{out} is short"
        shutil.rmtree(out)
    return float(pullers * size / limits.MB / seconds)


def manifest_rate(
    front: Registry, image: Image, args: argparse.Namespace, work: Path, env: Any
) -> float:
    front.prepare_repository(HOT)
    clients.push(image, f"{front.host}/{HOT}:latest", env=env, creds=front.skopeo_creds())
    script = clients.write_wrk_script(
        work / f"wrk-{front.name}.lua",
        method="GET",
        url_path=f"/v2/{HOT}/manifests/latest",
        auth_header=front.auth_header(),
    )
    found = clients.run_wrk(
        front.url, script, threads=2, connections=64, duration_s=args.wrk_duration
    )
    return round(found.requests_per_s, 1)


def kill_run(front: Balancer, args: argparse.Namespace, work: Path, env: Any) -> dict[str, Any]:
    """Push and pull through the balancer, SIGKILLing a node one third of the way into each.
    A request streaming through the killed node fails, and skopeo retries the copy
    (`--retry-times`, KILL_RETRIES): blobs already stored are skipped, the rest go through the
    other nodes. skopeo retries a connection reset but not a broken pipe, which is what a PATCH
    being written sees when the node behind HAProxy dies at the wrong moment; then skopeo is
    run again, as a user or a CI job would, and the runs are counted."""
    total = int(args.size_mib * MIB)
    image = generate_image(work / "images-kill", total, args.layers)
    front.prepare_repository("bench/kill")
    outcome: dict[str, Any] = {}
    out = work / "pull-kill"
    for phase, victim in (("push", front.nodes[1]), ("pull", front.nodes[2])):
        runs: list[str] = []
        if phase == "push":
            copy = functools.partial(clients.push, image, f"{front.host}/bench/kill:latest")
        else:
            copy = functools.partial(clients.pull, f"{front.host}/bench/kill:latest", out)

        def rerun(copy: Callable[..., float] = copy, runs: list[str] = runs) -> None:
            for _ in range(KILL_RETRIES + 1):
                try:
                    copy(env=env, creds=front.skopeo_creds(), retry_times=KILL_RETRIES)
                except clients.ClientError as exc:
                    runs.append(str(exc).splitlines()[-1][-200:])
                    shutil.rmtree(out, ignore_errors=True)
                else:
                    runs.append("ok")
                    return

        run = threading.Thread(target=rerun)
        started = time.perf_counter()
        run.start()
        time.sleep(max(1.0, args.size_mib / 100 / 3))
        os.killpg(victim.pid, 9)
        victim.process = None
        run.join()
        outcome[f"{phase}_s_with_a_node_killed"] = round(time.perf_counter() - started, 1)
        outcome[f"{phase}_skopeo_runs"] = runs
        victim.start()
    completed = all(outcome[f"{phase}_skopeo_runs"][-1] == "ok" for phase in ("push", "pull"))
    index = json.loads((out / "index.json").read_text()) if completed else {"manifests": [{}]}
    outcome["pulled_digest_matches"] = index["manifests"][0].get("digest") == image.manifest_digest
    log(f"  kill run: {outcome}")
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=float, default=1024.0)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pullers", type=int, default=4)
    parser.add_argument("--wrk-duration", type=float, default=10.0)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--quick", action="store_true", help="16 MiB, 2 layers, 2 s of wrk")
    parser.add_argument("--kill", action="store_true", help="also the node-kill run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of concurrent pushes and of concurrent pulls, Distribution and one node "
        "taking turns (default 5)",
    )
    parser.add_argument(
        "--pull-pairs",
        type=int,
        default=12,
        help="then pulls and concurrent pulls on Distribution and one node in this many "
        "pairs, taking turns at going first; their medians are the pull rates (default 12)",
    )
    parser.add_argument(
        "--node-cores",
        type=float,
        default=0.0,
        help="also pull through nodes each capped at this many cores by a control group "
        "(needs root; default 0: not run)",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--report", type=Path, help="only write docs/PERFORMANCE.md's section from this file"
    )
    args = parser.parse_args()
    docs = BENCH.parent / "docs"
    if args.report:
        document = json.loads(args.report.read_text())
        write_report(document, args.report.name, docs / "PERFORMANCE.md", docs / "cluster.png")
        return 0
    if args.quick:
        args.size_mib, args.layers, args.wrk_duration = 16.0, 2, 2.0
    if args.node_cores:
        why = usable()
        if why is not None:
            parser.error(f"--node-cores: {why}")
    import psycopg

    # Distribution's AWS SDK refuses a CA bundle with its HTTP transport; the store is plain
    # HTTP on loopback, so no bundle is wanted.
    os.environ.pop("AWS_CA_BUNDLE", None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = BENCH / ".work" / f"cluster-{stamp}"
    work.mkdir(parents=True)
    args.pull_dir = pull_dir(args, stamp, work)
    env = clients.client_env(work)
    key, secret = "benchkey", secrets.token_hex(20)
    (work / "seaweed").mkdir()
    # The store compacts no volume during the run: a compaction lands on whichever runs are
    # under way (once, a quarter of an hour in), as the first half of a pull series.
    weed, endpoint = start_seaweed(work / "seaweed", key, secret, vacuum=False)
    schema = f"bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    running: list[Registry] = []
    results: list[dict[str, Any]] = []
    try:
        wait_ready(endpoint, key, secret, "distribution")
        wait_ready(endpoint, key, secret, "cargohold")
        distribution = S3Distribution(
            "distribution-s3", work / "distribution", work / "distribution.log",
            endpoint=endpoint, key=key, secret=secret,
        )  # fmt: skip
        distribution.start()
        running.append(distribution)
        dist_groups = {"registry": [distribution.pid], "store": [weed.pid]}
        total = int(args.size_mib * MIB)
        shared = generate_image(work / "images-shared" / "single", total, args.layers)
        measured = measure_target(
            "distribution", distribution, dist_groups, shared, args, work, env
        )
        results.append(measured)
        config = write_cargohold_config(work, args.database_url, schema, endpoint, key, secret)
        nodes = tuple(
            Node(f"node{i}", work / f"node{i}", work / f"node{i}.log", config=config)
            for i in range(3)
        )
        nodes[0].start()
        running.append(nodes[0])
        one_groups = {"registry": [nodes[0].pid], "store": [weed.pid]}
        results.append(measure_target("cargohold-1", nodes[0], one_groups, shared, args, work, env))
        pair = [(results[0], distribution, dist_groups), (results[1], nodes[0], one_groups)]
        more_rounds(pair, args, work, env)
        if args.pull_pairs:
            pull_series(pair, args, env)
        distribution.stop()
        for node in nodes[1:]:
            node.start()
            running.append(node)
        balancer = Balancer("haproxy", work / "haproxy", work / "haproxy.log", nodes=nodes)
        balancer.start()
        running.append(balancer)
        three_groups = {
            "registry": [node.pid for node in nodes],
            "store": [weed.pid],
            "balancer": [balancer.pid],
        }
        own = generate_image(work / "images-cargohold-3" / "single", total, args.layers)
        results.append(measure_target("cargohold-3", balancer, three_groups, own, args, work, env))
        extra = kill_run(balancer, args, work, env) if args.kill else {}
        streaming = streaming_pulls(nodes, balancer, weed.pid, args, work, env)
        capped = capped_pulls(nodes, balancer, weed.pid, args, env) if args.node_cores else {}
    finally:
        for each in reversed(running):
            each.stop()
        weed.terminate()
        try:
            weed.wait(10)
        except subprocess.TimeoutExpired:
            weed.kill()
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
        # The store's data and the images take tens of GB: gone even when the run fails;
        # the logs stay for a failed run.
        for each in (work / "seaweed", *work.glob("images-*"), args.pull_dir):
            shutil.rmtree(each, ignore_errors=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    document = {"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}
    document["kill"] = extra
    document["streaming"] = streaming
    document["capped"] = capped
    document["settle"] = dict(SETTLED)
    document["store"] = {"vacuum": False}
    path = args.results_dir / f"cluster-{stamp}.json"
    path.write_text(json.dumps(document, indent=2))
    print_table(results)
    log(f"results: {path}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(args.pull_dir, ignore_errors=True)
    return 0


def pull_dir(args: argparse.Namespace, stamp: str, work: Path) -> Path:
    """Where pulls write: memory (/dev/shm) when it has room for every concurrent pull, so
    that the clients' disk is not what is measured."""
    shm = Path("/dev/shm")
    needed = 2 * args.pullers * args.size_mib * MIB
    if shm.is_dir() and shutil.disk_usage(shm).free > needed:
        root = shm / f"cargohold-cluster-{stamp}"
        root.mkdir()
        return root
    return work


def write_cargohold_config(
    work: Path, database_url: str, schema: str, endpoint: str, key: str, secret: str
) -> Path:
    master = work / "master.key"
    master.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
    master.chmod(0o600)
    url = f"{database_url}?options=-csearch_path%3D{schema}"
    config = work / "cargohold.toml"
    config.write_text(
        f'database_url = "{url}"\nmaster_key_file = "{master}"\n'
        f'[storage]\ndriver = "s3"\nbucket = "cargohold"\nendpoint_url = "{endpoint}"\n'
        f'region = "us-east-1"\npath_style = true\nredirect = true\n'
        f'access_key_id = "{key}"\nsecret_access_key = "{secret}"\n'
    )
    return config


if __name__ == "__main__":
    sys.exit(main())
