"""What the identity services share: the master key's file and purposes, the records they hand
out (a new key with its secret, the administrator's key, a SigV4 credential), AWS-shaped ids and
secrets, the principal of a session's temporary credentials, and IAM's not-found and
delete-conflict errors.

Secrets in these records never appear in a repr.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cargohold.domain.identity import (
    ID_ALPHABET,
    AccessKey,
    DeleteConflict,
    Identity,
    NoSuchEntity,
    Session,
    arn_name,
)
from cargohold.domain.principal import ASSUMED_ROLE_PRINCIPAL, Principal

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


def no_such_user(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The user with name {name} cannot be found.")


def no_such_key(key_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")


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
