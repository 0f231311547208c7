"""Where the service keeps things in a storage driver. The only owner of the key layout:

blobs/<algorithm>/<first two hex>/<hex>
"""

from __future__ import annotations

from cargohold.domain.digest import Digest


def blob_key(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"
