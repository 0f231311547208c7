"""`cargohold events tail`: ECR's events as EventBridge would deliver them, one JSON document a
line, read straight from the outbox of the metadata database.

By default it prints what is written from now on and keeps following (`--no-follow` stops
once it has printed what is there); `--from-start` begins with the oldest event kept and
`--since-id N` after event N. Each line is the event exactly as delivery targets receive it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio

from cargohold import webhooks_cli
from cargohold.config import Config

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]


def tail(
    config: Config,
    *,
    from_start: bool,
    since_id: int | None,
    follow: bool,
    interval: float,
    write: Callable[[str], None],
) -> bool:
    """Write each event's JSON text with `write`, from where the options say; whether an
    interrupt (SIGINT, Ctrl-C) ended it.

    The first interrupt lets the read under way finish and closes the database, so that no
    query is cut off halfway; a second one stops at once."""
    # The composition root brings the HTTP fronts: imported when the command runs.
    from cargohold.app import opened_store
    from cargohold.service.events import follow_outbox, start_of

    stop = anyio.Event()

    async def run() -> None:
        async with opened_store(config) as store:
            with _interrupts(stop):
                after = await start_of(store, from_start=from_start, since_id=since_id)
                records = follow_outbox(store, after, follow=follow, interval=interval, stop=stop)
                async for record in records:
                    write(record.document)

    anyio.run(run)
    return stop.is_set()


@contextmanager
def _interrupts(stop: anyio.Event) -> Iterator[None]:
    """While open, in an event loop: the first SIGINT sets `stop`; the next one raises
    KeyboardInterrupt at once, as Python does by default."""
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"not an event id (0 or more): {text!r}")
    return number


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _print_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _tail(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = load(args)
        try:
            interrupted = tail(
                config,
                from_start=args.from_start,
                since_id=args.since_id,
                follow=args.follow,
                interval=args.interval,
                write=_print_line,
            )
        except KeyboardInterrupt:  # before the handler was set, or a second interrupt
            return 130
        return 130 if interrupted else 0

    return command


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    events = commands.add_parser("events", help="the ECR events the registry sends")
    actions = events.add_subparsers(dest="events_command", required=True)
    text = "print the events, one JSON document a line, and follow new ones"
    tail_parser = actions.add_parser("tail", help=text, description=text)
    common(tail_parser)
    start = tail_parser.add_mutually_exclusive_group()
    start.add_argument(
        "--from-start",
        action="store_true",
        help="begin with the oldest event kept (default: only events written from now on)",
    )
    start.add_argument(
        "--since-id",
        type=_count,
        metavar="N",
        help="begin after the event with id N (default: only events written from now on)",
    )
    tail_parser.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep printing events as they are written; --no-follow stops once the events "
        "there are printed (default: follow)",
    )
    tail_parser.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for new events while following (default: 1)",
    )
    tail_parser.set_defaults(func=_tail(load))
    webhooks_cli.add_parsers(actions, common, load)
