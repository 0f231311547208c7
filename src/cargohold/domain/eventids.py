"""Ids for requests and audit events, in the UUID form AWS gives them (`x-amzn-RequestId`,
CloudTrail's `eventID`), made without a system call.

Every `/v2/` request needs two of them. `uuid.uuid4()` reads 16 bytes from the kernel and
builds a UUID object for each, a measurable share of a manifest GET. Here a process draws 74
random bits once, and each id is that prefix followed by a 48-bit counter. Ids are unique within
a process by the counter and across processes and nodes by the prefix (a collision between two
processes needs their 74 random bits to agree). The prefix is drawn again in a forked child and
when the counter wraps. The ids are not secrets and need not be unpredictable: nothing grants
access by one.
"""

from __future__ import annotations

import itertools
import os
import secrets

_COUNTER_LIMIT = 1 << 48


class _Ids:
    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        bits = secrets.randbits(74)
        a, b, c, d = bits >> 42, (bits >> 26) & 0xFFFF, (bits >> 14) & 0xFFF, bits & 0x3FFF
        # The version (4) and variant (10xx) bits of a random UUID, so that parsers accept it.
        self._prefix = f"{a:08x}-{b:04x}-4{c:03x}-{0x8000 | d:04x}-"
        self._counter = itertools.count()

    def next(self) -> str:
        n = next(self._counter)
        if n >= _COUNTER_LIMIT:
            self.reseed()
            n = next(self._counter)
        return f"{self._prefix}{n:012x}"


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.reseed)


def new_id() -> str:
    """A new id, unique among all this registry's processes, in a random UUID's form."""
    return _IDS.next()
