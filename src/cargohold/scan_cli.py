"""`cargohold vulndb import PATH` and `cargohold sbom export REPOSITORY REFERENCE`.

Like the admin commands they need no running server: they migrate the database if needed and
work on the same store a server uses. An import queues the re-matching of CONTINUOUS_SCAN
images; a running server's job runner carries it out. Both build what they use through the
composition root (`cargohold.app`), imported when a command runs: it brings the HTTP fronts.
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
from cargohold.scanning.osv import OsvSource, OsvSourceError
from cargohold.service.images import ImageId
from cargohold.service.vulndb import ImportReport, VulnerabilityDatabase

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


def import_osv(config: Config, path: Path, *, progress: bool = True) -> ImportReport:
    """Import the OSV records under `path` (a directory, a zip, or a directory of zips)."""
    from tqdm import tqdm

    from cargohold.app import opened_store

    source = OsvSource(path)

    async def run() -> ImportReport:
        async with opened_store(config) as store:
            with tqdm(
                total=len(source),
                unit="record",
                desc="vulndb",
                disable=not (progress and sys.stderr.isatty()),
            ) as bar:
                return await VulnerabilityDatabase(store, time.time).import_records(
                    source, progress=bar.update
                )

    report = anyio.run(run)
    for name, reason in source.report.skipped[:20]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    return report


def export_sbom(config: Config, repository: str, reference: str) -> bytes:
    from cargohold.app import build_content, build_scanning, build_storage, opened_store

    async def run() -> bytes:
        async with opened_store(config) as store:
            storage = build_storage(config)
            services = build_content(config, store, storage, time.time)
            scans = build_scanning(store, storage, services.content, services.uploads, time.time)
            image = ImageId(reference) if is_digest(reference) else ImageId(tag=reference)
            return await scans.sbom.export(await services.content.repository(repository), image)

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
