"""Repositories as the ECR control plane manages them, and the registry-level settings around them.

Owns: creating (directly, or from a repository creation template on a `/v2/` push), describing
and deleting repositories; their tag mutability, scan-on-push and encryption settings; resource
tags; account settings (`BLOB_MOUNTING` decides `/v2/` cross-repository mounts); and repository
creation templates (a CREATE_ON_PUSH template's `repositoryPolicy` becomes the new repository's
policy). Every operation names the registry (account) it acts in, so one node can
serve several accounts. Errors are domain errors in ECR's own words; the ECR front maps them to
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

from cargohold.domain.errors import (
    InvalidParameter,
    InvalidTagParameter,
    NameInvalid,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    TemplateAlreadyExists,
    TemplateNotFound,
    TooManyTags,
)
from cargohold.domain.names import validate_repository_name
from cargohold.domain.policy import PolicyKind, parse_policy
from cargohold.domain.records import Repository
from cargohold.ports import Metadata, Transaction
from cargohold.service.registry import repository_not_found

T = TypeVar("T")

TAG_MUTABILITY_MODES = (
    "MUTABLE",
    "IMMUTABLE",
    "IMMUTABLE_WITH_EXCLUSION",
    "MUTABLE_WITH_EXCLUSION",
)
ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
ROOT = "ROOT"
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
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_PREFIX = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_ROLE_ARN = re.compile(r"arn:aws[-a-z0-9]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]*")
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
class CreationTemplate:
    """A repository creation template; `settings` holds the members ECR shapes it with."""

    prefix: str
    settings: dict[str, Any]
    created_at: float
    updated_at: float

    @property
    def applied_for(self) -> list[str]:
        return list(self.settings.get("appliedFor", []))

    def matches(self, name: str) -> bool:
        """ROOT matches every name; any other prefix has an implied `/` after it."""
        return self.prefix == ROOT or name.startswith(self.prefix + "/")


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


def resource_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags as a mapping (a repeated key keeps its last value), checked against ECR's rules."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        _tag_key(key)
        if len(value) > MAX_TAG_VALUE:
            raise InvalidTagParameter(_TAG_RULES)
        result[key] = value
    if len(result) > MAX_TAGS:
        raise TooManyTags(_TOO_MANY_TAGS)
    return result


def template_prefix(prefix: str) -> str:
    """A prefix as stored: `prod/` and `prod` name the same namespace (ECR assumes the `/`)."""
    if prefix == ROOT:
        return prefix
    bare = prefix.removesuffix("/")
    if not _PREFIX.fullmatch(bare):
        raise invalid("prefix", "Prefix must be ROOT or a repository namespace")
    return bare


def _page_size(max_results: int | None) -> int:
    if max_results is None:
        return DEFAULT_PAGE
    if not 1 <= max_results <= MAX_PAGE:
        raise invalid("maxResults", f"Member must be between 1 and {MAX_PAGE}")
    return max_results


def _encode_token(kind: str, after: str) -> str:
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(kind: str, token: str | None) -> str | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
        if isinstance(document, dict) and document.get("k") == kind:
            after = document.get("a")
            if isinstance(after, str):
                return after
    except (binascii.Error, ValueError):
        pass
    raise invalid("nextToken", "Invalid NextToken")


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
            await self._registry(tx, registry_id)
            return await self._create(tx, registry_id, name, settings)

    async def _create(
        self, tx: Transaction, registry_id: str, name: str, settings: RepositorySettings
    ) -> Repository:
        repository = await tx.repositories.create_repository(
            registry_id,
            name,
            self._clock(),
            tag_mutability=settings.tag_mutability,
            tag_mutability_filters=settings.tag_mutability_filters,
            scan_on_push=settings.scan_on_push,
            encryption=settings.encryption,
        )
        if settings.tags:
            await tx.repositories.put_resource_tags(repository.id, settings.tags)
        return repository

    async def repository(self, registry_id: str, name: str) -> Repository:
        async with self._store.read() as tx:
            return await self._repository(tx, registry_id, name)

    @staticmethod
    async def _repository(tx: Transaction, registry_id: str, name: str) -> Repository:
        found = await tx.repositories.get_repository(registry_id, name)
        if found is None:
            raise repository_not_found(name, registry_id)
        return found

    async def delete_repository(self, registry_id: str, name: str, *, force: bool) -> Repository:
        """Without `force`, a repository that holds images is refused (RepositoryNotEmpty).

        Its manifests, tags, blob links, uploads and resource tags go with it (the schema
        cascades); blob bytes are left to garbage collection.
        """
        async with self._store.write() as tx:
            repository = await self._repository(tx, registry_id, name)
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
                found = [await self._repository(tx, registry_id, n) for n in dict.fromkeys(names)]
            return Page(found)
        limit = _page_size(max_results)
        after = _decode_token("repositories", next_token)
        async with self._store.read() as tx:
            await self._registry(tx, registry_id)
            found = await tx.repositories.list_repositories(
                registry_id, after=after, limit=limit + 1
            )
        if len(found) > limit:
            return Page(found[:limit], _encode_token("repositories", found[limit - 1].name))
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
            repository = await self._repository(tx, registry_id, name)
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
        return await self._repository(tx, match["account"], name)

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
            await self._registry(tx, registry_id)
            value = await tx.templates.get_account_setting(registry_id, name)
        return default if value is None else value

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> str:
        allowed, _ = self._setting(name)
        if value not in allowed:
            raise invalid("value", f"Valid values for {name} are: [{', '.join(allowed)}]")
        async with self._store.write() as tx:
            await self._registry(tx, registry_id)
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

    # -- repository creation templates ------------------------------------------------------

    @staticmethod
    def _template_settings(
        params: Mapping[str, Any], base: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The template's members after applying `params` over `base` (an update's old state)."""
        settings: dict[str, Any] = dict(base or {})
        for member in ("description", "repositoryPolicy", "lifecyclePolicy"):
            if member in params:
                settings[member] = params[member]
        if settings.get("repositoryPolicy"):
            # Checked now, as SetRepositoryPolicy would check it, so that a push creating a
            # repository from the template never meets a policy it cannot apply.
            parse_policy(settings["repositoryPolicy"], PolicyKind.REPOSITORY)
        if "customRoleArn" in params:
            role = params["customRoleArn"]
            if role and not _ROLE_ARN.fullmatch(role):
                raise invalid("customRoleArn", "Invalid ARN")
            settings["customRoleArn"] = role
        if "encryptionConfiguration" in params:
            settings["encryptionConfiguration"] = encryption_configuration(
                params["encryptionConfiguration"]
            )
        if "resourceTags" in params:
            tags = resource_tags(params["resourceTags"])
            settings["resourceTags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        if "appliedFor" in params:
            applied = list(dict.fromkeys(params["appliedFor"]))
            unknown = [a for a in applied if a not in APPLIED_FOR]
            if unknown or not applied:
                raise invalid(
                    "appliedFor", f"Member must satisfy enum value set: [{', '.join(APPLIED_FOR)}]"
                )
            settings["appliedFor"] = applied
        if "imageTagMutability" in params or "imageTagMutabilityExclusionFilters" in params:
            mode = params.get("imageTagMutability", settings.get("imageTagMutability", "MUTABLE"))
            if "imageTagMutabilityExclusionFilters" in params:
                filters = params["imageTagMutabilityExclusionFilters"]
            elif mode.endswith("_WITH_EXCLUSION"):
                filters = settings.get("imageTagMutabilityExclusionFilters")
            else:
                filters = None
            mode, checked = tag_mutability(mode, filters)
            settings["imageTagMutability"] = mode
            settings.pop("imageTagMutabilityExclusionFilters", None)
            if checked:
                settings["imageTagMutabilityExclusionFilters"] = checked
        settings.setdefault("imageTagMutability", "MUTABLE")
        settings.setdefault("encryptionConfiguration", {"encryptionType": "AES256"})
        settings.setdefault("resourceTags", [])
        return settings

    @staticmethod
    def _as_template(stored: dict[str, Any]) -> CreationTemplate:
        settings = {
            k: v for k, v in stored.items() if k not in ("prefix", "createdAt", "updatedAt")
        }
        return CreationTemplate(
            stored["prefix"], settings, float(stored["createdAt"]), float(stored["updatedAt"])
        )

    @staticmethod
    def _template_missing(prefix: str, registry_id: str) -> TemplateNotFound:
        return TemplateNotFound(
            f"The repository creation template with the prefix '{prefix}' does not exist in "
            f"the registry with id '{registry_id}'"
        )

    async def create_template(
        self, registry_id: str, prefix: str, params: Mapping[str, Any]
    ) -> CreationTemplate:
        """`params` are CreateRepositoryCreationTemplate's members (appliedFor is required)."""
        prefix = template_prefix(prefix)
        if "appliedFor" not in params:
            raise invalid("appliedFor", "Member must not be null")
        settings = self._template_settings(params)
        async with self._store.write() as tx:
            await self._registry(tx, registry_id)
            if not await tx.templates.insert_creation_template(
                registry_id, prefix, settings, self._clock()
            ):
                raise TemplateAlreadyExists(
                    f"The repository creation template with the prefix '{prefix}' already "
                    f"exists in the registry with id '{registry_id}'"
                )
            stored = await tx.templates.get_creation_template(registry_id, prefix)
        assert stored is not None
        return self._as_template(stored)

    async def update_template(
        self, registry_id: str, prefix: str, params: Mapping[str, Any]
    ) -> CreationTemplate:
        """Members given replace the template's; members left out stay as they were."""
        prefix = template_prefix(prefix)
        async with self._store.write() as tx:
            stored = await tx.templates.get_creation_template(registry_id, prefix)
            if stored is None:
                raise self._template_missing(prefix, registry_id)
            settings = self._template_settings(params, self._as_template(stored).settings)
            await tx.templates.update_creation_template(
                registry_id, prefix, settings, self._clock()
            )
            stored = await tx.templates.get_creation_template(registry_id, prefix)
        assert stored is not None
        return self._as_template(stored)

    async def delete_template(self, registry_id: str, prefix: str) -> CreationTemplate:
        prefix = template_prefix(prefix)
        async with self._store.write() as tx:
            stored = await tx.templates.get_creation_template(registry_id, prefix)
            if stored is None or not await tx.templates.delete_creation_template(
                registry_id, prefix
            ):
                raise self._template_missing(prefix, registry_id)
        return self._as_template(stored)

    async def describe_templates(
        self,
        registry_id: str,
        prefixes: Sequence[str] | None = None,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[CreationTemplate]:
        """Templates by prefix (those that exist), or all of them, a page at a time."""
        limit = _page_size(max_results)
        after = _decode_token("templates", next_token)
        wanted = [template_prefix(p) for p in prefixes] if prefixes else None
        async with self._store.read() as tx:
            await self._registry(tx, registry_id)
            found = await tx.templates.list_creation_templates(
                registry_id, prefixes=wanted, after=after, limit=limit + 1
            )
        templates = [self._as_template(t) for t in found]
        if len(templates) > limit:
            return Page(templates[:limit], _encode_token("templates", templates[limit - 1].prefix))
        return Page(templates)

    async def create_from_template(self, registry_id: str, name: str) -> Repository | None:
        """CREATE_ON_PUSH: create `name` from the most specific template applied for it.

        None when no template applied for CREATE_ON_PUSH matches (the push then fails as ECR's
        does). A repository that exists already, perhaps created by a concurrent push, is
        returned as it is.
        """
        validate_repository_name(name)
        try:
            async with self._store.write() as tx:
                existing = await tx.repositories.get_repository(registry_id, name)
                if existing is not None:
                    return existing
                template = await self._template_for(tx, registry_id, name, "CREATE_ON_PUSH")
                if template is None:
                    return None
                created = await self._create(tx, registry_id, name, self._from_template(template))
                policy = template.settings.get("repositoryPolicy")
                if policy:
                    await tx.policies.put_repository_policy(created.id, policy, self._clock())
                return created
        except RepositoryAlreadyExists:
            return await self.repository(registry_id, name)

    async def creates_on_push(self, registry_id: str, name: str) -> bool:
        """Whether a template applied for CREATE_ON_PUSH matches `name`."""
        async with self._store.read() as tx:
            return await self._template_for(tx, registry_id, name, "CREATE_ON_PUSH") is not None

    async def _template_for(
        self, tx: Transaction, registry_id: str, name: str, scenario: str
    ) -> CreationTemplate | None:
        templates = [
            self._as_template(t) for t in await tx.templates.list_creation_templates(registry_id)
        ]
        candidates = [t for t in templates if scenario in t.applied_for and t.matches(name)]
        # The longest prefix is the most specific; ROOT is the least specific of all.
        return max(
            candidates, key=lambda t: -1 if t.prefix == ROOT else len(t.prefix), default=None
        )

    @staticmethod
    def _from_template(template: CreationTemplate) -> RepositorySettings:
        settings = template.settings
        return RepositorySettings(
            tag_mutability=settings.get("imageTagMutability", "MUTABLE"),
            tag_mutability_filters=list(settings.get("imageTagMutabilityExclusionFilters", [])),
            encryption=encryption_configuration(settings.get("encryptionConfiguration")),
            tags={t["Key"]: t["Value"] for t in settings.get("resourceTags", [])},
        )

    # -- registries -------------------------------------------------------------------------

    async def registry(self, registry_id: str) -> str:
        """The registry's id, once it is known to exist."""
        async with self._store.read() as tx:
            await self._registry(tx, registry_id)
        return registry_id

    @staticmethod
    async def _registry(tx: Transaction, registry_id: str) -> None:
        if not await tx.registries.registry_exists(registry_id):
            raise invalid("registryId", f"The registry with id '{registry_id}' does not exist")
