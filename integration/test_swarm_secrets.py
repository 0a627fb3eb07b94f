"""Secrets and registry credentials of a swarm service, on the real two-node swarm.

A secret given by value becomes a swarm secret created with the session and
removed with it, mounted at ``/run/secrets/NAME``: the service's spec (what
anyone with ``docker service inspect`` sees) never holds the value. The
Docker config files' registry credentials go with a service only when
``with_registry_auth=True`` (as ``docker service create --with-registry-auth``).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops.exceptions import SessionStartError
from kstlib.ops.models import SessionConfig, SessionState

from .swarm_support import Swarm, auth_image, swarm_name, until

pytestmark = pytest.mark.docker

#: Print each mounted secret, then stay up.
SHOW = 'for f in /run/secrets/*; do echo "$f=$(cat $f)"; done; while :; do sleep 1; done'


def _labelled(swarm: Swarm, name: str) -> list[Any]:
    return list(swarm.manager.secrets.list(filters={"label": f"io.kstlib.secret-of={name}"}))


def test_a_secret_is_a_file_in_the_task_never_in_the_spec_and_goes_with_the_session(
    swarm: Swarm, caplog: pytest.LogCaptureFixture
) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    existing = swarm.manager.secrets.create(
        name=f"kstlib-test-{uuid.uuid4().hex[:8]}", data=b"shared-value"
    )
    name = swarm_name()
    config = swarm.config(
        name,
        ["sh", "-c", SHOW],
        secrets={"api_token": value},
        secret_refs=[existing.name],
        placement=["node.role==worker"],
    )
    assert value not in repr(config)
    try:
        with caplog.at_level("DEBUG"):
            status = swarm.runner.start(config)
        assert status.state is SessionState.RUNNING
        service = swarm.manager.services.get(name)
        spec = json.dumps(service.attrs)
        assert value not in spec
        assert "api_token" in spec  # the file's name, not its content
        assert value not in caplog.text
        (created,) = _labelled(swarm, name)
        assert value.encode() not in json.dumps(created.attrs).encode()
        # The task (on the worker) reads both files.
        text = until(
            "both secrets in the task's output",
            lambda: (lambda t: t if "api_token=" in t and existing.name in t else None)(
                swarm.runner.logs(name)
            ),
        )
        assert f"/run/secrets/api_token={value}" in text.splitlines()
        assert f"/run/secrets/{existing.name}=shared-value" in text.splitlines()
        with caplog.at_level("DEBUG"):
            assert swarm.runner.stop(name, timeout=2) is True
        assert value not in caplog.text
        # The session's own secret went with it; the existing one stays.
        assert _labelled(swarm, name) == []
        assert swarm.manager.secrets.get(existing.id).name == existing.name
    finally:
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=2)
        existing.remove()


def test_a_reference_to_a_missing_secret_is_a_start_error_before_anything_is_created(
    swarm: Swarm,
) -> None:
    name = swarm_name()
    with pytest.raises(SessionStartError, match="no secret named 'kstlib-no-such-secret'"):
        swarm.runner.start(
            swarm.config(
                name,
                ["sleep", "30"],
                secrets={"token": "abc"},
                secret_refs=["kstlib-no-such-secret"],
            )
        )
    assert not swarm.runner.exists(name)
    assert _labelled(swarm, name) == []


def test_config_file_credentials_go_with_the_service_only_with_registry_auth(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Docker config file of the harness holds the login registry's credentials.
    monkeypatch.setenv("DOCKER_CONFIG", swarm.env["KSTLIB_TEST_REGISTRY_DOCKER_CONFIG"])
    assert (Path(swarm.env["KSTLIB_TEST_REGISTRY_DOCKER_CONFIG"]) / "config.json").is_file()
    image = auth_image(swarm)
    worker_only = ["node.labels.role==worker"]
    name = swarm_name()

    def config(**options: Any) -> SessionConfig:
        base = swarm.config(name, ["sleep", "300"], placement=worker_only, **options)
        return base.with_overrides(image=image)

    try:
        # Default, as Docker's: the worker gets no credentials and cannot pull.
        with pytest.raises(SessionStartError, match="No such image"):
            swarm.runner.start(config())
        assert not swarm.runner.exists(name)
        status = swarm.runner.start(config(with_registry_auth=True))
        assert status.state is SessionState.RUNNING
        assert status.nodes == (swarm.worker_id,)
    finally:
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=2)
        with contextlib.suppress(Exception):
            swarm.worker.images.remove(image)


def test_without_registry_auth_the_create_request_has_no_registry_auth_header(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", swarm.env["KSTLIB_TEST_REGISTRY_DOCKER_CONFIG"])
    api = swarm.runner.engine.api  # type: ignore[attr-defined]
    sent: list[dict[str, str]] = []
    real = api._post_json

    def record(url: str, data: Any, **kwargs: Any) -> Any:
        if url.endswith("/services/create"):
            sent.append(dict(kwargs.get("headers") or {}))
        return real(url, data, **kwargs)

    monkeypatch.setattr(api, "_post_json", record)
    registry = swarm.env["KSTLIB_TEST_AUTH_REGISTRY"]
    for flag in (False, True):
        name = swarm_name()
        config = swarm.config(name, ["sleep", "300"], with_registry_auth=flag)
        # An image on the login registry's address, so the config file has its credentials.
        swarm.manager.images.get(swarm.image).tag(f"{registry}/kstlib/wra-local", "1")
        try:
            # Whether the task runs is not the point here: what the request carried is.
            with contextlib.suppress(SessionStartError):
                swarm.runner.start(
                    config.with_overrides(
                        image=f"{registry}/kstlib/wra-local:1", placement=["node.role==manager"]
                    )
                )
        finally:
            if swarm.runner.exists(name):
                swarm.runner.stop(name, timeout=2)
    swarm.manager.images.remove(f"{registry}/kstlib/wra-local:1")
    assert [("X-Registry-Auth" in h) for h in sent] == [False, True]
