"""Pulling an image from the registry for a task, as the ECS agent does.

An image URI names this registry by one of its own host names: the host of its URL, or the
`<account>.dkr.ecr.<region>.amazonaws.com` form of an account it serves (any other host is
refused). Requests go to the registry's URL, with the image's host as `Host`, which is how the
registry tells accounts apart. The manifest (of this machine's platform, from an index) and
every blob are checked against their digests, and each layer's uncompressed bytes against the
config's `rootfs.diff_ids`, before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com", re.ASCII)
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_CHUNK = 1 << 20
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class PullError(Exception):
    """A pull that failed; `reason` is what ECS's stoppedReason says after
    `CannotPullContainerError: `."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageRef:
    host: str
    repository: str
    #: A tag or a digest.
    reference: str

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.host}/{self.repository}{sep}{self.reference}"


def parse_image(uri: str) -> ImageRef:
    host, slash, rest = uri.partition("/")
    if not slash or ("." not in host and ":" not in host and host != "localhost"):
        raise PullError(f"invalid reference format: {uri} names no registry host")
    if "@" in rest:
        repository, _, reference = rest.partition("@")
        if _DIGEST.fullmatch(reference) is None:
            raise PullError(f"invalid reference format: {uri}")
    else:
        repository, colon, reference = rest.rpartition(":")
        if not colon or "/" in reference:
            repository, reference = rest, "latest"
        if _TAG.fullmatch(reference) is None:
            raise PullError(f"invalid reference format: {uri}")
    if _NAME.fullmatch(repository) is None:
        raise PullError(f"invalid reference format: repository name must be lowercase: {uri}")
    return ImageRef(host, repository, reference)


def serves(image: ImageRef, endpoint_url: str, region: str) -> bool:
    """Whether the image's host names this registry."""
    own = urlsplit(endpoint_url).netloc
    if image.host == own:
        return True
    found = _ECR_HOST.fullmatch(image.host)
    if found is not None:
        return found.group(2) == region
    label, _, rest = image.host.partition(".")
    return (
        label.isdigit()
        and len(label) == 12
        and rest in (own, f"localhost:{own.rpartition(':')[2]}")
    )


@dataclass(frozen=True, slots=True)
class PulledImage:
    #: The manifest digest the registry resolved the reference to.
    digest: str
    config: dict[str, Any]
    #: Uncompressed layer tars, lowest first, each verified against its diff id.
    layers: tuple[Path, ...]


def _platform() -> tuple[str, str]:
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


