"""Who is calling: the authenticated principal every request is authorized as."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: What signs a request: an IAM user (with its long-term key, or a GetSessionToken session of
#: it), a session of an assumed role, or an account's root. The words the policy engine's
#: `Caller.kind` uses; and an AWS service acting on its own behalf (`ecs-tasks.amazonaws.com`
#: assuming a task's roles), which never signs a request.
PrincipalType = Literal["user", "assumed-role", "root", "service"]
USER_PRINCIPAL: Final = "user"
ASSUMED_ROLE_PRINCIPAL: Final = "assumed-role"
ROOT_PRINCIPAL: Final = "root"
SERVICE_PRINCIPAL: Final = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    #: The caller's ARN: `arn:aws:iam::…:user/…`, or `arn:aws:sts::…:assumed-role/ROLE/SESSION`.
    arn: str
    #: `aws:userid`: the user's unique id (`AIDA…`), or `AROA…:SESSION` for a role session.
    principal_id: str
    access_key_id: str | None = None
    username: str | None = None
    #: The STS session the temporary credentials belong to (its `ASIA…` access key id).
    session_token_id: str | None = None
    kind: PrincipalType = USER_PRINCIPAL
    #: The stored user or role whose policies apply, where it differs from `principal_id`
    #: (a role session: the role's `AROA…` id). See `holder_id`.
    identity_id: str | None = None
    #: An assumed role's ARN (with its path): what `aws:PrincipalArn` names for its sessions.
    role_arn: str | None = None
    session_name: str | None = None
    #: When temporary credentials stop working (epoch seconds); None for long-term keys.
    expires_at: float | None = None

    @property
    def holder_id(self) -> str:
        """The id of the user or role whose identity-based policies decide for this caller."""
        return self.identity_id or self.principal_id

    @property
    def temporary(self) -> bool:
        return self.session_token_id is not None


def service_principal(name: str, account_id: str) -> Principal:
    """An AWS service (`ecs-tasks.amazonaws.com`) acting for `account_id`: only resource-based
    policies that name it (a role's trust policy) allow it anything."""
    return Principal(account_id=account_id, arn=name, principal_id=name, kind=SERVICE_PRINCIPAL)


def repository_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{name}"
