"""Fuzzing a live server: requests generated with `hypothesis`, sent, and every answer of 500 or
more (or no answer in time) recorded with the request that caused it.

Two families of requests:

- AWS calls on `POST /`, one operation at a time, generated from botocore's model of the service
  (ECR speaks JSON 1.1, IAM and STS the Query protocol): valid parameters, and parameters gone
  wrong (wrong types, out-of-range lengths, unknown members, huge and deeply nested values, NUL
  bytes and non-ASCII digits). Each is signed with botocore's SigV4 signer as one of the
  principals the fuzzer was given (the administrator, a user without any policy), or not signed.
- `/v2/` requests: methods, repository names, references, digests, `Range`, `Content-Range`,
  `Content-Type`, query parameters and bodies, with the registry token, a wrong one or none.

The suite (tests/fuzz/) runs a few hundred of each; `bench/fuzz.py` runs as many as it is told.
Both use `Fuzzer`, which keeps the tally (`Tally`) and the failures (`Failure`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import OperationModel, ServiceModel, Shape
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from support.server import RegistryServer

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
#: How much of a request's and an answer's body a failure keeps.
KEPT = 400
#: Deepest nesting of a model's shapes the generator follows.
MAX_DEPTH = 5


# -- what the fuzzer knows about the server ------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who signs a request: a key and its secret, or nobody (`key` None: the request goes
    unsigned)."""

    name: str
    key: str | None = None
    secret: str | None = field(default=None, repr=False)

    @property
    def credentials(self) -> Credentials | None:
        return None if self.key is None else Credentials(self.key, self.secret or "")


@dataclass(frozen=True)
class Known:
    """Values that exist on the server, so that generated calls get past "not found": member
    names (lower case) to the values a call may name, and the `/v2/` registry token."""

    values: Mapping[str, Sequence[Any]]
    repositories: Sequence[str]
    tags: Sequence[str]
    digests: Sequence[str]
    manifests: Sequence[bytes]
    token: str = field(repr=False)
    #: Presigned layer downloads (path and query), as GetDownloadUrlForLayer answers them.
    downloads: Sequence[str] = ()

    def for_member(self, name: str) -> Sequence[Any]:
        return self.values.get(name.lower(), ())


