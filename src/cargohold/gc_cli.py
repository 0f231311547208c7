"""`cargohold gc [--dry-run] [--grace SECONDS]`: collect garbage now, straight on the metadata
database and the blob storage, and print what was (or would be) removed and the bytes
reclaimed.

It is the collection the server runs every `gc_interval_seconds`, safe while pushes go on
(service/gc.py). `--grace` overrides `gc_grace_seconds`; 0 collects every unreferenced blob at
once, which is for a store nobody is pushing to.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import anyio

from cargohold.config import Config
from cargohold.service.gc import GcResult

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


def collect(config: Config, *, grace: float | None, dry_run: bool) -> GcResult:
    # The composition root brings the HTTP fronts: imported when the command runs.
    from cargohold.app import build_collector, build_storage, opened_store

    async def run() -> GcResult:
        async with opened_store(config) as store:
            collector = build_collector(config, store, build_storage(config), time.time)
            return await collector.collect(grace=grace, dry_run=dry_run)

    return anyio.run(run)


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("the grace period is 0 or more seconds")
    return value


def _gc(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        result = collect(load(args), grace=args.grace, dry_run=args.dry_run)
        verb = "would remove" if result.dry_run else "removed"
        for digest, size in result.removed:
            print(f"{verb}\tblob\t{digest}\t{size}")
        for key, size in result.orphans:
            print(f"{verb}\tunrecorded\t{key}\t{size}")
        summary = (
            f"{len(result.removed)} blobs and {len(result.orphans)} unrecorded objects, "
            f"{result.reclaimed} bytes"
        )
        print(f"{'would reclaim' if result.dry_run else 'reclaimed'}: {summary}")
        return 0

    return command


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    gc = commands.add_parser(
        "gc", help="remove the blobs no manifest references (safe while pushes go on)"
    )
    common(gc)
    gc.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be removed, and remove nothing (default: remove)",
    )
    gc.add_argument(
        "--grace",
        type=_grace,
        help="seconds a blob must have been unused (default: gc_grace_seconds)",
    )
    gc.set_defaults(func=_gc(load))
