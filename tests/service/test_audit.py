"""The audit log on SQLite and PostgreSQL: records written in batches, all of them by close,
read back by time, principal and outcome, shaped as CloudTrail shapes its events."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest

from cargohold.domain.principal import Principal, service_principal
from cargohold.metadata.store import MetadataStore
from cargohold.ports import Changes
from cargohold.service.audit import AuditLog, audit_event
from cargohold.service.authz import (
    AuthenticationFailure,
    AuthorizationRecord,
    Decision,
    RequestRecord,
)
from support.waiting import wait_for_event

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"
BOB = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDABOB", "AKIABOB", "bob")
SESSION = Principal(
    ACCOUNT,
    f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci",
    "AROADEPLOYER:ci",
    "ASIASESSION",
    kind="assumed-role",
    identity_id="AROADEPLOYER",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
    session_token_id="ASIASESSION",
)


def entry(principal: Principal, action: str, when: float, *, allowed: bool) -> AuthorizationRecord:
    decision = Decision(True) if allowed else Decision(False, message="User: … is not authorized")
    return AuthorizationRecord(
        time=when,
        principal=principal,
        action=action,
        resource_arn=REPO,
        resource_account=ACCOUNT,
        decision=decision,
        source_ip="192.0.2.7",
        request=RequestRecord(parameters={"repositoryName": "app"}, request_id="r-1"),
    )


async def test_records_are_written_in_batches_and_read_back(store: MetadataStore) -> None:
    log = AuditLog(store, flush_interval=3600)
    await log.record(entry(BOB, "ecr:ListImages", 100.0, allowed=True))
    await log.record(entry(SESSION, "ecr:PutImage", 200.0, allowed=False))
    await log.record(entry(BOB, "iam:CreateUser", 300.0, allowed=False))
    reader = AuditLog(store)  # as another process reads the log
    assert await reader.events() == []  # not yet written
    await log.close()
    every = await reader.events()
    assert [e.document["eventName"] for e in every] == ["ListImages", "PutImage", "CreateUser"]
    assert [e.document["eventName"] for e in await log.events(since=150.0, until=300.0)] == [
        "PutImage"
    ]
    by_bob = await log.events(principal_arn=BOB.arn)
    assert [e.document["eventName"] for e in by_bob] == ["ListImages", "CreateUser"]
    denied = await log.events(denied=True)
    assert [e.document["errorCode"] for e in denied] == ["AccessDeniedException", "AccessDenied"]
    assert [e.document["eventName"] for e in await log.events(limit=1)] == ["ListImages"]


def test_the_record_of_a_role_sessions_denial() -> None:
    event = audit_event(entry(SESSION, "ecr:PutImage", 0.0, allowed=False), event_id="e-1")
    assert event["userIdentity"] == {
        "type": "AssumedRole",
        "principalId": "AROADEPLOYER:ci",
        "arn": SESSION.arn,
        "accountId": ACCOUNT,
        "accessKeyId": "ASIASESSION",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROADEPLOYER",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer",
                "accountId": ACCOUNT,
                "userName": "deployer",
            }
        },
    }
    assert event["eventTime"] == "1970-01-01T00:00:00Z"
    assert (event["eventSource"], event["eventName"]) == ("ecr.amazonaws.com", "PutImage")
    assert event["errorCode"] == "AccessDeniedException" and event["readOnly"] is False
    assert event["sourceIPAddress"] == "192.0.2.7" and event["requestID"] == "r-1"
    assert event["resources"] == [{"ARN": REPO, "accountId": ACCOUNT}]
    assert event["eventID"] == "e-1" and event["recipientAccountId"] == ACCOUNT


async def test_recording_never_waits_for_the_database(store: MetadataStore) -> None:
    log = AuditLog(store, flush_interval=0.01, max_pending=10)
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with store.write(changes=Changes.NOTHING) as tx:
            await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 0.0)
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    await holding.wait()
    # Many full batches while another writer holds the database: each record is an append.
    for i in range(100):
        await asyncio.wait_for(log.record(entry(BOB, "ecr:ListImages", float(i), allowed=True)), 1)
    done.set()
    await holder
    await log.close()
    assert len(await log.events()) == 100


async def test_close_writes_every_batch(store: MetadataStore) -> None:
    log = AuditLog(store, flush_interval=3600, max_pending=2)
    for i in range(5):
        await log.record(entry(BOB, "ecr:ListImages", float(i), allowed=True))
    await log.close()
    assert [e.time for e in await AuditLog(store).events()] == [0.0, 1.0, 2.0, 3.0, 4.0]


class SignallingStore:
    """The store, telling when a write transaction is asked for."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.writing = asyncio.Event()

    def read(self) -> Any:
        return self.store.read()

    def write(self, *, changes: Changes = Changes.ANYTHING) -> Any:
        self.writing.set()
        return self.store.write(changes=changes)


async def test_close_keeps_the_batch_being_written(store: MetadataStore) -> None:
    """Shutting down while a batch waits for the database writes that batch too: it has left
    the pending list already, and stopping the background flusher must not drop it."""
    spy = SignallingStore(store)
    log = AuditLog(cast(Any, spy), flush_interval=3600, max_pending=3)
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with store.write(changes=Changes.NOTHING) as tx:
            await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 0.0)
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    await holding.wait()
    for i in range(3):  # a full batch: the flusher starts writing it at once
        await log.record(entry(BOB, "ecr:ListImages", float(i), allowed=True))
    await wait_for_event(spy.writing, message="the batch's write never started")
    # close() runs first, and stops the flusher while its write waits for the lock.
    closing = asyncio.create_task(log.close())
    done.set()
    await holder
    await closing
    assert [e.time for e in await AuditLog(store).events()] == [0.0, 1.0, 2.0]


def test_a_service_principal_is_recorded_as_an_aws_service() -> None:
    ecs = service_principal("ecs-tasks.amazonaws.com", "123456789012")
    record = audit_event(entry(ecs, "sts:AssumeRole", 1.0, allowed=True), event_id="e")
    assert record["userIdentity"] == {
        "type": "AWSService",
        "invokedBy": "ecs-tasks.amazonaws.com",
    }


class Decisions:
    def __init__(self) -> None:
        self.denials: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        raise AssertionError("no jobs here")

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        raise AssertionError("no scans here")

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        for mine, theirs in ((self.denials, denials), (self.failures, failures)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count


async def test_each_batch_reports_its_denials_and_authentication_failures(
    store: MetadataStore,
) -> None:
    log = AuditLog(store, flush_interval=3600)
    decisions = Decisions()
    log.observer = decisions
    await log.record(entry(BOB, "ecr:ListImages", 100.0, allowed=True))
    await log.record(entry(BOB, "ecr:PutImage", 100.0, allowed=False))
    await log.record(entry(SESSION, "ecr:PutImage", 100.0, allowed=False))
    failure = AuthenticationFailure(
        time=100.0,
        error_code="DENIED",
        error_message="bad password",
        event_name="Authenticate",
        access_key_id=None,
        request=RequestRecord(request_id="r-2"),
    )
    await log.record(failure)
    await log.close()
    assert decisions.denials == {"ecr:PutImage": 2}
    assert decisions.failures == {"Authenticate": 1}
