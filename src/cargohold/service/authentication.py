"""Authenticating callers: SigV4 access keys and session tokens, and `/v2/` registry tokens.

- SigV4 callers: an access key id (and, for STS temporary credentials, the session token) to
  its secret and its principal (`resolve_credential`; `lookup_secret`, `principal_for_key`,
  `resolve_key` for long-term keys), for the ECR, STS and IAM fronts. Temporary credentials
  (`ASIA…`) work only with their session token and only until they expire (`ExpiredToken`).
  A verified use of a long-term key is recorded (IAM's GetAccessKeyLastUsed).
- `/v2/` tokens: `issue_authorization_token` for GetAuthorizationToken, and
  `authenticate_password` for every `/v2/` request. A token verifies only while the access key
  that asked for it exists and is Active (or, for temporary credentials, while their session
  lasts), so deactivating or deleting the key revokes it.

Keys of every account on this server resolve: which account may do what is for `authorize` to
decide. Secrets are returned only to the caller who asked, and never put in a log line, an
exception or a repr. Every SigV4 key lookup reads the database; a `/v2/` token's check is kept
briefly (see `cargohold.service.readcache`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cargohold.auth.errors import ExpiredToken, SecretBoxError, TokenExpired, TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import (
    TOKEN_LIFETIME,
    TokenClaims,
    TokenSigner,
    encode_authorization_token,
)
from cargohold.domain.identity import ACTIVE, is_access_key_id, is_session_key_id
from cargohold.domain.principal import Principal
from cargohold.ports import Changes, Metadata
from cargohold.service.credentials import (
    KEY_USE_RESOLUTION,
    MASTER_KEY_FILE,
    KeyCredential,
    session_principal,
    session_token_context,
)
from cargohold.service.readcache import ReadCache

log = logging.getLogger(__name__)


class Authentication:
    """Credentials and tokens of every account on this server, over the metadata store, the
    secret box and the `/v2/` token signer."""

    def __init__(
        self,
        store: Metadata,
        box: SecretBox,
        tokens: TokenSigner,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._box = box
        self._tokens = tokens
        self._clock = clock
        # A token is checked against its access key (or session) on every `/v2/` request; the
        # answer is kept briefly, and dropped at once when any process changes identities.
        # Authorization header -> (its principal, its expiry): a header seen before is neither
        # verified nor looked up again while nothing changed (see service.readcache).
        self._token_cache: ReadCache[str, tuple[Principal, float]] = ReadCache(store, name="tokens")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

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
