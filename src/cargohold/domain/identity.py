"""IAM identities as the registry stores them: principals (users; roles and the account root
later), their access keys, the formats AWS gives their ids and ARNs, and IAM's naming rules.

Pure values and rules; generating random ids and storing them is the service layer's job.
The errors carry IAM's error codes so the IAM front can put them on the wire unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from cargohold.domain.errors import RegistryError
from cargohold.domain.principal import Principal

PrincipalKind = Literal["user", "role", "root"]
USER: Final = "user"
ROLE: Final = "role"
ROOT: Final = "root"

AccessKeyStatus = Literal["Active", "Inactive"]
ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"
STATUSES: Final = (ACTIVE, INACTIVE)

#: The registry's administrator: created by `cargohold admin init` and on first start.
ADMINISTRATOR: Final = "admin"

#: AWS allows two access keys per user, so one can be rotated while the other still works.
MAX_ACCESS_KEYS_PER_USER: Final = 2

#: The alphabet of the random part of AWS ids (`AKIA…`, `AIDA…`): RFC 4648 base32.
ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Long-term access key ids: `AKIA` and 16 characters, 20 in all.
ACCESS_KEY_PREFIX: Final = "AKIA"
ACCESS_KEY_RANDOM_LENGTH: Final = 16
#: Unique ids of principals: `AIDA` (user) or `AROA` (role) and 17 characters, 21 in all.
UNIQUE_ID_PREFIXES: Final[dict[str, str]] = {USER: "AIDA", ROLE: "AROA"}
UNIQUE_ID_RANDOM_LENGTH: Final = 17

_ACCESS_KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z2-7]{16}")
# IAM's user and role name shape: 1–64 characters of letters, digits and + = , . @ _ -
_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
# IAM paths: "/" or "/" + segments + "/", up to 512 characters of printable ASCII.
_PATH = re.compile(r"/|/[\x21-\x7e]{0,510}/")


class IdentityError(RegistryError):
    """Base of the identity errors; `code` is the IAM error code the IAM front answers with."""

    code: ClassVar[str] = "ServiceFailure"


class NoSuchEntity(IdentityError):
    code = "NoSuchEntity"


class EntityAlreadyExists(IdentityError):
    code = "EntityAlreadyExists"


class InvalidInput(IdentityError):
    code = "ValidationError"


class LimitExceeded(IdentityError):
    code = "LimitExceeded"


class DeleteConflict(IdentityError):
    code = "DeleteConflict"


@dataclass(frozen=True, slots=True)
class Identity:
    """A stored principal: a user (today), a role or the account root (with the IAM issue)."""

    id: str
    account_id: str
    kind: PrincipalKind
    name: str
    path: str
    arn: str
    created_at: float

    def as_principal(self, access_key_id: str | None = None) -> Principal:
        """The caller this identity is when it signs with `access_key_id`."""
        return Principal(
            account_id=self.account_id,
            arn=self.arn,
            principal_id=self.id,
            access_key_id=access_key_id,
            username=self.name if self.kind == USER else None,
        )


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key without its secret: the secret is only ever handed out on creation."""

    id: str
    principal_id: str
    user_name: str
    status: AccessKeyStatus
    created_at: float
    last_used_at: float | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None


def user_arn(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def validate_name(name: str, *, kind: str = USER) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"The specified value for {kind}Name is invalid. It must contain only alphanumeric "
            "characters and/or the following: +=,.@_-, and be 1 to 64 characters long."
        )
    return name


def validate_path(path: str) -> str:
    if not _PATH.fullmatch(path):
        raise InvalidInput(
            "The specified value for path is invalid. It must begin and end with / and contain "
            "only printable ASCII characters, at most 512 in all."
        )
    return path


def validate_status(status: str) -> AccessKeyStatus:
    if status == ACTIVE:
        return ACTIVE
    if status == INACTIVE:
        return INACTIVE
    raise InvalidInput(
        f"Value '{status[:20]}' at 'status' failed to satisfy constraint: Member must satisfy "
        "enum value set: [Active, Inactive]"
    )


def is_access_key_id(value: str) -> bool:
    return _ACCESS_KEY_ID.fullmatch(value) is not None


def name_key(name: str) -> str:
    """IAM names are unique within an account regardless of case: the form uniqueness uses."""
    return name.lower()
