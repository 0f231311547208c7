"""ECR operations on repositories, resource tags, account settings and creation templates.

Each handler reads its validated parameters, calls one `RepositoryService` (or, for creation
templates, `TemplateService`) operation and shapes the answer as botocore's model does.
`repository_structure` renders a repository as ECR's `Repository` structure for any operation
that returns one.
"""

from __future__ import annotations

from typing import Any

from cargohold.domain.principal import repository_arn
from cargohold.domain.records import Repository
from cargohold.http.awsservice import ValidationFailed, Violation
from cargohold.http.ecr import EcrCall, Handler
from cargohold.http.hosts import account_host, registry_host
from cargohold.service.repositories import (
    ACCOUNT_SETTINGS,
    RepositoryService,
    RepositorySettings,
    encryption_as_shown,
)
from cargohold.service.templates import CreationTemplate, TemplateService


def repository_structure(
    repository: Repository, *, region: str, registry_host: str
) -> dict[str, Any]:
    """ECR's `Repository` structure; `createdAt` in epoch seconds."""
    shaped: dict[str, Any] = {
        "repositoryArn": repository_arn(region, repository.registry_id, repository.name),
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "repositoryUri": f"{registry_host}/{repository.name}",
        # float(): SQLite hands back integral REALs from RETURNING as int.
        "createdAt": float(repository.created_at),
        "imageTagMutability": repository.tag_mutability,
    }
    if repository.tag_mutability_filters:
        shaped["imageTagMutabilityExclusionFilters"] = _filters(repository.tag_mutability_filters)
    shaped["imageScanningConfiguration"] = {"scanOnPush": repository.scan_on_push}
    shaped["encryptionConfiguration"] = encryption_as_shown(
        repository.encryption, region=region, account_id=repository.registry_id
    )
    return shaped


def template_structure(template: CreationTemplate) -> dict[str, Any]:
    """ECR's `RepositoryCreationTemplate` structure."""
    shaped: dict[str, Any] = {"prefix": template.prefix}
    for member in (
        "description",
        "encryptionConfiguration",
        "resourceTags",
        "imageTagMutability",
        "imageTagMutabilityExclusionFilters",
        "repositoryPolicy",
        "lifecyclePolicy",
        "appliedFor",
        "customRoleArn",
    ):
        value = template.settings.get(member)
        if value is not None and value != "":
            shaped[member] = value
    shaped["createdAt"] = template.created_at
    shaped["updatedAt"] = template.updated_at
    return shaped