class Raw:
    """A fragment of request text sent as it is (a JSON value too deep to build as Python)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'…' if len(self.text) > 40 else ''} {len(self.text)} chars)"


def nested(depth: int, opening: str = "[", closing: str = "]") -> Raw:
    return Raw(opening * depth + closing * depth)


def nested_objects(depth: int) -> Raw:
    return Raw('{"a":' * depth + "1" + "}" * depth)


# -- one request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzRequest:
    """A request before it is signed; `label` says what it exercised (`ecr:PutImage`,
    `GET /v2/<name>/blobs/<digest>`), to group failures by."""

    label: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: The principal that signs it (by name), and the SigV4 service it is signed for.
    signer: str | None = None
    service: str | None = None
    #: For `/v2/` requests: which of the upload sessions opened so far `{upload}` names.
    pick: int = 0


@dataclass
class Failure:
    """An answer of 500 or more, or none in time (`status` 0), with what caused it."""

    label: str
    method: str
    path: str
    status: int
    request_headers: dict[str, str]
    request_body: str
    answer: str
    signer: str | None = None

    @classmethod
    def of(
        cls, request: FuzzRequest, path: str, status: int, answer: str, headers: Mapping[str, str]
    ) -> Failure:
        kept = {
            k: v[:KEPT]
            for k, v in headers.items()
            if k.lower() not in {"authorization", "x-amz-security-token"}
        }
        return cls(
            label=request.label,
            method=request.method,
            path=path[:KEPT],
            status=status,
            request_headers=kept,
            request_body=request.body[:KEPT].decode("utf-8", "backslashreplace"),
            answer=answer[:KEPT],
            signer=request.signer,
        )


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    #: The statuses each label (operation, route) got.
    labels: dict[str, Counter[int]] = field(default_factory=dict)

    def count(self, label: str, status: int) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.labels.setdefault(label, Counter())[status] += 1

    def succeeded(self, prefix: str) -> set[str]:
        """The labels starting with `prefix` that got at least one 2xx answer."""
        return {
            label
            for label, statuses in self.labels.items()
            if label.startswith(prefix) and any(200 <= s < 300 for s in statuses)
        }

    @property
    def server_errors(self) -> int:
        return len(self.failures)

    def by_label(self) -> Counter[str]:
        return Counter(f"{f.status} {f.label}" for f in self.failures)

    def summary(self, limit: int = 40) -> str:
        lines = [
            f"{self.requests} requests, {self.server_errors} answers >= 500 or timeouts, "
            f"{self.seconds:.1f} s; statuses {dict(sorted(self.statuses.items()))}"
        ]
        for label, count in self.by_label().most_common(limit):
            example = next(f for f in self.failures if f"{f.status} {f.label}" == label)
            lines.append(
                f"  {count:5d} x {label}: {example.method} {example.path[:120]} "
                f"body={example.request_body[:160]!r} -> {example.answer[:160]!r}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "server_errors": self.server_errors,
            "seconds": round(self.seconds, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures_by_label": dict(self.by_label().most_common()),
            "statuses_by_label": {
                label: {str(k): v for k, v in sorted(statuses.items())}
                for label, statuses in sorted(self.labels.items())
            },
            "failures": [asdict(f) for f in self.failures],
        }


# -- sending -------------------------------------------------------------------------------------


class Fuzzer:
    """Signs and sends `FuzzRequest`s to one server, counting answers and keeping failures."""

    def __init__(
        self,
        url: str,
        principals: Sequence[Principal],
        *,
        region: str = "us-east-1",
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.principals = {p.name: p for p in principals}
        self.region = region
        self.tally = Tally()
        self.uploads: list[str] = []
        self._client = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fuzzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: FuzzRequest) -> int:
        """Send one request; its status (0: no answer in time, or the connection failed)."""
        path = request.path
        if "{upload}" in path:
            upload = self.uploads[request.pick % len(self.uploads)] if self.uploads else "none"
            path = path.replace("{upload}", upload)
        headers = dict(request.headers)
        if request.signer is not None:
            headers = self._signed(request, path, headers)
        started = time.monotonic()
        try:
            answer = self._client.request(
                request.method,
                self.url + path,
                headers=_encoded(headers),
                content=request.body,
            )
            status, text = answer.status_code, answer.text
            location = answer.headers.get("location", "")
            if status == 202 and "/blobs/uploads/" in location:
                self.uploads.append(urllib.parse.urlsplit(location).path.rsplit("/", 1)[-1])
                del self.uploads[:-50]
        except httpx.LocalProtocolError:
            # Not sendable at all (a header h11 refuses): nothing reached the server.
            self.tally.statuses[-1] += 1
            return -1
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        self.tally.seconds += time.monotonic() - started
        self.tally.count(request.label, status)
        if status == 0 or status >= 500:
            self.tally.failures.append(Failure.of(request, path, status, text, headers))
        return status

    def _signed(self, request: FuzzRequest, path: str, headers: dict[str, str]) -> dict[str, str]:
        principal = self.principals[request.signer or ""]
        credentials = principal.credentials
        if credentials is None:
            return headers
        aws = AWSRequest(
            method=request.method, url=self.url + path, data=request.body, headers=headers
        )
        SigV4Auth(credentials, request.service or "ecr", self.region).add_auth(aws)
        return dict(aws.headers.items())

    def run(self, strategy: st.SearchStrategy[FuzzRequest], count: int, *, seed_: int) -> None:
        """Send `count` requests drawn from `strategy` (fewer if it has fewer distinct ones)."""
        run_examples(strategy, count, self.send, seed_=seed_)


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Header values as UTF-8 bytes: httpx would refuse non-ASCII text."""
    return [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in headers.items()]


def run_examples(
    strategy: st.SearchStrategy[Any], count: int, action: Callable[[Any], object], *, seed_: int
) -> None:
    """`action` on `count` values drawn from `strategy`; no shrinking, no example database."""
    if count <= 0:
        return

    @seed(seed_)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def each(value: Any) -> None:
        action(value)

    each()


# -- values of a model's shapes ------------------------------------------------------------------

_WEIRD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "²",
    "١٢٣",
    "../../etc/passwd",
    "%00",
    "\ud800",
    "☃" * 10,
    "a" * 256,
    "*",
    "arn:aws:ecr:us-east-1:123456789012:repository/*",
    "null",
    "-1",
    "1e309",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
]


