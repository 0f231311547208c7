"""Benchmark cargohold against CNCF Distribution 2.8, side by side, in one run.

    .venv/bin/python bench/run.py [--size-mib 1024] [--layers 8] [--reps 5] [--quick]

Measures the machine's limits, starts both registries on free loopback ports with their data on the
same disk, then for each repetition (alternating which registry goes first) measures push, pull,
concurrent push and wrk request rates, with each server's peak RSS. Writes
``bench/results/<timestamp>.json`` and prints a Markdown table of medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # sibling modules, when run as a script from anywhere

import clients  # noqa: E402
import limits  # noqa: E402
import summary  # noqa: E402
from busy import ForeignCpu  # noqa: E402
from images import MANIFEST_MEDIA_TYPE, Image, generate_image, layout_size  # noqa: E402
from registries import Cargohold, Distribution, Registry, free_port  # noqa: E402
from rss import MIB, PeakRss, tree_rss  # noqa: E402

REQUIRED_TOOLS = {
    "skopeo": "skopeo",
    "wrk": "wrk",
    "hey": "hey",
    "docker-registry": "docker-registry",
}
HOT_REPOSITORY = "bench/hot"
# The request shapes measured for rate and latency; {digest} is the small image's first layer.
LOAD_SHAPES = {
    "manifest_get": ("GET", f"/v2/{HOT_REPOSITORY}/manifests/latest"),
    "manifest_head": ("HEAD", f"/v2/{HOT_REPOSITORY}/manifests/latest"),
    "blob_head": ("HEAD", f"/v2/{HOT_REPOSITORY}/blobs/{{digest}}"),
}


@dataclass(frozen=True)
class Settings:
    size_mib: float
    layers: int
    reps: int
    concurrency: int
    wrk_duration_s: float
    wrk_threads: int
    wrk_connections: int
    limit_bytes: dict[str, int]
    servers: tuple[str, ...]
    quick: bool


@dataclass
class Round:
    """What one repetition measures with: fresh images, so no registry has seen their blobs."""

    index: int
    image: Image
    concurrent_images: list[Image]
    pull_root: Path


@dataclass
class Run:
    settings: Settings
    work_dir: Path
    env: dict[str, str]
    hot: Image | None = None
    wrk_scripts: dict[str, dict[str, Path]] = field(default_factory=dict)
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    foreign_cpu: dict[str, list[float]] = field(default_factory=dict)
    auth: dict[str, str] = field(default_factory=dict)

    @property
    def hot_layer(self) -> str:
        assert self.hot is not None
        return self.hot.layer_digests[0]

    def record(self, registry: Registry, metric: str, value: float) -> None:
        self.samples.setdefault(metric, {}).setdefault(registry.name, []).append(value)
        log(f"  {registry.name:<13} {metric:<28} {value:12.2f}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=float, help="image size (default 1024; quick 4)")
    parser.add_argument("--layers", type=int, help="layers per image (default 8; quick 2)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5; quick 1)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent pushes (8)")
    parser.add_argument("--wrk-duration", type=float, help="seconds per wrk run (10; quick 1)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness works")
    parser.add_argument(
        "--servers",
        default="cargohold,distribution",
        help="comma-separated subset of cargohold,distribution (ratios need both)",
    )
    parser.add_argument("--work-dir", type=Path, help="scratch space (default bench/.work/<time>)")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--keep-work-dir", action="store_true", help="keep data and logs")
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="cargohold serves its Prometheus metrics (CARGOHOLD_METRICS_PORT on a free port; "
        "default: as the environment says, else off)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if quick else full)

    servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    unknown = set(servers) - {summary.CARGOHOLD, summary.DISTRIBUTION}
    if unknown or not servers:
        parser.error(f"unknown servers: {', '.join(sorted(unknown)) or '(none)'}")
    settings = Settings(
        size_mib=pick(args.size_mib, 1024.0, 4.0),
        layers=pick(args.layers, 8, 2),
        reps=pick(args.reps, 5, 1),
        concurrency=args.concurrency,
        wrk_duration_s=pick(args.wrk_duration, 10.0, 1.0),
        wrk_threads=args.wrk_threads,
        wrk_connections=args.wrk_connections,
        limit_bytes={
            "sha256_mb_s": pick(None, 1 << 30, 64 * MIB),
            "disk_write_fsync_mb_s": pick(None, 1 << 30, 16 * MIB),
            "loopback_tcp_mb_s": pick(None, 4 << 30, 64 * MIB),
        },
        servers=servers,
        quick=quick,
    )
    if settings.layers < 1 or settings.reps < 1 or settings.concurrency < 1:
        parser.error("--layers, --reps and --concurrency must be at least 1")
    if settings.size_mib * MIB < settings.layers * settings.concurrency * 4096:
        parser.error("--size-mib is too small for that many layers")
    return settings, args


def check_tools() -> None:
    missing = [name for name in REQUIRED_TOOLS if shutil.which(name) is None]
    if missing:
        packages = " ".join(REQUIRED_TOOLS[name] for name in missing)
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install -y {packages}")


def clean_environment() -> dict[str, str]:
    """Drop proxy settings for this process and its children: all traffic is loopback."""
    for key in list(os.environ):
        if key.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            del os.environ[key]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    return dict(os.environ)


# ---- machine limits ------------------------------------------------------------------------------


def measure_limits(settings: Settings, data_root: Path) -> dict[str, Any]:
    probes: dict[str, Callable[[int], float]] = {
        "sha256_mb_s": limits.sha256_mb_s,
        "disk_write_fsync_mb_s": lambda n: limits.disk_write_fsync_mb_s(data_root, n),
        "loopback_tcp_mb_s": limits.loopback_tcp_mb_s,
    }
    found: dict[str, Any] = {}
    for key, probe in probes.items():
        values = []
        for _ in range(settings.reps):
            values.append(probe(settings.limit_bytes[key]))
            log(f"  limit         {key:<28} {values[-1]:12.2f}")
        found[key] = {
            "bytes": settings.limit_bytes[key],
            "samples": values,
            "median": summary.median(values),
        }
    return found


# ---- scenarios -----------------------------------------------------------------------------------


def scenario_push(run: Run, registry: Registry, rnd: Round) -> None:
    repository = f"bench/push-{rnd.index}"
    registry.prepare_repository(repository)
    seconds = clients.push(
        rnd.image,
        f"{registry.host}/{repository}:latest",
        env=run.env,
        creds=registry.skopeo_creds(),
    )
    run.record(registry, "push_mb_s", rnd.image.size_bytes / limits.MB / seconds)


def scenario_pull(run: Run, registry: Registry, rnd: Round) -> None:
    out = rnd.pull_root / f"pull-{registry.name}-{rnd.index}"
    try:
        seconds = clients.pull(
            f"{registry.host}/bench/push-{rnd.index}:latest",
            out,
            env=run.env,
            creds=registry.skopeo_creds(),
        )
        pulled = layout_size(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if pulled < rnd.image.size_bytes - 4096:
        raise clients.ClientError(f"pull from {registry.name} wrote {pulled} bytes")
    run.record(registry, "pull_mb_s", rnd.image.size_bytes / limits.MB / seconds)


def scenario_concurrent_push(run: Run, registry: Registry, rnd: Round) -> None:
    pairs = []
    for i, image in enumerate(rnd.concurrent_images):
        repository = f"bench/concurrent-{rnd.index}-{i}"
        registry.prepare_repository(repository)
        pairs.append((image, f"{registry.host}/{repository}:latest"))
    seconds = clients.push_concurrently(pairs, env=run.env, creds=registry.skopeo_creds())
    total = sum(image.size_bytes for image in rnd.concurrent_images)
    run.record(registry, "concurrent_push_mb_s", total / limits.MB / seconds)


def _load_scenario(key: str) -> Callable[[Run, Registry, Round], None]:
    """Request rate and latency of one request shape: wrk for GET, hey for HEAD (see clients)."""

    def scenario(run: Run, registry: Registry, rnd: Round) -> None:
        s = run.settings
        method, path = LOAD_SHAPES[key]
        if method == "GET":
            result = clients.run_wrk(
                registry.url,
                run.wrk_scripts[registry.name][key],
                threads=s.wrk_threads,
                connections=s.wrk_connections,
                duration_s=s.wrk_duration_s,
            )
        else:
            result = clients.run_hey(
                registry.url + path.format(digest=run.hot_layer),
                method=method,
                headers=request_headers(registry),
                connections=s.wrk_connections,
                duration_s=s.wrk_duration_s,
            )
        run.record(registry, f"{key}_rps", result.requests_per_s)
        run.record(registry, f"{key}_p50_ms", result.p50_ms)
        run.record(registry, f"{key}_p99_ms", result.p99_ms)

    return scenario


#: In run order. Pulls come last, a minute after the last push: right after 3 GiB of pushes the
#: first pull or two on this machine ran a third slower than later ones, whichever registry
#: served them, which made the pull median follow which registry happened to go first.
SCENARIOS: dict[str, Callable[[Run, Registry, Round], None]] = {
    "push": scenario_push,
    "concurrent_push": scenario_concurrent_push,
    "manifest_get": _load_scenario("manifest_get"),
    "manifest_head": _load_scenario("manifest_head"),
    "blob_head": _load_scenario("blob_head"),
    "pull": scenario_pull,
}


#: Scenarios that change nothing on the server, run twice per repetition in the order A B B A: the
#: same pull measured back to back varies by a third from one run to the next on this machine,
#: and the mirrored order gives both registries the same positions.
TWICE = frozenset({"pull"})


# ---- setup ---------------------------------------------------------------------------------------


def make_registries(settings: Settings, work_dir: Path) -> list[Registry]:
    made: list[Registry] = []
    for name in settings.servers:
        kind = Cargohold if name == summary.CARGOHOLD else Distribution
        made.append(kind(name, work_dir / f"{name}-data", work_dir / f"{name}.log"))
    return made


def request_headers(registry: Registry) -> dict[str, str]:
    headers = {"Accept": MANIFEST_MEDIA_TYPE}
    auth = registry.auth_header()
    if auth:
        headers["Authorization"] = auth
    return headers


def prepare_hot_image(run: Run, registry: Registry) -> None:
    """Push a small image for the request-rate scenarios and check each request answers 200."""
    assert run.hot is not None
    registry.prepare_repository(HOT_REPOSITORY)
    dest = f"{registry.host}/{HOT_REPOSITORY}:latest"
    clients.push(run.hot, dest, env=run.env, creds=registry.skopeo_creds())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    scripts = {}
    for key, (method, path) in LOAD_SHAPES.items():
        path = path.format(digest=run.hot_layer)
        request = urllib.request.Request(
            registry.url + path, method=method, headers=request_headers(registry)
        )
        with opener.open(request, timeout=10) as response:  # raises unless 2xx
            digest = response.headers.get("Docker-Content-Digest")
        expected = run.hot.manifest_digest if key.startswith("manifest") else run.hot_layer
        if digest and digest != expected:
            raise RuntimeError(f"{registry.name} {method} {path}: digest {digest}")
        if method == "GET":
            scripts[key] = clients.write_wrk_script(
                run.work_dir / f"wrk-{registry.name}-{key}.lua",
                method=method,
                url_path=path,
                auth_header=registry.auth_header(),
            )
    run.wrk_scripts[registry.name] = scripts


def make_round(run: Run, index: int) -> Round:
    s = run.settings
    root = run.work_dir / "images" / f"round-{index}"
    total = int(s.size_mib * MIB)
    image = generate_image(root / "single", total, s.layers)
    concurrent = [
        generate_image(root / f"concurrent-{i}", total // s.concurrency, s.layers)
        for i in range(s.concurrency)
    ]
    return Round(index, image, concurrent, pull_root(run, total))


def pull_root(run: Run, total: int) -> Path:
    """Pulls land in memory when it fits, so the client's disk is not what is measured."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 3 * total:
        root = shm / f"cargohold-bench-{os.getpid()}"
        root.mkdir(exist_ok=True)
        return root
    return run.work_dir / "pulls"