def _filters(filters: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"filterType": f["filterType"], "filter": f["filter"]} for f in filters]


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class _RepositoryHandlers:
    def __init__(self, repos: RepositoryService, host: str, account_id: str | None) -> None:
        self._repos = repos
        self._host = host
        self._account_id = account_id

    def _shape(self, repository: Repository, call: EcrCall) -> dict[str, Any]:
        host = self._host
        if self._account_id is not None:
            host = account_host(host, repository.registry_id, primary_account=self._account_id)
        return repository_structure(repository, region=call.region, registry_host=host)

    # -- repositories -----------------------------------------------------------------------

    async def create_repository(self, call: EcrCall) -> dict[str, Any]:
        params = call.params
        settings = RepositorySettings.checked(
            mutability=params.get("imageTagMutability", "MUTABLE"),
            exclusion_filters=params.get("imageTagMutabilityExclusionFilters"),
            scan_on_push=params.get("imageScanningConfiguration", {}).get("scanOnPush", False),
            encryption=params.get("encryptionConfiguration"),
            tags=params.get("tags"),
        )
        repository = await self._repos.create_repository(
            call.registry_id, params["repositoryName"], settings
        )
        return {"repository": self._shape(repository, call)}

    async def delete_repository(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repos.delete_repository(
            call.registry_id, call.params["repositoryName"], force=call.params.get("force", False)
        )
        return {"repository": self._shape(repository, call)}

    async def describe_repositories(self, call: EcrCall) -> dict[str, Any]:
        page = await self._repos.describe_repositories(
            call.registry_id,
            call.params.get("repositoryNames"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        answer: dict[str, Any] = {"repositories": [self._shape(r, call) for r in page.items]}
        if page.next_token is not None:
            answer["nextToken"] = page.next_token
        return answer

    async def put_image_tag_mutability(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repos.put_tag_mutability(
            call.registry_id,
            call.params["repositoryName"],
            call.params["imageTagMutability"],
            call.params.get("imageTagMutabilityExclusionFilters"),
        )
        answer: dict[str, Any] = {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "imageTagMutability": repository.tag_mutability,
        }
        if repository.tag_mutability_filters:
            answer["imageTagMutabilityExclusionFilters"] = _filters(
                repository.tag_mutability_filters
            )
        return answer

    async def describe_registry(self, call: EcrCall) -> dict[str, Any]:
        registry_id = await self._repos.registry(call.registry_id)
        # Replication rules arrive with the replication issue; until then there are none.
        return {"registryId": registry_id, "replicationConfiguration": {"rules": []}}

    # -- resource tags ----------------------------------------------------------------------

    async def tag_resource(self, call: EcrCall) -> dict[str, Any]:
        await self._repos.tag_resource(call.params["resourceArn"], call.params["tags"])
        return {}

    async def untag_resource(self, call: EcrCall) -> dict[str, Any]:
        await self._repos.untag_resource(call.params["resourceArn"], call.params["tagKeys"])
        return {}

    async def list_tags_for_resource(self, call: EcrCall) -> dict[str, Any]:
        return {"tags": _tags(await self._repos.list_tags(call.params["resourceArn"]))}

    # -- account settings -------------------------------------------------------------------

    @staticmethod
    def _setting_name(call: EcrCall) -> str:
        name: str = call.params["name"]
        if name not in ACCOUNT_SETTINGS:
            rule = f"Member must satisfy enum value set: [{', '.join(ACCOUNT_SETTINGS)}]"
            raise ValidationFailed([Violation("name", rule, name[:64], "enum")], call.operation)
        return name

    async def get_account_setting(self, call: EcrCall) -> dict[str, Any]:
        name = self._setting_name(call)
        return {
            "name": name,
            "value": await self._repos.get_account_setting(call.registry_id, name),
        }

    async def put_account_setting(self, call: EcrCall) -> dict[str, Any]:
        name = self._setting_name(call)
        value = await self._repos.put_account_setting(call.registry_id, name, call.params["value"])
        return {"name": name, "value": value}


class _TemplateHandlers:
    def __init__(self, templates: TemplateService) -> None:
        self._templates = templates

    @staticmethod
    def _template(call: EcrCall, template: CreationTemplate) -> dict[str, Any]:
        return {
            "registryId": call.registry_id,
            "repositoryCreationTemplate": template_structure(template),
        }

    async def create_repository_creation_template(self, call: EcrCall) -> dict[str, Any]:
        template = await self._templates.create_template(
            call.registry_id, call.params["prefix"], call.params
        )
        return self._template(call, template)

    async def update_repository_creation_template(self, call: EcrCall) -> dict[str, Any]:
        template = await self._templates.update_template(
            call.registry_id, call.params["prefix"], call.params
        )
        return self._template(call, template)

    async def delete_repository_creation_template(self, call: EcrCall) -> dict[str, Any]:
        template = await self._templates.delete_template(call.registry_id, call.params["prefix"])
        return self._template(call, template)

    async def describe_repository_creation_templates(self, call: EcrCall) -> dict[str, Any]:
        page = await self._templates.describe_templates(
            call.registry_id,
            call.params.get("prefixes"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        answer: dict[str, Any] = {
            "registryId": call.registry_id,
            "repositoryCreationTemplates": [template_structure(t) for t in page.items],
        }
        if page.next_token is not None:
            answer["nextToken"] = page.next_token
        return answer


def repository_handlers(
    repos: RepositoryService,
    templates: TemplateService,
    *,
    public_url: str,
    account_id: str | None = None,
) -> dict[str, Handler]:
    """The ECR operations this module serves, by operation name. Repository URIs of accounts
    other than `account_id` (the server's own) name their account's host (see `http.hosts`)."""
    h = _RepositoryHandlers(repos, registry_host(public_url), account_id)
    t = _TemplateHandlers(templates)
    return {
        "CreateRepository": h.create_repository,
        "DeleteRepository": h.delete_repository,
        "DescribeRepositories": h.describe_repositories,
        "PutImageTagMutability": h.put_image_tag_mutability,
        "DescribeRegistry": h.describe_registry,
        "TagResource": h.tag_resource,
        "UntagResource": h.untag_resource,
        "ListTagsForResource": h.list_tags_for_resource,
        "GetAccountSetting": h.get_account_setting,
        "PutAccountSetting": h.put_account_setting,
        "CreateRepositoryCreationTemplate": t.create_repository_creation_template,
        "DescribeRepositoryCreationTemplates": t.describe_repository_creation_templates,
        "UpdateRepositoryCreationTemplate": t.update_repository_creation_template,
        "DeleteRepositoryCreationTemplate": t.delete_repository_creation_template,
    }
