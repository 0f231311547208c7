"""The request context: the condition keys a request carries, built as AWS fills them in.

- `aws:PrincipalArn` is the caller's ARN, except for an assumed-role session, where it is the
  ARN of the role (not of the session); `aws:PrincipalAccount` its account; `aws:PrincipalType`
  one of Account, User, AssumedRole, FederatedUser.
- `aws:username` exists for IAM users only; `aws:userid` is the user's unique id, the role's
  unique id and the session name (`AROA…:session`) for a session, the account id for the root.
- `aws:CurrentTime` (ISO 8601, UTC) and `aws:EpochTime` (seconds); `aws:SourceIp`;
  `aws:SecureTransport` ("true" over TLS).
- Tags: a resource's tags as `aws:ResourceTag/<key>` (and `ecr:ResourceTag/<key>` for ECR
  resources); the tags a request brings as `aws:RequestTag/<key>`, their keys as the
  multivalued `aws:TagKeys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from cargohold.domain.policy.principals import Caller

_PRINCIPAL_TYPES: Final = {
    "root": "Account",
    "user": "User",
    "role": "AssumedRole",
    "assumed-role": "AssumedRole",
    "federated-user": "FederatedUser",
}


def global_context(
    caller: Caller,
    *,
    now: float,
    userid: str | None = None,
    username: str | None = None,
    source_ip: str | None = None,
    secure_transport: bool | None = None,
) -> dict[str, str]:
    """The global condition keys that follow from who calls, when and from where."""
    context = {
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }
    if caller.kind != "service":
        context["aws:PrincipalArn"] = _principal_arn(caller)
        context["aws:PrincipalAccount"] = caller.account_id
        context["aws:PrincipalType"] = _PRINCIPAL_TYPES[caller.kind]
        user_id = caller.account_id if caller.kind == "root" else userid
        if user_id:
            context["aws:userid"] = user_id
    if username is not None and caller.kind == "user":
        context["aws:username"] = username
    if source_ip is not None:
        context["aws:SourceIp"] = source_ip
    if secure_transport is not None:
        context["aws:SecureTransport"] = "true" if secure_transport else "false"
    return context


def _principal_arn(caller: Caller) -> str:
    if caller.kind != "assumed-role":
        return caller.arn
    return caller.chain()[1]


def resource_tag_context(tags: Mapping[str, str], *, service: str = "ecr") -> dict[str, str]:
    """`aws:ResourceTag/<key>` (and `<service>:ResourceTag/<key>`) for a resource's tags."""
    context: dict[str, str] = {}
    for key, value in tags.items():
        context[f"aws:ResourceTag/{key}"] = value
        context[f"{service}:ResourceTag/{key}"] = value
    return context


def request_tag_context(tags: Mapping[str, str]) -> dict[str, str | tuple[str, ...]]:
    """`aws:RequestTag/<key>` for the tags a request sets, and their keys as `aws:TagKeys`."""
    context: dict[str, str | tuple[str, ...]] = {
        f"aws:RequestTag/{key}": value for key, value in tags.items()
    }
    context["aws:TagKeys"] = tuple(tags)
    return context
