"""One search for sessions over tmux and every reachable container engine.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A session name alone does not say where the session runs. :func:`search`
looks on tmux (the given server; without one, the default server and every
other server of the user found in tmux's socket folder, as ``tmux -L NAME``
makes them: see :mod:`kstlib.ops.tmux.sockets`) and on every container
engine that answers (Podman, then Docker, each endpoint once), and reports
where it found the name and what it searched. :func:`list_sessions` lists
them all in one :class:`~kstlib.ops.models.SessionTable`; an engine or a
tmux server that is down is skipped with an :class:`EngineUnavailableWarning`,
not an exception.

Example:
    >>> found = search("no-such-session", socket_name="kstlib-doc", containers=False)
    >>> found.found, found.searched
    ([], ['tmux (socket kstlib-doc)'])
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypedDict

from kstlib.ops.exceptions import (
    BackendNotFoundError,
    ContainerRuntimeNotFoundError,
    SessionAmbiguousError,
)
from kstlib.ops.fleet import engine_options
from kstlib.ops.locations import (
    ENGINE_TIMEOUT,
    EngineUnavailableWarning,
    Location,
    Search,
    did_not_answer,
    not_found,
    other_tmux_servers,
    tmux_label,
    tmux_servers,
    tmux_timeout,
)
from kstlib.ops.models import BackendType, SessionStatus, SessionTable
from kstlib.ops.runner import Runner
from kstlib.ops.runners import RunnerFactory, make_runner
from kstlib.ops.validators import validate_name

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.config import EngineConfig
    from kstlib.ops.engines.adapter import EngineAdapter

__all__ = [
    "ENGINE_TIMEOUT",
    "EngineUnavailableWarning",
    "Location",
    "Search",
    "auto_detect_backend",
    "detect",
    "did_not_answer",
    "engine_options",
    "list_sessions",
    "locate_container",
    "not_found",
    "other_tmux_servers",
    "reachable_engines",
    "search",
    "search_at",
    "search_containers",
    "tmux_servers",
    "tmux_timeout",
]


def _runner_at(
    place: Location, factory: RunnerFactory | None, tmux_bin: str | None, timeout: float | None
) -> Runner:
    """The runner that answers for ``place`` (a tmux server nobody named: a short timeout)."""
    build = factory or make_runner
    if place.backend is BackendType.TMUX:
        return build(
            BackendType.TMUX,
            socket_name=place.socket_name,
            socket_path=None if place.discovered else place.socket_path,
            tmux_bin=tmux_bin,
            tmux_timeout=tmux_timeout(place.discovered),
        )
    return build(
        place.backend, runtime=place.runtime, base_url=place.endpoint, engine_timeout=timeout
    )


def _down(runtime: str, base_url: str | None, err: ContainerRuntimeNotFoundError) -> str:
    """How an engine that could not be reached is named: ``"docker at unix:///x.sock"``."""
    from kstlib.ops.engines.endpoints import default_endpoints

    tried = err.endpoints or tuple([base_url] if base_url else default_endpoints(runtime))
    return f"{runtime} at {', '.join(e.split(' at ')[-1] for e in tried)}"


def reachable_engines(
    runtime: str | None = None, base_url: str | None = None, timeout: float | None = None
) -> tuple[list[EngineAdapter], list[str]]:
    """Every engine that answers (Podman, then Docker; one endpoint once), and those that did not.

    Each runtime is reached as :func:`~kstlib.ops.engines.endpoints.connect`
    reaches it (``base_url``, else its default endpoints). One endpoint
    reached through both SDKs (``DOCKER_HOST`` on Podman's socket) counts once.

    Example:
        >>> engines, down = reachable_engines("docker", "unix:///nonexistent.sock")
        >>> engines, down
        ([], ['docker at unix:///nonexistent.sock'])
    """
    from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT
    from kstlib.ops.engines.endpoints import AUTO_ORDER, connect
    from kstlib.ops.validators import validate_base_url, validate_call_timeout, validate_runtime

    runtimes = (validate_runtime(runtime),) if runtime is not None else AUTO_ORDER
    base_url = validate_base_url(base_url)
    limit = validate_call_timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
    engines: list[EngineAdapter] = []
    down: list[str] = []
    for rt in runtimes:
        try:
            engine = connect(rt, base_url, limit)
        except ContainerRuntimeNotFoundError as err:
            down.append(_down(rt, base_url, err))
            continue
        if all(e.endpoint != engine.endpoint for e in engines):
            engines.append(engine)
    return engines, down


def search_containers(
    name: str,
    runtime: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    runner_factory: RunnerFactory | None = None,
) -> Search:
    """Search every reachable container engine for a container named exactly ``name``.

    Example:
        >>> search_containers("bot", "docker", "unix:///nonexistent.sock").unreachable
        ['docker at unix:///nonexistent.sock']
    """
    place = Location(BackendType.CONTAINER, runtime, base_url)
    return search_at(name, [place], runner_factory=runner_factory, timeout=timeout)


def search_at(
    name: str,
    places: Iterable[Location],
    *,
    strict: Collection[Location] = (),
    first: bool = False,
    runner_factory: RunnerFactory | None = None,
    tmux_bin: str | None = None,
    timeout: float | None = None,
) -> Search:
    """Ask each of ``places``, in order, whether it holds a session named exactly ``name``.

    A container place without a runtime is each engine (Podman, then Docker;
    one endpoint reached through both SDKs is asked once). A tmux place marked
    ``discovered`` (a server nobody named) gets a short timeout. A place that
    does not answer is listed in ``unreachable`` (with its error in
    ``failed``), unless it is one of ``strict`` (a place the caller named
    must answer): then its error is raised. ``first``: stop at the first
    place that holds ``name``. Every runner is built by ``runner_factory``
    (:func:`make_runner`); ``timeout``: seconds one engine call may take.

    Raises:
        BackendNotFoundError: a ``strict`` place did not answer.

    Example:
        >>> where = Location(BackendType.TMUX, socket_name="kstlib-doc")
        >>> found = search_at("no-such-session", [where])
        >>> found.found, found.searched
        ([], ['tmux (socket kstlib-doc)'])
    """
    from kstlib.ops.engines.endpoints import AUTO_ORDER
    from kstlib.ops.validators import validate_lookup_name

    validate_lookup_name(name)
    result = Search()
    others = 0
    endpoints: set[str] = set()
    for place in places:
        each = place.backend is _CONTAINER and place.runtime is None
        for here in [replace(place, runtime=r) for r in AUTO_ORDER] if each else [place]:
            where = _label(here)
            try:
                runner = _runner_at(here, runner_factory, tmux_bin, timeout)
                if here.backend is _CONTAINER:  # each endpoint once, named by its address
                    endpoint = str(getattr(runner, "endpoint", where))
                    if endpoint in endpoints:
                        continue
                    endpoints.add(endpoint)
                    where = f"{where} at {endpoint}" if endpoint != where else where
                held = runner.exists(name)
            except BackendNotFoundError as err:
                if place in strict:
                    raise
                if isinstance(err, ContainerRuntimeNotFoundError) and where == _label(here):
                    where = _down(where, here.endpoint, err)  # never reached: where it tried
                result.unreachable.append(where)
                result.failed.append((here, err))
                continue
            if here.discovered:
                others += 1
            else:
                result.searched.append(where)
            if held:
                result.found.append(here)
        if first and result.found:
            break
    if others:
        result.searched.append(f"{others} other tmux server{'s' if others > 1 else ''}")
    return result


_CONTAINER = BackendType.CONTAINER


def _label(place: Location) -> str:
    """How a :class:`Search` names a place it asked (a container: its runtime)."""
    if place.backend is BackendType.TMUX:
        return tmux_label(place.socket_name, place.socket_path)
    if place.backend is BackendType.SWARM:
        return f"swarm at {place.endpoint}" if place.endpoint else "swarm"
    return str(place.runtime)


def _tmux_places(
    socket_name: str | None, socket_path: str | None, discover: bool
) -> list[Location]:
    """The tmux servers to ask, as places: the named one, else the default and (``discover``) the rest."""
    servers = tmux_servers(socket_name, socket_path, discover=discover)
    return [
        Location(BackendType.TMUX, socket_name=n, socket_path=p, discovered=index > 0)
        for index, (n, p) in enumerate(servers)
    ]


def search(
    name: str,
    *,
    tmux: bool = True,
    containers: bool = True,
    tmux_bin: str | None = None,
    timeout: float | None = None,
    discover: bool = True,
    swarms: Iterable[str | None] = (),
    runner_factory: RunnerFactory | None = None,
    strict: bool = False,
    first: bool = False,
    **where: Unpack[Where],
) -> Search:
    """Search tmux and every reachable engine for a session named exactly ``name``.

    ``where`` (:class:`Where`: ``socket_name``, ``socket_path``, ``runtime``,
    ``base_url``) names the places; other keywords raise :class:`TypeError`.
    tmux: the given server (``socket_name``/``socket_path``); without one,
    the default server and, with ``discover``, every other live server of
    the user (:func:`tmux_servers`; each may take at most
    :data:`~kstlib.ops.tmux.sockets.DISCOVERY_TIMEOUT` seconds a call, and
    one that does not answer is listed in ``unreachable``). A name on several
    servers or engines is several :class:`Location` entries
    (:meth:`Search.one` raises
    :class:`~kstlib.ops.exceptions.SessionAmbiguousError`). ``swarms``: the
    swarm managers (endpoints; ``None``: the local Docker engine) to ask too.
    ``strict``: a place named here (the tmux server, ``runtime``/``base_url``,
    a swarm manager) must answer, else its error is raised. ``first``: stop
    at the first place that holds ``name`` (tmux is asked first). The places
    are asked by :func:`search_at`.

    Example:
        >>> from kstlib.ops import SessionConfig, TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-search", command="sleep 30"))
        >>> [loc.label for loc in search("doc-search", socket_name="kstlib-doc", containers=False).found]
        ['tmux']
        >>> [loc.label for loc in search("doc-search", containers=False).found]  # every server
        ['tmux (socket kstlib-doc)']
        >>> runner.stop("doc-search", graceful=False)
        True
    """
    _check_where("search", where)
    socket_name, socket_path = where.get("socket_name"), where.get("socket_path")
    runtime, base_url = where.get("runtime"), where.get("base_url")
    places: list[Location] = []
    named: list[Location] = []
    if tmux:
        places.extend(_tmux_places(socket_name, socket_path, discover))
        if socket_name is not None or socket_path is not None:
            named.extend(places)
    if containers:
        places.append(Location(_CONTAINER, runtime, base_url))
        if runtime is not None or base_url is not None:
            named.append(places[-1])
    swarm = [Location(BackendType.SWARM, endpoint=m) for m in dict.fromkeys(swarms)]
    return search_at(
        name,
        [*places, *swarm],
        strict=[*named, *swarm] if strict else (),
        first=first,
        runner_factory=runner_factory,
        tmux_bin=tmux_bin,
        timeout=timeout,
    )


def list_sessions(
    *,
    socket_name: str | None = None,
    socket_path: str | None = None,
    runtime: str | None = None,
    base_url: str | None = None,
    tmux: bool = True,
    containers: bool = True,
    timeout: float | None = None,
    discover: bool = True,
    engines: Iterable[EngineConfig | str] | Mapping[str, EngineConfig] | None = None,
    swarms: Iterable[str | None] = (),
    runner_factory: RunnerFactory | None = None,
) -> SessionTable:
    """Every session on tmux and on every reachable engine, in one table.

    tmux: the given server, else the default one and (``discover``) every
    other live server of the user, as :func:`search` asks them. The table's
    ``backend``, ``runtime`` and ``socket_name`` columns say where each runs.
    tmux that is not installed, or a server or engine that does not answer,
    is skipped with an :class:`EngineUnavailableWarning`.

    ``engines``: list these named engines instead (``ops.engines`` of the
    config file: :class:`~kstlib.ops.config.EngineConfig` objects, a
    mapping of them, or their names), all at once and each within its own
    timeout (:func:`kstlib.ops.fleet.list_engines`); each row's ``engine``
    says where it runs, and each engine that did not answer is one
    :class:`EngineUnavailableWarning`. To stop a session wherever it
    runs: ``SessionManager.find(name).stop()``.

    Example:
        >>> from kstlib.ops import SessionConfig, TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-listall", command="sleep 30"))
        >>> table = list_sessions(socket_name="kstlib-doc", containers=False)
        >>> [(s.name, s.backend.value) for s in table if s.name == "doc-listall"]
        [('doc-listall', 'tmux')]
        >>> runner.stop("doc-listall", graceful=False)
        True
    """
    if engines is not None:
        return _list_named(engines, timeout, runner_factory)
    rows: list[SessionStatus] = []
    if tmux:
        for server in _tmux_places(socket_name, socket_path, discover):
            _list_at(server, rows, runner_factory, timeout)
    if containers:
        from kstlib.ops.container.states import to_status
        from kstlib.ops.engines.endpoints import forget

        reached, down = reachable_engines(runtime, base_url, timeout)
        for where in down:
            warnings.warn(
                f"{where} did not answer; its containers are not listed",
                EngineUnavailableWarning,
                stacklevel=2,
            )
        for engine in reached:
            try:
                listed = engine.list_containers()
            except ContainerRuntimeNotFoundError:
                forget(engine)
                warnings.warn(
                    f"{engine.runtime} at {engine.endpoint} stopped answering; "
                    "its containers are not listed",
                    EngineUnavailableWarning,
                    stacklevel=2,
                )
                continue
            rows.extend(to_status(info, engine.runtime) for info in listed)
    for manager in dict.fromkeys(swarms):
        _list_at(Location(BackendType.SWARM, endpoint=manager), rows, runner_factory, timeout)
    return SessionTable(rows)


def _list_at(
    place: Location,
    rows: list[SessionStatus],
    factory: RunnerFactory | None,
    timeout: float | None,
) -> None:
    """Add the sessions of one tmux server or swarm to ``rows``; one that is down: a warning."""
    try:
        rows.extend(_runner_at(place, factory, None, timeout).list_sessions())
    except BackendNotFoundError as err:
        warnings.warn(f"{_label(place)} skipped: {err}", EngineUnavailableWarning, stacklevel=3)


def _list_named(
    engines: Iterable[EngineConfig | str] | Mapping[str, EngineConfig],
    timeout: float | None,
    factory: RunnerFactory | None,
) -> SessionTable:
    from kstlib.ops.fleet import list_engines, named_engines

    chosen = named_engines(engines)
    table, down = list_engines(chosen, timeout, factory)
    for name, err in down.items():
        warnings.warn(f"engine {name} skipped: {err}", EngineUnavailableWarning, stacklevel=3)
    return table


def locate_container(
    name: str,
    runtime: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
) -> list[str]:
    """The runtimes (``"podman"``, ``"docker"``) where a container named ``name`` exists.

    ``runtime=None`` searches every engine (Podman, then Docker); an engine
    that does not answer is skipped, but any other error propagates. One
    endpoint reached through both SDKs (``DOCKER_HOST`` on Podman's socket)
    is searched once. :func:`kstlib.ops.discovery.search_containers` also says
    what was searched.

    Example:
        >>> locate_container("bot", runtime="docker", base_url="unix:///nonexistent.sock")
        []
    """
    found = search_containers(name, runtime, base_url, timeout).found
    return [loc.runtime for loc in found if loc.runtime is not None]


class Where(TypedDict, total=False):
    """Where :func:`auto_detect_backend` looks: :func:`search`'s places, by the same keywords."""

    socket_name: str | None
    socket_path: str | None
    runtime: str | None
    base_url: str | None


def _check_where(caller: str, where: Mapping[str, object]) -> None:
    """Refuse a keyword that is not one of :class:`Where`'s (``**where`` takes any at run time)."""
    unknown = set(where) - set(Where.__annotations__)
    if unknown:
        raise TypeError(f"{caller}() got unexpected keywords: {sorted(unknown)}")


def auto_detect_backend(name: str, **where: Unpack[Where]) -> BackendType | None:
    """Return the backend where session ``name`` lives, ``None`` if nowhere.

    Searches tmux, then every reachable container engine (Podman, Docker);
    ``where`` narrows it as for :func:`search` (``socket_name``,
    ``socket_path``, ``runtime``, ``base_url``).
    A name found on more than one raises
    :class:`~kstlib.ops.exceptions.SessionAmbiguousError` listing them
    (e.g. ``["tmux", "podman"]``).

    Example:
        >>> auto_detect_backend("no-such-session", socket_name="kstlib-doc") is None
        True
    """
    validate_name(name)
    _check_where("auto_detect_backend", where)
    found = _at_most_one(name, **where)
    return found.backend if found is not None else None


def _at_most_one(name: str, **where: Any) -> Location | None:
    """The one place :func:`search` finds ``name`` (``None``: nowhere); several: ambiguous."""
    found = search(name, **where).found
    if len(found) > 1:
        raise SessionAmbiguousError(
            name, [loc.backend for loc in found], places=[loc.label for loc in found]
        )
    return found[0] if found else None


#: Options that mean a container when no backend is named.
IMPLY_CONTAINER = ("image", "runtime", "base_url")


def detect(
    name: str,
    options: dict[str, Any],
    tmux_bin: str | None = None,
    timeout: float | None = None,
    runner_factory: RunnerFactory | None = None,
) -> BackendType:
    """The backend of ``SessionManager(name, backend=None)``: where ``name`` runs, else a default.

    Found on one place: that backend, and ``options`` gain its ``runtime`` or
    ``socket_name``; found nowhere: a container when ``options`` name an
    image, runtime or base_url, tmux otherwise.

    Example:
        >>> detect("no-such-session", {"socket_name": "kstlib-doc", "image": "x"})
        <BackendType.CONTAINER: 'container'>
    """
    where = _at_most_one(
        name,
        socket_name=options.get("socket_name"),
        socket_path=options.get("socket_path"),
        runtime=options.get("runtime"),
        base_url=options.get("base_url"),
        tmux_bin=tmux_bin,
        timeout=timeout,
        runner_factory=runner_factory,
    )
    if where is None:
        wants_container = any(options.get(k) is not None for k in IMPLY_CONTAINER)
        return BackendType.CONTAINER if wants_container else BackendType.TMUX
    if where.runtime is not None and options.get("runtime") is None:
        options["runtime"] = where.runtime
    if where.socket_name is not None and options.get("socket_name") is None:
        options["socket_name"] = where.socket_name  # found on another tmux server
    return where.backend
