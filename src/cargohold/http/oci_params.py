"""What `/v2/` requests carry besides their path: Content-Length, Content-Range, and the
listings' `n` and `last`. Numbers are ASCII digits only (`str.isdigit` also accepts '²', which
`int` refuses) and no longer than 18 digits (`int` refuses more than 4,300)."""

from __future__ import annotations

import re

from starlette.requests import Request

from cargohold.domain.errors import BlobUploadInvalid, RegistryError, SizeInvalid

MAX_PAGE = 10_000
MAX_TAG = 128

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]{1,18})-([0-9]{1,18})(?:/(?:[0-9]+|\*))?$")


def ascii_number(value: str) -> int | None:
    """A decimal number of ASCII digits (`str.isdigit` also accepts '²'), else None."""
    if not value.isascii() or not value.isdigit() or len(value.lstrip("0")) > 18:
        return None
    return int(value)


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    number = ascii_number(value)
    if number is None:
        raise SizeInvalid(f"invalid Content-Length {value[:40]!r}")
    return number


def content_range(request: Request) -> tuple[int | None, int | None]:
    value = request.headers.get("content-range")
    if value is None:
        return None, None
    match = _CONTENT_RANGE.match(value.strip())
    if match is None:
        raise BlobUploadInvalid(f"invalid Content-Range {value[:60]!r}")
    return int(match.group(1)), int(match.group(2))


def page(
    request: Request, longest: int, invalid: type[RegistryError]
) -> tuple[int | None, str | None]:
    """`n` and `last`; a `last` longer than any name (or tag) or holding control characters
    could not have come from a listing and is refused with `invalid`."""
    n_text = request.query_params.get("n")
    last = request.query_params.get("last") or None
    if last is not None and (len(last) > longest or not last.isprintable()):
        raise invalid(f"invalid last {last[:longest]!r}")
    if n_text is None:
        return None, last
    if not n_text.isascii() or not n_text.isdigit():
        raise BadPagination(n_text[:40])
    n = ascii_number(n_text)
    return MAX_PAGE if n is None else min(n, MAX_PAGE), last


class BadPagination(Exception):
    """An `n` that is not a number of ASCII digits."""
