"""Swarm secrets and registry credentials as options: checked, masked, never written down."""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from pathlib import Path

import pytest

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import SessionConfig
from kstlib.ops.swarm.runner import SwarmRunner

VALUE = "v3ry-s3cr3t-value"


def _swarm(**options: object) -> SessionConfig:
    return SessionConfig(name="job", backend="swarm", image="r:5000/app:1", **options)  # type: ignore[arg-type]


def test_secret_values_are_masked_and_never_persisted() -> None:
    config = _swarm(secrets={"api_token": VALUE}, secret_refs=["db-password"])
    assert VALUE not in repr(config) and "api_token" in repr(config)
    assert config.secret_refs == ("db-password",)
    persisted = {f.name for f in fields(SessionConfig) if f.metadata.get("persist") is False}
    assert "secrets" in persisted


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"secrets": {"../etc": VALUE}}, "secrets"),
        ({"secrets": {"ok": ""}}, "secrets[ok]"),
        ({"secrets": {"ok": 5}}, "secrets[ok]"),
        ({"secrets": [VALUE]}, "secrets"),
        ({"secret_refs": ["bad name"]}, "secret_refs"),
        ({"secret_refs": ["a", "a"]}, "secret_refs"),
        ({"with_registry_auth": "yes"}, "with_registry_auth"),
    ],
)
def test_bad_secret_options_are_config_errors_that_never_show_a_value(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(SessionConfigError) as caught:
        _swarm(**options)
    assert caught.value.field == field
    assert VALUE not in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [{"secrets": {"token": VALUE}}, {"secret_refs": ["x"]}, {"with_registry_auth": True}],
)
def test_swarm_only_options_are_refused_elsewhere_without_showing_a_value(
    options: dict[str, object],
) -> None:
    with pytest.raises(SessionConfigError, match="needs a swarm service") as caught:
        SessionConfig(name="job", backend="container", image="app:1", **options)  # type: ignore[arg-type]
    assert VALUE not in str(caught.value)


def test_config_file_credentials_are_read_only_with_registry_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = base64.b64encode(b"user:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r:5000": {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert SwarmRunner._credentials(_swarm(), "r:5000/app:1") is None
    found = SwarmRunner._credentials(_swarm(with_registry_auth=True), "r:5000/app:1")
    assert found is not None and found["username"] == "user"
