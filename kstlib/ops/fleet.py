"""Many engines at once: ask every named engine in parallel, each within its own bound.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A user with bots on three machines names each engine in ``kstlib.conf.yml``
(``ops.engines``, see :class:`~kstlib.ops.config.EngineConfig`);
:func:`list_engines` lists the sessions of all of them in one
:class:`~kstlib.ops.models.SessionTable` (its ``engine`` column names where
each runs), in about the time of the slowest engine rather than the sum. An
engine that does not answer within its timeout is reported, not waited for:
each runs in a daemon thread, so even an SDK call with no bound of its own
(podman-py's ssh tunnel) never holds up the caller.

Example:
    >>> from kstlib.ops.config import EngineConfig
    >>> table, down = list_engines([EngineConfig("gone", "unix:///nonexistent.sock", "docker")])
    >>> list(table), list(down)
    ([], ['gone'])
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, OpsError
from kstlib.ops.models import BackendType, SessionStatus, SessionTable
from kstlib.ops.runner import Runner
from kstlib.ops.runners import RunnerFactory, make_runner

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig

__all__ = [
    "Outcome",
    "ask_engines",
    "engine_named",
    "engine_options",
    "engine_runner",
    "find_on_engines",
    "gather",
    "kinds_of",
    "list_engine",
    "list_engines",
    "named_engines",
    "place_kinds",
    "preload",
]

_T = TypeVar("_T")
#: Seconds granted beyond an engine's own timeout, so that its own (better) error arrives.
GRACE = 1.0


#: What asking a place of each kind imports (kstlib packages: every module in them).
_MODULES: dict[str, tuple[str, ...]] = {
    "tmux": ("libtmux", "kstlib.ops.tmux"),
    "container": (
        "requests",
        "docker",
        "podman",
        "kstlib.ops.container",
        "kstlib.ops.engines",
    ),
    "swarm": ("requests", "docker", "kstlib.ops.swarm", "kstlib.ops.engines"),
    "ssh": ("paramiko", "docker.transport.sshconn", "podman.api.ssh", "kstlib.ops.engines"),
    # Every endpoint a unix socket with no file: the task fails on it before any SDK (or
    # adapter module) is imported (tests/test_list_imports.py).
    "container-nosocket": ("kstlib.ops.container", "kstlib.ops.engines.endpoints"),
    "swarm-nosocket": (
        "kstlib.ops.swarm",
        "kstlib.ops.engines.endpoints",
        "kstlib.ops.engines.swarm",
    ),
}
_PRELOADED: set[str] = set()
_PRELOAD_LOCK = threading.Lock()


def preload(kinds: Iterable[str]) -> None:
    """Import, in this thread, what asking places of these kinds imports.

    ``kinds``: ``"tmux"``, ``"container"``, ``"swarm"``, ``"ssh"`` (an
    ``ssh://`` engine). :func:`gather` calls it before its threads start:
    Python's import locks are per module, and two threads that first import a
    package and one of its modules at the same time can deadlock (importlib
    then raises ``_DeadlockError`` in one of them; ``kstlib ops list`` with a
    swarm and a container engine did, once in a CI run). A module that cannot
    be imported is left to the task, which reports it as it always does.

    Example:
        >>> preload(["tmux"])
        >>> import sys; "kstlib.ops.tmux.runner" in sys.modules
        True
    """
    with _PRELOAD_LOCK:
        for kind in dict.fromkeys(kinds):
            for name in _MODULES.get(kind, ()):
                if name in _PRELOADED:
                    continue
                _PRELOADED.add(name)
                with contextlib.suppress(ImportError):
                    module = importlib.import_module(name)
                    if name.startswith("kstlib.") and hasattr(module, "__path__"):
                        for info in pkgutil.iter_modules(module.__path__, f"{name}."):
                            importlib.import_module(info.name)


def kinds_of(backend: object, base_url: str | None, runtime: str | None = None) -> list[str]:
    """The :func:`preload` kinds of a place: its backend, and ``"ssh"`` for an ssh:// URL.

    A container engine or swarm manager whose every endpoint (``base_url``,
    else those of ``runtime``, else of every runtime) is a unix socket with no
    file is ``"container-nosocket"`` / ``"swarm-nosocket"``: asking it fails on
    the missing file (:mod:`kstlib.ops.engines.endpoints`) before any SDK is
    imported, so the SDKs are not loaded for it (``kstlib ops list`` where no
    engine runs). A socket file that appears after this check makes that one
    task import its SDK in its thread: a deadlock would need a second thread
    importing at the same moment, so two engines appearing within it.

    Example:
        >>> kinds_of("container", "ssh://ops@edge")
        ['container', 'ssh']
        >>> kinds_of("container", "unix:///nonexistent.sock")
        ['container-nosocket']
    """
    kind = str(getattr(backend, "value", backend))
    if (base_url or "").startswith("ssh://"):
        return [kind, "ssh"]
    if kind in ("container", "swarm") and not _any_socket(kind, base_url, runtime):
        return [f"{kind}-nosocket"]
    return [kind]


def _any_socket(kind: str, base_url: str | None, runtime: str | None) -> bool:
    """Whether any endpoint of the place is not a unix socket, or is one whose file exists."""
    if base_url is not None:
        urls = [base_url]
    else:
        from kstlib.ops.engines.endpoints import AUTO_ORDER, default_endpoints

        runtimes = ("swarm",) if kind == "swarm" else (runtime,) if runtime else AUTO_ORDER
        urls = [url for rt in runtimes for url in default_endpoints(rt)]
    unix = "unix://"
    return any(not url.startswith(unix) or os.path.exists(url[len(unix) :]) for url in urls)


def place_kinds(places: Iterable[Any]) -> list[str]:
    """The :func:`preload` kinds of places (anything with ``backend`` and ``base_url``).

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> place_kinds([EngineConfig("t", backend="tmux"), EngineConfig("e", "ssh://h", "docker")])
        ['tmux', 'container', 'ssh']
    """
    return [k for p in places for k in kinds_of(p.backend, p.base_url, getattr(p, "runtime", None))]


class Outcome(Generic[_T]):
    """What one parallel task gave: its value, or its error, and how long it took.

    Example:
        >>> Outcome(value=3, seconds=0.1).ok, Outcome(error=OpsError("x")).ok
        (True, False)
    """

    def __init__(
        self, value: _T | None = None, error: BaseException | None = None, seconds: float = 0.0
    ) -> None:
        self.value = value
        self.error = error
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        """Whether the task finished without an error.

        Example:
            >>> Outcome(value=[]).ok
            True
        """
        return self.error is None

    def __repr__(self) -> str:
        return f"Outcome(value={self.value!r}, error={self.error!r}, seconds={self.seconds:.3f})"


def gather(
    tasks: Mapping[str, Callable[[], _T]],
    timeouts: Mapping[str, float],
    on_timeout: Callable[[str, float], BaseException],
    kinds: Iterable[str] = (),
) -> dict[str, Outcome[_T]]:
    """Run every task at once, each in a daemon thread; wait for each at most its timeout.

    A task still running when its time is up gets ``on_timeout(key, seconds)``
    as its error and is left to finish on its own. ``kinds``: the kinds of
    place the tasks ask (see :func:`preload`), imported before the threads start.

    Example:
        >>> import time
        >>> out = gather({"fast": lambda: 1, "slow": lambda: time.sleep(3)},
        ...              {"fast": 1, "slow": 0.1}, lambda key, s: TimeoutError(f"{key} > {s} s"))
        >>> out["fast"].value, str(out["slow"].error)
        (1, 'slow > 0.1 s')
    """
    preload(kinds)
    began = time.monotonic()
    results: dict[str, Outcome[_T]] = {}
    lock = threading.Lock()
    threads: dict[str, threading.Thread] = {}

    def run(key: str, task: Callable[[], _T]) -> None:
        start = time.monotonic()
        try:
            outcome: Outcome[_T] = Outcome(value=task())
        except BaseException as err:  # reported to the caller, not raised in the thread
            outcome = Outcome(error=err)
        outcome.seconds = time.monotonic() - start
        with lock:
            results.setdefault(key, outcome)

    for key, task in tasks.items():
        thread = threading.Thread(target=run, args=(key, task), name=f"kstlib-{key}", daemon=True)
        threads[key] = thread
        thread.start()
    for key, thread in threads.items():
        remaining = began + timeouts[key] - time.monotonic()
        thread.join(max(remaining, 0.0))
        with lock:
            if key not in results:
                results[key] = Outcome(
                    error=on_timeout(key, timeouts[key]), seconds=time.monotonic() - began
                )
    return {key: results[key] for key in tasks}


def engine_runner(
    engine: EngineConfig, timeout: float | None = None, factory: RunnerFactory | None = None
) -> Runner:
    """The runner of a named engine (tmux server, container engine or swarm).

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> engine_runner(EngineConfig("local", backend="tmux", socket_name="kstlib-doc"))
        TmuxRunner(socket='kstlib-doc')
    """
    from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT

    backend, implied = BackendType.parse(engine.backend)
    if backend is BackendType.TMUX:
        return (factory or make_runner)(backend, socket_name=engine.socket_name)
    return (factory or make_runner)(
        backend,
        runtime=engine.runtime or implied,
        base_url=engine.endpoint,  # with an ssh:// URL's key and known_hosts
        engine_timeout=engine.timeout or timeout or DEFAULT_TIMEOUT,
        node_urls=engine.nodes,
    )


def list_engine(
    engine: EngineConfig, timeout: float | None = None, factory: RunnerFactory | None = None
) -> list[SessionStatus]:
    """The sessions of one named engine, each row's ``engine`` set to its name.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> list_engine(EngineConfig("local", backend="tmux", socket_name="kstlib-doc-empty"))
        []
    """
    rows = engine_runner(engine, timeout, factory).list_sessions()
    return [replace(row, engine=engine.name) for row in rows]


def _did_not_answer(engine: EngineConfig) -> Callable[[str, float], BaseException]:
    def make(key: str, seconds: float) -> BaseException:
        return ContainerRuntimeNotFoundError(
            f"engine {engine.label} did not answer within {seconds:g} s",
            [engine.base_url or engine.label],
        )

    return make


def ask_engines(
    engines: Iterable[EngineConfig],
    timeout: float | None,
    task: Callable[[EngineConfig, float], _T],
) -> dict[str, Outcome[_T]]:
    """Run ``task(engine, its timeout)`` on every engine at once; each outcome by engine name.

    Each engine gets its own timeout (``EngineConfig.timeout``, else
    ``timeout``, else 30 s) plus :data:`GRACE`; one that does not finish by
    then gets a :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError`
    naming it.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> out = ask_engines([EngineConfig("t", backend="tmux")], 1, lambda e, t: (e.name, t))
        >>> out["t"].value
        ('t', 1)
    """
    from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT

    chosen = {e.name: e for e in engines}
    limits = {n: (e.timeout or timeout or DEFAULT_TIMEOUT) for n, e in chosen.items()}
    tasks: dict[str, Callable[[], _T]] = {
        n: (lambda e=e, t=limits[n]: task(e, t))  # type: ignore[misc]
        for n, e in chosen.items()
    }
    return gather(
        tasks,
        {n: t + GRACE for n, t in limits.items()},
        lambda key, seconds: _did_not_answer(chosen[key])(key, limits[key]),
        place_kinds(chosen.values()),
    )


def list_engines(
    engines: Iterable[EngineConfig],
    timeout: float | None = None,
    factory: RunnerFactory | None = None,
) -> tuple[SessionTable, dict[str, OpsError]]:
    """List every engine at once; the sessions of those that answered, and why the others did not.

    Each engine gets its own ``timeout`` (``EngineConfig.timeout``, else
    ``timeout``, else 30 s) plus :data:`GRACE`; rows come in the order the
    engines were given.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> table, down = list_engines([EngineConfig("t", backend="tmux", socket_name="kstlib-doc-empty")])
        >>> type(table).__name__, down
        ('SessionTable', {})
    """
    outcomes = ask_engines(engines, timeout, lambda e, t: list_engine(e, t, factory))
    rows: list[SessionStatus] = []
    down: dict[str, OpsError] = {}
    for name, outcome in outcomes.items():
        if outcome.error is None:
            rows.extend(outcome.value or [])
        elif isinstance(outcome.error, OpsError):
            down[name] = outcome.error
        else:
            raise outcome.error
    return SessionTable(rows), down


def find_on_engines(
    name: str,
    engines: Iterable[EngineConfig],
    timeout: float | None = None,
    factory: RunnerFactory | None = None,
) -> tuple[list[EngineConfig], list[str]]:
    """The named engines that hold session ``name``, all asked at once (each bounded).

    Returns them, and the engines searched as labels for a not-found message
    (``engine edge``; ``engine lab (not reachable)`` for one that did not answer).

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> find_on_engines("nobody", [EngineConfig("t", backend="tmux", socket_name="kstlib-doc")])
        ([], ['engine t'])
    """
    by_name = {e.name: e for e in engines}
    outcomes = ask_engines(
        by_name.values(),
        timeout,
        lambda engine, limit: bool(engine_runner(engine, limit, factory).exists(name)),
    )
    for outcome in outcomes.values():
        if outcome.error is not None and not isinstance(outcome.error, OpsError):
            raise outcome.error
    holding = [by_name[n] for n, outcome in outcomes.items() if outcome.value]
    searched = [
        f"engine {n}" + ("" if outcome.ok else " (not reachable)")
        for n, outcome in outcomes.items()
    ]
    return holding, searched


def engine_options(
    engine: object, backend: Any, given: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The backend and the SessionManager options that put a session on a named engine.

    ``engine`` is an :class:`~kstlib.ops.config.EngineConfig` or the name
    of one in the config file (:func:`kstlib.ops.config.load_config`); an
    unknown name is a :class:`~kstlib.ops.exceptions.SessionConfigError`
    listing the known ones, and so is an option that names another place.
    ``None``: ``backend`` and the options as they are.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> edge = EngineConfig("edge", "ssh://deploy@edge", "docker", timeout=10)
        >>> engine_options(edge, "auto", {"image": "app:1"})
        ('container', {'image': 'app:1', 'runtime': 'docker', 'base_url': 'ssh://deploy@edge', 'engine_timeout': 10})
        >>> engine_options(None, "auto", {"image": "app:1"})
        ('auto', {'image': 'app:1'})
    """
    if engine is None:
        return backend, dict(given)
    from kstlib.ops.config import EngineConfig
    from kstlib.ops.exceptions import SessionConfigError

    if not isinstance(engine, EngineConfig):
        from kstlib.ops.config import load_config

        engine = engine_named(engine, load_config().engines)
    place = ("socket_name",) if engine.backend == "tmux" else ("runtime", "base_url")
    for key in ("socket_name", "socket_path", "runtime", "base_url"):
        if given.get(key) is not None and not (key == "runtime" and given[key] == engine.runtime):
            raise SessionConfigError(
                f"{key}: engine {engine.name!r} already says where the session runs "
                f"({engine.label}); drop {key}=",
                key,
            )
    options = dict(given)
    values = {
        "socket_name": engine.socket_name,
        "runtime": engine.runtime,
        # with an ssh:// URL's key and known_hosts (swarm managers too)
        "base_url": engine.endpoint,
    }
    for key in place:
        if values[key] is not None:
            options[key] = values[key]
    if engine.timeout is not None and options.get("engine_timeout") is None:
        options["engine_timeout"] = engine.timeout
    if engine.nodes:  # a swarm's other nodes: a stop waits for them, events read them
        options["node_urls"] = engine.nodes
    return ("tmux" if engine.backend == "tmux" else engine.backend), options


def named_engines(
    engines: Iterable[EngineConfig | str] | Mapping[str, EngineConfig],
) -> list[EngineConfig]:
    """The :class:`~kstlib.ops.config.EngineConfig` objects ``engines`` names.

    Names are looked up in the config file (:func:`kstlib.ops.config.load_config`);
    an unknown one is a :class:`~kstlib.ops.exceptions.SessionConfigError`
    listing the known ones.

    Example:
        >>> named_engines(["edge"])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: engine: 'edge' is not an engine (known: none defined in ops.engines)
    """
    from kstlib.ops.config import EngineConfig

    items = list(engines.values()) if isinstance(engines, Mapping) else list(engines)
    if all(isinstance(e, EngineConfig) for e in items):
        return [e for e in items if isinstance(e, EngineConfig)]
    from kstlib.ops.config import load_config

    known = load_config().engines
    out: list[EngineConfig] = []
    for item in items:
        if isinstance(item, EngineConfig):
            out.append(item)
            continue
        out.append(engine_named(item, known))
    return out


def engine_named(name: object, known: Mapping[str, EngineConfig]) -> EngineConfig:
    """The engine called ``name`` among ``known``, or a SessionConfigError listing them.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> engine_named("lab", {"edge": EngineConfig("edge", "ssh://h", "docker")})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: engine: 'lab' is not an engine (known: edge)
    """
    from kstlib.ops.exceptions import SessionConfigError
    from kstlib.ops.validators import shown

    if isinstance(name, str) and name in known:
        return known[name]
    names = ", ".join(sorted(known)) or "none defined in ops.engines"
    raise SessionConfigError(f"engine: {shown(name)} is not an engine (known: {names})", "engine")
