"""Users, access keys and the credentials built on them: the operations the admin CLI, the
fronts and (later) the IAM API share.

- Users and their access keys: create, list, activate, deactivate, delete.
- The registry's administrator (`admin`) and its key, made on `cargohold admin init` or first start.
- SigV4 callers: an access key id (and, for STS temporary credentials, the session token) to
  its secret and its principal (`resolve_credential`; `lookup_secret`, `principal_for_key`,
  `resolve_key` for long-term keys), for the ECR, STS and IAM fronts. Temporary credentials
  (`ASIA…`) work only with their session token and only until they expire (`ExpiredToken`).
- `/v2/` tokens: `issue_authorization_token` for GetAuthorizationToken, and
  `authenticate_password` for every `/v2/` request. A token verifies only while the access key
  that asked for it exists and is Active (or, for temporary credentials, while their session
  lasts), so deactivating or deleting the key revokes it.

Secrets: generated here, sealed with the SecretBox before they reach the database (the key id is
the sealing context, so a ciphertext moved to another row does not open), returned in plaintext
only to the caller who asked, and never put in a log line, an exception or a repr. Nothing is
cached: every lookup reads the database, so a revocation holds on every node at once.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cargohold.auth.errors import ExpiredToken, SecretBoxError, TokenExpired, TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import (
    TOKEN_LIFETIME,
    TokenClaims,
    TokenSigner,
    encode_authorization_token,
)
from cargohold.domain.identity import (
    ACCESS_KEY_PREFIX,
    ACCESS_KEY_RANDOM_LENGTH,
    ACTIVE,
    ADMINISTRATOR,
    ID_ALPHABET,
    MAX_ACCESS_KEYS_PER_USER,
    UNIQUE_ID_PREFIXES,
    UNIQUE_ID_RANDOM_LENGTH,
    USER,
    AccessKey,
    AccessKeyStatus,
    DeleteConflict,
    Entity,
    EntityAlreadyExists,
    Identity,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    Session,
    arn_name,
    is_access_key_id,
    is_session_key_id,
    user_arn,
    validate_name,
    validate_path,
    validate_status,
)
from cargohold.domain.principal import ASSUMED_ROLE_PRINCIPAL, Principal
from cargohold.ports import Changes, Metadata, Transaction
from cargohold.service.readcache import ReadCache

log = logging.getLogger(__name__)

#: The master key file in the data directory; every derived key and sealed secret hangs off it.
MASTER_KEY_FILE = "master.key"
#: The SecretBox purpose whose derived key signs `/v2/` registry tokens.
TOKEN_KEY_PURPOSE = "registry-token"  # noqa: S105 (a label, not a secret)
#: `last_used_at` is refreshed at most this often, so busy keys do not write on every call.
KEY_USE_RESOLUTION = 60.0
_SECRET_BYTES = 30  # 40 base64 characters, the length of an AWS secret access key


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    """A key just created, with its secret: the only time the secret is handed out."""

    key: AccessKey
    secret: str = ""

    def __repr__(self) -> str:
        return f"NewAccessKey(key={self.key!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class AdministratorKey:
    """The administrator's access key and secret, and whether this call created them."""

    user: Identity
    key: AccessKey
    secret: str
    created: bool

    def __repr__(self) -> str:
        return f"AdministratorKey(key={self.key.id!r}, created={self.created}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class KeyCredential:
    """What a SigV4 front needs about a usable access key: its secret and who signs with it.

    `key` is the long-term key's record; None for STS temporary credentials.
    """

    key: AccessKey | None
    principal: Principal
    secret: str

    def __repr__(self) -> str:
        return (
            f"KeyCredential(key={self.principal.access_key_id!r}, principal={self.principal.arn!r})"
        )


def random_id(prefix: str, length: int) -> str:
    """An AWS-shaped id: `prefix` and `length` characters of base32."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def new_secret() -> str:
    """A secret access key: 40 base64 characters, as AWS's."""
    return base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def session_token_context(session_id: str) -> bytes:
    """The SecretBox context a session token is sealed under (its secret's is the key id)."""
    return f"{session_id}/token".encode()


