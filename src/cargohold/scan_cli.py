"""`cargohold vulndb import PATH` and `cargohold sbom export REPOSITORY REFERENCE`.

Like the admin commands they need no running server: they migrate the database if needed and
work on the same store a server uses. An import queues the re-matching of CONTINUOUS_SCAN
images; a running server's job runner carries it out. Both build what they use through the
composition root (`cargohold.app`), imported when a command runs: it brings the HTTP fronts.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio

from cargohold import datastate
from cargohold.commandline import subcommands
from cargohold.config import Config
from cargohold.domain.digest import is_digest
from cargohold.domain.errors import RegistryError
from cargohold.scanning.osv import OsvSource, OsvSourceError
from cargohold.service.images import ImageId
from cargohold.service.vulndb import ImportReport, VulnerabilityDatabase

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


#: What `vulndb import` reads, for its messages and its help.
SOURCES = (
    "a directory of OSV JSON records (any depth), an osv.dev zip "
    "(https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip), "
    "a directory of such zips, or one record"
)


def import_osv(config: Config, path: Path, *, progress: bool = True) -> ImportReport:
    """Import the OSV records under `path` (a directory, a zip, or a directory of zips).
    Files that are not OSV records count as invalid; a source with no records at all is an
    OsvSourceError."""
    from tqdm import tqdm

    from cargohold.app import opened_store

    source = OsvSource(path)
    if len(source) == 0:
        raise OsvSourceError(f"{path} holds no OSV records: expected {SOURCES}")
    datastate.require_existing(config, master_key=False)

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
    report.invalid += len(source.report.skipped)
    for name, reason in source.report.skipped[:20]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    return report


def export_sbom(
    config: Config, repository: str, reference: str, *, account: str | None = None
) -> bytes:
    """The CycloneDX SBOM of an image of `repository` in `account` (default: the configured
    account), as its last scan recorded it."""
    from cargohold.app import build_content, build_scanning, build_storage, opened_store

    datastate.require_existing(config, master_key=False)
    if account is not None:
        config = replace(config, account_id=account)

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
        except (OsvSourceError, datastate.MissingState) as exc:
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
            document = export_sbom(
                load(args), args.repository, args.reference, account=args.account
            )
        except RegistryError as exc:
            print(f"cargohold: {exc.message}", file=sys.stderr)
            return 1
        except datastate.MissingState as exc:
            print(f"cargohold: {exc}", file=sys.stderr)
            return 1
        if args.output in (None, "-"):
            sys.stdout.buffer.write(document + b"\n")
        else:
            Path(args.output).write_bytes(document)
        return 0

    return command


def _account_id(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"an account id is twelve digits, not {text!r}")
    return text


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    text = "the vulnerability database scans match against (OSV advisories)"
    vulndb = commands.add_parser("vulndb", help=text, description=text)
    vulndb_commands = subcommands(vulndb, "vulndb_command")
    text = "import OSV advisories; only what changed is stored"
    imported = vulndb_commands.add_parser("import", help=text, description=text)
    common(imported)
    imported.add_argument("path", metavar="PATH", help=SOURCES)
    imported.set_defaults(func=_import(load))

    text = "software bills of materials of scanned images"
    sbom = commands.add_parser("sbom", help=text, description=text)
    sbom_commands = subcommands(sbom, "sbom_command")
    text = "print the CycloneDX SBOM an image's last scan recorded"
    export = sbom_commands.add_parser("export", help=text, description=text)
    common(export)
    export.add_argument("repository", metavar="REPOSITORY", help="the repository's name")
    export.add_argument("reference", metavar="REFERENCE", help="a tag or a digest")
    export.add_argument(
        "--account",
        type=_account_id,
        help="the account whose repository it is (default: account_id of the configuration, "
        "123456789012)",
    )
    export.add_argument(
        "-o", "--output", help="write to this file (default: standard output, also for -)"
    )
    export.set_defaults(func=_export(load))
