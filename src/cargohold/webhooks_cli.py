"""`cargohold events targets` and `cargohold events forget-target NAME`: where delivery to each
webhook target stands, and the removal of what a target taken out of the configuration left.

`targets` prints one line per target configured or with a cursor: the last event id it was
given, the newest event id, how many ids it is behind, and which server process delivers to it
now. `forget-target` deletes the cursor of a target no longer configured (it holds the pruning
of the outbox back); a target still configured is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import anyio

from cargohold.config import Config

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]

HEADER = ("TARGET", "URL", "CURSOR", "NEWEST", "BEHIND", "DELIVERING")


def targets_table(config: Config) -> list[tuple[str, ...]]:
    """The rows `targets` prints, header first."""
    from cargohold.app import opened_store
    from cargohold.service.event_delivery import target_states

    configured = {hook.name: hook.url for hook in config.events.webhooks}

    async def run() -> list[tuple[str, ...]]:
        async with opened_store(config) as store:
            states = await target_states(store, configured, time.time())
        rows: list[tuple[str, ...]] = [HEADER]
        for state in states:
            behind = "-" if state.cursor is None else str(state.newest - state.cursor)
            rows.append(
                (
                    state.name,
                    state.url or "(not configured)",
                    "-" if state.cursor is None else str(state.cursor),
                    str(state.newest),
                    behind,
                    state.holder or "-",
                )
            )
        return rows

    return anyio.run(run)


def forget(config: Config, name: str) -> bool:
    from cargohold.app import opened_store
    from cargohold.service.event_delivery import forget_target

    async def run() -> bool:
        async with opened_store(config) as store:
            return await forget_target(store, name)

    return anyio.run(run)


def _targets(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        rows = targets_table(load(args))
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            sys.stdout.write(line.rstrip() + "\n")
        return 0

    return command


def _forget(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = load(args)
        if any(hook.name == args.name for hook in config.events.webhooks):
            print(
                f"cargohold: webhook target {args.name} is configured; remove it from the "
                "configuration first",
                file=sys.stderr,
            )
            return 1
        if not forget(config, args.name):
            print(f"cargohold: no webhook target {args.name} has a cursor", file=sys.stderr)
            return 1
        print(f"forgot webhook target {args.name}")
        return 0

    return command


def add_parsers(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    text = "where delivery to each webhook target stands"
    targets = actions.add_parser("targets", help=text, description=text)
    common(targets)
    targets.set_defaults(func=_targets(load))
    text = "delete the delivery cursor of a webhook target removed from the configuration"
    forgetting = actions.add_parser("forget-target", help=text, description=text)
    common(forgetting)
    forgetting.add_argument("name", help="the target's name")
    forgetting.set_defaults(func=_forget(load))
