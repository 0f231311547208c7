"""The composition root: builds every part from the configuration and wires them together."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import TokenSigner
from cargohold.config import RESOLVED_CONFIG_VARIABLE, Config, from_json
from cargohold.domain.errors import AccessDenied
from cargohold.domain.principal import Principal
from cargohold.http.aws_auth import SigV4Authenticator
from cargohold.http.awsfront import AwsFront
from cargohold.http.download import DownloadRoute, DownloadSigner
from cargohold.http.ecr import ecr_service
from cargohold.http.ecr_images import image_handlers
from cargohold.http.ecr_policies import ecr_policy_handlers
from cargohold.http.ecr_repositories import repository_handlers
from cargohold.http.ecr_scanning import scanning_handlers
from cargohold.http.ecr_tokens import token_handlers
from cargohold.http.gatekeeper import TokenGatekeeper
from cargohold.http.iam import IamServices, entity_handlers, iam_service
from cargohold.http.iam_policies import policy_handlers
from cargohold.http.oci import OciFront
from cargohold.http.oci_errors import error_response
from cargohold.http.sts import sts_handlers, sts_service
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.ports import StorageDriver
from cargohold.service.audit import AuditLog
from cargohold.service.authz import Authorizer, RequestRecord
from cargohold.service.iam import IamService
from cargohold.service.identity import MASTER_KEY_FILE, TOKEN_KEY_PURPOSE, IdentityService
from cargohold.service.identity_policies import IdentityPolicies
from cargohold.service.images import ImageService
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.layers import LayerService
from cargohold.service.managed_policies import ManagedPolicyService
from cargohold.service.policies import PolicyService, ResourcePolicies
from cargohold.service.readcache import ReadCache
from cargohold.service.registry import RegistryService
from cargohold.service.repositories import RepositoryService
from cargohold.service.scans import SCAN, ScanService
from cargohold.service.sts import StsService
from cargohold.service.uploads import UploadService
from cargohold.service.vulndb import REMATCH, VulnerabilityDatabase
from cargohold.storage.filesystem import FilesystemDriver

log = logging.getLogger(__name__)

DOWNLOAD_KEY_PURPOSE = "layer-download-url"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def build_storage(config: Config) -> StorageDriver:
    if config.storage.driver == "filesystem":
        return FilesystemDriver(config.storage_path)
    raise ValueError(f"unknown storage driver {config.storage.driver!r}")


@dataclass
class Registry:
    """Everything one node runs, built from config; closed when the server stops."""

    config: Config
    store: MetadataStore
    storage: StorageDriver
    registry: RegistryService
    uploads: UploadService
    identity: IdentityService
    oci: OciFront
    download: DownloadRoute
    #: Background jobs (scans, re-matching); started by the application's lifespan.
    jobs: JobRunner
    #: ECR (JSON 1.1), STS and IAM (query protocol) on `POST /`.
    aws: AwsFront
    audit: AuditLog

    @classmethod
    async def open(
        cls,
        config: Config,
        *,
        migrate: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> Registry:
        config.data_path.mkdir(parents=True, exist_ok=True)
        url = config.resolved_database_url
        if migrate:
            await anyio.to_thread.run_sync(database.upgrade, url)
        store = MetadataStore.from_url(url)
        async with store.write() as tx:
            await tx.registries.ensure_registry(config.account_id, config.region, clock())
        storage = build_storage(config)
        public_url = config.resolved_public_url
        repositories = RepositoryService(store, clock, region=config.region)
        registry = RegistryService(
            store,
            storage,
            clock,
            registry_id=config.account_id,
            create_on_push=config.create_on_push,
            rules=repositories,
        )
        uploads = UploadService(store, storage, clock)
        jobs = JobRunner(store, clock)
        scans = ScanService(
            store,
            storage,
            registry,
            uploads,
            VulnerabilityDatabase(store, clock),
            clock,
            wake=jobs.wake,
        )
        registry.push_hook = scans
        jobs.register(SCAN, JobKind(scans.run_scan, scans.fail_scan))
        jobs.register(REMATCH, JobKind(scans.rematch))
        box = SecretBox.from_key_file(config.data_path / MASTER_KEY_FILE)
        identity = IdentityService(
            store,
            box,
            TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE)),
            clock,
            account_id=config.account_id,
            region=config.region,
        )
        iam = IamService(store, clock, account_id=config.account_id)
        audit = AuditLog(store)
        authorizer = Authorizer(
            clock,
            identities=IdentityPolicies(store, iam),
            resources=ResourcePolicies(store),
            audit=audit,
            decisions=ReadCache(store),
        )
        gatekeeper = TokenGatekeeper(
            identity,
            authorizer,
            account_id=config.account_id,
            region=config.region,
            public_url=public_url,
        )
        oci = OciFront(registry, uploads, storage, gatekeeper)
        signer = DownloadSigner(box.derive_key(DOWNLOAD_KEY_PURPOSE), public_url, clock)

        async def authorize(
            principal: Principal,
            action: str,
            resource: str,
            context: Mapping[str, Any],
            *,
            record: RequestRecord | None = None,
        ) -> None:
            decision = await authorizer.authorize(
                principal, action, resource, context, record=record
            )
            if not decision.allowed:
                raise AccessDenied(decision.message)

        ecr = ecr_service(
            {
                **repository_handlers(
                    repositories, public_url=public_url, account_id=config.account_id
                ),
                **image_handlers(
                    ImageService(registry, store),
                    LayerService(store, uploads),
                    signer,
                    scans.states,
                ),
                **scanning_handlers(scans, registry),
                **token_handlers(identity, public_url=public_url, account_id=config.account_id),
                **ecr_policy_handlers(
                    PolicyService(store, clock, region=config.region, simulator=authorizer)
                ),
            }
        )
        download = DownloadRoute(signer, registry, storage)
        managed = ManagedPolicyService(store, iam, clock, account_id=config.account_id)
        await managed.ensure_aws_managed_policies()
        iam_services = IamServices(identity, iam, managed)
        aws = AwsFront(
            [
                ecr,
                sts_service(
                    sts_handlers(StsService(store, box, iam, clock, authorizer=authorizer))
                ),
                iam_service(
                    iam_services, {**entity_handlers(iam_services), **policy_handlers(iam_services)}
                ),
            ],
            SigV4Authenticator(identity, clock=clock),
            authorize,
            region=config.region,
        )
        return cls(
            config,
            store,
            storage,
            registry,
            uploads,
            identity,
            oci,
            download,
            jobs,
            aws,
            audit,
        )

    async def close(self) -> None:
        await self.jobs.stop()
        await self.audit.close()
        await self.store.close()


class Application:
    """The ASGI application: `/v2/…` to the OCI front, `POST /` to the ECR API (JSON, by
    `X-Amz-Target`) or to STS and IAM (query protocol, form-encoded), `/_download/…` to
    presigned layer downloads; everything else 404."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.registry: Registry | None = None
        #: What every part reads the time from (tests move it).
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        assert self.registry is not None, "the application serves only after its lifespan starts"
        request = Request(scope, receive)
        path: str = scope["path"]
        try:
            if path == "/v2" or path.startswith("/v2/"):
                response = await self.registry.oci(request)
            elif path == "/":
                response = await self.registry.aws(request)
            elif path.startswith("/_download/"):
                response = await self.registry.download(request)
            else:
                response = error_response("NOT_FOUND", "no such endpoint", 404)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], path)
            response = error_response("UNKNOWN", "internal error", 500)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.registry = await Registry.open(self.config, clock=self.clock)
                    await self.registry.jobs.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.registry is not None:
                    await self.registry.close()
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


__all__ = ["Application", "Registry", "Response", "build_app"]