class Puller:
    def __init__(self, endpoint_url: str, region: str, cache: Path) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._region = region
        self._cache = cache

    def pull(self, uri: str, token: str, *, layers: bool = True) -> PulledImage:
        """The manifest and config checked, and (with `layers`) every layer downloaded and
        checked. Raises PullError with ECS's words."""
        image = parse_image(uri)
        if not serves(image, self._endpoint, self._region):
            raise PullError(
                f'Error response from daemon: Get "https://{image.host}/v2/": '
                "the host is not a name of this registry"
            )
        headers = {"Host": image.host}
        with httpx.Client(
            base_url=self._endpoint,
            headers=headers,
            auth=httpx.BasicAuth("AWS", token),
            timeout=60.0,
        ) as client:
            digest, manifest = self._manifest(client, image, image.reference)
            config_blob = self._blob(client, image, manifest["config"]["digest"])
            config = json.loads(config_blob.read_bytes())
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            found = manifest.get("layers") or []
            if len(diff_ids) != len(found):
                raise PullError(
                    f"image {image} has {len(found)} layers but {len(diff_ids)} diff ids"
                )
            paths = tuple(
                self._layer(client, image, layer, diff_id)
                for layer, diff_id in zip(found, diff_ids, strict=True)
                if layers
            )
        return PulledImage(digest, config, paths)

    def _get(self, client: httpx.Client, image: ImageRef, path: str, accept: str) -> httpx.Response:
        try:
            response = client.get(f"/v2/{image.repository}/{path}", headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise PullError(
                f'Error response from daemon: Get "{self._endpoint}/v2/": {exc}'
            ) from None
        if response.status_code in (401, 403):
            message = _error_message(response)
            raise PullError(
                f"Error response from daemon: pull access denied for {image.host}/"
                f"{image.repository}, repository does not exist or may require 'docker login': "
                f"denied: {message}"
            )
        if response.status_code == 404:
            raise PullError(
                f"Error response from daemon: manifest for {image} not found: manifest unknown: "
                "Requested image not found"
            )
        if response.status_code != 200:
            raise PullError(
                f"Error response from daemon: {response.status_code} {_error_message(response)}"
            )
        return response

    def _manifest(
        self, client: httpx.Client, image: ImageRef, reference: str
    ) -> tuple[str, dict[str, Any]]:
        accept = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
        response = self._get(client, image, f"manifests/{reference}", accept)
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        claimed = response.headers.get("Docker-Content-Digest", digest)
        expected = reference if reference.startswith("sha256:") else claimed
        if digest != expected or claimed != digest:
            raise PullError(f"manifest of {image}: digest mismatch: {digest} is not {expected}")
        document = json.loads(response.content)
        if document.get("mediaType") in INDEX_TYPES or "manifests" in document:
            os_name, arch = _platform()
            for child in document.get("manifests") or []:
                found = child.get("platform") or {}
                if found.get("os") == os_name and found.get("architecture") == arch:
                    _, manifest = self._manifest(client, image, child["digest"])
                    return digest, manifest
            raise PullError(
                f"no matching manifest for {os_name}/{arch} in the manifest list entries"
            )
        return digest, document

    def _blob(self, client: httpx.Client, image: ImageRef, digest: str) -> Path:
        if _DIGEST.fullmatch(digest) is None:
            raise PullError(f"unsupported digest {digest}")
        target = self._cache / "blobs" / digest.replace(":", "-")
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            try:
                with client.stream("GET", f"/v2/{image.repository}/blobs/{digest}") as response:
                    if response.status_code != 200:
                        response.read()
                        self._raise_for(image, response)
                    for chunk in response.iter_bytes(_CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
            except httpx.HTTPError as exc:
                Path(out.name).unlink()
                raise PullError(f"Error response from daemon: {exc}") from None
            except PullError:
                Path(out.name).unlink()
                raise
        if "sha256:" + hasher.hexdigest() != digest:
            Path(out.name).unlink()
            raise PullError(f"blob {digest} of {image}: digest mismatch")
        Path(out.name).replace(target)
        return target

    def _raise_for(self, image: ImageRef, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise PullError(
                f"Error response from daemon: pull access denied for {image.host}/"
                f"{image.repository}: denied: {_error_message(response)}"
            )
        raise PullError(
            f"Error response from daemon: {response.status_code} {_error_message(response)}"
        )

    def _layer(
        self, client: httpx.Client, image: ImageRef, layer: dict[str, Any], diff_id: str
    ) -> Path:
        target = self._cache / "layers" / diff_id.replace(":", "-")
        if target.exists():
            return target
        blob = self._blob(client, image, layer["digest"])
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        with (
            blob.open("rb") as source,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out,
        ):
            for chunk in _uncompressed(source, str(layer.get("mediaType", ""))):
                hasher.update(chunk)
                out.write(chunk)
        if "sha256:" + hasher.hexdigest() != diff_id:
            Path(out.name).unlink()
            raise PullError(f"layer {layer['digest']} of {image}: diff id mismatch")
        Path(out.name).replace(target)
        return target


def _uncompressed(source: BinaryIO, media_type: str) -> Iterator[bytes]:
    head = source.read(2)
    source.seek(0)
    if head == b"\x1f\x8b":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while chunk := source.read(_CHUNK):
            yield decompressor.decompress(chunk)
        yield decompressor.flush()
        return
    if media_type.endswith("+zstd"):
        raise PullError("zstd-compressed layers are not supported")
    while chunk := source.read(_CHUNK):
        yield chunk


def _error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return str(errors[0].get("message") or errors[0].get("code"))
    except (ValueError, AttributeError, IndexError, TypeError):
        return response.reason_phrase


__all__ = ["ImageRef", "PullError", "PulledImage", "Puller", "parse_image", "serves"]
