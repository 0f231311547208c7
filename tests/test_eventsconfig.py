"""Webhook targets in the configuration: the file, the variables, validation, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cargohold.config import ConfigError, from_json, load, to_json
from cargohold.eventsconfig import EventsConfigError, WebhookConfig

FILE = """
[events]
retry_max_seconds = 5

[[events.webhooks]]
name = "ci"
url = "https://ci.example.com/hooks/ecr"
pattern = { source = ["aws.ecr"], detail-type = ["ECR Image Action"] }
secret_file = "{secret}"
timeout = 3

[[events.webhooks]]
name = "audit.all"
url = "http://127.0.0.1:9000/"
pattern = '{"detail": {"action-type": ["DELETE"]}}'
secret_env = "AUDIT_HOOK_SECRET"
"""


def write(tmp_path: Path, text: str) -> str:
    file = tmp_path / "cargohold.toml"
    file.write_text(text)
    return str(file)


def test_webhooks_from_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "ci.secret"
    secret.write_text("s3cret\n")
    config = load(config_file=write(tmp_path, FILE.replace("{secret}", str(secret))), environ={})
    ci, audit = config.events.webhooks
    assert config.events.retry_max_seconds == 5
    assert (ci.name, ci.url, ci.timeout) == ("ci", "https://ci.example.com/hooks/ecr", 3)
    assert json.loads(ci.pattern or "") == {
        "detail-type": ["ECR Image Action"],
        "source": ["aws.ecr"],
    }
    assert ci.read_secret({}) == b"s3cret"
    assert audit.timeout == 10.0
    assert audit.read_secret({"AUDIT_HOOK_SECRET": "other"}) == b"other"
    pattern = audit.event_pattern()
    assert pattern is not None and pattern.matches({"detail": {"action-type": "DELETE"}})
    assert from_json(to_json(config)) == config
    assert "s3cret" not in to_json(config)


def test_webhooks_from_the_environment() -> None:
    hooks = [{"name": "a", "url": "http://127.0.0.1:1/", "secret_env": "A_SECRET"}]
    config = load(
        environ={
            "CARGOHOLD_EVENTS_WEBHOOKS": json.dumps(hooks),
            "CARGOHOLD_EVENTS_RETRY_MAX_SECONDS": "2.5",
        }
    )
    assert [hook.name for hook in config.events.webhooks] == ["a"]
    assert config.events.webhooks[0].event_pattern() is None
    assert config.events.retry_max_seconds == 2.5
    assert from_json(to_json(config)) == config


def test_no_webhooks_by_default() -> None:
    assert load(environ={}).events.webhooks == ()


HOOK = {"name": "a", "url": "http://h/", "secret_env": "S"}


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ("not json", "events.webhooks is not JSON"),
        ({"name": "a"}, "must be an array of tables"),
        (["x"], r"events.webhooks\[0\] must be a table"),
        ([{**HOOK, "colour": "red"}], "unknown key 'colour'"),
        ([{**HOOK, "name": "has space"}], "name must be 1-64 letters"),
        ([{**HOOK, "name": ""}], "name must be 1-64 letters"),
        ([{**HOOK, "url": "ftp://h/"}], r"\(a\): url must be an http:// or https:// URL"),
        ([{**HOOK, "url": "http:///path"}], "url must be"),
        ([{**HOOK, "url": "http://h:port/"}], "url must be"),
        ([{**HOOK, "url": "http://user:pw@h/"}], "url must be"),
        ([{**HOOK, "pattern": {"source": "aws.ecr"}}], r"pattern: source: a leaf must be"),
        ([{**HOOK, "pattern": "{nope"}], "pattern: the pattern is not JSON"),
        ([{"name": "a", "url": "http://h/"}], "exactly one of secret_file and secret_env"),
        ([{**HOOK, "secret_file": "/x"}], "exactly one of secret_file and secret_env"),
        ([{**HOOK, "secret_env": "1BAD"}], "secret_env must name an environment variable"),
        ([{**HOOK, "timeout": 0}], "timeout must be more than 0"),
        ([{**HOOK, "timeout": "soon"}], "timeout must be a number"),
        ([HOOK, HOOK], "webhook names must differ: a"),
    ],
)
def test_mistakes_are_errors(hooks: object, message: str) -> None:
    text = hooks if isinstance(hooks, str) else json.dumps(hooks)
    with pytest.raises(ConfigError, match=message):
        load(environ={"CARGOHOLD_EVENTS_WEBHOOKS": text})


def test_other_mistakes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key events\.colour"):
        load(config_file=write(tmp_path, "[events]\ncolour = 1\n"), environ={})
    with pytest.raises(ConfigError, match=r"\[events\] must be a table"):
        load(config_file=write(tmp_path, "events = 1\n"), environ={})
    with pytest.raises(ConfigError, match="retry_max_seconds must be more than 0"):
        load(environ={"CARGOHOLD_EVENTS_RETRY_MAX_SECONDS": "0"})


def test_secrets_that_cannot_be_read(tmp_path: Path) -> None:
    missing = WebhookConfig("a", "http://h/", secret_file=str(tmp_path / "none"))
    with pytest.raises(EventsConfigError, match="cannot read secret_file"):
        missing.read_secret({})
    unset = WebhookConfig("a", "http://h/", secret_env="A_SECRET")
    with pytest.raises(EventsConfigError, match="A_SECRET is not set"):
        unset.read_secret({})
    (tmp_path / "empty").write_text("\n")
    empty = WebhookConfig("a", "http://h/", secret_file=str(tmp_path / "empty"))
    with pytest.raises(EventsConfigError, match="secret is empty"):
        empty.read_secret({})


def test_the_server_reads_every_secret_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [{"name": "a", "url": "http://h/", "secret_env": "A_HOOK_SECRET"}]
    config = load(environ={"CARGOHOLD_EVENTS_WEBHOOKS": json.dumps(hooks)})
    monkeypatch.delenv("A_HOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="A_HOOK_SECRET is not set"):
        config.webhook_secrets()
    monkeypatch.setenv("A_HOOK_SECRET", "shh")
    assert config.webhook_secrets() == {"a": b"shh"}


def test_events_variables_of_top_level_keys_stay_top_level() -> None:
    config = load(
        environ={
            "CARGOHOLD_EVENTS_RETENTION_SECONDS": "3600",
            "CARGOHOLD_EVENTS_RETRY_MAX_SECONDS": "7",
        }
    )
    assert config.events_retention_seconds == 3600
    assert config.events.retry_max_seconds == 7
