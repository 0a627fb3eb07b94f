"""The one map from a backend to its runner, and the factory type callers may swap.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

:func:`make_runner` builds the runner of a place: a tmux server, a container
engine or a swarm manager. Each backend's builder is registered once in
:data:`BUILDERS` (:func:`register`); the runners' modules are imported on
first use, so a tmux session never loads a container SDK. Everything that
needs a runner (:class:`~kstlib.ops.manager.SessionManager`, the search of
:mod:`kstlib.ops.discovery`, named engines, the CLI) asks a
:class:`RunnerFactory`, :func:`make_runner` unless one is given: a test hands
in its own (as ``httpx.Client(transport=MockTransport(...))`` does), no
private method is patched.

Example:
    >>> make_runner(BackendType.TMUX, socket_name="kstlib-doc")
    TmuxRunner(socket='kstlib-doc')
    >>> make_runner(BackendType.CONTAINER, runtime="docker", base_url="unix:///x.sock")
    ContainerRunner(runtime='docker', base_url='unix:///x.sock')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.runner import Runner

__all__ = ["BUILDERS", "Builder", "RunnerFactory", "make_runner", "register", "runner_of"]


class RunnerFactory(Protocol):
    """Anything that builds the runner of a place, as :func:`make_runner` does.

    ``tmux_timeout``: seconds one tmux call may take (``None``: the tmux
    default); ``engine_timeout``: seconds one engine call may take (``None``:
    the engine default).

    Example:
        >>> factory: RunnerFactory = make_runner
        >>> factory(BackendType.SWARM, base_url="unix:///x.sock")
        SwarmRunner(base_url='unix:///x.sock')
    """

    def __call__(
        self,
        backend: BackendType,
        *,
        runtime: str | None = None,
        base_url: str | None = None,
        socket_name: str | None = None,
        socket_path: str | None = None,
        tmux_bin: str | None = None,
        tmux_timeout: float | None = None,
        engine_timeout: float | None = None,
    ) -> Runner:
        """The runner of the place these arguments name."""
        ...


#: What one backend registers: the same arguments as :class:`RunnerFactory`.
Builder = RunnerFactory


def _tmux(
    backend: BackendType,
    *,
    runtime: str | None = None,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    tmux_bin: str | None = None,
    tmux_timeout: float | None = None,
    engine_timeout: float | None = None,
) -> Runner:
    from kstlib.ops.tmux import TmuxRunner

    if tmux_timeout is None:
        return TmuxRunner(socket_name=socket_name, socket_path=socket_path, tmux_bin=tmux_bin)
    return TmuxRunner(
        socket_name=socket_name, socket_path=socket_path, tmux_bin=tmux_bin, timeout=tmux_timeout
    )


def _container(
    backend: BackendType,
    *,
    runtime: str | None = None,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    tmux_bin: str | None = None,
    tmux_timeout: float | None = None,
    engine_timeout: float | None = None,
) -> Runner:
    from kstlib.ops.container import ContainerRunner

    if engine_timeout is None:
        return ContainerRunner(runtime=runtime, base_url=base_url)
    return ContainerRunner(runtime=runtime, base_url=base_url, timeout=engine_timeout)


def _swarm(
    backend: BackendType,
    *,
    runtime: str | None = None,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    tmux_bin: str | None = None,
    tmux_timeout: float | None = None,
    engine_timeout: float | None = None,
) -> Runner:
    from kstlib.ops.swarm import SwarmRunner

    if engine_timeout is None:
        return SwarmRunner(base_url=base_url)
    return SwarmRunner(base_url=base_url, timeout=engine_timeout)


#: The builder of each backend: adding a backend is one :func:`register` call.
BUILDERS: dict[BackendType, Builder] = {
    BackendType.TMUX: _tmux,
    BackendType.CONTAINER: _container,
    BackendType.SWARM: _swarm,
}


def register(backend: BackendType, builder: Builder) -> Callable[[], None]:
    """Make ``builder`` build the runners of ``backend``; returns what undoes it.

    Example:
        >>> undo = register(BackendType.SWARM, lambda backend, **where: "fake")
        >>> make_runner(BackendType.SWARM)
        'fake'
        >>> undo()
        >>> make_runner(BackendType.SWARM)
        SwarmRunner(base_url=None)
    """
    before = BUILDERS.get(backend)
    BUILDERS[backend] = builder

    def undo() -> None:
        if before is None:
            BUILDERS.pop(backend, None)
        else:
            BUILDERS[backend] = before

    return undo


def make_runner(
    backend: BackendType,
    *,
    runtime: str | None = None,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    tmux_bin: str | None = None,
    tmux_timeout: float | None = None,
    engine_timeout: float | None = None,
) -> Runner:
    """The runner of one place: a tmux server, a container engine or a swarm manager.

    Example:
        >>> make_runner(BackendType.TMUX)
        TmuxRunner(socket='default')
    """
    return BUILDERS[backend](
        backend,
        runtime=runtime,
        base_url=base_url,
        socket_name=socket_name,
        socket_path=socket_path,
        tmux_bin=tmux_bin,
        tmux_timeout=tmux_timeout,
        engine_timeout=engine_timeout,
    )


def runner_of(
    config: SessionConfig,
    factory: RunnerFactory | None = None,
    *,
    tmux_bin: str | None = None,
    engine_timeout: float | None = None,
) -> Runner:
    """The runner that serves a session configuration (where it says it runs).

    Example:
        >>> runner_of(SessionConfig(name="a", socket_name="kstlib-doc"))
        TmuxRunner(socket='kstlib-doc')
    """
    return (factory or make_runner)(
        config.backend,
        runtime=config.runtime,
        base_url=config.base_url,
        socket_name=config.socket_name,
        socket_path=config.socket_path,
        tmux_bin=tmux_bin,
        engine_timeout=engine_timeout,
    )
