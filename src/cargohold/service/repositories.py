"""Repositories as the ECR control plane manages them, and the registry-level settings around them.

Owns: creating, describing and deleting repositories; their tag mutability, scan-on-push and
encryption settings and the rules those follow; resource tags; account settings
(`BLOB_MOUNTING` decides `/v2/` cross-repository mounts). Repository creation templates, which
create repositories on a `/v2/` push, are service/templates.py's and build on the transaction
helpers here. Every operation names the registry (account) it acts in, so one node can serve
several accounts. Errors are domain errors in ECR's own words; the ECR front maps them to
`__type` names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cargohold.domain import jsondoc
from cargohold.domain.errors import (
    InvalidParameter,
    InvalidTagParameter,
    NameInvalid,
    RepositoryNotEmpty,
    TooManyTags,
)
from cargohold.domain.names import validate_repository_name
from cargohold.domain.records import Repository
from cargohold.ports import Metadata, Transaction
from cargohold.service.content import repository_not_found

T = TypeVar("T")

TAG_MUTABILITY_MODES = (
    "MUTABLE",
    "IMMUTABLE",
    "IMMUTABLE_WITH_EXCLUSION",
    "MUTABLE_WITH_EXCLUSION",
)
ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_EXCLUSION_FILTERS = 5
#: A page's size when the caller does not say (DescribeRepositories and
#: DescribeRepositoryCreationTemplates both document 100).
DEFAULT_PAGE = 100
MAX_PAGE = 1000

#: Account settings ECR documents: their valid values and the value an account starts with.
#: Blob mounting is opt-in; new accounts use registry policy V2 and the AWS-native basic scan.
ACCOUNT_SETTINGS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "BASIC_SCAN_TYPE_VERSION": (("AWS_NATIVE",), "AWS_NATIVE"),
    "REGISTRY_POLICY_SCOPE": (("V1", "V2"), "V2"),
    "BLOB_MOUNTING": (("ENABLED", "DISABLED"), "DISABLED"),
}

_FILTER = re.compile(r"[0-9a-zA-Z._*-]{1,128}")
_REPOSITORY_ARN = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):ecr:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"repository/(?P<name>.+)"
)

_TAG_RULES = (
    "An invalid parameter has been specified. Tag keys can have a maximum character length of "
    "128 characters, and tag values can have a maximum length of 256 characters."
)
_TOO_MANY_TAGS = (
    "The list of tags on the repository is over the limit. The maximum number of tags that can "
    "be applied to a repository is 50."
)


def invalid(parameter: str, constraint: str) -> InvalidParameter:
    """ECR's wording for a parameter the model accepts but the operation refuses."""
    return InvalidParameter(
        f"Invalid parameter at '{parameter}' failed to satisfy constraint: '{constraint}'"
    )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    #: Opaque; None on the last page.
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class RepositorySettings:
    """What CreateRepository (or a template) decides about a new repository."""

    tag_mutability: str = "MUTABLE"
    tag_mutability_filters: list[dict[str, str]] = field(default_factory=list)
    scan_on_push: bool = False
    encryption: dict[str, str] = field(default_factory=lambda: {"encryptionType": "AES256"})
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def checked(
        cls,
        *,
        mutability: str = "MUTABLE",
        exclusion_filters: Sequence[Mapping[str, str]] | None = None,
        scan_on_push: bool = False,
        encryption: Mapping[str, Any] | None = None,
        tags: Iterable[Mapping[str, str]] | None = None,
    ) -> RepositorySettings:
        """Settings as CreateRepository states them, held to ECR's rules."""
        mode, filters = tag_mutability(mutability, exclusion_filters)
        return cls(
            mode, filters, scan_on_push, encryption_configuration(encryption), resource_tags(tags)
        )


# -- validation: the rules botocore's model cannot express -------------------------------------


