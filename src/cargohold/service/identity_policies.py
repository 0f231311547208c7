"""The identity-based side of authorization: which policies speak for a caller.

- A user: its inline and attached managed policies and those of its groups; a role session:
  its role's (`IamService.identity_policies`, which every evaluation shares, STS's included).
- The registry's administrator (IAM user `admin` of each account, made by `cargohold admin
  init` or `cargohold admin account create`, and never deletable) holds `AdministratorAccess`
  (every action on every resource) as an account's first administrator does on AWS. It is
  built in rather than stored (`ADMINISTRATOR_ACCESS`, added by `IamService`), so no change to
  IAM can lock an account out of its registry; an explicit Deny attached to the administrator
  still binds it.
- A role session created with session policies (AssumeRole's `Policy`, `PolicyArns`) is
  narrowed by them (`session_policies`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Final, Protocol

from cargohold.domain.identity import ADMINISTRATOR, user_arn
from cargohold.domain.policy import Policy, PolicyError, PolicyKind, parse_policy
from cargohold.domain.principal import ASSUMED_ROLE_PRINCIPAL, USER_PRINCIPAL, Principal
from cargohold.ports import Metadata
from cargohold.service.readcache import ReadCache

log = logging.getLogger(__name__)

#: AWS's AdministratorAccess statement.
ADMINISTRATOR_ACCESS: Final = parse_policy(
    json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    ),
    PolicyKind.MANAGED,
)


class PrincipalPolicies(Protocol):
    """What IAM stores for a principal (`IamService`)."""

    async def identity_policies(self, principal: Principal) -> list[Policy]: ...


def is_administrator(principal: Principal) -> bool:
    """Whether the caller is its account's administrator, with its own long-term key or a
    GetSessionToken session of it."""
    return principal.kind == USER_PRINCIPAL and principal.arn == user_arn(
        principal.account_id, ADMINISTRATOR
    )


class IdentityPolicies:
    """The `IdentityPolicySource` of `cargohold.service.authz.Authorizer`."""

    def __init__(self, store: Metadata, iam: PrincipalPolicies) -> None:
        self._store = store
        self._iam = iam
        self._identity_cache: ReadCache[Principal, Sequence[Policy]] = ReadCache(
            store, name="identity-policies"
        )
        self._session_cache: ReadCache[Principal, Sequence[Policy] | None] = ReadCache(
            store, name="session-policies"
        )

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        async def load() -> Sequence[Policy]:
            return tuple(await self._iam.identity_policies(principal))

        return await self._identity_cache.fetch(principal, load)

    async def session_policies(self, principal: Principal) -> Sequence[Policy] | None:
        return await self._session_cache.fetch(
            principal, lambda: self._read_session_policies(principal)
        )

    async def _read_session_policies(self, principal: Principal) -> Sequence[Policy] | None:
        if principal.kind != ASSUMED_ROLE_PRINCIPAL or principal.session_token_id is None:
            return None
        async with self._store.read() as tx:
            found = await tx.sessions.session_credential(principal.session_token_id)
        if found is None or not found[3]:
            return None
        policies: list[Policy] = []
        for text in json.loads(found[3]):
            try:
                policies.append(parse_policy(text, PolicyKind.INLINE))
            except PolicyError as exc:
                # Validated when the session was made; a document that no longer parses allows
                # nothing, so the session is narrowed to nothing rather than widened.
                log.error("a session policy of %s does not parse: %s", principal.arn, exc.reason)
        return policies
