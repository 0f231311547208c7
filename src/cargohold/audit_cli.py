"""`cargohold audit`: the audit log, read straight from the metadata database.

Every authorization decision the server made, and every failed authentication, oldest
first: as a table (time, event, caller, source address, outcome, resource), or with `--json`
as CloudTrail-like records, one JSON document per line. `--since`/`--until` take an ISO 8601
time (`2026-11-26T17:00:00Z`, a date) or an age (`90s`, `15m`, `2h`, `7d`); `--principal` an
ARN; `--account` an account id;
`--denied` keeps the denials; `--limit N` shows the newest N.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio

from cargohold import datastate
from cargohold.config import Config
from cargohold.service.audit import AuditEvent, AuditLog

Common = Callable[[argparse.ArgumentParser], None]
Loader = Callable[[argparse.Namespace], Config]

_AGE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, *, now: float) -> float:
    """Epoch seconds of an ISO 8601 time or date (UTC unless it says), or of an age ago."""
    age = _AGE.fullmatch(text.strip())
    if age is not None:
        return now - int(age.group(1)) * _UNITS[age.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601, such as 2026-11-26T17:00:00Z, or an age: 15m, 2h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_events(
    config: Config,
    *,
    since: float | None = None,
    until: float | None = None,
    principal: str | None = None,
    account: str | None = None,
    denied: bool = False,
    limit: int | None = None,
) -> list[AuditEvent]:
    """The recorded events, oldest first; with `limit`, the newest `limit` of them. The data
    directory and the database must exist (`datastate.MissingState`)."""
    # The composition root brings the HTTP fronts: imported when the command runs.
    from cargohold.app import opened_store

    datastate.require_existing(config, master_key=False)

    async def read() -> list[AuditEvent]:
        async with opened_store(config) as store:
            return await AuditLog(store).events(
                since=since,
                until=until,
                principal_arn=principal,
                account_id=account,
                denied=denied,
                limit=limit,
                newest=limit is not None,
            )

    return anyio.run(read)


def _account_id(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"an account id is twelve digits, not {text!r}")
    return text


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return number


def _caller(identity: dict[str, Any]) -> str:
    """The caller's ARN; for rejected credentials, the key they named (or `unknown`)."""
    if identity.get("arn"):
        return str(identity["arn"])
    key = identity.get("accessKeyId")
    return f"unknown (key {key})" if key else "unknown"


def _row(event: AuditEvent) -> list[str]:
    document = event.document
    resources = document.get("resources") or [{}]
    outcome = document.get("errorCode") or "allowed"
    return [
        str(document.get("eventTime", "")),
        f"{document.get('eventSource', '').split('.')[0]}:{document.get('eventName', '')}",
        _caller(document.get("userIdentity") or {}),
        str(document.get("sourceIPAddress") or "-"),
        outcome,
        str(resources[0].get("ARN", "*")),
    ]


def _table(rows: Sequence[Sequence[str]]) -> None:
    header = ["TIME", "EVENT", "PRINCIPAL", "SOURCE IP", "OUTCOME", "RESOURCE"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _audit(load: Loader) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        config = load(args)
        now = time.time()
        try:
            since = None if args.since is None else parse_when(args.since, now=now)
            until = None if args.until is None else parse_when(args.until, now=now)
        except argparse.ArgumentTypeError as exc:
            print(f"cargohold: {exc}", file=sys.stderr)
            return 2
        try:
            events = read_events(
                config,
                since=since,
                until=until,
                principal=args.principal,
                account=args.account,
                denied=args.denied,
                limit=args.limit,
            )
        except datastate.MissingState as exc:
            print(f"cargohold: {exc}", file=sys.stderr)
            return 1
        if args.json:
            for event in events:
                print(json.dumps(event.document, separators=(",", ":")))
        else:
            _table([_row(event) for event in events])
        return 0

    return command


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: Common, load: Loader
) -> None:
    text = "the audit log: every authorization decision and failed sign-in, oldest first"
    audit = commands.add_parser("audit", help=text, description=text)
    common(audit)
    audit.add_argument(
        "--since", help="from this time (ISO 8601) or age (15m, 2h, 7d) on (default: the first)"
    )
    audit.add_argument("--until", help="before this time (ISO 8601) or age (default: now)")
    audit.add_argument("--principal", help="only the calls of this ARN (default: everyone's)")
    audit.add_argument(
        "--account",
        type=_account_id,
        help="only the events of this account, twelve digits (default: every account's)",
    )
    audit.add_argument("--denied", action="store_true", help="only denials (default: all)")
    audit.add_argument(
        "--limit", type=_positive, help="only the newest N events (default: all of them)"
    )
    audit.add_argument(
        "--json",
        action="store_true",
        help="CloudTrail-like records, one JSON document a line (default: a table)",
    )
    audit.set_defaults(func=_audit(load))
