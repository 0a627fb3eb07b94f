"""The one map from a backend to its runner, and the factory type callers may swap.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

:func:`make_runner` builds the runner of a place: a tmux server, a container
engine or a swarm manager. What a place is, is said once, in
:class:`RunnerOptions`; each backend's builder is registered once in
:data:`BUILDERS` (:func:`register`) and picks the options its runner takes
(:class:`ClassBuilder`). The runners' modules are imported on first use, so a
tmux session never loads a container SDK. Everything that needs a runner
(:class:`~kstlib.ops.manager.SessionManager`, the search of
:mod:`kstlib.ops.discovery`, named engines, the CLI, the pytest plugin's
reaper) asks a :class:`RunnerFactory`, :func:`make_runner` unless one is
given: a test hands in its own (as ``httpx.Client(transport=MockTransport(...))``
does), no private method is patched.

:class:`~kstlib.ops.models.BackendType` is the closed set of the kinds of
place the search, the listing and the CLI walk; :meth:`BackendType.parse
<kstlib.ops.models.BackendType.parse>` is the one parser of their spellings.
A builder registered for a kind replaces how its runners are made (a fake in
a test, another implementation); a new kind is a member of ``BackendType``
plus its builder here (see "Adding a backend" in ``docs/architecture.md``).

Example:
    >>> make_runner(BackendType.TMUX, socket_name="kstlib-doc")
    TmuxRunner(socket='kstlib-doc')
    >>> make_runner(BackendType.CONTAINER, runtime="docker", base_url="unix:///x.sock")
    ContainerRunner(runtime='docker', base_url='unix:///x.sock')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict

from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.runner import Runner

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.swarm import SwarmRunner
    from kstlib.ops.tmux import TmuxRunner

__all__ = [
    "BUILDERS",
    "Builder",
    "ClassBuilder",
    "RunnerFactory",
    "RunnerOptions",
    "make_runner",
    "register",
    "runner_of",
]


class RunnerOptions(TypedDict, total=False):
    """Where a runner runs and how long its calls may take: every keyword a factory takes.

    ``runtime``/``base_url``: the container engine or the swarm manager;
    ``socket_name``/``socket_path``/``tmux_bin``: the tmux server;
    ``tmux_timeout``: seconds one tmux call may take; ``engine_timeout``: seconds
    one engine call may take; ``node_urls``: a swarm's other nodes, whose
    containers a stop waits for. ``None`` (or a missing key) keeps the runner's
    default; a runner ignores what does not apply to it.

    Example:
        >>> options: RunnerOptions = {"socket_name": "kstlib-doc"}
        >>> make_runner(BackendType.TMUX, **options)
        TmuxRunner(socket='kstlib-doc')
    """

    runtime: str | None
    base_url: str | None
    socket_name: str | None
    socket_path: str | None
    tmux_bin: str | None
    tmux_timeout: float | None
    engine_timeout: float | None
    node_urls: Sequence[str]


class RunnerFactory(Protocol):
    """Anything that builds the runner of a place, as :func:`make_runner` does.

    Called with the backend and :class:`RunnerOptions` as keywords.

    Example:
        >>> factory: RunnerFactory = make_runner
        >>> factory(BackendType.SWARM, base_url="unix:///x.sock")
        SwarmRunner(base_url='unix:///x.sock')
    """

    def __call__(self, backend: BackendType, /, **options: Unpack[RunnerOptions]) -> Runner:
        """The runner of the place these options name."""
        ...


#: What one backend registers: the same arguments as :class:`RunnerFactory`.
Builder = RunnerFactory


@dataclass(frozen=True)
class ClassBuilder:
    """A builder that imports its runner class on first use and hands it the options it takes.

    ``load`` returns the class (imported inside it, so the SDK loads only
    then); ``takes`` maps each constructor keyword to the option it gets. An
    option that is ``None`` or not given is not passed (the class's default).

    Example:
        >>> def load():
        ...     from kstlib.ops.tmux import TmuxRunner
        ...     return TmuxRunner
        >>> ClassBuilder(load, {"socket_name": "socket_name"})(BackendType.TMUX, socket_name="x")
        TmuxRunner(socket='x')
    """

    load: Callable[[], Callable[..., Runner]]
    takes: Mapping[str, str]

    def __call__(self, backend: BackendType, /, **options: Unpack[RunnerOptions]) -> Runner:
        """The runner, built from the options its class takes."""
        given: Mapping[str, object] = options
        chosen = {param: given.get(key) for param, key in self.takes.items()}
        return self.load()(**{param: v for param, v in chosen.items() if v is not None})


def _tmux() -> type[TmuxRunner]:
    from kstlib.ops.tmux import TmuxRunner

    return TmuxRunner


def _container() -> type[ContainerRunner]:
    from kstlib.ops.container import ContainerRunner

    return ContainerRunner


def _swarm() -> type[SwarmRunner]:
    from kstlib.ops.swarm import SwarmRunner

    return SwarmRunner


#: The builder of each backend: adding a backend is one :func:`register` call.
BUILDERS: dict[BackendType, Builder] = {
    BackendType.TMUX: ClassBuilder(
        _tmux,
        {
            "socket_name": "socket_name",
            "socket_path": "socket_path",
            "tmux_bin": "tmux_bin",
            "timeout": "tmux_timeout",
        },
    ),
    BackendType.CONTAINER: ClassBuilder(
        _container, {"runtime": "runtime", "base_url": "base_url", "timeout": "engine_timeout"}
    ),
    BackendType.SWARM: ClassBuilder(
        _swarm, {"base_url": "base_url", "timeout": "engine_timeout", "node_urls": "node_urls"}
    ),
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


def make_runner(backend: BackendType, /, **options: Unpack[RunnerOptions]) -> Runner:
    """The runner of one place: a tmux server, a container engine or a swarm manager.

    Built by the builder registered for ``backend`` (:data:`BUILDERS`).

    Example:
        >>> make_runner(BackendType.TMUX)
        TmuxRunner(socket='default')
    """
    return BUILDERS[backend](backend, **options)


def runner_of(
    config: SessionConfig,
    factory: RunnerFactory | None = None,
    **options: Unpack[RunnerOptions],
) -> Runner:
    """The runner that serves a session configuration (where it says it runs).

    ``options`` add what the configuration does not say (``tmux_bin``,
    ``engine_timeout``, ``node_urls``).

    Example:
        >>> runner_of(SessionConfig(name="a", socket_name="kstlib-doc"))
        TmuxRunner(socket='kstlib-doc')
    """
    where: RunnerOptions = {
        "runtime": config.runtime,
        "base_url": config.base_url,
        "socket_name": config.socket_name,
        "socket_path": config.socket_path,
        **options,
    }
    return (factory or make_runner)(config.backend, **where)
