"""Waits, readiness, restart policies and the context manager on every backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kstlib.ops import (
    SessionError,
    SessionManager,
    SessionNotFoundError,
    SessionTimeoutError,
    TmuxRunner,
)

from .conftest import ENGINE_URLS, TEST_IMAGE, engine_missing, unique

Factory = Callable[..., SessionManager]


@pytest.fixture(params=["tmux", "docker", "podman"])
def make(request: pytest.FixtureRequest, tmux_socket: str) -> Iterator[Factory]:
    """Build SessionManagers on one backend; remove whatever they left."""
    backend = request.param
    made: list[SessionManager] = []
    if backend == "tmux":
        options: dict[str, Any] = {"socket_name": tmux_socket}
    else:
        from kstlib.ops import ContainerRuntimeNotFoundError
        from kstlib.ops.container import ContainerRunner

        try:
            ContainerRunner(runtime=backend, base_url=ENGINE_URLS[backend]).list_sessions()
        except ContainerRuntimeNotFoundError as err:
            engine_missing(backend, str(err))
        options = {"backend": "container", "image": TEST_IMAGE, "runtime": backend,
                   "base_url": ENGINE_URLS[backend]}

    def factory(**extra: Any) -> SessionManager:
        mgr = SessionManager(unique(backend), **{**options, **extra})
        made.append(mgr)
        return mgr

    yield factory
    for mgr in made:
        try:
            mgr.stop(graceful=False)
        except SessionNotFoundError:
            pass


def test_wait_returns_the_exit_code(make: Factory) -> None:
    mgr = make()
    mgr.start(["sh", "-c", "sleep 0.2; exit 7"])
    assert mgr.wait(timeout=30) == 7
    assert mgr.status().exit_code == 7


def test_wait_times_out(make: Factory) -> None:
    mgr = make()
    mgr.start(["sleep", "30"])
    began = time.monotonic()
    with pytest.raises(SessionTimeoutError):
        mgr.wait(timeout=0.5)
    assert time.monotonic() - began < 5


def test_wait_for_log_returns_the_ready_line(make: Factory) -> None:
    mgr = make()
    mgr.start(["sh", "-c", "echo starting; sleep 1; echo 'ready on port 8080'; sleep 30"])
    line = mgr.wait_for_log(r"ready on port \d+", timeout=20)
    assert line == "ready on port 8080"
    assert mgr.is_running()


def test_wait_for_log_times_out(make: Factory) -> None:
    mgr = make()
    mgr.start(["sh", "-c", "while true; do echo busy; sleep 0.1; done"])
    began = time.monotonic()
    with pytest.raises(SessionTimeoutError):
        mgr.wait_for_log("never printed", timeout=1)
    assert time.monotonic() - began < 6


def test_wait_for_log_fails_when_the_session_ends_first(make: Factory) -> None:
    mgr = make()
    mgr.start(["sh", "-c", "echo nope; exit 4"])
    with pytest.raises(SessionError, match="ended") as info:
        mgr.wait_for_log("ready", timeout=20)
    assert not isinstance(info.value, SessionTimeoutError)
    assert "exit code 4" in str(info.value)


def test_follow_logs_gets_lines_written_after_it_started(make: Factory) -> None:
    mgr = make()
    mgr.start(["sh", "-c", "echo early; sleep 1.5; echo late-1; echo late-2"])
    mgr.wait_for_log("early", timeout=20)
    got = list(mgr.follow_logs(timeout=30))
    assert got == ["late-1", "late-2"]


def test_on_failure_2_restarts_exactly_twice(make: Factory) -> None:
    mgr = make(restart="on-failure:2")
    mgr.start(["sh", "-c", "echo run; exit 3"])
    assert mgr.wait(timeout=60) == 3
    st = mgr.status()
    assert st.restart_count == 2
    assert mgr.logs(lines=None).split("\n") == ["run", "run", "run"]


def test_wait_until_running(make: Factory) -> None:
    mgr = make()
    mgr.start(["sleep", "30"])
    assert mgr.wait_until_running(timeout=20).is_running
    quick = make()
    quick.start(["sh", "-c", "exit 2"])
    quick.wait(timeout=20)
    with pytest.raises(SessionError, match="exited with code 2"):
        quick.wait_until_running(timeout=5)


def test_context_manager_cleans_up_after_an_exception(make: Factory) -> None:
    mgr = make()
    with pytest.raises(RuntimeError, match="inside"):
        with mgr.running(["sleep", "30"]) as session:
            assert session.is_running()
            raise RuntimeError("inside the block")
    assert not mgr.exists()


def test_restart_gives_a_new_process(make: Factory) -> None:
    mgr = make()
    first = mgr.start(["sleep", "30"])
    second = mgr.restart(timeout=5)
    assert second.is_running
    assert second.pid != first.pid or second.created_at != first.created_at
    assert mgr.is_running()


def test_tmux_log_survives_exit_and_context(tmux_socket: str) -> None:
    with SessionManager(unique("ctx"), socket_name=tmux_socket).running("seq 1 3; sleep 30") as s:
        s.wait_for_log("^3$", timeout=10)
        assert s.logs() == "1\n2\n3"
    assert TmuxRunner(socket_name=tmux_socket).exists(s.name) is False
