"""What an AWS API served on `POST /` is made of, as `cargohold.http.awsfront` serves it.

An `AwsService` is botocore's model of the service (which also says its protocol, JSON 1.1 or
Query, its `X-Amz-Target` prefix or API version, and the name SigV4 scopes it to), a table of
handlers, one per operation, and optionally: the resources each call acts on (each authorized as
`<service>:<Operation>`), the condition keys its parameters bring, and its error table. The
pipeline does everything else: authentication, decoding and validation, authorization, the
answer, the audit record.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from cargohold.domain.errors import RegistryError
from cargohold.domain.principal import Principal
from cargohold.http.awspatterns import check_model
from cargohold.service.authz import RequestRecord


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of a service (`ecr`, `sts`, `iam`, …)."""
    return botocore.session.get_session().get_service_model(service)


class AwsError(Exception):
    """An error answered as-is: its code (`__type` in JSON, `Code` in XML), message, HTTP
    status, and any fields the JSON answer carries beside them."""

    def __init__(
        self, code: str, message: str, status: int = 400, fields: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields: Mapping[str, Any] = fields or {}


@dataclass(frozen=True, slots=True)
class Violation:
    """One constraint of the model a request breaks: where (`repositoryName`,
    `tags.1.member.key`), the rule as AWS words it ("Member must not be null"), and the value as
    shown (None: missing). `kind` names the constraint (`null`, `enum`, `pattern`, `length` of a
    string or blob, `size` of a list or map, `range`, `type`); `pattern` is the one broken."""

    path: str
    rule: str
    value: str | None
    kind: str
    pattern: str = ""

    def __str__(self) -> str:
        shown = "null" if self.value is None else f"'{self.value}'"
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {self.rule}"


_NAMED_VIOLATIONS = 100


class ValidationFailed(Exception):
    """A request that breaks the model's constraints, in AWS's words ("1 validation error
    detected: …"); `operation` is the operation it called."""

    def __init__(self, violations: Sequence[Violation], operation: str = "") -> None:
        count = len(violations)
        noun = "error" if count == 1 else "errors"
        # The count is of all; the text names the first ones (a list of a million bad items
        # would otherwise make a message of hundreds of megabytes).
        problems = "; ".join(str(v) for v in violations[:_NAMED_VIOLATIONS])
        super().__init__(f"{count} validation {noun} detected: {problems}")
        self.violations = tuple(violations)
        self.operation = operation
        self.message = str(self)


@dataclass(frozen=True, slots=True)
class AwsCall:
    """One authenticated, validated call, as handlers see it."""

    #: The service's name as actions and SigV4 scopes spell it: `ecr`, `sts`, `iam`.
    service: str
    operation: str
    principal: Principal
    params: dict[str, Any]
    request_id: str
    region: str
    #: What the audit log keeps of the request (built once, by `awsrequest.request_record`).
    record: RequestRecord
    #: The request's condition keys, as authorization sees them.
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        """The operation (the Query protocol's `Action`)."""
        return self.operation

    @property
    def account(self) -> str:
        """The caller's account."""
        return self.principal.account_id

    @property
    def registry_id(self) -> str:
        """The account a call addresses: its `registryId`, else the caller's own."""
        return str(self.params.get("registryId") or self.principal.account_id)

    @property
    def source_ip(self) -> str | None:
        return self.record.source_ip


Handler = Callable[[AwsCall], Awaitable[dict[str, Any]]]
#: The resources a call acts on, as IAM policies name them; each must be allowed. None at all
#: for calls no policy governs at the front.
Resources = Callable[[AwsCall], Awaitable[Sequence[str]]]
#: The condition keys an operation's parameters bring (`aws:RequestTag/…`, `sts:ExternalId`).
ContextOf = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]
#: A domain error as the service answers it.
ErrorTable = Callable[[RegistryError, ServiceModel], AwsError]
#: A request that breaks the model's constraints, as the service answers it.
InvalidAnswer = Callable[[ValidationFailed, ServiceModel], AwsError]


async def account_wide(call: AwsCall) -> Sequence[str]:
    """The default: every call acts on "*" (account-level operations)."""
    return ("*",)


async def ungoverned(call: AwsCall) -> Sequence[str]:
    """For services whose calls no policy governs at the front."""
    return ()


def no_context(operation: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    return {}


def as_given(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return params


@dataclass(frozen=True)
class AwsService:
    """One AWS API: botocore's model name and a table of handlers, and what differs from the
    defaults."""

    model_name: str
    handlers: Mapping[str, Handler]
    resources: Resources = account_wide
    context: ContextOf = no_context
    #: None: the protocol's own table.
    errors: ErrorTable | None = None
    #: None: the protocol's own answer to a constraint violation.
    invalid: InvalidAnswer | None = None
    #: Refuses callers the service does not serve at all (raise an `AuthError`).
    check_caller: Callable[[AwsCall], None] | None = None
    #: The request parameters as the audit log keeps them.
    recorded: Callable[[Mapping[str, Any]], Mapping[str, Any]] = as_given
    #: Condition keys that need the caller's account or the region (an ARN the call names
    #: by a short name), added to `context`'s.
    call_context: Callable[[AwsCall], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        # Every pattern the model validates with is decided in linear time, or the service is
        # not served at all (`cargohold.http.awspatterns`).
        check_model(self.model)

    @property
    def model(self) -> ServiceModel:
        return service_model(self.model_name)

    @property
    def name(self) -> str:
        """`ecr`, `sts`, `iam`: the SigV4 scope's service and the actions' prefix."""
        name: str = self.model.signing_name
        return name

    @property
    def protocol(self) -> str:
        """`json` or `query`, as botocore names them."""
        protocol: str = self.model.protocol
        return protocol

    @property
    def event_source(self) -> str:
        return f"{self.name}.amazonaws.com"

    @property
    def operations(self) -> frozenset[str]:
        """The operations served; the model's others answer as unsupported."""
        return frozenset(self.handlers)