def tag_mutability(
    mode: str, filters: Sequence[Mapping[str, str]] | None
) -> tuple[str, list[dict[str, str]]]:
    """A mode and its exclusion filters, checked together: filters go with `*_WITH_EXCLUSION`."""
    if mode not in TAG_MUTABILITY_MODES:
        raise invalid(
            "imageTagMutability",
            f"Member must satisfy enum value set: [{', '.join(TAG_MUTABILITY_MODES)}]",
        )
    given = list(filters or [])
    if mode.endswith("_WITH_EXCLUSION") and not given:
        raise invalid(
            "imageTagMutabilityExclusionFilters",
            f"ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set "
            f"as {mode}",
        )
    if not mode.endswith("_WITH_EXCLUSION") and given:
        raise invalid(
            "imageTagMutabilityExclusionFilters",
            f"ImageTagMutabilityExclusionFilters must be null when imageTagMutability is set "
            f"as {mode}",
        )
    if len(given) > MAX_EXCLUSION_FILTERS:
        raise invalid(
            "imageTagMutabilityExclusionFilters",
            f"Member must have length less than or equal to {MAX_EXCLUSION_FILTERS}",
        )
    result = []
    for item in given:
        kind, pattern = item.get("filterType"), item.get("filter", "")
        if kind != "WILDCARD":
            raise invalid(
                "imageTagMutabilityExclusionFilters",
                f"Invalid value for 'filterType' in mutability exclusion filter: {kind}",
            )
        if not _FILTER.fullmatch(pattern):
            raise invalid(
                "imageTagMutabilityExclusionFilters",
                f"Invalid value for 'filter' in mutability exclusion filter: {pattern[:200]}",
            )
        result.append({"filterType": "WILDCARD", "filter": pattern})
    return mode, result


def encryption_configuration(config: Mapping[str, Any] | None) -> dict[str, str]:
    """AES256 unless told otherwise; a KMS key is recorded as given (nothing is sent to KMS)."""
    if not config:
        return {"encryptionType": "AES256"}
    kind = config.get("encryptionType")
    key = config.get("kmsKey") or None
    if kind not in ENCRYPTION_TYPES:
        raise invalid(
            "encryptionConfiguration.encryptionType",
            f"Member must satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]",
        )
    if kind == "AES256" and key is not None:
        raise invalid(
            "encryptionConfiguration",
            "KMS key can only be specified when encryptionType is KMS or KMS_DSSE",
        )
    return {"encryptionType": kind} if key is None else {"encryptionType": kind, "kmsKey": key}


def aws_managed_key(region: str, account_id: str) -> str:
    """The account's AWS managed KMS key for ECR, by the alias ARN that names it."""
    return f"arn:aws:kms:{region}:{account_id}:alias/aws/ecr"


def encryption_as_shown(
    config: Mapping[str, Any] | None, *, region: str, account_id: str
) -> dict[str, str]:
    """A repository's encryption as ECR answers it: KMS (or KMS_DSSE) without a key of its own
    uses, and names, the account's AWS managed key."""
    shown = encryption_configuration(config)
    if shown["encryptionType"] != "AES256" and "kmsKey" not in shown:
        shown["kmsKey"] = aws_managed_key(region, account_id)
    return shown


