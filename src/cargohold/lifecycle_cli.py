"""`cargohold lifecycle run [REPOSITORY]`: run lifecycle policies now, straight on the
metadata database, and print what each expired and transitioned to archive.

Without a repository, every repository with a policy is run. The run is the one the scheduled
job makes (`LifecycleService.run`): its actions land in the audit log as `PolicyExecutionEvent`
records, and a server sharing the database serves the result on its next request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import anyio

from cargohold.config import Config
from cargohold.domain.errors import LifecyclePolicyNotFound, NameUnknown
from cargohold.service.lifecycle import LifecycleService, RunResult

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


def run_policies(config: Config, repository: str | None) -> list[RunResult]:
    """Run the policy of `repository` (all policies when None); LifecyclePolicyNotFound or
    NameUnknown when the repository has none or does not exist."""
    # The composition root brings the HTTP fronts: imported when the command runs.
    from cargohold.app import opened_store
    from cargohold.service.content import repository_not_found

    async def run() -> list[RunResult]:
        async with opened_store(config) as store:
            lifecycle = LifecycleService(
                store,
                time.time,
                region=config.region,
                interval=config.lifecycle_interval_seconds,
            )
            if repository is None:
                targets = await lifecycle.repositories_with_policies()
            else:
                async with store.read() as tx:
                    found = await tx.repositories.get_repository(config.account_id, repository)
                if found is None:
                    raise repository_not_found(repository, config.account_id)
                targets = [found]
            return [await lifecycle.run(target) for target in targets]

    return anyio.run(run)


def _print(results: list[RunResult], as_json: bool) -> None:
    expired = archived = 0
    for result in results:
        for action in result.actions:
            manifest = action.manifest
            verb = "expired" if action.action == "expire" else "archived"
            if action.action == "expire":
                expired += 1
            else:
                archived += 1
            if as_json:
                record = {
                    "repositoryName": result.repository.name,
                    "imageDigest": manifest.digest,
                    "imageTags": list(manifest.tags),
                    "action": action.action,
                    "appliedRulePriority": action.rule.priority,
                }
                print(json.dumps(record, separators=(",", ":")))
            else:
                tags = ",".join(manifest.tags) or "<untagged>"
                print(
                    f"{verb}\t{result.repository.name}\t{manifest.digest}\t{tags}"
                    f"\trule {action.rule.priority}"
                )
    if not as_json:
        print(
            f"{len(results)} repositories evaluated: {expired} images expired, "
            f"{archived} transitioned to archive"
        )


def _run(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = load(args)
        try:
            results = run_policies(config, args.repository)
        except (NameUnknown, LifecyclePolicyNotFound) as exc:
            print(f"cargohold: {exc.message}", file=sys.stderr)
            return 1
        _print(results, args.json)
        return 0

    return command


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    lifecycle = commands.add_parser("lifecycle", help="lifecycle policies")
    actions = lifecycle.add_subparsers(dest="lifecycle_command", required=True)
    run = actions.add_parser(
        "run", help="run lifecycle policies now and print what they expired and archived"
    )
    common(run)
    run.add_argument("repository", nargs="?", help="only this repository (default: all)")
    run.add_argument(
        "--json",
        action="store_true",
        help="one JSON document per action (default: a line of text each)",
    )
    run.set_defaults(func=_run(load))
