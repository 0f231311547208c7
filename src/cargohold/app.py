"""The composition root: builds every part of a node from the configuration and wires them
together (`Node`); and the ASGI application that serves a node (`Application`).

The command-line tools build through the same functions: `open_store` (or `opened_store`) for
the metadata store, `build_storage` for blob storage, and the service builders."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request

from cargohold import background
from cargohold.auth.secretbox import SecretBox
from cargohold.background import build_collector, build_lifecycle, build_scrubber
from cargohold.config import RESOLVED_CONFIG_VARIABLE, Config, from_json
from cargohold.http.aws_auth import SigV4Authenticator
from cargohold.http.awsfront import AwsFront
from cargohold.http.awsservice import AwsService
from cargohold.http.bodies import BodyLimits, guarded
from cargohold.http.download import DownloadRoute, DownloadSigner, LayerUrls
from cargohold.http.ecr import ecr_service
from cargohold.http.ecr_images import image_handlers
from cargohold.http.ecr_lifecycle import archive_handlers, exclusion_handlers, lifecycle_handlers
from cargohold.http.ecr_policies import ecr_policy_handlers
from cargohold.http.ecr_repositories import repository_handlers
from cargohold.http.ecr_scanning import scanning_handlers
from cargohold.http.ecr_tokens import token_handlers
from cargohold.http.ecs_agent import PATH as ECS_AGENT_PATH
from cargohold.http.ecs_agent import EcsAgentRoute
from cargohold.http.ecs_handlers import build_ecs_api
from cargohold.http.gatekeeper import TokenGatekeeper
from cargohold.http.health import PATHS as HEALTH_PATHS
from cargohold.http.health import Health
from cargohold.http.iam import IamServices, entity_handlers, iam_service
from cargohold.http.iam_policies import policy_handlers
from cargohold.http.logs import logs_service
from cargohold.http.oci import OciFront
from cargohold.http.oci_errors import error_response
from cargohold.http.sts import sts_handlers, sts_service
from cargohold.http.unavailable import oci_unavailable
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.ports import UNOBSERVED, Metadata, Observer, StorageDriver, Unavailable
from cargohold.privatefiles import make_private_dirs
from cargohold.service.archive import ArchiveService
from cargohold.service.audit import AuditLog
from cargohold.service.authentication import Authentication
from cargohold.service.authz import Authorizer, enforcing
from cargohold.service.content import ContentService
from cargohold.service.findings import FindingsService
from cargohold.service.iam import IamService
from cargohold.service.identity import Identities
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.identity_policies import IdentityPolicies
from cargohold.service.images import ImageService
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.layers import LayerService
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.managed_policies import ManagedPolicyService
from cargohold.service.policies import PolicyService, ResourcePolicies
from cargohold.service.readcache import ReadCache
from cargohold.service.repositories import RepositoryService
from cargohold.service.sbom import SbomService
from cargohold.service.scan_config import ScanConfigService
from cargohold.service.scan_runner import SCAN, ScanRunner
from cargohold.service.scans import ScanService
from cargohold.service.sts import StsService
from cargohold.service.templates import TemplateService
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import REMATCH, VulnerabilityDatabase
from cargohold.storage.filesystem import FilesystemDriver
from cargohold.storage.s3 import S3Driver
from cargohold.storage.s3client import S3Settings

log = logging.getLogger(__name__)

DOWNLOAD_KEY_PURPOSE = "layer-download-url"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def open_store(config: Config, *, migrate: bool = True) -> MetadataStore:
    """The metadata store of `config`, its database migrated to the latest schema first
    (unless `migrate` is false)."""
    make_private_dirs(config.data_path)
    url = config.resolved_database_url
    if migrate:
        await anyio.to_thread.run_sync(database.upgrade, url)
    return MetadataStore.from_url(url)


@contextlib.asynccontextmanager
async def opened_store(config: Config, *, migrate: bool = True) -> AsyncIterator[MetadataStore]:
    """`open_store`, closed again when the block ends."""
    store = await open_store(config, migrate=migrate)
    try:
        yield store
    finally:
        await store.close()


def build_storage(config: Config) -> StorageDriver:
    storage = config.storage
    if storage.driver == "filesystem":
        return FilesystemDriver(config.storage_path)
    if storage.driver == "s3":
        return S3Driver(S3Settings.of(asdict(storage)))
    raise ValueError(f"unknown storage driver {config.storage.driver!r}")


@dataclass(frozen=True, slots=True)
class ContentServices:
    """The services over repositories and what they hold."""

    repositories: RepositoryService
    templates: TemplateService
    content: ContentService
    uploads: UploadService


def build_content(
    config: Config, store: MetadataStore, storage: StorageDriver, clock: Callable[[], float]
) -> ContentServices:
    repositories = RepositoryService(store, clock, region=config.region)
    templates = TemplateService(store, clock, lifecycle_interval=config.lifecycle_interval_seconds)
    content = ContentService(
        store,
        storage,
        clock,
        registry_id=config.account_id,
        create_on_push=config.create_on_push,
        rules=repositories,
        templates=templates,
        region=config.region,
    )
    uploads = UploadService(
        store,
        storage,
        clock,
        expiry=config.upload_expiry_seconds,
        max_open=config.max_open_uploads,
    )
    return ContentServices(repositories, templates, content, uploads)


def build_scanning(
    store: Metadata,
    storage: StorageDriver,
    content: ContentService,
    uploads: UploadService,
    clock: Callable[[], float],
    jobs: JobRunner | None = None,
) -> ScanService:
    """The scanning parts; the registry's pushes queue their scans. With `jobs`, the scan and
    re-match jobs run there, and a push wakes it."""
    images = ImageService(content, store)
    findings = FindingsService(store, images)
    sbom = SbomService(store, content, uploads, images)
    runner = ScanRunner(
        store,
        storage,
        VulnerabilityDatabase(store, clock),
        findings,
        clock,
        sbom=sbom,
        wake=jobs.wake if jobs is not None else None,
        region=content.region,
        observer=jobs.observer if jobs is not None else UNOBSERVED,
    )
    content.push_hook = runner
    if jobs is not None:
        jobs.register(SCAN, JobKind(runner.run_scan, runner.fail_scan))
        jobs.register(REMATCH, JobKind(runner.rematch))
    return ScanService(ScanConfigService(store, clock), runner, findings, sbom)


@dataclass(frozen=True, slots=True)
class Access:
    """Who callers are and what they may do: identities and their keys, IAM, the authorizer
    and its audit log, and the `/v2/` token gatekeeper."""

    box: SecretBox
    identity_admin: IdentityAdmin
    authentication: Authentication
    iam: IamService
    audit: AuditLog
    authorizer: Authorizer
    gatekeeper: TokenGatekeeper


def build_access(config: Config, store: MetadataStore, clock: Callable[[], float]) -> Access:
    public_url = config.resolved_public_url
    box = SecretBox.for_node(config.master_key_path, provisioned=bool(config.master_key_file))
    identities = Identities.sealed_by(
        store, box, clock, account_id=config.account_id, region=config.region
    )
    iam = IamService(store, clock, account_id=config.account_id)
    audit = AuditLog(store)
    authorizer = Authorizer(
        clock,
        identities=IdentityPolicies(store, iam),
        resources=ResourcePolicies(store),
        audit=audit,
        decisions=ReadCache(store, name="decisions"),
    )
    gatekeeper = TokenGatekeeper(
        identities.authentication,
        authorizer,
        account_id=config.account_id,
        region=config.region,
        public_url=public_url,
    )
    return Access(
        box, identities.admin, identities.authentication, iam, audit, authorizer, gatekeeper
    )


def build_ecr_service(
    config: Config,
    store: MetadataStore,
    clock: Callable[[], float],
    *,
    repositories: RepositoryService,
    templates: TemplateService,
    content: ContentService,
    uploads: UploadService,
    scans: ScanService,
    authentication: Authentication,
    authorizer: Authorizer,
    signer: LayerUrls,
    lifecycle: LifecycleService | None = None,
    archive: ArchiveService | None = None,
) -> AwsService:
    """The ECR API: its handlers over the content, scanning, token and policy services."""
    public_url = config.resolved_public_url
    return ecr_service(
        {
            **repository_handlers(
                repositories, templates, public_url=public_url, account_id=config.account_id
            ),
            **image_handlers(
                ImageService(content, store),
                LayerService(store, uploads),
                signer,
                scans.findings.states,
            ),
            **scanning_handlers(scans, content),
            **token_handlers(authentication, public_url=public_url, account_id=config.account_id),
            **ecr_policy_handlers(
                PolicyService(store, clock, region=config.region, simulator=authorizer)
            ),
            **(lifecycle_handlers(lifecycle, content) if lifecycle is not None else {}),
            **exclusion_handlers(content.pull_times),
            **(archive_handlers(archive, content) if archive is not None else {}),
        }
    )


async def build_aws_front(
    config: Config,
    store: MetadataStore,
    clock: Callable[[], float],
    ecr: AwsService,
    access: Access,
) -> tuple[AwsFront, EcsAgentRoute]:
    """Every AWS service on `POST /`: ECR, STS, IAM, ECS and CloudWatch Logs; and the route
    ECS's agents ask for task credentials at. Makes sure the AWS managed policies exist."""
    iam = access.iam
    managed = ManagedPolicyService(store, iam, clock, account_id=config.account_id)
    await managed.ensure_aws_managed_policies()
    iam_services = IamServices(access.identity_admin, iam, managed)
    sts = StsService(store, access.box, iam, clock, authorizer=access.authorizer)
    authenticator = SigV4Authenticator(access.authentication, clock=clock, region=config.region)
    ecs = build_ecs_api(
        store,
        clock,
        region=config.region,
        authorizer=access.authorizer,
        sts=sts,
        authenticator=authenticator,
    )
    front = AwsFront(
        [
            ecr,
            sts_service(sts_handlers(sts)),
            iam_service(
                iam_services, {**entity_handlers(iam_services), **policy_handlers(iam_services)}
            ),
            ecs.service,
            logs_service(store, clock),
        ],
        authenticator,
        enforcing(access.authorizer),
        region=config.region,
        authentication_failed=access.authorizer.authentication_failed,
    )
    return front, ecs.agent


