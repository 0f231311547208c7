"""Compare the async S3 clients the `s3` storage driver could use, on SeaweedFS on this machine.

    .venv/bin/python bench/s3clients.py [--object-mib 32] [--objects 8] [--heads 500]
        [--aiobotocore-python /path/to/other/venv/bin/python]

Starts `weed server -s3` on free loopback ports, then runs each client through the same three
measurements: sequential PUT of `--objects` objects, GET of all of them streamed in 1 MiB reads
with 4 at a time, and `--heads` HEAD requests 16 at a time. Clients:

- `botocore-threads`: botocore's synchronous client, each call in an anyio worker thread (what
  cargohold.storage.s3client does);
- `obstore`: the Rust object_store binding;
- `aiobotocore`: botocore on aiohttp. It pins botocore to a narrower range than boto3 and awscli
  in this project's environment, so it runs from another interpreter
  (`--aiobotocore-python`) when given one.

Prints one JSON line per client and a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_seaweed(
    root: Path, key: str, secret: str, *, vacuum: bool = True
) -> tuple[subprocess.Popen[bytes], str]:
    """`weed server -s3` under `root`, with one identity (`key`, `secret`), and its S3 endpoint.
    `vacuum=False` keeps its master from compacting volumes: a compaction starts a quarter of an
    hour in and rewrites every volume holding deleted data for a minute or two, on the cores the
    measured runs share."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    identities = root / "s3.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "bench",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List"],
                    }
                ]
            }
        )
    )
    ports = [_free_port() for _ in range(11)]
    s3 = ports[6]
    command = [
        weed, "server", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
        f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}", "-volume.max=64",
        "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={ports[7]}",
        f"-s3.port.iceberg={ports[8]}", f"-s3.port.lance={ports[9]}",
        f"-metricsPort={ports[10]}", f"-s3.config={identities}", "-iam=false",
    ]  # fmt: skip
    if not vacuum:
        # A volume is compacted once its share of deleted data exceeds the threshold.
        command.append("-master.garbageThreshold=1")
    log = (root / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{s3}"


def wait_ready(endpoint: str, key: str, secret: str, bucket: str) -> None:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(Exception):
            urllib.request.urlopen(endpoint, timeout=1)
        try:
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"x")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# -- the clients -------------------------------------------------------------------------------


class BotocoreThreads:
    name = "botocore-threads"

    def __init__(self, endpoint: str, key: str, secret: str, bucket: str) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from cargohold.storage.s3client import S3Calls, S3Settings

        self.calls = S3Calls(
            S3Settings(
                bucket=bucket,
                endpoint_url=endpoint,
                region="us-east-1",
                path_style=True,
                access_key_id=key,
                secret_access_key=secret,
            )
        )

    async def put(self, key: str, data: bytes) -> None:
        await self.calls.call("put_object", key, Key=key, Body=data)

    async def get(self, key: str) -> int:
        import anyio.to_thread

        answer = await self.calls.call("get_object", key, Key=key)
        body, total = answer["Body"], 0
        while chunk := await anyio.to_thread.run_sync(body.read, MIB):
            total += len(chunk)
        return total

    async def head(self, key: str) -> None:
        await self.calls.call("head_object", key, Key=key)


class Obstore:
    name = "obstore"

    def __init__(self, endpoint: str, key: str, secret: str, bucket: str) -> None:
        from obstore.store import S3Store

        self.store = S3Store(
            bucket,
            endpoint=endpoint,
            region="us-east-1",
            access_key_id=key,
            secret_access_key=secret,
            client_options={"allow_http": True},
            virtual_hosted_style_request=False,
        )

    async def put(self, key: str, data: bytes) -> None:
        import obstore

        await obstore.put_async(self.store, key, data)

    async def get(self, key: str) -> int:
        import obstore

        answer = await obstore.get_async(self.store, key)
        total = 0
        async for chunk in answer.stream(min_chunk_size=MIB):
            total += len(chunk)
        return total

    async def head(self, key: str) -> None:
        import obstore

        await obstore.head_async(self.store, key)