# ---- the run -------------------------------------------------------------------------------------


def measure(run: Run, registries: list[Registry]) -> dict[str, Any]:
    s = run.settings
    idle: dict[str, dict[str, float]] = {}
    for registry in registries:
        registry.start()
        run.auth[registry.name] = registry.auth
        log(
            f"started {registry.name} on {registry.url} (pid {registry.pid}, auth: {registry.auth})"
        )
    run.hot = generate_image(run.work_dir / "images" / "hot", 1 * MIB, 1)
    for registry in registries:
        prepare_hot_image(run, registry)
        idle[registry.name] = {"start_mib": tree_rss(registry.pid) / MIB}
    for index in range(s.reps):
        log(f"repetition {index + 1}/{s.reps}: generating images")
        rnd = make_round(run, index)
        order = registries if index % 2 == 0 else registries[::-1]
        try:
            for key, scenario in SCENARIOS.items():
                passes = order + order[::-1] if key in TWICE else order
                for registry in passes:
                    # Whatever the last scenario left in the page cache is written out before
                    # this one starts, not during it: otherwise whichever registry goes second
                    # pays for the first one's writeback.
                    os.sync()
                    with PeakRss(registry.pid) as peak, ForeignCpu() as foreign:
                        try:
                            scenario(run, registry, rnd)
                        finally:
                            for each in registries:
                                each.check_alive(f"{key}, repetition {index + 1}")
                    run.record(registry, f"{key}_peak_rss_mib", peak.mib)
                    run.foreign_cpu.setdefault(key, []).append(foreign.cores)
        finally:
            shutil.rmtree(rnd.image.layout.parent, ignore_errors=True)
            if rnd.pull_root.is_relative_to("/dev/shm"):
                shutil.rmtree(rnd.pull_root, ignore_errors=True)
    for registry in registries:
        idle[registry.name]["end_mib"] = tree_rss(registry.pid) / MIB
    return idle


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    check_tools()
    if args.metrics:
        os.environ["CARGOHOLD_METRICS_PORT"] = str(free_port())  # recorded in the results
    env = clean_environment()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    work_dir = (args.work_dir or BENCH / ".work" / stamp).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    run = Run(settings, work_dir, clients.client_env(work_dir) | {"NO_PROXY": env["NO_PROXY"]})
    registries = make_registries(settings, work_dir)
    log(f"work dir {work_dir}")
    machine = limits.describe_machine(work_dir)
    try:
        log("machine limits")
        machine_limits = measure_limits(settings, work_dir)
        idle = measure(run, registries)
    except Exception:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        for registry in registries:
            log(f"---- {registry.name} log tail ----\n{registry.log_tail()}")
            if registry.log_path.exists():
                kept = args.results_dir / f"{stamp}-{registry.name}.log"
                shutil.copyfile(registry.log_path, kept)
                log(f"(whole log kept in {kept})")
        raise
    finally:
        for registry in registries:
            registry.stop()
        if not args.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    results = build_results(settings, run, machine, machine_limits, idle, started, argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary.results_table(results))
    print()
    print(summary.limits_table(results))
    if len(settings.servers) == 2:
        print()
        print(summary.fraction_table(results))
    print(f"\n{summary.foreign_cpu_text(results)}")
    print(f"\nresults: {out}")
    return 0