def bad_values() -> st.SearchStrategy[Any]:
    """Values of the wrong type, size or depth, whatever the shape expected."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(_WEIRD_STRINGS),
        st.text(max_size=30),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
        st.integers(min_value=1_000, max_value=400_000).map(lambda n: "A" * n),
        st.integers(min_value=50, max_value=100_000).map(nested),
        st.integers(min_value=50, max_value=50_000).map(nested_objects),
    )


def _string_length(shape: Shape) -> tuple[int, int]:
    low = int(shape.metadata.get("min", 0))
    high = int(shape.metadata.get("max", max(low, 64)))
    return low, max(low, min(high, 64))


def _documents(name: str) -> st.SearchStrategy[str]:
    """Policy-like JSON documents: valid ones, and some that are not."""
    statement = st.fixed_dictionaries(
        {
            "Effect": st.sampled_from(["Allow", "Deny", "Maybe"]),
            "Action": st.sampled_from(["*", "ecr:*", "iam:GetUser", ["ecr:BatchGetImage"], 5]),
            "Resource": st.sampled_from(["*", "arn:aws:ecr:us-east-1:123456789012:repository/*"]),
        },
        optional={
            "Principal": st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["123456789012"]}]),
            "Sid": st.text(max_size=8),
            "Condition": st.just({"StringEquals": {"aws:username": "x"}}),
        },
    )
    document = st.fixed_dictionaries(
        {"Version": st.sampled_from(["2012-10-17", "2008-10-17", "x"]), "Statement": statement}
    ).map(json.dumps)
    lifecycle = st.just(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    deep = st.integers(min_value=50, max_value=100_000).map(lambda n: "[" * n + "]" * n)
    return st.one_of(document, lifecycle, deep, st.text(max_size=20))


class ShapeValues:
    """Strategies for the values of a model's shapes, valid or not, using `known` values for
    members that name things on the server."""

    def __init__(self, known: Known) -> None:
        self.known = known
        self._cache: dict[tuple[str, str, int, bool], st.SearchStrategy[Any]] = {}

    def of(self, shape: Shape, member: str = "", depth: int = 0, *, fuzz: bool) -> Any:
        key = (shape.name, member, depth, fuzz)
        if key not in self._cache:
            valid = self._valid(shape, member, depth, fuzz=fuzz)
            self._cache[key] = st.one_of(valid, valid, valid, bad_values()) if fuzz else valid
        return self._cache[key]

    def _valid(self, shape: Any, member: str, depth: int, *, fuzz: bool) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, depth, fuzz=fuzz)
        if kind == "list":
            if depth >= MAX_DEPTH:
                return st.just([])
            inner = self.of(shape.member, member, depth + 1, fuzz=fuzz)
            high = min(int(shape.metadata.get("max", 3)), 3)
            low = min(int(shape.metadata.get("min", 0)), high)
            return st.lists(inner, min_size=low, max_size=high)
        if kind == "map":
            if depth >= MAX_DEPTH:
                return st.just({})
            return st.dictionaries(
                self.of(shape.key, "", depth + 1, fuzz=fuzz),
                self.of(shape.value, "", depth + 1, fuzz=fuzz),
                max_size=3,
            )
        if kind == "string":
            return self._string(shape, member, fuzz=fuzz)
        if kind in ("integer", "long"):
            least = shape.metadata.get("min")
            most = shape.metadata.get("max")
            return st.integers(
                min_value=int(least) if least is not None else -(2**31),
                max_value=int(most) if most is not None else 2**31,
            )
        if kind == "boolean":
            return st.booleans()
        if kind in ("float", "double"):
            return st.floats(allow_nan=False, allow_infinity=False)
        if kind == "timestamp":
            return st.integers(min_value=0, max_value=4_000_000_000)
        if kind == "blob":
            return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
        return st.none()

    def _structure(self, shape: Any, depth: int, *, fuzz: bool) -> Any:
        if depth > MAX_DEPTH:
            return st.just({})
        members = shape.members
        required = set(shape.required_members)
        fixed = {
            name: self.of(members[name], name, depth + 1, fuzz=fuzz)
            for name in members
            if name in required
        }
        optional = {
            name: self.of(members[name], name, depth + 1, fuzz=fuzz)
            for name in members
            if name not in required
        }
        structure = st.fixed_dictionaries(fixed, optional=optional)
        if not fuzz:
            return structure
        unknown = st.dictionaries(st.text(min_size=1, max_size=12), bad_values(), max_size=2)
        return st.one_of(
            structure,
            st.tuples(structure, unknown).map(lambda pair: {**pair[1], **pair[0]}),
            # a required member missing
            structure.flatmap(
                lambda value: st.sampled_from(sorted(value) or [""]).map(
                    lambda drop: {k: v for k, v in value.items() if k != drop}
                )
            ),
        )

    def _string(self, shape: Any, member: str, *, fuzz: bool) -> Any:
        """Valid: a known value, a document, else what the model's pattern matches; fuzzed:
        any text too."""
        enum = shape.enum
        if enum:
            return st.sampled_from(list(enum))
        lowered = member.lower()
        known = self.known.for_member(member)
        low, high = _string_length(shape)
        likely: list[st.SearchStrategy[Any]] = []
        if known:
            likely.append(st.sampled_from(list(known)))
        if lowered.endswith(("document", "policy", "policytext")):
            likely.append(_documents(member))
        if lowered == "imagemanifest" and self.known.manifests:
            likely.append(st.sampled_from([m.decode() for m in self.known.manifests]))
        matching = _matching(shape.metadata.get("pattern"), low, high)
        if not likely:
            likely.append(matching)
        if not fuzz:
            return st.one_of(*likely)
        plain = st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
            min_size=low,
            max_size=high,
        )
        names = st.from_regex(r"[a-z][a-z0-9._/-]{0,30}", fullmatch=True)
        return st.one_of(*likely, *likely, matching, plain, names)


def _matching(pattern: str | None, low: int, high: int) -> st.SearchStrategy[str]:
    """Strings of `low` to `high` characters that Python reads `pattern` (a Java regex) to
    match; any such text if it does not compile."""
    text = st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        min_size=max(low, 1),
        max_size=high,
    )
    if not pattern:
        return text
    try:
        compiled = re.compile(pattern)
    except re.error:
        return text
    return st.from_regex(compiled, fullmatch=True).filter(lambda v: low <= len(v) <= high * 4)


# -- AWS calls -----------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    """JSON text of `value`, with `Raw` fragments as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        members = (f"{json.dumps(str(k))}:{_json_text(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(value)


def _query_scalar(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _json_text(value)
    return str(value)


def _flatten(prefix: str, value: Any, shape: Any, out: list[tuple[str, str]]) -> None:
    """The Query protocol's form fields of `value` (IAM and STS lists are not flattened)."""
    kind = shape.type_name if shape is not None else None
    if isinstance(value, dict) and kind == "structure":
        assert shape is not None
        for name, item in value.items():
            inner = shape.members.get(name)
            wire = inner.serialization.get("name", name) if inner is not None else str(name)
            _flatten(f"{prefix}.{wire}" if prefix else wire, item, inner, out)
    elif isinstance(value, dict) and kind == "map":
        assert shape is not None
        for n, (k, v) in enumerate(value.items(), 1):
            _flatten(f"{prefix}.entry.{n}.key", k, shape.key, out)
            _flatten(f"{prefix}.entry.{n}.value", v, shape.value, out)
    elif isinstance(value, list) and kind == "list":
        assert shape is not None
        if not value:
            out.append((prefix, ""))
        for n, item in enumerate(value, 1):
            _flatten(f"{prefix}.member.{n}", item, shape.member, out)
    elif isinstance(value, dict):
        for name, item in value.items():
            _flatten(f"{prefix}.{name}" if prefix else str(name), item, None, out)
    elif isinstance(value, list):
        for n, item in enumerate(value, 1):
            _flatten(f"{prefix}.member.{n}", item, None, out)
    else:
        out.append((prefix or "x", _query_scalar(value)))


def _form(pairs: Sequence[tuple[str, str]]) -> bytes:
    return "&".join(
        f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='', errors='surrogatepass')}"
        for k, v in pairs
    ).encode("utf-8", "surrogatepass")