@dataclass
class Node:
    """Everything one node runs, built from config; closed when the server stops."""

    config: Config
    store: MetadataStore
    storage: StorageDriver
    content: ContentService
    uploads: UploadService
    oci: OciFront
    download: DownloadRoute
    jobs: JobRunner  # background jobs (scans, GC, …); started by the application's lifespan
    #: ECR (JSON 1.1), STS and IAM (query protocol) on `POST /`.
    aws: AwsFront
    audit: AuditLog
    #: Task credentials for ECS agents (`/_ecs/credentials`).
    ecs_agent: EcsAgentRoute
    #: `/health/live` and `/health/ready`, for load balancers.
    health: Health

    @classmethod
    async def open(
        cls,
        config: Config,
        *,
        migrate: bool = True,
        clock: Callable[[], float] = time.time,
        observer: Observer = UNOBSERVED,
    ) -> Node:
        store = await open_store(config, migrate=migrate)
        await store.start()  # every other process's writes drop this one's cached reads
        async with store.write() as tx:
            await tx.registries.ensure_registry(config.account_id, config.region, clock())
        storage = build_storage(config)
        services = build_content(config, store, storage, clock)
        jobs = JobRunner(store, clock, observer=observer)
        background.build_upload_expiry(config, store, storage, clock, jobs)
        scans = build_scanning(store, storage, services.content, services.uploads, clock, jobs)
        lifecycle, archive = background.build_background(config, store, storage, clock, jobs)
        access = build_access(config, store, clock)
        access.audit.observer = observer
        redirect = config.storage.redirect
        oci = OciFront(
            services.content, services.uploads, storage, access.gatekeeper, redirect=redirect
        )
        signer = DownloadSigner(
            access.box.derive_key(DOWNLOAD_KEY_PURPOSE), config.resolved_public_url, clock
        )
        ecr = build_ecr_service(
            config,
            store,
            clock,
            repositories=services.repositories,
            templates=services.templates,
            content=services.content,
            uploads=services.uploads,
            scans=scans,
            authentication=access.authentication,
            authorizer=access.authorizer,
            signer=LayerUrls(signer, storage, redirect=redirect),
            lifecycle=lifecycle,
            archive=archive,
        )
        download = DownloadRoute(signer, services.content, storage)
        aws, ecs_agent = await build_aws_front(config, store, clock, ecr, access)
        return cls(
            config,
            store,
            storage,
            services.content,
            services.uploads,
            oci,
            download,
            jobs,
            aws,
            access.audit,
            ecs_agent,
            Health(store.ping, storage),
        )

    async def close(self) -> None:
        await self.jobs.stop()
        await self.content.pull_times.close()
        await self.audit.close()
        await self.store.close()


