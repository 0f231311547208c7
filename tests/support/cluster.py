"""A cargohold cluster on one machine, as the README's "Running a cluster" describes it: nodes
that share one PostgreSQL database, one S3 bucket (SeaweedFS) and one master key file, each with
a data directory of its own, behind HAProxy balancing every request round-robin with
`/health/ready` checks. HAProxy names the node that answered in `X-Served-By`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import IO

import httpx
import pytest

from support.seaweed import Seaweed, write_config
from support.server import RegistryServer, free_port
from support.waiting import NeverHappened, wait_until

SERVED_BY = "x-served-by"


#: HAProxy's own 503, when no node is ready, in the shape and with the header a node gives.
NO_NODE = (
    '{\\"errors\\":[{\\"code\\":\\"UNAVAILABLE\\",'
    '\\"message\\":\\"no registry node is ready; retry later\\"}]}'
)


def haproxy_config(port: int, nodes: list[RegistryServer]) -> str:
    servers = "\n".join(f"    server node{i} {node.host} check" for i, node in enumerate(nodes))
    return f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
    # With no node ready (the database or the store is down for all), answer as a node does.
    http-error status 503 content-type application/json hdr Retry-After 5 string "{NO_NODE}"

frontend registry
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 300ms fastinter 200ms downinter 300ms fall 2 rise 2
    http-response set-header X-Served-By %s
{servers}
"""


def new_master_key(path: Path) -> Path:
    """A master key file for a new registry: 32 random bytes, URL-safe base64, mode 0600."""
    path.write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    path.chmod(0o600)
    return path


class Cluster:
    def __init__(self, root: Path, seaweed: Seaweed, database_url: str, *, nodes: int = 3) -> None:
        self.root = root
        self.seaweed = seaweed
        self.bucket = seaweed.new_bucket()
        key = new_master_key(root / "master.key")
        self.port = free_port()
        storage = seaweed.storage_settings(self.bucket, prefix="registry") | {"redirect": False}
        self.nodes: list[RegistryServer] = []
        for i in range(nodes):
            node_root = root / f"node{i}"
            node_root.mkdir()
            config = write_config(
                node_root / "cargohold.toml",
                storage,
                database_url=database_url,
                master_key_file=str(key),
                public_url=self.url,
            )
            self.nodes.append(
                RegistryServer(
                    node_root / "data",
                    node_root / "server.log",
                    extra_args=("--config", str(config), "--no-aws-profile"),
                )
            )
        self._haproxy: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        # The first node migrates the database and creates the administrator; the others
        # find both.
        for node in self.nodes:
            node.start()
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            pytest.fail("HAProxy is not installed (apt-get install haproxy)", pytrace=False)
        config = self.root / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.nodes))
        self._log = (self.root / "haproxy.log").open("ab")
        self._haproxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_all_up()

    def wait_all_up(self, timeout: float = 30.0) -> None:
        """Until HAProxy has every node in service: requests reach each of them."""

        def all_seen() -> bool:
            seen = set()
            for _ in range(3 * len(self.nodes)):
                try:
                    answer = httpx.get(f"{self.url}/health/ready", timeout=2)
                except httpx.TransportError:
                    return False
                seen.add(answer.headers.get(SERVED_BY))
            return seen == {f"node{i}" for i in range(len(self.nodes))}

        try:
            wait_until(all_seen, timeout=timeout, interval=0.2)
        except NeverHappened:
            log = (self.root / "haproxy.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"HAProxy did not bring every node into service:\n{log}") from None

    def stop(self) -> None:
        if self._haproxy is not None and self._haproxy.poll() is None:
            self._haproxy.send_signal(signal.SIGTERM)
            try:
                self._haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self._haproxy.kill()
                self._haproxy.wait(5)
        if self._log is not None:
            self._log.close()
        for node in self.nodes:
            if node.running:
                with contextlib.suppress(Exception):
                    node.stop()

    # -- clients ---------------------------------------------------------------------------

    def client(self, *, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.nodes[0].auth(), timeout=timeout)

    def create_repository(self, name: str) -> None:
        self.nodes[0].create_repository(name)

    def registry_credentials(self) -> tuple[str, str]:
        """(username, password) for `/v2/` on any node (what real clients are given)."""
        return ("AWS", self.nodes[0].login_password())