def aws_body(model: ServiceModel, operation: OperationModel, params: Any) -> tuple[str, bytes]:
    """The content type and body of a call of `operation` with `params`."""
    if model.protocol == "json":
        body = _json_text(params).encode("utf-8", "surrogatepass")
        return JSON_CONTENT_TYPE, body
    pairs: list[tuple[str, str]] = [("Action", operation.name), ("Version", model.api_version)]
    _flatten("", params, operation.input_shape, pairs)
    return FORM_CONTENT_TYPE, _form(pairs)


def aws_requests(
    model: ServiceModel,
    operation: str,
    values: ShapeValues,
    signers: Sequence[str],
) -> st.SearchStrategy[FuzzRequest]:
    """Calls of `operation`, valid or not, signed by one of `signers`."""
    op = model.operation_model(operation)
    shape = op.input_shape
    if shape is None:
        params: st.SearchStrategy[Any] = st.just({})
        fuzzed: st.SearchStrategy[Any] = st.dictionaries(st.text(max_size=8), bad_values())
    else:
        params = values.of(shape, fuzz=False)
        fuzzed = values.of(shape, fuzz=True)
    garbage = st.one_of(
        bad_values(),
        st.binary(max_size=64).map(lambda b: Raw(b.decode("latin-1"))),
    )
    label = f"{model.signing_name}:{operation}"

    def build(choice: tuple[Any, str]) -> FuzzRequest:
        value, signer = choice
        content_type, body = aws_body(model, op, value)
        headers = [("Content-Type", content_type)]
        if model.protocol == "json":
            prefix = model.metadata["targetPrefix"]
            headers.append(("X-Amz-Target", f"{prefix}.{operation}"))
        return FuzzRequest(
            label=label,
            method="POST",
            path="/",
            headers=tuple(headers),
            body=body,
            signer=signer,
            service=model.signing_name,
        )

    kinds = {"valid": params, "fuzzed": fuzzed, "garbage": garbage}
    chosen = st.sampled_from(["valid"] * 4 + ["fuzzed"] * 4 + ["garbage"] * 2).flatmap(
        lambda kind: kinds[kind]
    )
    return st.tuples(chosen, st.sampled_from(list(signers))).map(build)