def _same_encryption(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return encryption_configuration(a) == encryption_configuration(b)


def _tag_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_TAG_KEY:
        raise InvalidTagParameter(_TAG_RULES)
    if key.lower().startswith("aws:"):
        raise InvalidTagParameter(
            "An invalid parameter has been specified. Tag keys may not begin with 'aws:', "
            "which is reserved for AWS use."
        )
    return key


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def resource_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags as a mapping (a repeated key keeps its last value), checked against ECR's rules."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        _tag_key(key)
        # Control characters are no letter, digit or space; NUL cannot even be stored.
        if len(value) > MAX_TAG_VALUE or _has_control(key) or _has_control(value):
            raise InvalidTagParameter(_TAG_RULES)
        result[key] = value
    if len(result) > MAX_TAGS:
        raise TooManyTags(_TOO_MANY_TAGS)
    return result


def page_size(max_results: int | None) -> int:
    """`maxResults` of a Describe call, checked; the documented default when not given."""
    if max_results is None:
        return DEFAULT_PAGE
    if not 1 <= max_results <= MAX_PAGE:
        raise invalid("maxResults", f"Member must be between 1 and {MAX_PAGE}")
    return max_results


def encode_token(kind: str, after: str) -> str:
    """An opaque `nextToken` continuing a `kind` listing after the key `after`."""
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(kind: str, token: str | None) -> str | None:
    """The key a `kind` token continues after; InvalidParameter for any other token."""
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = jsondoc.loads(raw)
        if isinstance(document, dict) and document.get("k") == kind:
            after = document.get("a")
            if isinstance(after, str):
                return after
    except (binascii.Error, ValueError):
        pass
    raise invalid("nextToken", "Invalid NextToken")


# -- inside a transaction: what repository and template operations share -------------------


async def require_registry(tx: Transaction, registry_id: str) -> None:
    """InvalidParameter, in ECR's words, unless the registry (account) exists."""
    if not await tx.registries.registry_exists(registry_id):
        raise invalid("registryId", f"The registry with id '{registry_id}' does not exist")


async def existing_repository(tx: Transaction, registry_id: str, name: str) -> Repository:
    """The repository; RepositoryNotFound in ECR's words when there is none."""
    found = await tx.repositories.get_repository(registry_id, name)
    if found is None:
        raise repository_not_found(name, registry_id)
    return found


async def insert_repository(
    tx: Transaction, registry_id: str, name: str, settings: RepositorySettings, now: float
) -> Repository:
    """A new repository with these settings and resource tags (RepositoryAlreadyExists if the
    name is taken)."""
    repository = await tx.repositories.create_repository(
        registry_id,
        name,
        now,
        tag_mutability=settings.tag_mutability,
        tag_mutability_filters=settings.tag_mutability_filters,
        scan_on_push=settings.scan_on_push,
        encryption=settings.encryption,
    )
    if settings.tags:
        await tx.repositories.put_resource_tags(repository.id, settings.tags)
    return repository


class RepositoryService:
    def __init__(self, store: Metadata, clock: Callable[[], float], *, region: str) -> None:
        self._store = store
        self._clock = clock
        self.region = region

    # -- repositories -----------------------------------------------------------------------

    async def create_repository(
        self, registry_id: str, name: str, settings: RepositorySettings | None = None
    ) -> Repository:
        """Raises RepositoryAlreadyExists with ECR's message when the name is taken."""
        validate_repository_name(name)
        settings = settings or RepositorySettings()
        async with self._store.write() as tx:
            await require_registry(tx, registry_id)
            return await insert_repository(tx, registry_id, name, settings, self._clock())

    async def repository(self, registry_id: str, name: str) -> Repository:
        async with self._store.read() as tx:
            return await existing_repository(tx, registry_id, name)

    async def delete_repository(self, registry_id: str, name: str, *, force: bool) -> Repository:
        """Without `force`, a repository that holds images is refused (RepositoryNotEmpty).

        Its manifests, tags, blob links, uploads and resource tags go with it (the schema
        cascades); blob bytes are left to garbage collection.
        """
        async with self._store.write() as tx:
            repository = await existing_repository(tx, registry_id, name)
            if not force and await tx.manifests.count_manifests(repository.id):
                raise RepositoryNotEmpty(
                    f"The repository with name '{name}' in registry with id '{registry_id}' "
                    "cannot be deleted because it still contains images"
                )
            await tx.repositories.delete_repository(repository.id)
        return repository

    async def describe_repositories(
        self,
        registry_id: str,
        names: Sequence[str] | None = None,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[Repository]:
        """Named repositories (the first missing one raises), or a page of all of them by name."""
        if names:
            if max_results is not None or next_token is not None:
                parameter = "maxResults" if max_results is not None else "nextToken"
                raise invalid(parameter, f"{parameter} cannot be used with repositoryNames")
            async with self._store.read() as tx:
                found = [
                    await existing_repository(tx, registry_id, n) for n in dict.fromkeys(names)
                ]
            return Page(found)
        limit = page_size(max_results)
        after = decode_token("repositories", next_token)
        async with self._store.read() as tx:
            await require_registry(tx, registry_id)
            found = await tx.repositories.list_repositories(
                registry_id, after=after, limit=limit + 1
            )
        if len(found) > limit:
            return Page(found[:limit], encode_token("repositories", found[limit - 1].name))
        return Page(found)

    async def put_tag_mutability(
        self,
        registry_id: str,
        name: str,
        mode: str,
        filters: Sequence[Mapping[str, str]] | None = None,
    ) -> Repository:
        mode, checked = tag_mutability(mode, filters)
        async with self._store.write() as tx:
            repository = await existing_repository(tx, registry_id, name)
            await tx.repositories.update_repository(
                repository.id, tag_mutability=mode, tag_mutability_filters=checked
            )
            updated = await tx.repositories.get_repository(registry_id, name)
        assert updated is not None
        return updated

    # -- resource tags ----------------------------------------------------------------------

    async def _tagged(self, tx: Transaction, resource_arn: str) -> Repository:
        """The repository an ARN names; InvalidParameter for anything but a repository ARN."""
        match = _REPOSITORY_ARN.fullmatch(resource_arn)
        if match is None or match["region"] != self.region:
            raise invalid("resourceArn", "Invalid ARN")
        name = match["name"]
        try:
            validate_repository_name(name)
        except NameInvalid:
            raise invalid("resourceArn", "Invalid ARN") from None
        return await existing_repository(tx, match["account"], name)

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        async with self._store.read() as tx:
            repository = await self._tagged(tx, resource_arn)
            return await tx.repositories.resource_tags(repository.id)

    async def tag_resource(self, resource_arn: str, tags: Iterable[Mapping[str, str]]) -> None:
        """Adds or overwrites the tags given; the resource may carry at most 50."""
        wanted = resource_tags(tags)
        async with self._store.write() as tx:
            repository = await self._tagged(tx, resource_arn)
            current = await tx.repositories.resource_tags(repository.id)
            if len(current.keys() | wanted.keys()) > MAX_TAGS:
                raise TooManyTags(_TOO_MANY_TAGS)
            await tx.repositories.put_resource_tags(repository.id, wanted)

    async def untag_resource(self, resource_arn: str, keys: Iterable[str]) -> None:
        """Removes the keys named; keys the resource lacks are ignored."""
        wanted = [_tag_key(k) for k in keys]
        async with self._store.write() as tx:
            repository = await self._tagged(tx, resource_arn)
            await tx.repositories.delete_resource_tags(repository.id, wanted)

    # -- account settings -------------------------------------------------------------------

    @staticmethod
    def _setting(name: str) -> tuple[tuple[str, ...], str]:
        known = ACCOUNT_SETTINGS.get(name)
        if known is None:
            raise invalid(
                "name", f"Member must satisfy enum value set: [{', '.join(ACCOUNT_SETTINGS)}]"
            )
        return known

    async def get_account_setting(self, registry_id: str, name: str) -> str:
        _, default = self._setting(name)
        async with self._store.read() as tx:
            await require_registry(tx, registry_id)
            value = await tx.templates.get_account_setting(registry_id, name)
        return default if value is None else value

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> str:
        allowed, _ = self._setting(name)
        if value not in allowed:
            raise invalid("value", f"Valid values for {name} are: [{', '.join(allowed)}]")
        async with self._store.write() as tx:
            await require_registry(tx, registry_id)
            await tx.templates.put_account_setting(registry_id, name, value)
        return value

    async def blob_mounting_allowed(self, target: Repository, source: Repository) -> bool:
        """A `/v2/` cross-repository mount happens only within one registry with BLOB_MOUNTING
        ENABLED, between repositories of identical encryption (ECR's rules)."""
        if target.registry_id != source.registry_id:
            return False
        if not _same_encryption(target.encryption, source.encryption):
            return False
        setting = await self.get_account_setting(target.registry_id, "BLOB_MOUNTING")
        return setting == "ENABLED"

    # -- registries -------------------------------------------------------------------------

    async def registry(self, registry_id: str) -> str:
        """The registry's id, once it is known to exist."""
        async with self._store.read() as tx:
            await require_registry(tx, registry_id)
        return registry_id
