"""The long fuzz run: generated AWS calls and `/v2/` requests against a live cargohold server.

    .venv/bin/python bench/fuzz.py --requests 50000 --database sqlite
    .venv/bin/python bench/fuzz.py --requests 50000 --database postgres

Starts `cargohold serve` on a free loopback port (PostgreSQL: in a schema of its own in the local
`test` database, dropped afterwards), prepares it as the suite does (tests/support/fuzzing.py),
then sends about half the requests as calls of every AWS operation served and half to `/v2/`.
Prints the requests sent, the answers of 500 or more (and requests not answered in time) and the
seconds; writes everything, each failure with its request, to a JSON file
(`bench/results/fuzz-<database>-<time>.json` unless `--out`). Exits 1 if any answer was >= 500
or the server stopped answering. docs/FUZZ.md records the last result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from support.fuzzing import (  # noqa: E402
    Fuzzer,
    Replenish,
    configured_server,
    exceptions_in,
    fuzz_aws,
    fuzz_v2,
    prepare,
    served_operations,
    server_answers,
)

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: The result's keys that are not the tally's.
_SET_ABOVE = ("requests", "server_errors", "seconds")


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    """The database URL the server uses: None for SQLite in its data directory; a fresh
    PostgreSQL schema, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    import psycopg

    schema = f"fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out: Path = args.out or HERE / "results" / f"fuzz-{args.database}-{stamp}.json"

    with (
        tempfile.TemporaryDirectory(prefix="cargohold-fuzz-") as work,
        database(args.database) as url,
    ):
        root = Path(work)
        server = configured_server(
            root / "server", url or f"sqlite:///{root / 'server' / 'data' / 'metadata.db'}"
        )
        server.start()
        try:
            operations = served_operations(str(root / "operations"))
            principals, known = prepare(server)
            total = sum(len(names) for names in operations.values())
            per_operation = max(1, args.requests // 2 // total)
            started = time.monotonic()
            with Fuzzer(server.url, principals, timeout=args.timeout) as fuzzer:
                again = Replenish(server)
                fuzz_aws(fuzzer, known, operations, per_operation, seed_=args.seed, between=again)
                print(f"AWS: {fuzzer.tally.summary(10)}", flush=True)
                remaining = args.requests - fuzzer.tally.requests
                fuzz_v2(fuzzer, known, remaining, seed_=args.seed + 1, between=again)
                elapsed = time.monotonic() - started
                answering = server_answers(server.url)
                tally = fuzzer.tally
        finally:
            if server.running:
                server.stop()
            log = server.log_path.read_text(errors="replace")

    result = {
        "database": args.database,
        "seed": args.seed,
        "requests": tally.requests,
        "server_errors": tally.server_errors,
        "seconds": round(elapsed, 1),
        "request_seconds": round(tally.seconds, 1),
        "get_v2_after": answering,
        "server_exceptions": dict(exceptions_in(log).most_common()),
        **{
            k: v
            for k, v in tally.to_json().items()
            if k not in ("requests", "server_errors", "seconds")
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(tally.summary())
    print("server exceptions:")
    for line, count in exceptions_in(log).most_common(20):
        print(f"  {count:5d} x {line[:150]}")
    print(
        f"requests={tally.requests} 5xx={tally.server_errors} seconds={elapsed:.1f} "
        f"database={args.database} seed={args.seed} GET /v2/ after: {answering} -> {out}"
    )
    return 0 if tally.server_errors == 0 and answering in (200, 401) else 1


if __name__ == "__main__":
    sys.exit(main())