# -- /v2/ ----------------------------------------------------------------------------------------

#: Methods sent to routes that may not serve them (one request in five).
_METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "FUZZ"]
_MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/octet-stream",
    "application/json",
    "text/plain; charset=\x7f",
    "",
    "*/*",
]


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="/:@", errors="surrogatepass")


def _digests(known: Known) -> st.SearchStrategy[str]:
    existing = st.sampled_from(list(known.digests) or ["sha256:" + "0" * 64])
    return st.one_of(
        existing,
        existing,
        existing,
        st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
        st.binary(min_size=64, max_size=64).map(lambda b: "sha512:" + b.hex()),
        st.sampled_from(
            ["sha256:", "sha256:abc", "SHA256:" + "A" * 64, "md5:00", "sha256:" + "g" * 64, "²"]
        ),
        st.text(max_size=80),
    )


def _names(known: Known) -> st.SearchStrategy[str]:
    existing = st.sampled_from([known.repositories[0], *known.repositories])
    return st.one_of(
        existing,
        existing,
        existing,
        st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,3}", fullmatch=True),
        st.sampled_from(["a\x00b", "A", "..", "a//b", "a/../b", "_catalog", "x" * 300, "²"]),
        st.text(min_size=1, max_size=30),
    )


def _ranges() -> st.SearchStrategy[str]:
    number = st.integers(min_value=-5, max_value=2**65)
    return st.one_of(
        st.tuples(number, number).map(lambda p: f"bytes={p[0]}-{p[1]}"),
        st.tuples(number, number).map(lambda p: f"{p[0]}-{p[1]}"),
        number.map(lambda n: f"bytes=-{n}"),
        number.map(lambda n: f"bytes={n}-"),
        st.sampled_from(["bytes=0-0,5-9", "bytes=500-0", "bytes=²-3", "bytes", "items=0-1"]),
        st.text(max_size=20),
    )


def _bodies(known: Known) -> st.SearchStrategy[bytes]:
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": (known.digests or ["sha256:" + "0" * 64])[0],
        "size": 1,
    }
    manifest = st.fixed_dictionaries(
        {
            "schemaVersion": st.sampled_from([2, 1, "2", None]),
            "mediaType": st.sampled_from(_MEDIA_TYPES),
        },
        optional={
            "config": st.sampled_from([layer, {}, None, "x"]),
            "layers": st.lists(st.sampled_from([layer, {}, 1]), max_size=3),
            "manifests": st.lists(st.sampled_from([layer, {"digest": "x"}]), max_size=3),
            "subject": st.sampled_from([layer, {"digest": "sha256:" + "1" * 64, "size": -1}]),
            "annotations": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        },
    )
    return st.one_of(
        st.just(b""),
        st.binary(max_size=200),
        st.sampled_from(list(known.manifests) or [b"{}"]),
        manifest.map(lambda m: json.dumps(m).encode()),
        st.integers(min_value=50, max_value=200_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=50, max_value=50_000).map(
            lambda n: b'{"schemaVersion":2,"layers":' + b"[" * n + b"]" * n + b"}"
        ),
        st.integers(min_value=10_000, max_value=2_000_000).map(lambda n: b"x" * n),
    )


