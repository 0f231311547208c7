"""`cargohold scrub [REPOSITORY] [--repair]`: re-hash stored blobs, streaming, with a progress
bar on stderr; print each missing or corrupted blob with the images it breaks, and exit 1 when
anything is damaged (service/scrub.py quarantines it: its GET answers BLOB_UNKNOWN)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import anyio

from cargohold.config import Config
from cargohold.domain.errors import NameUnknown
from cargohold.service.scrub import ScrubReport

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


def scrub(config: Config, repository: str | None, *, repair: bool) -> ScrubReport:
    # The composition root brings the HTTP fronts: imported when the command runs.
    from tqdm import tqdm

    from cargohold.app import build_scrubber, build_storage, opened_store
    from cargohold.service.content import repository_not_found

    async def run() -> ScrubReport:
        async with opened_store(config) as store:
            scrubber = build_scrubber(config, store, build_storage(config))
            target = None
            if repository is not None:
                async with store.read() as tx:
                    target = await tx.repositories.get_repository(config.account_id, repository)
                if target is None:
                    raise repository_not_found(repository, config.account_id)
            with tqdm(unit="B", unit_scale=True, file=sys.stderr, desc="scrub") as bar:
                return await scrubber.scrub(target, repair=repair, progress=bar.update)

    return anyio.run(run)


def _scrub(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        try:
            report = scrub(load(args), args.repository, repair=args.repair)
        except NameUnknown as exc:
            print(f"cargohold: {exc.message}", file=sys.stderr)
            return 2
        for damage in report.damaged:
            images = ", ".join(f"{name}@{digest}" for name, digest in damage.images) or "none"
            print(f"{damage.kind}\t{damage.digest}\tquarantined\timages: {images}")
            if damage.note:
                print(f"\trepair: {damage.note}")
        print(
            f"{report.checked} blobs ({report.bytes} bytes) checked: {len(report.damaged)} damaged"
        )
        return 1 if report.damaged else 0

    return command


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    parser = commands.add_parser(
        "scrub", help="re-hash stored blobs; quarantine and report missing or corrupted ones"
    )
    common(parser)
    parser.add_argument("repository", nargs="?", help="only the blobs of this repository")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="restore damaged blobs from a replica where one exists (default: report only)",
    )
    parser.set_defaults(func=_scrub(load))
