"""IAM identities as the registry stores them: principals (users, roles), their access keys,
groups, managed and inline policies, STS sessions, the formats AWS gives their ids and ARNs,
and IAM's naming rules and limits.

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
GROUP: Final = "group"
POLICY: Final = "policy"

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
#: Temporary (STS) access key ids: `ASIA` and 16 characters.
SESSION_KEY_PREFIX: Final = "ASIA"
#: Unique ids: `AIDA` (user), `AROA` (role), `AGPA` (group), `ANPA` (managed policy) and 17
#: characters, 21 in all.
UNIQUE_ID_PREFIXES: Final[dict[str, str]] = {
    USER: "AIDA",
    ROLE: "AROA",
    GROUP: "AGPA",
    POLICY: "ANPA",
}
UNIQUE_ID_RANDOM_LENGTH: Final = 17

#: Role sessions: one hour unless asked otherwise, 15 minutes to the role's MaxSessionDuration
#: (itself one to twelve hours); a session that assumes another role ("role chaining") gets
#: one hour at most.
DEFAULT_ROLE_SESSION: Final = 3600
MIN_SESSION: Final = 900
MAX_ROLE_SESSION: Final = 43200
ROLE_CHAINING_LIMIT: Final = 3600
#: GetSessionToken: 12 hours unless asked otherwise, 15 minutes to 36 hours.
DEFAULT_SESSION_TOKEN: Final = 43200
MAX_SESSION_TOKEN: Final = 129600

#: IAM's default quotas.
MAX_MANAGED_POLICIES_PER_ENTITY: Final = 10
MAX_POLICY_VERSIONS: Final = 5
MAX_GROUPS_PER_USER: Final = 10

_ACCESS_KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z2-7]{16}")
# IAM's user and role name shape: 1–64 characters of letters, digits and + = , . @ _ -
_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
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


class InvalidParameter(IdentityError):
    """IAM's `InvalidInput`: a value the model allows but IAM refuses (an ARN of no policy…)."""

    code = "InvalidInput"


class Unmodifiable(IdentityError):
    code = "UnmodifiableEntity"


class PolicyNotAttachable(IdentityError):
    code = "PolicyNotAttachable"


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


@dataclass(frozen=True, slots=True)
class Role:
    """A role: an identity with no keys of its own, assumed through STS by whom its trust
    policy names, for at most `max_session_duration` seconds."""

    id: str
    account_id: str
    name: str
    path: str
    arn: str
    created_at: float
    trust_policy: str
    description: str | None = None
    max_session_duration: int = DEFAULT_ROLE_SESSION


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    account_id: str
    name: str
    path: str
    arn: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """A standalone policy: the customer's own (`account_id` set) or AWS's (`account_id` None,
    ARN `arn:aws:iam::aws:policy/…`), with numbered versions of which one is the default."""

    id: str
    account_id: str | None
    name: str
    path: str
    arn: str
    default_version: str
    created_at: float
    updated_at: float
    description: str | None = None
    attachment_count: int = 0

    @property
    def aws_managed(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    policy_id: str
    version_id: str
    document: str
    is_default: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Session:
    """Temporary credentials handed out by STS, without their secret and token.

    `principal_id` is the user (GetSessionToken) or role (AssumeRole) whose policies apply; `arn`
    and `user_id` are what the session calls itself (`arn:aws:sts::…:assumed-role/ROLE/NAME`,
    `AROA…:NAME`), or the user's own ARN and id for a GetSessionToken session.
    """

    id: str
    principal_id: str
    account_id: str
    kind: Literal["user", "assumed-role"]
    arn: str
    user_id: str
    created_at: float
    expires_at: float
    session_name: str | None = None
    role_arn: str | None = None
    #: Who asked for it: the ARN the AssumeRole or GetSessionToken call was signed as.
    source_arn: str | None = None
    #: Whether a role session assumed it ("role chaining"), which caps it at one hour.
    chained: bool = False


def user_arn(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def role_arn(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def group_arn(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:group{path}{name}"


def policy_arn(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


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


def validate_policy_name(name: str) -> str:
    if not _POLICY_NAME.fullmatch(name):
        raise InvalidInput(
            "The specified value for policyName is invalid. It must contain only alphanumeric "
            "characters and/or the following: +=,.@_-, and be 1 to 128 characters long."
        )
    return name


def is_access_key_id(value: str) -> bool:
    return _ACCESS_KEY_ID.fullmatch(value) is not None


def is_session_key_id(value: str) -> bool:
    return value.startswith(SESSION_KEY_PREFIX) and is_access_key_id(value)


def arn_name(arn: str) -> tuple[str, str]:
    """(path, name) of an IAM ARN's resource part: `user/a/b/bob` → (`/a/b/`, `bob`)."""
    resource = arn.split(":", 5)[-1]
    _, _, rest = resource.partition("/")
    path, _, name = rest.rpartition("/")
    return (f"/{path}/" if path else "/"), name


def name_key(name: str) -> str:
    """IAM names are unique within an account regardless of case: the form uniqueness uses."""
    return name.lower()


#: What policies are attached to: a user, a role or a group.
EntityKind = Literal["user", "role", "group"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A user, role or group, as the holder of inline and attached policies."""

    kind: EntityKind
    id: str

    @property
    def column(self) -> str:
        """The column naming this kind of holder in the policy tables."""
        return "group_id" if self.kind == GROUP else "principal_id"


@dataclass(frozen=True, slots=True)
class Attached:
    """Who a managed policy is attached to."""

    users: list[Identity]
    groups: list[Group]
    roles: list[Identity]
