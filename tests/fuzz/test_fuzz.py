"""Generated requests against a live server, on SQLite and on PostgreSQL: no answer is a 500 or
worse, none takes longer than the client's timeout, and the server still answers afterwards.

Every AWS operation served (ECR, ECS and CloudWatch Logs over JSON 1.1, IAM and STS over Query)
gets calls generated from
botocore's model of it, valid and not, signed by the administrator, by a user without any policy,
by nobody and with a wrong secret; `/v2/` gets random methods, paths, digests, ranges, content
types and bodies, with the registry token and without. The generation lives in
tests/support/fuzzing.py, shared with `bench/fuzz.py`, which runs the long version (docs/FUZZ.md).

`CARGOHOLD_FUZZ_SEED` picks another seed (the default is fixed, so a failure can be rerun).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.fuzzing import (
    Fuzzer,
    Known,
    Principal,
    Replenish,
    configured_server,
    fuzz_aws,
    fuzz_v2,
    prepare,
    served_operations,
    server_answers,
)
from support.server import RegistryServer

pytestmark = pytest.mark.every_database

SEED = int(os.environ.get("CARGOHOLD_FUZZ_SEED", "20261205"))
#: Generated calls per AWS operation and principal mix; `/v2/` requests.
PER_OPERATION = 6
V2_REQUESTS = 1500
#: A request the server does not answer within this long counts as a failure.
TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    server: RegistryServer
    principals: list[Principal]
    known: Known
    replenish: Replenish


@pytest.fixture
def target(db_url: str, tmp_path: Path) -> Iterator[Target]:
    server = configured_server(tmp_path / "server", db_url)
    server.start()
    try:
        principals, known = prepare(server)
        yield Target(server, principals, known, Replenish(server))
    finally:
        if server.running:
            server.stop()


def _verdict(fuzzer: Fuzzer, server: RegistryServer) -> None:
    still = server_answers(server.url)
    assert still in (200, 401), f"GET /v2/ after the run answered {still}"
    errors = fuzzer.tally.server_errors
    assert errors == 0, (
        f"seed {SEED}: {fuzzer.tally.summary()}\n--- first failure ---\n{fuzzer.tally.failures[0]}"
    )


def test_every_aws_operation_answers_below_500(target: Target, tmp_path: Path) -> None:
    operations = served_operations(str(tmp_path / "operations"))
    assert set(operations) == {"ecr", "iam", "sts", "ecs", "logs"}
    assert all(operations.values())
    with Fuzzer(target.server.url, target.principals, timeout=TIMEOUT) as fuzzer:
        fuzz_aws(
            fuzzer,
            target.known,
            operations,
            PER_OPERATION,
            seed_=SEED,
            between=target.replenish,
        )
        sent = fuzzer.tally.requests
        assert sent >= PER_OPERATION * sum(len(names) for names in operations.values())
        _verdict(fuzzer, target.server)


def test_random_v2_requests_answer_below_500(target: Target) -> None:
    with Fuzzer(target.server.url, target.principals, timeout=TIMEOUT) as fuzzer:
        fuzz_v2(
            fuzzer,
            target.known,
            V2_REQUESTS,
            seed_=SEED,
            between=target.replenish,
        )
        assert fuzzer.tally.requests >= V2_REQUESTS * 0.9
        # The token worked for some: generated requests reached content, not only refusals.
        assert fuzzer.tally.statuses[200] > 0
        _verdict(fuzzer, target.server)
