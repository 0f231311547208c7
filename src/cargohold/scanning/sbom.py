"""An inventory as a CycloneDX 1.5 SBOM (JSON), the document attached to an image as an OCI
referrer with artifactType `application/vnd.cyclonedx+json`.

The document depends only on the image and its inventory (no timestamp; the serial number is
derived from both), so scanning an unchanged image again yields the same referrer digest.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from cargohold.domain.inventory import Inventory, purl

MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.5"


def cyclonedx(inventory: Inventory, *, image_name: str, image_digest: str) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if inventory.os is not None:
        components.append(
            {
                "type": "operating-system",
                "bom-ref": f"os:{inventory.os.id}@{inventory.os.version_id}",
                "name": inventory.os.id,
                "version": inventory.os.version_id,
                "description": inventory.os.pretty_name,
            }
        )
    seen: set[str] = set()
    for package in inventory.packages:
        ref = purl(package, inventory.os)
        if ref in seen:
            continue
        seen.add(ref)
        properties = [{"name": "cargohold:package:location", "value": package.location}]
        if package.source_name and (package.source_name, package.source_version) != (
            package.name,
            package.version,
        ):
            properties.append(
                {
                    "name": "cargohold:package:source",
                    "value": f"{package.source_name} {package.source_version or ''}".strip(),
                }
            )
        group, _, name = package.name.rpartition(":") if package.kind == "maven" else ("", "", "")
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref,
            "name": name or package.name,
            "version": package.version,
            "purl": ref,
            "properties": properties,
        }
        if group:
            component["group"] = group
        components.append(component)
    digest = hashlib.sha256(
        json.dumps([image_digest, inventory.to_json()], sort_keys=True).encode()
    ).hexdigest()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.UUID(digest[:32])}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "cargohold"}]},
            "component": {
                "type": "container",
                "bom-ref": image_digest,
                "name": image_name,
                "version": image_digest,
            },
        },
        "components": components,
    }


def cyclonedx_bytes(inventory: Inventory, *, image_name: str, image_digest: str) -> bytes:
    document = cyclonedx(inventory, image_name=image_name, image_digest=image_digest)
    return json.dumps(document, indent=2, sort_keys=True).encode()