def session_principal(session: Session) -> Principal:
    """Who signs with a session's temporary credentials."""
    if session.kind == ASSUMED_ROLE_PRINCIPAL:
        return Principal(
            account_id=session.account_id,
            arn=session.arn,
            principal_id=session.user_id,
            access_key_id=session.id,
            session_token_id=session.id,
            kind=ASSUMED_ROLE_PRINCIPAL,
            identity_id=session.principal_id,
            role_arn=session.role_arn,
            session_name=session.session_name,
            expires_at=session.expires_at,
        )
    return Principal(
        account_id=session.account_id,
        arn=session.arn,
        principal_id=session.user_id,
        access_key_id=session.id,
        username=arn_name(session.arn)[1],
        session_token_id=session.id,
        expires_at=session.expires_at,
    )


def _no_such_user(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The user with name {name} cannot be found.")


def no_such_key(key_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")


class IdentityService:
    """Identities of one registry account, over the metadata store and the secret box."""

    def __init__(
        self,
        store: Metadata,
        box: SecretBox,
        tokens: TokenSigner,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> None:
        self._store = store
        self._box = box
        self._tokens = tokens
        self._clock = clock
        self.account_id = account_id
        self.region = region
        # A token is checked against its access key (or session) on every `/v2/` request; the
        # answer is kept briefly, and dropped at once when this process changes identities.
        # Authorization header -> (its principal, its expiry): a header seen before is neither
        # verified nor looked up again while nothing changed (see service.readcache).
        self._token_cache: ReadCache[str, tuple[Principal, float]] = ReadCache(store)

    @classmethod
    def from_data_dir(
        cls,
        store: Metadata,
        data_path: Path,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> IdentityService:
        """Keyed by `<data_path>/master.key`, created (0600) on first use."""
        box = SecretBox.from_key_file(data_path / MASTER_KEY_FILE)
        signer = TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE))
        return cls(store, box, signer, clock, account_id=account_id, region=region)

    def for_account(self, account_id: str) -> IdentityService:
        """The same service for another account on this server (the caller's, in IAM calls)."""
        if account_id == self.account_id:
            return self
        return IdentityService(
            self._store,
            self._box,
            self._tokens,
            self._clock,
            account_id=account_id,
            region=self.region,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, name: str, *, path: str = "/") -> Identity:
        """Raises InvalidInput for a bad name or path, EntityAlreadyExists if the name is taken."""
        validate_name(name)
        validate_path(path)
        async with self._store.write() as tx:
            await tx.registries.ensure_registry(self.account_id, self.region, self._clock())
            user = await self._insert_user(tx, name, path)
        if user is None:
            raise EntityAlreadyExists(f"User with name {name} already exists.")
        log.info("created user %s", user.arn)
        return user

    async def _insert_user(self, tx: Transaction, name: str, path: str) -> Identity | None:
        user = Identity(
            id=random_id(UNIQUE_ID_PREFIXES[USER], UNIQUE_ID_RANDOM_LENGTH),
            account_id=self.account_id,
            kind=USER,
            name=name,
            path=path,
            arn=user_arn(self.account_id, name, path),
            created_at=self._clock(),
        )
        return user if await tx.identities.insert_principal(user) else None

    async def get_user(self, name: str) -> Identity:
        async with self._store.read() as tx:
            user = await tx.identities.principal_by_name(self.account_id, USER, name)
        if user is None:
            raise _no_such_user(name)
        return user

    async def list_users(self) -> list[Identity]:
        async with self._store.read() as tx:
            return await tx.identities.list_principals(self.account_id, USER)

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        """Delete a user; with `force`, its access keys, inline policies, policy attachments
        and group memberships too (the keys' ids are returned).

        Without `force` a user that still has any of them raises DeleteConflict, as IAM does.
        The administrator cannot be deleted: `cargohold admin init --rotate` replaces its key.
        """
        if name.lower() == ADMINISTRATOR:
            raise InvalidInput(
                f"The user {ADMINISTRATOR} is the registry's administrator and cannot be deleted; "
                "`cargohold admin init --rotate` replaces its access key."
            )
        async with self._store.write() as tx:
            user = await tx.identities.principal_by_name(
                self.account_id, USER, name, for_update=True
            )
            if user is None:
                raise _no_such_user(name)
            keys = [key.id for key in await tx.identities.access_keys_of(user.id)]
            if not force:
                refuse_deletion(await tx.iam.dependents(Entity(USER, user.id)))
            await tx.identities.delete_principal(user.id)
        log.info("deleted user %s and %d access key(s)", user.arn, len(keys))
        return keys

    # -- access keys ------------------------------------------------------------------------

    async def create_access_key(self, user_name: str) -> NewAccessKey:
        """A new Active key for the user; its secret is in the result and nowhere else.

        Raises NoSuchEntity for an unknown user, LimitExceeded past two keys per user.
        """
        async with self._store.write() as tx:
            user = await tx.identities.principal_by_name(
                self.account_id, USER, user_name, for_update=True
            )
            if user is None:
                raise _no_such_user(user_name)
            created = await self._add_key(tx, user)
        log.info("created access key %s for %s", created.key.id, user.arn)
        return created

    async def _add_key(self, tx: Transaction, user: Identity) -> NewAccessKey:
        existing = await tx.identities.access_keys_of(user.id)
        if len(existing) >= MAX_ACCESS_KEYS_PER_USER:
            raise LimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
            )
        key_id = random_id(ACCESS_KEY_PREFIX, ACCESS_KEY_RANDOM_LENGTH)
        secret = new_secret()
        now = self._clock()
        await tx.identities.insert_access_key(
            key_id=key_id,
            principal_id=user.id,
            secret_ciphertext=self._box.encrypt(secret.encode("ascii"), context=key_id.encode()),
            status=ACTIVE,
            now=now,
        )
        key = AccessKey(
            id=key_id, principal_id=user.id, user_name=user.name, status=ACTIVE, created_at=now
        )
        return NewAccessKey(key, secret)

    async def list_access_keys(self, user_name: str | None = None) -> list[AccessKey]:
        """The keys of one user, or of every user of the account (by user, oldest first)."""
        async with self._store.read() as tx:
            if user_name is None:
                return await tx.identities.access_keys_in(self.account_id)
            user = await tx.identities.principal_by_name(self.account_id, USER, user_name)
            if user is None:
                raise _no_such_user(user_name)
            return await tx.identities.access_keys_of(user.id)

    async def get_access_key(self, key_id: str) -> AccessKey:
        async with self._store.read() as tx:
            key = await self._own_key(tx, key_id)
        return key

    async def _own_key(self, tx: Transaction, key_id: str) -> AccessKey:
        """The key, if it belongs to a principal of this account; else NoSuchEntity."""
        key = await tx.identities.access_key(key_id) if is_access_key_id(key_id) else None
        if key is None:
            raise no_such_key(key_id)
        owner = await tx.identities.principal(key.principal_id)
        if owner is None or owner.account_id != self.account_id:
            raise no_such_key(key_id)
        return key

    async def set_access_key_status(self, key_id: str, status: str) -> AccessKey:
        """Activate or deactivate a key. Deactivating revokes its `/v2/` tokens at once."""
        new_status: AccessKeyStatus = validate_status(status)
        async with self._store.write() as tx:
            await self._own_key(tx, key_id)
            await tx.identities.set_access_key_status(key_id, new_status)
            key = await self._own_key(tx, key_id)
        log.info("access key %s is now %s", key_id, new_status)
        return key

    async def delete_access_key(self, key_id: str) -> None:
        """Delete a key; its `/v2/` tokens stop working at once."""
        async with self._store.write() as tx:
            await self._own_key(tx, key_id)
            await tx.identities.delete_access_key(key_id)
        log.info("deleted access key %s", key_id)

    # -- the administrator ------------------------------------------------------------------

    async def ensure_administrator(self, *, rotate: bool = False) -> AdministratorKey:
        """Make sure the administrator exists with an Active key, and return that key.

        Idempotent: with an Active key in place nothing is created. `rotate` deletes the
        administrator's keys (revoking their tokens) and creates a new one. Safe to run on many
        nodes at once: the administrator's row is locked while its keys are decided.
        """
        async with self._store.write() as tx:
            await tx.registries.ensure_registry(self.account_id, self.region, self._clock())
            await self._insert_user(tx, ADMINISTRATOR, "/")
            user = await tx.identities.principal_by_name(
                self.account_id, USER, ADMINISTRATOR, for_update=True
            )
            assert user is not None, "the administrator was inserted in this transaction"
            keys = await tx.identities.access_keys_of(user.id)
            active = [key for key in keys if key.status == ACTIVE]
            if active and not rotate:
                key = active[-1]
                return AdministratorKey(user, key, await self._secret_of(tx, key.id), False)
            if rotate:
                for key in keys:
                    await tx.identities.delete_access_key(key.id)
            elif len(keys) >= MAX_ACCESS_KEYS_PER_USER:
                raise LimitExceeded(
                    f"The administrator's {len(keys)} access keys are all inactive; activate one "
                    "(`cargohold admin access-key activate KEYID`) or replace them "
                    "(`cargohold admin init --rotate`)."
                )
            created = await self._add_key(tx, user)
        log.info("created administrator access key %s for %s", created.key.id, user.arn)
        return AdministratorKey(user, created.key, created.secret, True)

    async def administrator_key(self) -> AdministratorKey:
        """The administrator's newest Active key and its secret, for scripts and CI."""
        async with self._store.read() as tx:
            user = await tx.identities.principal_by_name(self.account_id, USER, ADMINISTRATOR)
            active = [] if user is None else await tx.identities.access_keys_of(user.id)
            active = [key for key in active if key.status == ACTIVE]
            if user is None or not active:
                raise NoSuchEntity(
                    "The administrator has no active access key; run `cargohold admin init`."
                )
            key = active[-1]
            return AdministratorKey(user, key, await self._secret_of(tx, key.id), False)

    async def _secret_of(self, tx: Transaction, key_id: str) -> str:
        sealed = await tx.identities.access_key_secret(key_id)
        if sealed is None:
            raise no_such_key(key_id)
        return self._box.decrypt(sealed, context=key_id.encode()).decode("ascii")

    # -- SigV4 callers ----------------------------------------------------------------------

    async def resolve_key(self, access_key_id: str) -> KeyCredential | None:
        """An Active key's secret and principal; None for unknown, inactive or unreadable keys.

        Keys of every account on this server resolve: which account may do what is for
        `authorize` to decide, not authentication.
        """
        if not is_access_key_id(access_key_id):
            return None
        async with self._store.read() as tx:
            found = await tx.identities.access_key_credential(access_key_id)
        if found is None:
            return None
        key, identity, sealed = found
        if key.status != ACTIVE:
            return None
        try:
            secret = self._box.decrypt(sealed, context=access_key_id.encode()).decode("ascii")
        except SecretBoxError:
            log.error(
                "the secret of access key %s does not open with this node's master key "
                "(%s in the data directory); the key cannot authenticate",
                access_key_id,
                MASTER_KEY_FILE,
            )
            return None
        return KeyCredential(key, identity.as_principal(access_key_id), secret)

    async def resolve_credential(
        self, access_key_id: str, session_token: str | None
    ) -> KeyCredential | None:
        """The secret and principal of what a SigV4 request claims to be signed with.

        A long-term key (`AKIA…`) must be Active and come without a session token; temporary
        credentials (`ASIA…`) need their own session token. None for anything else (the fronts
        answer UnrecognizedClient / InvalidClientTokenId); raises ExpiredToken for temporary
        credentials past their expiry.
        """
        if not is_session_key_id(access_key_id):
            return None if session_token else await self.resolve_key(access_key_id)
        if not session_token:
            return None
        async with self._store.read() as tx:
            found = await tx.sessions.session_credential(access_key_id)
        if found is None:
            return None
        session, sealed_secret, sealed_token, _policy = found
        context = access_key_id.encode()
        try:
            token = self._box.decrypt(sealed_token, context=session_token_context(access_key_id))
            secret = self._box.decrypt(sealed_secret, context=context).decode("ascii")
        except SecretBoxError:
            log.error("session %s does not open with this node's master key", access_key_id)
            return None
        if not hmac.compare_digest(token, session_token.encode("utf-8", "surrogateescape")):
            return None
        if self._clock() >= session.expires_at:
            raise ExpiredToken()
        return KeyCredential(None, session_principal(session), secret)

    async def record_use(self, credential: KeyCredential, service: str, region: str) -> None:
        """Note a verified use of a long-term key; temporary credentials keep no such record."""
        if credential.key is not None:
            await self.record_key_use(credential, service, region)

    async def lookup_secret(self, access_key_id: str) -> str | None:
        """The secret of an Active key, for SigV4 verification; None otherwise."""
        credential = await self.resolve_key(access_key_id)
        return None if credential is None else credential.secret

    async def principal_for_key(self, access_key_id: str) -> Principal | None:
        """Who signs with an Active key; None for unknown or inactive keys."""
        credential = await self.resolve_key(access_key_id)
        return None if credential is None else credential.principal

    async def record_key_use(self, credential: KeyCredential, service: str, region: str) -> None:
        """Note a verified use of the key (IAM's GetAccessKeyLastUsed), at most once a minute."""
        now = self._clock()
        if credential.key is None:
            return
        last = credential.key.last_used_at
        if last is not None and now - last < KEY_USE_RESOLUTION:
            return
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.identities.record_key_use(credential.key.id, now, service, region)

    # -- /v2/ tokens ------------------------------------------------------------------------

    def issue_password(self, principal: Principal) -> tuple[str, float]:
        """The `/v2/` password for `principal` and its expiry (epoch seconds): what
        `aws ecr get-login-password` prints. The principal must carry the access key it
        authenticated with; the password lives as long as that key stays Active (or the
        temporary credentials' session lasts), 12 h at most."""
        if principal.access_key_id is None:
            raise ValueError("a registry token binds an access key; the principal has none")
        lifetime = TOKEN_LIFETIME
        if principal.expires_at is not None:
            left = int(principal.expires_at - self._clock())
            lifetime = max(timedelta(seconds=1), min(lifetime, timedelta(seconds=left)))
        password, expires_at = self._tokens.issue(
            account_id=principal.account_id,
            principal_arn=principal.arn,
            principal_id=principal.principal_id,
            access_key_id=principal.access_key_id,
            session_token_id=principal.session_token_id,
            now=self._now(),
            lifetime=lifetime,
        )
        return password, expires_at.timestamp()

    def issue_authorization_token(self, principal: Principal) -> tuple[str, float]:
        """GetAuthorizationToken's `authorizationToken` (base64 of `AWS:<password>`) and
        `expiresAt` (epoch seconds)."""
        password, expires_at = self.issue_password(principal)
        return encode_authorization_token(password), expires_at

    async def authenticate_password(self, password: str) -> Principal:
        """The principal a `/v2/` password was issued to, if it still holds.

        Raises TokenInvalid (malformed, tampered, or its access key deleted, deactivated or
        given to someone else) or TokenExpired.
        """
        return await self._check_claims(self._tokens.verify(password, now=self._now()))

    async def authenticate_basic(self, authorization: str) -> Principal:
        """As `authenticate_password`, from an `Authorization: Basic …` header value."""

        async def load() -> tuple[Principal, float]:
            claims = self._tokens.verify_authorization(authorization, now=self._now())
            return await self._check_claims(claims), claims.expires_at.timestamp()

        principal, expires_at = await self._token_cache.fetch(authorization, load)
        if self._clock() >= expires_at:
            raise TokenExpired()
        return principal

    async def _check_claims(self, claims: TokenClaims) -> Principal:
        if claims.session_token_id is not None:
            return await self._check_session_claims(claims)
        async with self._store.read() as tx:
            found = await tx.identities.access_key_credential(claims.access_key_id)
        if found is None:
            raise TokenInvalid()
        key, identity, _sealed = found
        if (
            key.status != ACTIVE
            or identity.id != claims.principal_id
            or identity.account_id != claims.account_id
        ):
            raise TokenInvalid()
        return identity.as_principal(claims.access_key_id)

    async def _check_session_claims(self, claims: TokenClaims) -> Principal:
        """A token asked for with temporary credentials holds while their session lasts."""
        async with self._store.read() as tx:
            session = await tx.sessions.session(claims.session_token_id or "")
        if (
            session is None
            or session.id != claims.access_key_id
            or session.user_id != claims.principal_id
            or session.account_id != claims.account_id
        ):
            raise TokenInvalid()
        if self._clock() >= session.expires_at:
            raise TokenInvalid()
        return session_principal(session)


def refuse_deletion(dependents: dict[str, int]) -> None:
    """IAM's DeleteConflict for an entity that still has keys, policies, groups or members."""
    if dependents.get("keys"):
        raise DeleteConflict("Cannot delete entity, must delete access keys first.")
    if dependents.get("inline"):
        raise DeleteConflict("Cannot delete entity, must delete policies first.")
    if dependents.get("attached"):
        raise DeleteConflict("Cannot delete entity, must detach all policies first.")
    if dependents.get("groups"):
        raise DeleteConflict("Cannot delete entity, must remove users from group first.")
    if dependents.get("members"):
        raise DeleteConflict("Cannot delete entity, must remove users from group first.")
