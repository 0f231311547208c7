"""`cargohold events tail`: ECR's events as EventBridge would deliver them, one JSON document a
line, read straight from the outbox of the metadata database.

By default it prints what is written from now on and keeps following (`--no-follow` stops
once it has printed what is there); `--from-start` begins with the oldest event kept and
`--since-id N` after event N. Each line is the event exactly as delivery targets receive it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

import anyio
import anyio.abc

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
        async with opened_store(config) as store, anyio.create_task_group() as tasks:
            await tasks.start(_interrupts, stop, tasks.cancel_scope)
            after = await start_of(store, from_start=from_start, since_id=since_id)
            records = follow_outbox(store, after, follow=follow, interval=interval, stop=stop)
            async for record in records:
                write(record.document)
            tasks.cancel_scope.cancel()

    anyio.run(run)
    return stop.is_set()


async def _interrupts(
    stop: anyio.Event,
    hard: anyio.CancelScope,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Set `stop` on the first SIGINT and cancel `hard` on the next."""
    with anyio.open_signal_receiver(signal.SIGINT) as interrupts:
        task_status.started()
        async for _ in interrupts:
            if stop.is_set():
                hard.cancel()
            stop.set()


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
        except KeyboardInterrupt:  # before the signal receiver was up, or a second interrupt
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
