"""How long cargohold takes to scan an image of a real Debian bookworm root filesystem.

    .venv/bin/python bench/scan.py            # --reps 5 --work-dir bench/.work/scan

The root filesystem comes from `debootstrap --variant=minbase bookworm` (installed with apt-get
when missing; it fetches from the Debian mirror apt is configured with) and is cached under the
work directory. It becomes one gzip layer of an image pushed through the service layer to a
registry on SQLite and the filesystem driver, with the OSV fixture advisories imported. Each
repetition then runs the whole scan job — stream and decompress the layer, read the inventory,
match it, store the findings, attach the SBOM — and the median is reported against the 5 s
target, with the inventory-reading part timed on its own too.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cargohold.app import (  # noqa: E402
    build_content,
    build_scanning,
    build_storage,
    open_store,
)
from cargohold.config import load  # noqa: E402
from cargohold.domain.scans import COMPLETE  # noqa: E402
from cargohold.scanning import read_inventory  # noqa: E402
from cargohold.scanning.osv import OsvSource  # noqa: E402
from cargohold.service.vulndb import VulnerabilityDatabase  # noqa: E402

TARGET_SECONDS = 5.0
ACCOUNT = "123456789012"
MIRROR = "http://deb.debian.org/debian"


def mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return MIRROR


def rootfs(work: Path) -> Path:
    target = work / "rootfs"
    if (target / "var/lib/dpkg/status").exists():
        return target
    if shutil.which("debootstrap") is None:
        print("installing debootstrap with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True)
    if target.exists():
        shutil.rmtree(target)
    print(f"debootstrap --variant=minbase bookworm {target} {mirror()}", file=sys.stderr)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(target), mirror()],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return target


def layer_of(root: Path, work: Path) -> Path:
    """The root filesystem as one gzip tar layer (cached)."""
    path = work / "bookworm-minbase.tar.gz"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    with (
        gzip.GzipFile(partial, "wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = Path(directory) / name
                arcname = str(full.relative_to(root))
                # The packages debootstrap downloaded are not part of an image's filesystem.
                if arcname.startswith("var/cache/apt/archives/") and name.endswith(".deb"):
                    continue
                tar.add(full, arcname, recursive=False)
    partial.rename(path)
    return path


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


async def run(layer: Path, reps: int, work: Path) -> dict[str, object]:
    data = work / "registry"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    # The metadata database and the blobs under `data`, as a node of this configuration keeps them.
    config = load(
        overrides={"data_dir": str(data), "account_id": ACCOUNT, "create_on_push": True},
        environ={},
    )
    store = await open_store(config)
    clock = [time.time()]
    async with store.write() as tx:
        await tx.registries.ensure_registry(config.account_id, config.region, clock[0])
    storage = build_storage(config)
    content = build_content(config, store, storage, lambda: clock[0])
    registry, uploads = content.registry, content.uploads
    vulndb = VulnerabilityDatabase(store, lambda: clock[0])
    await vulndb.import_records(OsvSource(ROOT / "tests/fixtures/osv"))
    scans = build_scanning(store, storage, registry, uploads, lambda: clock[0])
    repo = await registry.repository_for_push("bench/bookworm")

    digest = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    size = layer.stat().st_size
    await uploads.monolithic(repo, digest, _chunks(layer), size)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer.read_bytes())).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()

    async def one() -> AsyncIterator[bytes]:
        yield config

    await uploads.monolithic(repo, config_digest, one(), len(config))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest,
                    "size": size,
                }
            ],
        }
    ).encode()
    pushed = await registry.put_manifest(repo, "bookworm", manifest, None)
    manifest_id = pushed.manifest.id

    inventory_times, scan_times = [], []
    packages = findings = 0
    for _ in range(reps):
        started = time.perf_counter()
        inventory = await anyio.to_thread.run_sync(lambda: read_inventory([io.FileIO(str(layer))]))
        inventory_times.append(time.perf_counter() - started)
        packages = sum(1 for p in inventory.packages if p.kind == "deb")
        clock[0] += 25 * 3600
        async with store.write() as tx:
            await tx.scans.start_scan(manifest_id, clock[0], "bench")
        started = time.perf_counter()
        await scans.runner.run_scan({"manifest_id": manifest_id})
        scan_times.append(time.perf_counter() - started)
        async with store.read() as tx:
            scan = await tx.scans.scan_of(manifest_id)
        assert scan is not None and scan.status == COMPLETE, scan
        findings = sum(scan.severity_counts.values())
    await store.close()
    return {
        "layer_bytes": size,
        "dpkg_packages": packages,
        "findings": findings,
        "inventory_seconds": inventory_times,
        "scan_seconds": scan_times,
        "scan_median": statistics.median(scan_times),
        "inventory_median": statistics.median(inventory_times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--work-dir", default=str(ROOT / "bench/.work/scan"))
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    layer = layer_of(rootfs(work), work)
    result = anyio.run(run, layer, args.reps, work)
    median = result["scan_median"]
    assert isinstance(median, float)
    print(json.dumps(result, indent=2))
    verdict = "within" if median < TARGET_SECONDS else "OVER"
    print(
        f"scan of a bookworm minbase image ({result['dpkg_packages']} dpkg packages, "
        f"{result['layer_bytes'] / 1e6:.1f} MB gzip layer): median {median:.2f} s, "
        f"{verdict} the {TARGET_SECONDS:.0f} s target"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