def _paths(known: Known) -> st.SearchStrategy[tuple[str, str, tuple[str, ...]]]:
    """(label, path, the methods the route serves) of `/v2/` routes, their parameters
    generated."""
    name = _names(known).map(_quote)
    reference = st.one_of(
        st.sampled_from(list(known.tags) or ["latest"]),
        _digests(known),
        st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True),
        st.sampled_from([".INVALID_MANIFEST_NAME", "-x", "a" * 200, "\x00"]),
    ).map(lambda r: _quote(r).replace("/", "%2F"))
    digest = _digests(known).map(lambda d: _quote(d).replace("/", "%2F"))
    number = st.one_of(
        st.integers(min_value=-3, max_value=2**64).map(str),
        st.sampled_from(["²", "١", "", "0x10", "1e3", " 5", "99999999999999999999999"]),
    )
    text = st.text(max_size=20).map(lambda t: urllib.parse.quote(t, errors="surrogatepass"))

    def query(pairs: dict[str, str]) -> str:
        return ("?" + "&".join(f"{k}={v}" for k, v in pairs.items())) if pairs else ""

    listing = st.fixed_dictionaries({}, optional={"n": number, "last": text}).map(query)
    upload_query = st.fixed_dictionaries(
        {}, optional={"digest": digest, "mount": digest, "from": name}
    ).map(query)
    upload = st.one_of(
        st.just("{upload}"),
        st.uuids().map(str),
        st.text(max_size=40).map(lambda t: _quote(t).replace("/", "%2F")),
    )
    read, write = ("GET", "HEAD"), ("PUT", "DELETE")
    return st.one_of(
        st.just(("/v2/", "/v2/", read)),
        listing.map(lambda q: ("/v2/_catalog", "/v2/_catalog" + q, read)),
        st.tuples(name, listing).map(lambda p: ("tags/list", f"/v2/{p[0]}/tags/list{p[1]}", read)),
        st.tuples(name, reference).map(
            lambda p: ("manifests", f"/v2/{p[0]}/manifests/{p[1]}", read + write)
        ),
        st.tuples(name, digest).map(
            lambda p: ("blobs", f"/v2/{p[0]}/blobs/{p[1]}", (*read, "DELETE"))
        ),
        st.tuples(name, upload_query).map(
            lambda p: ("uploads", f"/v2/{p[0]}/blobs/uploads/{p[1]}", ("POST",))
        ),
        st.tuples(name, upload, upload_query).map(
            lambda p: (
                "upload",
                f"/v2/{p[0]}/blobs/uploads/{p[1]}{p[2]}",
                ("GET", "PATCH", "PUT", "DELETE"),
            )
        ),
        st.tuples(name, digest, text).map(
            lambda p: ("referrers", f"/v2/{p[0]}/referrers/{p[1]}?artifactType={p[2]}", read)
        ),
        text.map(lambda t: ("other", f"/v2/{t}", read)),
        _downloads(known, name, digest, number, text).map(lambda p: ("download", p, read)),
    )


def _downloads(
    known: Known,
    name: st.SearchStrategy[str],
    digest: st.SearchStrategy[str],
    number: st.SearchStrategy[str],
    text: st.SearchStrategy[str],
) -> st.SearchStrategy[str]:
    """Presigned layer downloads: as signed, with the expiry or signature changed, or made up."""
    signed = list(known.downloads) or ["/_download/123456789012/x/blobs/sha256:0"]

    def altered(parts: tuple[str, str, str]) -> str:
        url, expires, signature = parts
        path, _, query = url.partition("?")
        pairs = dict(p.partition("=")[::2] for p in query.split("&") if p)
        pairs["X-Cargohold-Expires"] = expires
        if signature:
            pairs["X-Cargohold-Signature"] = signature
        return path + "?" + "&".join(f"{k}={v}" for k, v in pairs.items())

    made_up = st.tuples(name, digest, number, text).map(
        lambda p: (
            f"/_download/123456789012/{p[0]}/blobs/{p[1]}"
            f"?X-Cargohold-Expires={p[2]}&X-Cargohold-Signature={p[3]}"
        )
    )
    return st.one_of(
        st.sampled_from(signed),
        st.tuples(st.sampled_from(signed), number, st.one_of(st.just(""), text)).map(altered),
        made_up,
    )


def v2_requests(known: Known) -> st.SearchStrategy[FuzzRequest]:
    """Random `/v2/` requests, with the registry token, a wrong one, or none."""
    token = base64.b64encode(f"AWS:{known.token}".encode()).decode()
    auth = st.sampled_from(
        [
            ("Authorization", f"Basic {token}"),
            ("Authorization", f"Basic {token}"),
            ("Authorization", f"Basic {token}"),
            ("Authorization", f"Bearer {known.token}"),
            ("Authorization", "Basic " + base64.b64encode(b"AWS:nope").decode()),
            ("Authorization", "Basic ²²²"),
            ("X-No-Auth", "1"),
        ]
    )
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Range": _ranges(),
            "Content-Range": _ranges(),
            "Content-Type": st.one_of(st.sampled_from(_MEDIA_TYPES), st.text(max_size=20)),
            "Accept": st.sampled_from([*_MEDIA_TYPES, ",".join(_MEDIA_TYPES)]),
        },
    ).map(lambda h: {k: v for k, v in h.items() if _header_safe(v)})

    def build(parts: tuple[Any, ...]) -> FuzzRequest:
        (route, path, served), any_method, choice, credential, extra, body, pick = parts
        method = served[choice % len(served)] if choice < 1000 else any_method
        return FuzzRequest(
            label=f"{method} {route}",
            method=method,
            path=path,
            headers=(credential, *extra.items()),
            body=b"" if method in ("GET", "HEAD") and len(body) > 1000 else body,
            pick=pick,
        )

    return st.tuples(
        _paths(known),
        st.sampled_from(_METHODS),
        st.integers(min_value=0, max_value=1250),
        auth,
        headers,
        _bodies(known),
        st.integers(min_value=0, max_value=1000),
    ).map(build)


