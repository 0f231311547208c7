"""`cargohold kubelet-credential-provider`: the kubelet image credential provider plugin.

The kubelet writes a `CredentialProviderRequest` (`credentialprovider.kubelet.k8s.io/v1`, or
v1beta1) with the image to pull on standard input, and reads a `CredentialProviderResponse`:
the registry token of the node's AWS credentials for the image's host, with a
`cacheDuration` that ends when the token stops being used (`cargohold.registry_tokens`).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from cargohold.registry_tokens import REFRESH_BEFORE, RegistryTokens, TokenError, server_host

API_VERSIONS = (
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
)


def go_duration(seconds: float) -> str:
    """A duration as Go's `time.Duration` prints it (`11h45m0s`)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def respond(request: dict[str, Any], tokens: RegistryTokens) -> dict[str, Any]:
    version = request.get("apiVersion")
    if version not in API_VERSIONS or request.get("kind") != "CredentialProviderRequest":
        raise ValueError(f"not a CredentialProviderRequest: {version} {request.get('kind')}")
    image = str(request.get("image") or "")
    host = server_host(image.split("/", 1)[0]) if "/" in image else ""
    if not host:
        raise ValueError(f"image {image!r} names no registry host")
    token = tokens.token(host)
    return {
        "apiVersion": version,
        "kind": "CredentialProviderResponse",
        "cacheKeyType": "Registry",
        "cacheDuration": go_duration(token.expires_at - time.time() - REFRESH_BEFORE),
        "auth": {host: {"username": token.username, "password": token.password}},
    }


def run(stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    try:
        response = respond(json.loads(stdin.read()), RegistryTokens())
    except (ValueError, TokenError) as exc:
        print(f"cargohold kubelet-credential-provider: {exc}", file=stderr)
        return 1
    json.dump(response, stdout)
    stdout.write("\n")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "kubelet-credential-provider",
        help="kubelet image credential provider: registry tokens from the node's AWS role",
    )
    parser.set_defaults(func=lambda args: run(sys.stdin, sys.stdout, sys.stderr))
