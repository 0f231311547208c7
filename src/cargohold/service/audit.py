"""The audit log: every authorization decision, and every rejected sign-in, kept as a
CloudTrail-like event.

Each decision `Authorizer.authorize` makes becomes one record in the `events` table (kind
"audit"), shaped as CloudTrail shapes a management event: `eventTime`, `eventSource`,
`eventName`, `awsRegion`, `sourceIPAddress`, `userAgent`, `userIdentity` (type, ARN, account,
access key, and for a role session its issuer), `requestParameters`, `resources`, and for a
denial `errorCode` (the service's own: `AccessDeniedException` for ECR, `AccessDenied` for IAM
and STS) and `errorMessage` (AWS's "User: … is not authorized to perform: …").

Credentials presented and rejected (a wrong secret, a bad `/v2/` password, an expired token)
are recorded too, as CloudTrail records a failed call: `userIdentity` of type `Unknown` with
the access key id the request named, `errorCode` and `errorMessage` as the caller was answered.

Writing a record never fails the request it is about: a record that cannot be stored is logged
instead. `cargohold audit` reads the log back (`AuditLog.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cargohold.domain.eventids import new_id
from cargohold.domain.principal import (
    ASSUMED_ROLE_PRINCIPAL,
    ROOT_PRINCIPAL,
    SERVICE_PRINCIPAL,
    Principal,
)
from cargohold.ports import UNOBSERVED, Changes, Metadata, Observer
from cargohold.service.authz import AuthenticationFailure, AuthorizationRecord

log = logging.getLogger(__name__)

AUDIT: Final = "audit"
EVENT_VERSION: Final = "1.08"
#: The error code a denial is recorded with, by service (what each answers on the wire).
_DENIED: Final = {"ecr": "AccessDeniedException", "iam": "AccessDenied", "sts": "AccessDenied"}
#: Operations that change nothing, by the prefixes AWS names them with.
_READ_ONLY_PREFIXES: Final = ("Get", "List", "Describe", "BatchGet", "BatchCheck")


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_identity(principal: Principal) -> dict[str, Any]:
    """CloudTrail's `userIdentity` of a caller."""
    if principal.kind == SERVICE_PRINCIPAL:
        return {"type": "AWSService", "invokedBy": principal.arn}
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": principal.principal_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
    }
    if principal.kind == ROOT_PRINCIPAL:
        identity["type"] = "Root"
    elif principal.kind == ASSUMED_ROLE_PRINCIPAL:
        identity["type"] = "AssumedRole"
    if principal.access_key_id is not None:
        identity["accessKeyId"] = principal.access_key_id
    if principal.username is not None:
        identity["userName"] = principal.username
    if principal.kind == ASSUMED_ROLE_PRINCIPAL and principal.role_arn is not None:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": principal.holder_id,
                "arn": principal.role_arn,
                "accountId": principal.account_id,
                "userName": principal.role_arn.rsplit("/", 1)[-1],
            }
        }
    return identity


def audit_event(entry: AuthorizationRecord, *, event_id: str) -> dict[str, Any]:
    """The CloudTrail-like record of one decision."""
    service, _, name = entry.action.partition(":")
    request = entry.request
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(entry.principal),
        "eventTime": iso_time(entry.time),
        "eventSource": request.event_source or f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": request.region or "us-east-1",
        "sourceIPAddress": entry.source_ip,
        "userAgent": request.user_agent,
    }
    if not entry.decision.allowed:
        event["errorCode"] = _DENIED.get(service.lower(), "AccessDenied")
        event["errorMessage"] = entry.decision.message
    event["requestParameters"] = (
        dict(request.parameters) if request.parameters is not None else None
    )
    event["responseElements"] = None
    event["requestID"] = request.request_id
    event["eventID"] = event_id
    event["readOnly"] = name.startswith(_READ_ONLY_PREFIXES)
    if entry.resource_arn != "*":
        event["resources"] = [{"ARN": entry.resource_arn, "accountId": entry.resource_account}]
    event["eventType"] = "AwsApiCall"
    event["managementEvent"] = True
    event["recipientAccountId"] = entry.principal.account_id
    return event


def failure_event(entry: AuthenticationFailure, *, event_id: str) -> dict[str, Any]:
    """The CloudTrail-like record of rejected credentials."""
    request = entry.request
    identity: dict[str, Any] = {"type": "Unknown"}
    if entry.access_key_id is not None:
        identity["accessKeyId"] = entry.access_key_id
    source = request.event_source or "sts.amazonaws.com"
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso_time(entry.time),
        "eventSource": source,
        "eventName": entry.event_name,
        "awsRegion": request.region or "us-east-1",
        "sourceIPAddress": request.source_ip,
        "userAgent": request.user_agent,
        "errorCode": entry.error_code,
        "errorMessage": entry.error_message,
        "requestParameters": dict(request.parameters) if request.parameters else None,
        "responseElements": None,
        "requestID": request.request_id,
        "eventID": event_id,
        "readOnly": entry.event_name.startswith(_READ_ONLY_PREFIXES),
        "eventType": "AwsApiCall",
        "managementEvent": True,
    }


