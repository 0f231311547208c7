"""Scale-out, side by side: CNCF Distribution 2.8 with its own S3 driver, cargohold with one node,
and cargohold with three nodes behind HAProxy, all storing blobs in one SeaweedFS.

    .venv/bin/python bench/cluster.py [--size-mib 1024] [--layers 8] [--concurrency 8]
        [--pullers 4] [--wrk-duration 10] [--quick] [--kill]

cargohold's nodes share one PostgreSQL schema (created and dropped here, on
--database-url) and one master key. For each target, in turn: push of one image, pull of it,
`--concurrency` concurrent pushes of images of size/concurrency, `--pullers` concurrent pulls
of the first image (aggregate MB/s), and the rate of manifest GETs by tag (wrk), with each node's
peak RSS over all of it. Blob GETs redirect to the store (both registries' default on S3).

`--kill` adds the scale-out resilience run on the three nodes: the image is pushed while a
node is SIGKILLed, then pulled while another is; skopeo's own retries must complete both, and
the pulled digests are checked. Writes bench/results/cluster-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import clients  # noqa: E402
import limits  # noqa: E402
from images import Image, generate_image, layout_size  # noqa: E402
from registries import Distribution, Registry  # noqa: E402
from rss import PeakRss  # noqa: E402
from s3clients import start_seaweed, wait_ready  # noqa: E402

MIB = 1024 * 1024
HOT = "bench/hot"

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
    name: str, front: Registry, pids: list[int], args: argparse.Namespace, work: Path, env: Any
) -> dict[str, Any]:
    result: dict[str, Any] = {"target": name}
    peaks = [PeakRss(pid) for pid in pids]
    for peak in peaks:
        peak.__enter__()
    try:
        total = int(args.size_mib * MIB)
        image = generate_image(work / f"images-{name}" / "single", total, args.layers)
        creds = front.skopeo_creds()
        front.prepare_repository("bench/one")
        seconds = clients.push(image, f"{front.host}/bench/one:latest", env=env, creds=creds)
        result["push_mb_s"] = image.size_bytes / limits.MB / seconds
        out = work / f"pull-{name}"
        seconds = clients.pull(f"{front.host}/bench/one:latest", out, env=env, creds=creds)
        assert layout_size(out) >= image.size_bytes - 4096
        shutil.rmtree(out)
        result["pull_mb_s"] = image.size_bytes / limits.MB / seconds
        pairs = []
        for i in range(args.concurrency):
            small = generate_image(
                work / f"images-{name}" / f"c{i}", total // args.concurrency, args.layers
            )
            front.prepare_repository(f"bench/c{i}")
            pairs.append((small, f"{front.host}/bench/c{i}:latest"))
        seconds = clients.push_concurrently(pairs, env=env, creds=creds)
        sent = sum(each.size_bytes for each, _ in pairs)
        result["concurrent_push_mb_s"] = sent / limits.MB / seconds
        result["aggregate_pull_mb_s"] = aggregate_pull(front, image, args.pullers, work, env)
        result["manifest_get_per_s"] = manifest_rate(front, pairs[0][0], args, work, env)
    finally:
        for peak in peaks:
            peak.__exit__(None, None, None)
    result["peak_rss_mib_per_node"] = [round(peak.mib, 1) for peak in peaks]
    for key, value in result.items():
        log(f"  {name:<14} {key:<24} {value}")
    return result


def aggregate_pull(front: Registry, image: Image, pullers: int, work: Path, env: Any) -> float:
    outs = [work / f"agg-{front.name}-{i}" for i in range(pullers)]
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=clients.pull,
            args=(f"{front.host}/bench/one:latest", out),
            kwargs={"env": env, "creds": front.skopeo_creds()},
        )
        for out in outs
    ]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    seconds = time.perf_counter() - started
    for out in outs:
        assert layout_size(out) >= image.size_bytes - 4096, f"{out} is short"
        shutil.rmtree(out)
    return float(pullers * image.size_bytes / limits.MB / seconds)


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
    """Push and pull through the balancer, SIGKILLing a node one third of the way into each."""
    total = int(args.size_mib * MIB)
    image = generate_image(work / "images-kill", total, args.layers)
    front.prepare_repository("bench/kill")
    outcome: dict[str, Any] = {}
    for phase, victim in (("push", front.nodes[1]), ("pull", front.nodes[2])):
        out = work / "pull-kill"
        if phase == "push":
            run = threading.Thread(
                target=clients.push,
                args=(image, f"{front.host}/bench/kill:latest"),
                kwargs={"env": env, "creds": front.skopeo_creds()},
            )
        else:
            run = threading.Thread(
                target=clients.pull,
                args=(f"{front.host}/bench/kill:latest", out),
                kwargs={"env": env, "creds": front.skopeo_creds()},
            )
        started = time.perf_counter()
        run.start()
        time.sleep(max(1.0, args.size_mib / 100 / 3))
        os.killpg(victim.pid, 9)
        victim.process = None
        run.join()
        outcome[f"{phase}_s_with_a_node_killed"] = round(time.perf_counter() - started, 1)
        victim.start()
    index = json.loads((work / "pull-kill" / "index.json").read_text())
    outcome["pulled_digest_matches"] = index["manifests"][0]["digest"] == image.manifest_digest
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
    import psycopg

    # Distribution's AWS SDK refuses a CA bundle with its HTTP transport; the store is plain
    # HTTP on loopback, so no bundle is wanted.
    os.environ.pop("AWS_CA_BUNDLE", None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = BENCH / ".work" / f"cluster-{stamp}"
    work.mkdir(parents=True)
    env = clients.client_env(work)
    key, secret = "benchkey", secrets.token_hex(20)
    (work / "seaweed").mkdir()
    weed, endpoint = start_seaweed(work / "seaweed", key, secret)
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
        assert distribution.process is not None
        results.append(
            measure_target("distribution", distribution, [distribution.pid], args, work, env)
        )
        distribution.stop()
        config = write_cargohold_config(work, args.database_url, schema, endpoint, key, secret)
        nodes = tuple(
            Node(f"node{i}", work / f"node{i}", work / f"node{i}.log", config=config)
            for i in range(3)
        )
        nodes[0].start()
        running.append(nodes[0])
        results.append(measure_target("cargohold-1", nodes[0], [nodes[0].pid], args, work, env))
        for node in nodes[1:]:
            node.start()
            running.append(node)
        balancer = Balancer("haproxy", work / "haproxy", work / "haproxy.log", nodes=nodes)
        balancer.start()
        running.append(balancer)
        pids = [node.pid for node in nodes]
        results.append(measure_target("cargohold-3", balancer, pids, args, work, env))
        extra = kill_run(balancer, args, work, env) if args.kill else {}
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
    args.results_dir.mkdir(parents=True, exist_ok=True)
    document = {"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}
    document["kill"] = extra
    path = args.results_dir / f"cluster-{stamp}.json"
    path.write_text(json.dumps(document, indent=2))
    print_table(results)
    log(f"results: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


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


COLUMNS = {
    "push_mb_s": ("push", "MB/s"),
    "pull_mb_s": ("pull", "MB/s"),
    "concurrent_push_mb_s": ("concurrent pushes", "MB/s"),
    "aggregate_pull_mb_s": ("concurrent pulls, aggregate", "MB/s"),
    "manifest_get_per_s": ("manifest GET by tag", "req/s"),
}
BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"


def render(document: dict[str, Any], source: str, chart: str) -> str:
    """The scale-out section of docs/PERFORMANCE.md (kept by bench/report.py)."""
    rows = {row["target"]: row for row in document["results"]}
    settings = document["settings"]
    lines = [
        BEGIN,
        "## Scale-out: S3 storage and several nodes",
        "",
        f"`bench/cluster.py` ({source}): Distribution 2.8 with its S3 driver, cargohold with one",
        "node, and three cargohold nodes behind HAProxy (round-robin, `/health/ready` checks),",
        "all storing blobs in one SeaweedFS (`weed server -s3`) on this machine; cargohold's",
        "metadata in PostgreSQL. Blob GETs redirect to the store in both registries. Image:",
        f"{float(settings['size_mib']):g} MiB in {settings['layers']} layers; "
        f"{settings['concurrency']} concurrent pushes of 1/{settings['concurrency']} of it each;",
        f"{settings['pullers']} concurrent pulls of the image; manifest GETs by wrk "
        f"(2 threads, 64 connections, {float(settings['wrk_duration']):g} s). One run each.",
        "",
        f"![cargohold / Distribution on S3]({chart})",
        "",
        "| metric | unit | Distribution | cargohold, 1 node | 3 nodes | 1 node / Distribution "
        "| 3 nodes / 1 node |",
        "|---|---|---|---|---|---|---|",
    ]
    one, three, dist = rows["cargohold-1"], rows["cargohold-3"], rows["distribution"]
    for key, (label, unit) in COLUMNS.items():
        lines.append(
            f"| {label} | {unit} | {dist[key]:,.1f} | {one[key]:,.1f} | {three[key]:,.1f} "
            f"| {one[key] / dist[key]:.2f} | {three[key] / one[key]:.2f} |"
        )
    rss = ", ".join(f"{v:g}" for v in three["peak_rss_mib_per_node"])
    lines.append(
        f"| peak RSS per node | MiB | {dist['peak_rss_mib_per_node'][0]:g} "
        f"| {one['peak_rss_mib_per_node'][0]:g} | {rss} | | |"
    )
    if document.get("kill"):
        kill = document["kill"]
        lines += [
            "",
            f"With `--kill`, the image was pushed through HAProxy in "
            f"{kill['push_s_with_a_node_killed']} s while one node was SIGKILLed, and pulled in "
            f"{kill['pull_s_with_a_node_killed']} s while another was; skopeo's retries "
            "completed both, and the pulled manifest digest "
            + ("matched." if kill["pulled_digest_matches"] else "did NOT match."),
        ]
    command = (
        f"bench/cluster.py --size-mib {float(settings['size_mib']):g} "
        f"--layers {settings['layers']} --concurrency {settings['concurrency']} "
        f"--pullers {settings['pullers']}" + (" --kill" if document.get("kill") else "")
    )
    met = [
        f"{label} {one[key] / dist[key]:.2f}×"
        for key, (label, _) in COLUMNS.items()
        if one[key] < dist[key]
    ]
    scale = three["aggregate_pull_mb_s"] / one["aggregate_pull_mb_s"]
    lines += [
        "",
        f"Command: `.venv/bin/python {command}`.",
        "",
        NOTES.strip(),
        "In this run: one node below Distribution on "
        + (", ".join(met) if met else "no rate")
        + f"; three nodes' aggregate pull {scale:.2f}× one node's.",
        END,
        "",
    ]
    return "\n".join(lines)


NOTES = """
Targets: every rate of one node at least Distribution's, and three nodes' aggregate pull at
least 1.5 times one node's. Reading the figures: with redirects, pull bytes come from
SeaweedFS, not from the nodes, so pull throughput is the store's on this machine's two cores
(shared with the registries, the clients and PostgreSQL), whatever the number of nodes; three
nodes on the same two cores add no CPU, only processes. The scale-out gain needs nodes on
machines of their own.
"""


def write_report(document: dict[str, Any], source: str, markdown: Path, chart: Path) -> None:
    write_chart(document, chart)
    block = render(document, source, os.path.relpath(chart, markdown.parent))
    text = markdown.read_text() if markdown.exists() else ""
    if BEGIN in text and END in text:
        before, _, rest = text.partition(BEGIN)
        _, _, after = rest.partition(END)
        text = before + block.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + block
    markdown.write_text(text)


def write_chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {row["target"]: row for row in document["results"]}
    labels = [label for label, _ in COLUMNS.values()]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.38
    for offset, (target, name) in enumerate(
        (("cargohold-1", "cargohold, 1 node"), ("cargohold-3", "cargohold, 3 nodes"))
    ):
        ratios = [rows[target][key] / rows["distribution"][key] for key in COLUMNS]
        positions = [i + (offset - 0.5) * width for i in range(len(labels))]
        ax.bar(positions, ratios, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, rotation=15, fontsize=8)
    ax.set_ylabel("× Distribution (S3)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(results: list[dict[str, Any]]) -> None:
    columns = [
        "push_mb_s",
        "pull_mb_s",
        "concurrent_push_mb_s",
        "aggregate_pull_mb_s",
        "manifest_get_per_s",
        "peak_rss_mib_per_node",
    ]
    print("| target | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in results:
        cells = [f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print(f"| {row['target']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
