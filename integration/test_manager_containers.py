"""Issue 16, library points that need a real engine: Docker and Podman (and tmux).

Every test runs on both engines where it is about containers; names are unique
per test and everything a test creates is removed afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kstlib.ops import (
    ContainerRuntimeNotFoundError,
    SessionConfig,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.container import ContainerRunner

from .conftest import ENGINE_URLS, TEST_IMAGE, engine_missing, unique

RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]


def cfg(name: str, command: Any = None, **kw: Any) -> SessionConfig:
    return SessionConfig(name=name, backend="container", image=TEST_IMAGE, command=command, **kw)


def container_runner(runtime: str) -> ContainerRunner:
    runner = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=20)
    try:
        runner.list_sessions()
    except ContainerRuntimeNotFoundError as err:
        engine_missing(runtime, str(err))
    return runner


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runner(runtime: str) -> ContainerRunner:
    return container_runner(runtime)


@pytest.fixture
def names() -> Iterator[Callable[..., str]]:
    """Unique names; any container (on either engine) with one of them is removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "mc") -> str:
        made.append(unique(prefix))
        return made[-1]

    yield make
    for rt in ("docker", "podman"):
        with contextlib.suppress(ContainerRuntimeNotFoundError):
            cleanup = ContainerRunner(runtime=rt, base_url=ENGINE_URLS[rt], timeout=30)
            for name in made:
                with contextlib.suppress(SessionNotFoundError):
                    cleanup.stop(name, graceful=False)


# -- 1. follow_logs(timeout=T) ends at the deadline ------------------------------------


def _stamp(line: str) -> datetime:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))


def test_follow_logs_timeout_yields_nothing_past_the_deadline(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", "while :; do echo tick; sleep 1.5; done"]))
    timeout = 2.0
    begun = datetime.now(timezone.utc)
    lines: list[str] = []
    with pytest.raises(SessionTimeoutError) as info:
        for line in runner.follow_logs(name, timestamps=True, timeout=timeout):
            lines.append(line)
    # Each line carries the engine's time of writing: none after the deadline
    # (the old code waited up to T again after each line and yielded what came).
    late = [ln for ln in lines if _stamp(ln) > begun + timedelta(seconds=timeout + 0.5)]
    assert late == [], lines
    # A follow that ends by its timeout says so; the session is not a failed stop.
    message = str(info.value)
    assert "follow timed out after 2 s" in message
    assert "still running after" not in message
    assert runner.status(name).is_running
