"""What `background.py` builds from the configuration: here, the delivery of events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cargohold.background import build_event_delivery
from cargohold.config import ConfigError, load
from cargohold.metadata.store import MetadataStore

pytestmark = pytest.mark.anyio


async def test_event_delivery_is_built_only_for_configured_targets(tmp_path: Path) -> None:
    store = MetadataStore.from_url(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        assert build_event_delivery(load(environ={}), store, lambda: 0.0) is None
        (tmp_path / "secret").write_text("from-a-file\n")
        hooks = [
            {"name": "a", "url": "http://h/", "secret_file": str(tmp_path / "secret")},
            {
                "name": "b",
                "url": "https://h/",
                "secret_file": str(tmp_path / "secret"),
                "pattern": {"detail": {"action-type": ["DELETE"]}},
                "timeout": 2,
            },
        ]
        config = load(environ={"CARGOHOLD_EVENTS_WEBHOOKS": json.dumps(hooks)})
        delivery = build_event_delivery(config, store, lambda: 0.0)
        assert delivery is not None
        a, b = delivery.targets
        assert (a.name, a.url, a.secret, a.pattern, a.timeout) == (
            "a",
            "http://h/",
            b"from-a-file",
            None,
            10.0,
        )
        assert b.pattern is not None and b.wants({"detail": {"action-type": "DELETE"}})
        assert not b.wants({"detail": {"action-type": "PUSH"}})
        assert b.timeout == 2.0
        (tmp_path / "secret").unlink()
        with pytest.raises(ConfigError, match="cannot read secret_file"):
            build_event_delivery(config, store, lambda: 0.0)
    finally:
        await store.close()
