"""`docker-credential-cargohold`: the docker and podman credential-helper protocol.

`get` reads a server URL on standard input and answers `{"ServerURL", "Username": "AWS",
"Secret": <token>}` from the standard AWS credential chain (`cargohold.registry_tokens`);
`list` answers the hosts with a cached login; `store` accepts and keeps nothing (logins come
from AWS credentials, not from `docker login`); `erase` forgets the cached token. Errors go to
standard output with exit status 1, as the protocol has it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from cargohold.registry_tokens import USERNAME, RegistryTokens, TokenError, server_host

_USAGE = "usage: docker-credential-cargohold get|list|store|erase"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in ("get", "list", "store", "erase", "version"):
        print(_USAGE)
        return 1
    action = args[0]
    if action == "version":
        print("docker-credential-cargohold 1.0")
        return 0
    text = sys.stdin.read()
    try:
        if action == "get":
            return _get(text)
        if action == "erase":
            host = server_host(text)
            RegistryTokens().forget(host)
            return 0
        if action == "list":
            print(json.dumps({host: USERNAME for host in RegistryTokens().cached_hosts()}))
            return 0
        json.loads(text or "{}")  # store: a well-formed request, kept nowhere
        return 0
    except TokenError as exc:
        print(str(exc))
        return 1
    except ValueError:
        print("credentials request is not valid JSON")
        return 1


def _get(text: str) -> int:
    server = text.strip()
    if not server:
        print("credentials not found in native keychain")
        return 1
    host = server_host(server)
    token = RegistryTokens().token(host)
    print(json.dumps({"ServerURL": server, "Username": token.username, "Secret": token.password}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