def build_results(
    settings: Settings,
    run: Run,
    machine: dict[str, str | int | float],
    machine_limits: dict[str, Any],
    idle: dict[str, dict[str, float]],
    started: datetime,
    argv: list[str] | None,
) -> dict[str, Any]:
    every = [v for values in run.foreign_cpu.values() for v in values]
    entries = {
        metric.key: summary.summarize_metric(metric, run.samples.get(metric.key, {}))
        for metric in summary.metrics(settings.size_mib, settings.layers, settings.concurrency)
    }
    results: dict[str, Any] = {
        "version": summary.RESULTS_VERSION,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        # The CARGOHOLD_* settings the server ran with (e.g. CARGOHOLD_WORKERS) are part of it.
        "command": " ".join(
            [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("CARGOHOLD_")]
            + ["python bench/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "settings": {
            "size_mib": settings.size_mib,
            "layers": settings.layers,
            "reps": settings.reps,
            "concurrency": settings.concurrency,
            "wrk": f"-t{settings.wrk_threads} -c{settings.wrk_connections} "
            f"-d{settings.wrk_duration_s:g}s",
            "quick": settings.quick,
        },
        "servers": list(settings.servers),
        "auth": run.auth,
        "machine": machine,
        "versions": limits.tool_versions(),
        "limits": machine_limits,
        "idle_rss_mib": idle,
        "foreign_cpu_cores": {
            "by_scenario": run.foreign_cpu,
            "median": summary.median(every),
            "max": max(every, default=0.0),
        },
        "metrics": entries,
    }
    if len(settings.servers) == 2:
        results["fraction_of_limit"] = summary.fractions_of_limits(entries, machine_limits)
    return results


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    log(f"done in {time.monotonic() - started_at:.0f} s")
    raise SystemExit(code)