class Aiobotocore:
    name = "aiobotocore"

    def __init__(self, endpoint: str, key: str, secret: str, bucket: str) -> None:
        self.args = (endpoint, key, secret)
        self.bucket = bucket
        self.client: Any = None

    async def __aenter__(self) -> Aiobotocore:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        endpoint, key, secret = self.args
        self._context = get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=AioConfig(max_pool_connections=64, s3={"addressing_style": "path"}),
        )
        self.client = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(None, None, None)

    async def put(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> int:
        answer = await self.client.get_object(Bucket=self.bucket, Key=key)
        total = 0
        async with answer["Body"] as body:
            while chunk := await body.read(MIB):
                total += len(chunk)
        return total

    async def head(self, key: str) -> None:
        await self.client.head_object(Bucket=self.bucket, Key=key)


# -- the measurements --------------------------------------------------------------------------


async def measure(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    data = os.urandom(args.object_mib * MIB)
    keys = [f"{client.name}/object-{i}" for i in range(args.objects)]
    started = time.perf_counter()
    for key in keys:
        await client.put(key, data)
    put_s = time.perf_counter() - started

    gate = asyncio.Semaphore(4)

    async def get(key: str) -> int:
        async with gate:
            return int(await client.get(key))

    started, cpu = time.perf_counter(), time.process_time()
    sizes = await asyncio.gather(*(get(key) for key in keys))
    get_s, get_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert sum(sizes) == len(data) * len(keys)

    heads = asyncio.Semaphore(16)

    async def head(i: int) -> None:
        async with heads:
            await client.head(keys[i % len(keys)])

    started = time.perf_counter()
    await asyncio.gather(*(head(i) for i in range(args.heads)))
    head_s = time.perf_counter() - started
    total_mb = len(data) * len(keys) / 1e6
    return {
        "client": client.name,
        "put_MBps": round(total_mb / put_s, 1),
        "get_MBps": round(total_mb / get_s, 1),
        "get_cpu_s_per_GB": round(get_cpu / (total_mb / 1000), 2),
        "head_per_s": round(args.heads / head_s),
    }


async def run_clients(names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for name in names:
        if name == "aiobotocore":
            async with Aiobotocore(args.endpoint, args.key, args.secret, args.bucket) as aio:
                results.append(await measure(aio, args))
            continue
        factory = {"botocore-threads": BotocoreThreads, "obstore": Obstore}[name]
        results.append(
            await measure(factory(args.endpoint, args.key, args.secret, args.bucket), args)
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--object-mib", type=int, default=32)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--heads", type=int, default=500)
    parser.add_argument("--aiobotocore-python")
    parser.add_argument("--clients", default="botocore-threads,obstore")
    # Given by the parent when it runs a client from another interpreter.
    parser.add_argument("--endpoint")
    parser.add_argument("--key", default="benchkey")
    parser.add_argument("--secret", default="benchsecret0123456789")
    parser.add_argument("--bucket", default="bench-clients")
    args = parser.parse_args()
    names = args.clients.split(",")
    if args.endpoint:  # a child: measure and print
        for result in asyncio.run(run_clients(names, args)):
            print(json.dumps(result), flush=True)
        return
    root = Path(tempfile.mkdtemp(prefix="s3clients-"))
    process, args.endpoint = start_seaweed(root, args.key, args.secret)
    try:
        wait_ready(args.endpoint, args.key, args.secret, args.bucket)
        results = asyncio.run(run_clients(names, args))
        if args.aiobotocore_python:
            child = subprocess.run(
                [
                    *(args.aiobotocore_python, __file__, "--clients", "aiobotocore"),
                    *("--endpoint", args.endpoint, "--key", args.key, "--secret", args.secret),
                    *("--bucket", args.bucket, "--object-mib", str(args.object_mib)),
                    *("--objects", str(args.objects), "--heads", str(args.heads)),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results += [json.loads(line) for line in child.stdout.splitlines() if line]
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
    columns = ["client", "put_MBps", "get_MBps", "get_cpu_s_per_GB", "head_per_s"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for result in results:
        print("| " + " | ".join(str(result[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
