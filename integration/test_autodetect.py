"""auto_detect_backend / SessionManager(backend=None) across tmux, Docker and Podman."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from kstlib.ops import (
    BackendType,
    ContainerRuntimeNotFoundError,
    SessionAmbiguousError,
    SessionConfig,
    SessionNotFoundError,
    SessionState,
    TmuxRunner,
)
from kstlib.ops.container import ContainerRunner
from kstlib.ops.discovery import locate_container
from kstlib.ops.manager import SessionManager, auto_detect_backend

from .conftest import DOCKER_URL, ENGINE_URLS, PODMAN_URL, TEST_IMAGE, engine_missing, unique

RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]


def container_runner(runtime: str) -> ContainerRunner:
    runner = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=20)
    try:
        runner.list_sessions()
    except ContainerRuntimeNotFoundError as err:
        engine_missing(runtime, str(err))
    return runner


@pytest.fixture
def containers() -> Iterator[Callable[[str, str], None]]:
    """Start a sleeping container by (runtime, name); all are removed afterwards."""
    made: list[tuple[ContainerRunner, str]] = []

    def start(runtime: str, name: str) -> None:
        runner = container_runner(runtime)
        made.append((runner, name))
        runner.start(
            SessionConfig(
                name=name, backend="container", image=TEST_IMAGE, command=["sleep", "300"]
            )
        )

    yield start
    for runner, name in made:
        with contextlib.suppress(SessionNotFoundError):
            runner.stop(name, graceful=False)


@pytest.mark.tmux
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_same_name_in_tmux_and_a_container_is_ambiguous(
    runtime: str, tmux: TmuxRunner, tmux_socket: str, containers: Callable[[str, str], None]
) -> None:
    name = unique("amb")
    tmux.start(SessionConfig(name=name, command="sleep 300", socket_name=tmux_socket))
    containers(runtime, name)
    where = {"socket_name": tmux_socket, "runtime": runtime, "base_url": ENGINE_URLS[runtime]}

    with pytest.raises(SessionAmbiguousError) as info:
        auto_detect_backend(name, **where)
    assert info.value.name == name
    assert info.value.places == ["tmux", runtime]
    assert info.value.backends == ["tmux", "container"]
    assert "--backend" in str(info.value)

    with pytest.raises(SessionAmbiguousError) as mgr_info:
        SessionManager(name, backend=None, **where)
    assert mgr_info.value.places == ["tmux", runtime]

    # An explicit backend settles it.
    explicit = SessionManager(name, backend="container", image=TEST_IMAGE, **where)
    assert explicit.status().runtime == runtime


@pytest.mark.tmux
def test_every_engine_is_searched_when_no_runtime_is_given(
    tmux: TmuxRunner,
    tmux_socket: str,
    containers: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", PODMAN_URL)
    monkeypatch.setenv("DOCKER_HOST", DOCKER_URL)
    name = unique("all")
    tmux.start(SessionConfig(name=name, command="sleep 300", socket_name=tmux_socket))
    containers("podman", name)
    containers("docker", name)
    with pytest.raises(SessionAmbiguousError) as info:
        auto_detect_backend(name, socket_name=tmux_socket)
    assert info.value.places == ["tmux", "podman", "docker"]
    assert info.value.backends == ["tmux", "container", "container"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_name_only_in_a_container_is_found_there(
    runtime: str, tmux_socket: str, containers: Callable[[str, str], None]
) -> None:
    name = unique("only")
    containers(runtime, name)
    url = ENGINE_URLS[runtime]
    assert locate_container(name, runtime, url) == [runtime]
    assert auto_detect_backend(name, socket_name=tmux_socket, runtime=runtime, base_url=url) is (
        BackendType.CONTAINER
    )
    mgr = SessionManager(name, backend=None, socket_name=tmux_socket, runtime=runtime, base_url=url)
    assert mgr.backend is BackendType.CONTAINER
    st = mgr.status()
    assert st.state is SessionState.RUNNING and st.runtime == runtime


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_names_match_exactly(
    runtime: str, tmux_socket: str, containers: Callable[[str, str], None]
) -> None:
    name = unique("exact")
    containers(runtime, f"{name}-2")
    url = ENGINE_URLS[runtime]
    assert locate_container(name, runtime, url) == []
    assert auto_detect_backend(name, socket_name=tmux_socket, runtime=runtime, base_url=url) is None
