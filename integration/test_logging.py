"""Logging: every tmux and engine call at DEBUG with its duration, never an env value."""

from __future__ import annotations

import contextlib
import logging

import pytest

from kstlib.ops import SessionConfig, SessionManager, TmuxRunner
from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import SessionNotFoundError

from .conftest import unique
from .test_cli import Cli, cli  # noqa: F401  (the fixture)

IMAGE = "localhost/kstlib-test:latest"
SECRET = "s3cr3t-4d8f-value-never-logged"


def _texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]


def test_a_tmux_session_logs_its_calls_but_never_an_env_value(
    tmux: TmuxRunner, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kstlib.ops")
    mgr = SessionManager(name, socket_name=tmux.socket_name, env={"TOKEN": SECRET})
    try:
        mgr.start("echo started; sleep 30")
        mgr.status()
    finally:
        with contextlib.suppress(SessionNotFoundError):
            mgr.stop(graceful=False)
    texts = _texts(caplog)
    assert any(t.startswith("kstlib.ops.tmux.call tmux new-session") for t in texts), texts
    assert any(" ms" in t for t in texts)
    assert not [t for t in texts if SECRET in t]


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_a_container_session_logs_each_engine_call_but_never_an_env_value(
    runtime: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kstlib.ops")
    runner = ContainerRunner(runtime=runtime)
    name = unique("log")
    cfg = SessionConfig(
        name=name,
        backend="container",
        image=IMAGE,
        command=["sh", "-c", "sleep 30"],
        env={"TOKEN": SECRET},
    )
    try:
        runner.start(cfg)
        runner.status(name)
    finally:
        with contextlib.suppress(SessionNotFoundError):
            runner.stop(name, graceful=False)
    texts = _texts(caplog)
    calls = [t for t in texts if t.startswith(f"kstlib.ops.translate {runtime} ")]
    for call in ("create", "start", "inspect"):
        assert any(f"{runtime} {call} '{name}'" in t and " ms" in t for t in calls), calls
    assert not [t for t in texts if SECRET in t]


def test_a_translated_error_is_logged_with_its_sdk_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kstlib.ops")
    with pytest.raises(SessionNotFoundError):
        ContainerRunner(runtime="docker").status(unique("absent"))
    assert any(
        r.name == "kstlib.ops.translate" and "docker.errors.NotFound translated to" in r.getMessage()
        for r in caplog.records
    )


def test_verbose_status_prints_each_call_and_its_duration(cli: Cli) -> None:  # noqa: F811
    name = unique("v")
    cli("ops", "start", name, "-L", "logsock", "-q", "--env", f"TOKEN={SECRET}", "--", "sleep", "30")
    try:
        proc = cli("ops", "-v", "status", name, "-L", "logsock")
        debug = [line for line in proc.stderr.splitlines() if line.startswith("kstlib.ops.")]
        assert any(line.startswith("kstlib.ops.tmux.call: tmux ") and " ms" in line for line in debug)
        assert SECRET not in proc.stderr
        quiet = cli("ops", "status", name, "-L", "logsock")
        assert "kstlib.ops." not in quiet.stderr
        absent = cli("ops", "-v", "status", unique("absent"), "-b", "docker", code=3)
        assert any(
            line.startswith("kstlib.ops.translate: docker inspect") and line.endswith(" ms")
            for line in absent.stderr.splitlines()
        ), absent.stderr
    finally:
        cli("ops", "stop", name, "-L", "logsock", "-f", "-q", code=None)
