"""What every front answers when a store the request needs cannot be reached: 503 with
`Retry-After`, in the front's own error shape, and a message that names which store without
its address (the details go to the log)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from cargohold.http.oci_errors import error_response
from cargohold.ports import MetadataUnavailable, Unavailable

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying.
RETRY_AFTER = "5"
HEADERS = {"Retry-After": RETRY_AFTER}


def unavailable_message(exc: Unavailable) -> str:
    log.warning("answering 503: %s", exc)
    what = "database" if isinstance(exc, MetadataUnavailable) else "blob store"
    return f"the registry's {what} cannot be reached for now; retry later"


def oci_unavailable(request: Request, exc: Unavailable) -> Response:
    """The answer in the `/v2/` shape (also for routes of no front: downloads, health)."""
    return error_response("UNAVAILABLE", unavailable_message(exc), 503, headers=HEADERS)
