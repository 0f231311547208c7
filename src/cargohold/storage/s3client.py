"""The S3 calls the `s3` driver makes: botocore's S3 client, each call in a worker thread.

botocore carries S3's model, SigV4 signing, presigning, path- and virtual-host addressing and the
AWS credential chain, and it is already what the registry validates AWS requests with; see
docs/ARCHITECTURE.md for the measurement against aiobotocore and obstore. Its client is
thread-safe, so calls run in anyio's worker threads and the event loop never waits on the
network.

Errors are translated once, here: a missing key or upload becomes `KeyNotFound` or
`UploadStateInvalid`, a store that cannot be reached or answers 5xx `StorageUnavailable`, and
anything else `StorageError`. The store's own credentials come only from the driver's settings
or the credential chain of its `profile`, never from the AWS_* variables of clients talking
to the registry itself (keys, AWS_PROFILE, region, AWS_ENDPOINT_URL*).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import anyio.lowlevel
import anyio.to_thread
import botocore.exceptions
import botocore.session
from botocore.config import Config as BotocoreConfig

from cargohold.ports import KeyNotFound, StorageError, StorageUnavailable, UploadStateInvalid

T = TypeVar("T")

#: Connections kept open to the store; calls beyond it wait for one.
POOL = 64

#: The worker threads S3 calls run in, one per pooled connection, per event loop. Not anyio's
#: default 40 threads, which hashing and file I/O share: a call waits on the network for its
#: whole transfer, and with dozens of uploads at once (8 pushes of 6 layers each) they would
#: hold every default thread while the appends' hashing waited for one, and the reverse.
_THREADS: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("s3_threads")


def _threads() -> anyio.CapacityLimiter:
    try:
        return _THREADS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(POOL)
        _THREADS.set(limiter)
        return limiter


_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_UPLOAD = frozenset({"NoSuchUpload"})
_REFUSED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "NoSuchBucket"}
)


@dataclass(frozen=True, slots=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None
    profile: str | None = None

    @classmethod
    def of(cls, storage: Mapping[str, Any]) -> S3Settings:
        """The settings among a `[storage]` table's keys (the configuration validated them)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in storage.items() if key in names})


def _unavailable(exc: Exception) -> bool:
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ResponseStreamingError
        | botocore.exceptions.HTTPClientError,
    ):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    return False


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, what: str) -> StorageError:
    """The port's error for a botocore failure of the call described by `what`."""
    if _unavailable(exc):
        return StorageUnavailable(f"the object store cannot be reached ({what}): {exc}")
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _REFUSED or status in (401, 403):
            # The store refuses this node (keys revoked, bucket gone): nothing the request
            # did; the node is not ready until an operator acts.
            return StorageUnavailable(f"the object store refused {what}: {code or status}")
        if code in _MISSING_KEY:
            return KeyNotFound(what)
        if code in _MISSING_UPLOAD:
            return UploadStateInvalid(f"the multipart upload is gone ({what})")
    return StorageError(f"the object store refused {what}: {exc}")


def make_client(settings: S3Settings) -> Any:
    """A botocore S3 client for `settings` (typed Any: botocore's clients are generated)."""
    # The chain without the variables a shell holds for clients of the registry (their keys,
    # profile and region are cargohold's, not the store's): a profile's files, SSO, container
    # and instance roles.
    session = botocore.session.Session(
        session_vars={"profile": (None, None, None, None), "region": ("region", None, None, None)},
        profile=settings.profile,
    )
    session.get_component("credential_provider").remove("env")
    config = BotocoreConfig(
        max_pool_connections=POOL,
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        signature_version="s3v4",
        s3={"addressing_style": "path" if settings.path_style else "auto"},
        ignore_configured_endpoint_urls=True,  # type: ignore[call-arg]
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.create_client(
        "s3",
        region_name=settings.region or session.get_config_variable("region") or "us-east-1",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=config,
    )


class S3Calls:
    """The client's operations as coroutines, with the port's errors."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._client = client if client is not None else make_client(settings)

    async def call(self, operation: str, what: str, **params: Any) -> Any:
        method: Callable[..., Any] = getattr(self._client, operation)
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(method, Bucket=self.bucket, **params), limiter=_threads()
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise translate(exc, what) from None

    async def in_thread(self, fn: Callable[[], T], what: str) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=_threads())
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise translate(exc, what) from None

    def presign(self, key: str, expires_in: int) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def list_keys(self, prefix: str) -> list[tuple[str, float]]:
        """Every key under `prefix` with its modification time, in key order."""

        def pages() -> Iterator[dict[str, Any]]:
            paginator = self._client.get_paginator("list_objects_v2")
            yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix)

        def collect() -> list[tuple[str, float]]:
            found: list[tuple[str, float]] = []
            for page in pages():
                for item in page.get("Contents", []):
                    found.append((item["Key"], item["LastModified"].timestamp()))
            return found

        return await self.in_thread(collect, f"listing {prefix!r}")

    async def check(self) -> None:
        """Refuse a store that cannot serve: unreachable, wrong credentials, no bucket."""
        try:
            await anyio.to_thread.run_sync(
                functools.partial(self._client.head_bucket, Bucket=self.bucket)
            )
        except botocore.exceptions.NoCredentialsError:
            raise StorageError(
                "no credentials for the object store: set storage.access_key_id and "
                "storage.secret_access_key, or storage.profile"
            ) from None
        except botocore.exceptions.ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            where = self.settings.endpoint_url or "AWS S3"
            if status in (401, 403):
                raise StorageError(
                    f"the object store at {where} refused the credentials for bucket "
                    f"{self.bucket!r} ({error_code(exc) or status}): check "
                    "storage.access_key_id and storage.secret_access_key"
                ) from None
            if status == 404:
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist at {where}: create it first"
                ) from None
            raise translate(exc, f"bucket {self.bucket!r}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise translate(exc, f"bucket {self.bucket!r}") from None
