"""`cargohold vulndb import PATH` and `cargohold sbom export REPOSITORY REFERENCE`.

Like the admin commands they need no running server: they migrate the database if needed and
work on the same store a server uses. An import queues the re-matching of CONTINUOUS_SCAN
images; a running server's job runner carries it out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from cargohold.config import Config
from cargohold.domain.digest import is_digest
from cargohold.domain.errors import RegistryError
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.scanning.osv import OsvSource, OsvSourceError
from cargohold.service.images import ImageId
from cargohold.service.registry import RegistryService
from cargohold.service.scans import ScanService
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import ImportReport, VulnerabilityDatabase
from cargohold.storage.filesystem import FilesystemDriver

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


async def _store(config: Config) -> MetadataStore:
    config.data_path.mkdir(parents=True, exist_ok=True)
    url = config.resolved_database_url
    await anyio.to_thread.run_sync(database.upgrade, url)
    return MetadataStore.from_url(url)


def import_osv(config: Config, path: Path, *, progress: bool = True) -> ImportReport:
    """Import the OSV records under `path` (a directory, a zip, or a directory of zips)."""
    from tqdm import tqdm

    source = OsvSource(path)

    async def run() -> ImportReport:
        store = await _store(config)
        try:
            with tqdm(
                total=len(source),
                unit="record",
                desc="vulndb",
                disable=not (progress and sys.stderr.isatty()),
            ) as bar:
                return await VulnerabilityDatabase(store, time.time).import_records(
                    source, progress=bar.update
                )
        finally:
            await store.close()

    report = anyio.run(run)
    for name, reason in source.report.skipped[:20]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    return report


def export_sbom(config: Config, repository: str, reference: str) -> bytes:
    async def run() -> bytes:
        store = await _store(config)
        try:
            storage = FilesystemDriver(config.storage_path)
            registry = RegistryService(store, storage, time.time, registry_id=config.account_id)
            scans = ScanService(
                store,
                storage,
                registry,
                UploadService(store, storage, time.time),
                VulnerabilityDatabase(store, time.time),
                time.time,
            )
            image = ImageId(reference) if is_digest(reference) else ImageId(tag=reference)
            return await scans.sbom(await registry.repository(repository), image)
        finally:
            await store.close()

    return anyio.run(run)


def _import(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        try:
            report = import_osv(load(args), Path(args.path))
        except OsvSourceError as exc:
            print(f"cargohold: {exc}", file=sys.stderr)
            return 1
        print(
            f"imported {report.added} new and {report.updated} changed advisories; "
            f"{report.unchanged} unchanged, {report.invalid} invalid"
        )
        return 0

    return command


def _export(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        try:
            document = export_sbom(load(args), args.repository, args.reference)
        except RegistryError as exc:
            print(f"cargohold: {exc.message}", file=sys.stderr)
            return 1
        if args.output in (None, "-"):
            sys.stdout.buffer.write(document + b"\n")
        else:
            Path(args.output).write_bytes(document)
        return 0

    return command


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    vulndb = commands.add_parser("vulndb", help="the vulnerability database")
    vulndb_commands = vulndb.add_subparsers(dest="vulndb_command", required=True)
    imported = vulndb_commands.add_parser(
        "import", help="import OSV advisories: a directory of JSON records or osv.dev's zips"
    )
    common(imported)
    imported.add_argument("path", help="a directory of OSV *.json, an osv.dev all.zip, or both")
    imported.set_defaults(func=_import(load))

    sbom = commands.add_parser("sbom", help="software bills of materials of scanned images")
    sbom_commands = sbom.add_subparsers(dest="sbom_command", required=True)
    export = sbom_commands.add_parser("export", help="print an image's CycloneDX SBOM")
    common(export)
    export.add_argument("repository")
    export.add_argument("reference", help="a tag or a digest")
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    export.set_defaults(func=_export(load))