class Application:
    """The ASGI application: `/v2/…` to the OCI front, `POST /` to the ECR API (JSON, by
    `X-Amz-Target`) or to STS and IAM (query protocol, form-encoded), `/_download/…` to
    presigned layer downloads; everything else 404."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.node: Node | None = None
        self.clock = clock  # what every part reads the time from (tests move it)
        self.observer: Observer = UNOBSERVED  # told of jobs and scans (cargohold.metrics)
        self.body_limits = BodyLimits(
            idle_timeout=config.body_idle_timeout_seconds,
            min_rate=config.body_min_bytes_per_second,
            grace=config.body_rate_grace_seconds,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        assert self.node is not None, "the application serves only after its lifespan starts"
        receive, send = guarded(scope, receive, send, self.body_limits)
        request = Request(scope, receive)
        path: str = scope["path"]
        try:
            if path == "/v2" or path.startswith("/v2/"):
                response = await self.node.oci(request)
            elif path == "/":
                response = await self.node.aws(request)
            elif path.startswith("/_download/"):
                response = await self.node.download(request)
            elif path == ECS_AGENT_PATH:
                response = await self.node.ecs_agent(request)
            elif path in HEALTH_PATHS:
                response = await self.node.health(request)
            else:
                response = error_response("NOT_FOUND", "no such endpoint", 404)
        except Unavailable as exc:
            front = self.node.aws.unavailable if path == "/" else oci_unavailable
            response = front(request, exc)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], path)
            if path == "/":
                response = self.node.aws.internal_error(request)
            else:
                response = error_response("UNKNOWN", "internal error", 500)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.node = await Node.open(
                        self.config, clock=self.clock, observer=self.observer
                    )
                    await self.node.jobs.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.node is not None:
                    await self.node.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_app(config: Config) -> Application:
    return Application(config)


def app_from_environment() -> Application:
    """The application of one worker process, from the configuration `serve` resolved."""
    text = os.environ.get(RESOLVED_CONFIG_VARIABLE)
    if text is None:
        raise RuntimeError(f"{RESOLVED_CONFIG_VARIABLE} is not set; start workers with `serve`")
    return Application(from_json(text))


__all__ = [
    "Access",
    "Application",
    "ContentServices",
    "Node",
    "build_access",
    "build_app",
    "build_aws_front",
    "build_collector",
    "build_content",
    "build_ecr_service",
    "build_lifecycle",
    "build_scanning",
    "build_scrubber",
    "build_storage",
    "enforcing",
    "open_store",
    "opened_store",
]
