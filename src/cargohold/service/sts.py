"""STS sessions: temporary credentials from GetSessionToken and AssumeRole, and who is calling.

A session is an access key id (`ASIA…`), a secret and a session token, valid until its
expiration. Both secrets are generated here, sealed with the SecretBox (context: the key id)
before they reach the database, and handed out only in the answer to the call that made them.
`Authentication.resolve_credential` turns them back into a principal for SigV4, and refuses
them once expired.

AssumeRole is decided by the one authorizer every call goes through (`Authorizer.authorize`):
the request `sts:AssumeRole` on the role, with the role's trust policy as the resource-based
policy (`ResourcePolicies`) and the caller's identity-based policies beside it, and the keys STS
defines (`sts:RoleSessionName`, `sts:ExternalId`) in its context. So a role is assumed only by
whom its trust policy names, and, where it names only an account, whom that account allows; and
the decision is audited, and cached, like every other.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cargohold.auth.secretbox import SecretBox
from cargohold.domain.errors import AccessDenied
from cargohold.domain.identity import (
    DEFAULT_ROLE_SESSION,
    DEFAULT_SESSION_TOKEN,
    ROLE_CHAINING_LIMIT,
    SESSION_KEY_PREFIX,
    InvalidInput,
    Role,
    Session,
    assumed_role_arn,
)
from cargohold.domain.policy import Context, PolicyKind
from cargohold.domain.policy.kinds import policy_size
from cargohold.domain.principal import ASSUMED_ROLE_PRINCIPAL, USER_PRINCIPAL, Principal
from cargohold.ports import Metadata
from cargohold.service.authz import Authorizer, RequestRecord, denial_message
from cargohold.service.credentials import new_secret, random_id, session_token_context
from cargohold.service.iam import IamService, parse_document

log = logging.getLogger(__name__)

ASSUME_ROLE = "sts:AssumeRole"
#: Session policies (AssumeRole's Policy) may hold 2,048 characters, as AWS packs them.
SESSION_POLICY_SIZE = 2048
#: Expired sessions are deleted this long after their expiry, when new ones are made.
_SESSION_RETENTION = 86400.0
_TOKEN_BYTES = 96
_ACCESS_KEY_RANDOM_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, <secrets hidden>)"


@dataclass(frozen=True, slots=True)
class AssumedRole:
    credentials: Credentials
    #: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
    arn: str
    #: `AROA…:SESSION`
    assumed_role_id: str
    #: How full the session policies are, in percent of what AWS allows; None without any.
    packed_policy_size: int | None
    source_identity: str | None = None


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    user_id: str
    account: str
    arn: str


class StsService:
    def __init__(
        self,
        store: Metadata,
        box: SecretBox,
        iam: IamService,
        clock: Callable[[], float],
        *,
        authorizer: Authorizer,
    ) -> None:
        self._store = store
        self._box = box
        self._iam = iam
        self._clock = clock
        self._authorizer = authorizer

    @staticmethod
    def caller_identity(principal: Principal) -> CallerIdentity:
        """GetCallerIdentity: needs no permission, and cannot be denied."""
        return CallerIdentity(principal.principal_id, principal.account_id, principal.arn)

    async def get_session_token(
        self, principal: Principal, duration_seconds: int | None = None
    ) -> Credentials:
        """Temporary credentials of the calling user, with the user's permissions.

        Needs no permission. Refused (AccessDenied) when called with temporary credentials.
        """
        if principal.temporary or principal.kind != USER_PRINCIPAL:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        now = self._clock()
        session = Session(
            id=_session_key_id(),
            principal_id=principal.holder_id,
            account_id=principal.account_id,
            kind=USER_PRINCIPAL,
            arn=principal.arn,
            user_id=principal.principal_id,
            created_at=now,
            expires_at=now + (duration_seconds or DEFAULT_SESSION_TOKEN),
            source_arn=principal.arn,
        )
        credentials = await self._store_session(session, None)
        log.info("issued session %s to %s", session.id, principal.arn)
        return credentials

    async def assume_role(
        self,
        principal: Principal,
        role_arn: str,
        session_name: str,
        *,
        duration_seconds: int | None = None,
        policy: str | None = None,
        policy_arns: tuple[str, ...] = (),
        context: Context | None = None,
        external_id: str | None = None,
        source_identity: str | None = None,
        record: RequestRecord | None = None,
    ) -> AssumedRole:
        """Temporary credentials of a session of the role, if its trust policy lets the caller.

        `context`: the request's condition keys; `record`: the request as the audit log keeps
        it. Raises AccessDenied (the role does not exist, or its trust policy does not name the
        caller), InvalidInput (a duration past the role's limit, or past one hour when a role
        session assumes a role), PolicyError (a malformed session policy).
        """
        await self._may_assume(principal, role_arn, session_name, context, external_id, record)
        documents = self._session_policies(policy)
        role = await self._iam.role_by_arn(role_arn)
        if role is None:
            raise AccessDenied(denial_message(principal, ASSUME_ROLE, role_arn))
        documents += await self._managed_session_policies(policy_arns)
        duration = self._duration(principal, role, duration_seconds)
        now = self._clock()
        session = Session(
            id=_session_key_id(),
            principal_id=role.id,
            account_id=role.account_id,
            kind=ASSUMED_ROLE_PRINCIPAL,
            arn=assumed_role_arn(role.account_id, role.name, session_name),
            user_id=f"{role.id}:{session_name}",
            created_at=now,
            expires_at=now + duration,
            session_name=session_name,
            role_arn=role.arn,
            source_arn=principal.arn,
            chained=principal.kind == ASSUMED_ROLE_PRINCIPAL,
        )
        credentials = await self._store_session(
            session, json.dumps(documents) if documents else None
        )
        log.info("%s assumed %s as session %s", principal.arn, role.arn, session.id)
        packed = None
        if policy is not None:
            packed = max(1, round(100 * policy_size(policy) / SESSION_POLICY_SIZE))
        return AssumedRole(credentials, session.arn, session.user_id, packed, source_identity)

    # -- the decision -----------------------------------------------------------------------

    async def _may_assume(
        self,
        principal: Principal,
        role_arn: str,
        session_name: str,
        context: Context | None,
        external_id: str | None,
        record: RequestRecord | None,
    ) -> None:
        """The authorizer's decision on `sts:AssumeRole`: the role's trust policy, as the
        resource-based policy, decides with the caller's identity-based policies."""
        keys: dict[str, object] = dict(context or {})
        keys["sts:RoleSessionName"] = session_name
        if external_id is not None:
            keys["sts:ExternalId"] = external_id
        decision = await self._authorizer.authorize(
            principal, ASSUME_ROLE, role_arn, keys, record=record
        )
        if not decision.allowed:
            raise AccessDenied(decision.message)

    @staticmethod
    def _duration(principal: Principal, role: Role, asked: int | None) -> int:
        if principal.kind == ASSUMED_ROLE_PRINCIPAL:
            if asked is not None and asked > ROLE_CHAINING_LIMIT:
                raise InvalidInput(
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                    "assumed by role chaining."
                )
            return min(asked or DEFAULT_ROLE_SESSION, ROLE_CHAINING_LIMIT)
        if asked is not None and asked > role.max_session_duration:
            raise InvalidInput(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        return asked or DEFAULT_ROLE_SESSION

    @staticmethod
    def _session_policies(policy: str | None) -> list[str]:
        if policy is None:
            return []
        parse_document(policy, PolicyKind.INLINE)
        return [policy]

    async def _managed_session_policies(self, arns: tuple[str, ...]) -> list[str]:
        documents = []
        async with self._store.read() as tx:
            for arn in arns:
                found = await tx.iam_policies.policy_by_arn(arn)
                version = (
                    None
                    if found is None
                    else await tx.iam_policies.version_document(found.id, found.default_version)
                )
                if version is None:
                    raise InvalidInput(f"Policy {arn} does not exist or is not attachable.")
                documents.append(version[0])
        return documents

    # -- storage ----------------------------------------------------------------------------

    async def _store_session(self, session: Session, session_policy: str | None) -> Credentials:
        secret = new_secret()
        token = base64.b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode("ascii")
        async with self._store.write() as tx:
            await tx.sessions.delete_expired_sessions(session.created_at - _SESSION_RETENTION)
            await tx.sessions.insert_session(
                session,
                secret_ciphertext=self._box.encrypt(
                    secret.encode("ascii"), context=session.id.encode()
                ),
                token_ciphertext=self._box.encrypt(
                    token.encode("ascii"), context=session_token_context(session.id)
                ),
                session_policy=session_policy,
            )
        return Credentials(session.id, secret, token, session.expires_at)


def _session_key_id() -> str:
    return random_id(SESSION_KEY_PREFIX, _ACCESS_KEY_RANDOM_LENGTH)