def _event_row(entry: AuthorizationRecord | AuthenticationFailure) -> dict[str, Any]:
    if isinstance(entry, AuthenticationFailure):
        failure = failure_event(entry, event_id=new_id())
        return {
            "kind": AUDIT,
            "event_time": entry.time,
            "account_id": None,
            "event_source": failure["eventSource"],
            "event_name": failure["eventName"],
            "principal_arn": None,
            "error_code": entry.error_code,
            "document": failure,
        }
    event = audit_event(entry, event_id=new_id())
    return {
        "kind": AUDIT,
        "event_time": entry.time,
        "account_id": entry.principal.account_id,
        "event_source": event["eventSource"],
        "event_name": event["eventName"],
        "principal_arn": entry.principal.arn,
        "error_code": event.get("errorCode"),
        "document": event,
    }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    time: float
    document: dict[str, Any]


#: The decisions made for the request being served, when something (the JSON request log) wants
#: to know them: one context variable read per decision, nothing more, when nothing does.
REQUEST_DECISIONS: contextvars.ContextVar[
    list[AuthorizationRecord | AuthenticationFailure] | None
] = contextvars.ContextVar("cargohold_request_decisions", default=None)


class AuditLog:
    """The `AuditSink` of the authorizer, and the reader behind `cargohold audit`."""

    def __init__(
        self, store: Metadata, *, flush_interval: float = 0.2, max_pending: int = 500
    ) -> None:
        self._store = store
        #: Told of each batch's denials and authentication failures (the metrics count them).
        self.observer: Observer = UNOBSERVED
        # Decisions are written in batches, a fraction of a second after they are made: one
        # write transaction per request would make every pull a write on the database.
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        # The records alone: their CloudTrail documents are made when the batch is written, so
        # that a request pays for an append and nothing more.
        self._pending: list[AuthorizationRecord | AuthenticationFailure] = []
        self._flusher: asyncio.Task[None] | None = None
        # Batch writes under way. They are shielded from cancellation: a batch taken from
        # `_pending` is written whole or logged as failed, never dropped by a shutdown.
        self._writes: set[asyncio.Task[None]] = set()

    async def record(self, entry: AuthorizationRecord | AuthenticationFailure) -> None:
        # Never waits for the database: a request that had to write the batch it completed
        # would wait behind every other write, which under load made some pulls take seconds.
        self._pending.append(entry)
        decisions = REQUEST_DECISIONS.get()
        if decisions is not None:
            decisions.append(entry)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        """Write batches until none is left: every `flush_interval`, or at once while a full
        batch waits."""
        while self._pending:
            if len(self._pending) < self._max_pending:
                await asyncio.sleep(self._flush_interval)
            await self.flush()

    async def flush(self) -> None:
        """Write every decision recorded so far, `max_pending` to a transaction."""
        while self._pending:
            batch = self._pending[: self._max_pending]
            del self._pending[: self._max_pending]
            if self.observer is not UNOBSERVED:
                self._observe(batch)
            write = asyncio.get_running_loop().create_task(self._write(batch))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
            await asyncio.shield(write)

    def _observe(self, batch: list[AuthorizationRecord | AuthenticationFailure]) -> None:
        denials: dict[str, int] = {}
        failures: dict[str, int] = {}
        for entry in batch:
            if isinstance(entry, AuthenticationFailure):
                failures[entry.event_name] = failures.get(entry.event_name, 0) + 1
            elif not entry.decision.allowed:
                denials[entry.action] = denials.get(entry.action, 0) + 1
        if denials or failures:
            self.observer.decisions_recorded(denials, failures)

    async def _write(self, batch: list[AuthorizationRecord | AuthenticationFailure]) -> None:
        try:
            rows = [_event_row(entry) for entry in batch]
            async with self._store.write(changes=Changes.NOTHING) as tx:
                await tx.events.insert_events(rows)
        except Exception:
            log.exception("could not record %d audit events", len(batch))

    async def close(self) -> None:
        """Stop the background batches, then write what is left, including the batch being
        written when the flusher was stopped."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._writes:
            await asyncio.gather(*self._writes)
        await self.flush()

    async def events(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        principal_arn: str | None = None,
        account_id: str | None = None,
        after_id: int | None = None,
        denied: bool = False,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[AuditEvent]:
        """Recorded decisions, oldest first; `denied`: the denials only; with `newest`, the
        `limit` newest of them."""
        await self.flush()
        async with self._store.read() as tx:
            found = await tx.events.list_events(
                AUDIT,
                since=since,
                until=until,
                principal_arn=principal_arn,
                account_id=account_id,
                after_id=after_id,
                errors_only=denied,
                limit=limit,
                newest=newest,
            )
        return [AuditEvent(e.id, e.event_time, e.document) for e in found]
