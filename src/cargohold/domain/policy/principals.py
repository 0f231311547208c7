"""Principals: who a request comes from (`Caller`), and the `Principal`/`NotPrincipal` element of
resource-based policies that names who a statement is about.

What a policy can name, as AWS documents it: everyone (`"*"`, `{"AWS": "*"}`), an account (its
twelve-digit id or `arn:aws:iam::ID:root`, the same thing), an IAM user or role by ARN, an
assumed-role session by its STS ARN, and AWS services (`{"Service": "ecs-tasks.amazonaws.com"}`).
No partial wildcards: `arn:aws:iam::ID:user/*` is an invalid principal. `Federated` and
`CanonicalUser` principals are accepted, as AWS accepts them, and match no caller here.

Naming an account *delegates* to it: the account's administrator still has to allow its users and
roles through their identity-based policies, so such a grant carries less than naming the caller
itself (see `Grant`). A role ARN names every session of that role.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

CallerKind = Literal["root", "user", "role", "assumed-role", "federated-user", "service"]

_ACCOUNT = re.compile(r"\d{12}")
_NAME = r"[\w+=,.@-]+"
_AWS_PRINCIPAL = re.compile(
    rf"\d{{12}}"
    rf"|arn:aws:iam::\d{{12}}:root"
    rf"|arn:aws:iam::\d{{12}}:(?:user|role)(?:/[\x21-\x7e]*)?/{_NAME}"
    rf"|arn:aws:sts::\d{{12}}:assumed-role/{_NAME}/{_NAME}"
    rf"|arn:aws:sts::\d{{12}}:federated-user/{_NAME}",
    re.ASCII,
)
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*", re.ASCII)


class Grant(enum.IntEnum):
    """How strongly a resource-based policy names the caller."""

    NONE = 0
    #: The caller's account is named: enough across accounts (with an identity-based allow),
    #: nothing on its own within the account.
    DELEGATED = 1
    #: The caller itself (its ARN, its role, everyone, or the account root as itself).
    DIRECT = 2


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal a request is evaluated for."""

    arn: str
    account_id: str
    kind: CallerKind
    #: For an assumed-role session, the ARN of its role (with its path), when known.
    role_arn: str | None = None

    @classmethod
    def from_arn(cls, arn: str, *, role_arn: str | None = None) -> Caller:
        """The caller an IAM or STS ARN stands for; its kind follows from the ARN."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not _ACCOUNT.fullmatch(parts[4]):
            raise ValueError(f"not a principal ARN: {arn!r}")
        account, resource = parts[4], parts[5]
        kind: CallerKind
        if resource == "root":
            kind = "root"
        elif resource.startswith("user/"):
            kind = "user"
        elif resource.startswith("role/"):
            kind = "role"
        elif resource.startswith("assumed-role/"):
            kind = "assumed-role"
        elif resource.startswith("federated-user/"):
            kind = "federated-user"
        else:
            raise ValueError(f"not a principal ARN: {arn!r}")
        return cls(arn=arn, account_id=account, kind=kind, role_arn=role_arn)

    @classmethod
    def service(cls, name: str) -> Caller:
        """An AWS service acting on its own behalf, such as `ecs-tasks.amazonaws.com`."""
        return cls(arn=name, account_id="", kind="service")

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def chain(self) -> tuple[str, ...]:
        """Every identity the caller is evaluated as: itself, its role, its account."""
        if self.kind == "service":
            return (self.arn,)
        if self.kind == "root":
            return (self.root_arn,)
        if self.kind == "assumed-role":
            return (self.arn, self._role_identity(), self.root_arn)
        return (self.arn, self.root_arn)

    def _role_identity(self) -> str:
        if self.role_arn is not None:
            return self.role_arn
        role_name = self.arn.split(":", 5)[5].split("/")[1]
        return f"arn:aws:iam::{self.account_id}:role/{role_name}"


@dataclass(frozen=True, slots=True)
class Principals:
    """A `Principal` or `NotPrincipal` element, its values grouped by type."""

    everyone: bool = False
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_users: tuple[str, ...] = ()

    def arns(self) -> tuple[str, ...]:
        """The user, role and session ARNs named, for a caller to check that they exist."""
        return tuple(v for v in self.aws if v.startswith("arn:") and not v.endswith(":root"))


def is_valid_aws_principal(value: str) -> bool:
    if value == "*":
        return True
    # No partial wildcards: a principal is named whole or not at all.
    return "*" not in value and "?" not in value and _AWS_PRINCIPAL.fullmatch(value) is not None


def is_valid_service_principal(value: str) -> bool:
    return _SERVICE.fullmatch(value) is not None


def grant(principals: Principals, caller: Caller) -> Grant:
    """How strongly a `Principal` element names the caller."""
    if principals.everyone:
        return Grant.DIRECT
    if caller.kind == "service":
        named = any(s.lower() == caller.arn.lower() for s in principals.services)
        return Grant.DIRECT if named else Grant.NONE
    best = Grant.NONE
    for value in principals.aws:
        best = max(best, _aws_grant(value, caller))
    return best


def _aws_grant(value: str, caller: Caller) -> Grant:
    if value == "*":
        return Grant.DIRECT
    if _account_of(value) == caller.account_id:
        return Grant.DIRECT if caller.kind == "root" else Grant.DELEGATED
    if value == caller.arn:
        return Grant.DIRECT
    if caller.kind == "assumed-role" and _same_role(value, caller):
        return Grant.DIRECT
    return Grant.NONE


def excludes(principals: Principals, caller: Caller) -> bool:
    """Whether a `NotPrincipal` element leaves the caller out.

    AWS evaluates a caller as each identity of its chain (session, role, account): a statement
    with NotPrincipal leaves the caller out only if every one of them is listed. So a Deny that
    spares a user must list the user and its account, and one that spares a session must list
    the session, its role and its account.
    """
    if principals.everyone:
        return True
    return all(_names(principals, identity, caller) for identity in caller.chain())


def _names(principals: Principals, identity: str, caller: Caller) -> bool:
    if caller.kind == "service":
        return any(s.lower() == identity.lower() for s in principals.services)
    for value in principals.aws:
        if value in ("*", identity):
            return True
        if identity == caller.root_arn and _account_of(value) == caller.account_id:
            return True
        is_role = identity.startswith("arn:aws:iam::") and ":role/" in identity
        if is_role and _same_role(value, caller):
            return True
    return False


def _account_of(value: str) -> str | None:
    """The account an account principal names (`ID` or `arn:aws:iam::ID:root`), else None."""
    if _ACCOUNT.fullmatch(value):
        return value
    if value.startswith("arn:aws:iam::") and value.endswith(":root"):
        return value[len("arn:aws:iam::") : -len(":root")]
    return None


def _same_role(value: str, caller: Caller) -> bool:
    """Whether a role ARN in a policy is the role of an assumed-role caller."""
    if caller.kind != "assumed-role":
        return False
    if caller.role_arn is not None:
        return value == caller.role_arn
    prefix = f"arn:aws:iam::{caller.account_id}:role/"
    if not value.startswith(prefix):
        return False
    session_role = caller.arn.split(":", 5)[5].split("/")[1]
    # The session ARN drops the role's path: compare the role's name alone.
    return value.rsplit("/", 1)[1] == session_role