def _header_safe(value: str) -> bool:
    """HTTP/1.1 carries no line break or NUL in a header value."""
    return not any(c in value for c in "\r\n\x00")


# -- a server made ready to be fuzzed ------------------------------------------------------------

#: Who signs the AWS calls: the administrator, a user without any policy, nobody, and the
#: administrator's key with a wrong secret.
SIGNERS = ("admin", "admin", "admin", "nobody", "nobody", "anonymous", "forged")
REPOSITORIES = ("fuzz/app", "fuzz/empty", "fuzz-other")
SERVICES = ("ecr", "sts", "iam", "ecs", "logs")


class ConfiguredServer(RegistryServer):
    """A `RegistryServer` whose server and administration commands read `config` (TOML), so
    that both use the database it names."""

    def __init__(self, root: Path, config: Path) -> None:
        super().__init__(root / "data", root / "server.log")
        self.config = config

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["CARGOHOLD_CONFIG"] = str(self.config)
        return env


def configured_server(root: Path, database_url: str) -> ConfiguredServer:
    """A server (not started) in `root` whose metadata lives at `database_url`."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "cargohold.toml"
    config.write_text(f"database_url = {json.dumps(database_url)}\n")
    return ConfiguredServer(root, config)


def served_operations(data_dir: str) -> dict[str, list[str]]:
    """The operations each AWS service serves, as a node opened on `data_dir` (SQLite) says."""
    import anyio

    from cargohold.app import Node
    from cargohold.config import load

    async def ask() -> dict[str, list[str]]:
        node = await Node.open(load(overrides={"data_dir": data_dir}, environ={}))
        try:
            return {name: sorted(node.aws.operations(name)) for name in SERVICES}
        finally:
            await node.close()

    return anyio.run(ask)


def _image() -> Any:
    """The image pushed to `fuzz/app:v1`."""
    from support.v2 import TinyImage

    return TinyImage.make("fuzz")


def _best_effort(call: Callable[..., object], **params: Any) -> None:
    from botocore.exceptions import ClientError

    # There already, or refused: the fuzzer names it all the same.
    with contextlib.suppress(ClientError):
        call(**params)


class Replenish:
    """Makes again what the fuzzer names and generated calls may have deleted or locked: users,
    group, role, policy, repositories (without policies), the image `fuzz/app:v1`."""

    def __init__(self, server: RegistryServer) -> None:
        self.server = server
        self.iam = server.iam_client()
        self.ecr = server.ecr_client()

    def __call__(self) -> None:
        from support.v2 import push_image

        iam, ecr = self.iam, self.ecr
        for user in ("fuzz-target", "fuzz-other"):
            _best_effort(iam.create_user, UserName=user)
        _best_effort(iam.create_group, GroupName="fuzz-group")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ],
        }
        _best_effort(
            iam.create_role, RoleName="fuzz-role", AssumeRolePolicyDocument=json.dumps(trust)
        )
        allow = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
        }
        _best_effort(iam.create_policy, PolicyName="fuzz-policy", PolicyDocument=json.dumps(allow))
        _best_effort(ecr.delete_registry_policy)
        for name in REPOSITORIES:
            _best_effort(ecr.create_repository, repositoryName=name)
            _best_effort(ecr.delete_repository_policy, repositoryName=name)
        with self.server.client() as client:
            push_image(client, "fuzz/app", "v1", _image())


def prepare(server: RegistryServer) -> tuple[list[Principal], Known]:
    """On a running `RegistryServer`: a user without policies, then what `replenish` makes;
    the principals and the values the fuzzer can name."""
    from support.v2 import push_image

    admin = server.admin_credentials()
    iam = server.iam_client()
    iam.create_user(UserName="fuzz-nobody")
    key = iam.create_access_key(UserName="fuzz-nobody")["AccessKey"]
    Replenish(server)()
    image = _image()
    with server.client() as client:
        answer = push_image(client, "fuzz/app", "v1", image)
        assert answer.status_code == 201, answer.text
    role = iam.get_role(RoleName="fuzz-role")
    account = role["Role"]["Arn"].split(":")[4]
    policy = {"Policy": {"Arn": f"arn:aws:iam::{account}:policy/fuzz-policy"}}
    repository_arns = [f"arn:aws:ecr:us-east-1:{account}:repository/{n}" for n in REPOSITORIES]
    values: dict[str, list[Any]] = {
        "registryid": [account],
        "repositoryname": list(REPOSITORIES),
        "repositorynames": list(REPOSITORIES),
        "imagetag": ["v1", "latest"],
        "imagedigest": [image.digest],
        "layerdigest": [image.layer_digest],
        "layerdigests": [image.layer_digest, sha256_of(image.config)],
        "resourcearn": repository_arns,
        "prefix": ["fuzz", "ROOT"],
        "username": ["fuzz-target", "fuzz-other", "absent-user"],
        "groupname": ["fuzz-group", "absent-group"],
        "rolename": ["fuzz-role", "absent-role"],
        "rolearn": [role["Role"]["Arn"]],
        "rolesessionname": ["fuzz-session"],
        "policyarn": [policy["Policy"]["Arn"], "arn:aws:iam::aws:policy/AdministratorAccess"],
        "policyname": ["fuzz-inline", "fuzz-policy"],
        "versionid": ["v1", "v2"],
        "accesskeyid": ["AKIAABSENTABSENT0000"],
        "name": ["BASIC_SCAN_TYPE_VERSION", "REGISTRY_POLICY_SCOPE"],
        "value": ["AWS_NATIVE", "V1", "V2"],
    }
    download = server.ecr_client().get_download_url_for_layer(
        repositoryName="fuzz/app", layerDigest=image.layer_digest
    )["downloadUrl"]
    parts = urllib.parse.urlsplit(download)
    known = Known(
        downloads=(f"{parts.path}?{parts.query}",),
        values=values,
        repositories=REPOSITORIES,
        tags=("v1", "latest"),
        digests=(image.digest, image.layer_digest, sha256_of(image.config)),
        manifests=(image.manifest,),
        token=server.login_password(),
    )
    principals = [
        Principal("admin", admin["AWS_ACCESS_KEY_ID"], admin["AWS_SECRET_ACCESS_KEY"]),
        Principal("nobody", key["AccessKeyId"], key["SecretAccessKey"]),
        Principal("anonymous"),
        Principal("forged", admin["AWS_ACCESS_KEY_ID"], "not-the-secret"),
    ]
    return principals, known


def sha256_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def fuzz_aws(
    fuzzer: Fuzzer,
    known: Known,
    operations: Mapping[str, Sequence[str]],
    per_operation: int,
    *,
    seed_: int,
    between: Callable[[], None] = lambda: None,
) -> None:
    """`per_operation` generated calls of every operation served; `between` after each
    operation that may delete or lock what the next ones name."""
    from cargohold.http.awsservice import service_model

    values = ShapeValues(known)
    for service, names in operations.items():
        model = service_model(service)
        for n, operation in enumerate(names):
            strategy = aws_requests(model, operation, values, SIGNERS)
            fuzzer.run(strategy, per_operation, seed_=seed_ + n)
            if operation.startswith(_DESTRUCTIVE):
                between()


_DESTRUCTIVE = ("Delete", "BatchDelete", "Put", "Set", "Update", "Remove", "Detach", "Untag")


def fuzz_v2(
    fuzzer: Fuzzer,
    known: Known,
    count: int,
    *,
    seed_: int,
    between: Callable[[], None] = lambda: None,
    chunk: int = 500,
) -> None:
    """`count` random `/v2/` requests, `between` after every `chunk` of them."""
    sent = 0
    while sent < count:
        size = min(chunk, count - sent)
        before = fuzzer.tally.requests
        fuzzer.run(v2_requests(known), size, seed_=seed_ + sent)
        between()
        drawn = fuzzer.tally.requests - before
        sent += max(drawn, 1)


def exceptions_in(log: str) -> Counter[str]:
    """The exceptions a server log's tracebacks end with (`RecursionError: maximum …`), counted."""
    found: Counter[str] = Counter()
    inside = False
    for line in log.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line.startswith((" ", "\t")):
            if not line.startswith(("The above exception", "During handling")):
                found[line[:200]] += 1
            inside = False
    return found


def server_answers(url: str, timeout: float = 5.0) -> int:
    """The status of `GET /v2/` (0: none in time)."""
    try:
        return httpx.get(url.rstrip("/") + "/v2/", timeout=timeout, trust_env=False).status_code
    except httpx.HTTPError:
        return 0
