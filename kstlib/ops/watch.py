"""The live events stream's entry point and its container sources.

Internal module: the public name is the function ``kstlib.ops.events``.

:func:`events` (public as ``kstlib.ops.events``) returns an
:class:`~kstlib.ops.eventstream.EventStream` fed by Docker's or Podman's
``/events`` filtered by kstlib's label (:class:`_ContainerSource`, what each
runtime's actions mean is the :data:`ACTIONS` table), by a swarm manager's
service events (:class:`_SwarmSource`) with one :class:`_NodeSource` per
node engine for its tasks' exits, or by a tmux server's collector journal
(:mod:`kstlib.ops.tmux.events`). Each lists the world first, then watches,
then resyncs (see :mod:`kstlib.ops.eventstream`).

:meth:`EventStream.close` may be called from any thread: it closes the HTTP
responses the sources read (their threads return, none is abandoned) and
iteration ends within a fraction of a second.

Example:
    >>> stream = events(["bot"], backend="container", engine="docker")  # doctest: +SKIP
    >>> next(stream).kind  # doctest: +SKIP
    'started'
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from kstlib.ops.engines.adapter import MANAGED_LABEL, MANAGED_VALUE
from kstlib.ops.eventstream import (
    KINDS,
    QUEUE_SIZE,
    EventStream,
    SessionEvent,
    Sink,
    Source,
    now,
)
from kstlib.ops.exceptions import OpsError, SessionConfigError
from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.translate import Op

__all__ = ["ACTIONS", "KINDS", "EventStream", "SessionEvent", "config_events", "events"]

#: What each runtime's ``/events`` actions mean: runtime -> action -> event kind.
#: An action a runtime does not list is no session event. Podman's ``stop`` is
#: left out: Podman sends it only when its own stop procedure is not overtaken
#: by the container's cleanup (a race inside Podman), so that the answer is
#: always the same; its ``exited`` code (143 for SIGTERM) tells. Docker says
#: ``destroy`` where Podman says ``remove``.
ACTIONS: Mapping[str, Mapping[str, str]] = {
    "docker": {
        "start": "started",
        "die": "exited",
        "oom": "oom",
        "stop": "stopped",
        "destroy": "removed",
    },
    "podman": {"start": "started", "die": "exited", "oom": "oom", "remove": "removed"},
}


class _ContainerSource(Source):
    """Docker or Podman (through its Docker-compatible API): containers kstlib made."""

    def __init__(
        self,
        sink: Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        runtime: str | None,
        base_url: str | None,
        *,
        timeout: float | None = None,
    ) -> None:
        super().__init__(sink, closed, names)
        from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT
        from kstlib.ops.engines.endpoints import connect

        # Raises the typed error now, not later; ``timeout`` bounds each call (the
        # listing, an inspect), not the event stream itself.
        self.engine: Any = connect(runtime, base_url, timeout or DEFAULT_TIMEOUT)
        self.runtime: str = self.engine.runtime
        self.counts: dict[str, int] = {}
        # Podman repeats ``die`` and ``remove`` when a stop is followed by a forced
        # remove: one exit per run, one removal per container id.
        self.dead: set[str] = set()
        self.gone: set[str] = set()

    def _api(self) -> Any:
        api = getattr(self.engine, "api", None)
        return api if api is not None else self.engine.compat()

    def event(self, name: str, kind: str, **fields: Any) -> SessionEvent:
        return SessionEvent(name, BackendType.CONTAINER, kind, engine=self.runtime, **fields)

    def watch(self, first: bool) -> None:
        since_s = now().timestamp()
        with self.engine._translate(Op.READ, None, call="events"):
            if not first:
                self.emit(self.event("", "resync"))
            self.listing()
            self.follow(self.raw_events(since_s), since_s)

    def listing(self) -> None:
        """The snapshot: one event per session kstlib made."""
        for info in self.engine.list_containers():
            if not info.managed:
                continue
            running = info.state == "running"
            self.counts[info.id] = info.restart_count
            self.emit(
                self.event(
                    info.name,
                    "started" if running else "exited",
                    exit_code=None if running else info.exit_code,
                    snapshot=True,
                )
            )

    def raw_events(self, since_s: float) -> Any:
        return self._api().events(
            decode=True,
            since=f"{since_s:.9f}",
            filters={"type": "container", "label": f"{MANAGED_LABEL}={MANAGED_VALUE}"},
        )

    def follow(self, stream: Iterator[Mapping[str, Any]], since_s: float) -> None:
        """Read the engine's ``/events`` until closed (older ones are the listing's)."""
        if not self.hold(stream):
            return
        for raw in stream:
            if self.closed.is_set():
                return
            if float(raw.get("timeNano", 0)) / 1e9 + 1e-6 >= since_s:
                self.on_raw(raw)
        if not self.closed.is_set():
            raise ConnectionError("the engine closed its event stream")

    def on_raw(self, raw: Mapping[str, Any]) -> None:
        kind = ACTIONS[self.runtime].get(str(raw.get("Action") or raw.get("status") or ""))
        actor = raw.get("Actor") or {}
        attrs: Mapping[str, str] = actor.get("Attributes") or {}
        ref = str(actor.get("ID") or raw.get("id") or "")
        name = str(attrs.get("name", ""))
        if kind is None or not name or not self.wanted(name) or ref in self.gone:
            return
        when = _time_of(raw)
        if kind == "started":
            self.dead.discard(ref)
            # One start event is one restart at most: a late read may inspect a higher count.
            known = self.counts.get(ref, 0)
            if self._restart_count(ref) > known:
                self.counts[ref] = known + 1
                self.emit(self.event(name, "restarted", time=when, restart_count=known + 1))
            else:
                self.emit(self.event(name, "started", time=when))
        elif kind == "exited":
            if ref not in self.dead:
                self.dead.add(ref)
                self.emit(self.event(name, "exited", time=when, exit_code=_exit_code(attrs)))
        elif kind == "removed":
            self.counts.pop(ref, None)
            self.gone.add(ref)
            self.emit(self.event(name, "removed", time=when))
        else:  # oom, stopped: nothing to keep
            self.emit(self.event(name, kind, time=when))

    def _restart_count(self, ref: str) -> int:
        try:
            return int(self.engine.inspect(ref).restart_count)
        except OpsError:  # gone already: no restart to count
            return 0


class _Swarm:
    """What one swarm stream's sources share: the manager, kstlib's services, the exits told.

    A service is known by its id (ids are never reused): added from the
    listing and from ``create`` events, and asked of the manager when a node
    reports a task of a service not known yet (its ``create`` may still be on
    its way). An exit is told once per container, whichever source saw it
    first: a node URL may be the manager's own engine.
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.lock = threading.Lock()
        self.ours: set[str] = set()
        self.others: set[str] = set()
        self.told: set[str] = set()

    def add(self, service_id: str) -> None:
        with self.lock:
            self.ours.add(service_id)

    def is_ours(self, name: str, service_id: str) -> bool:
        with self.lock:
            if service_id in self.ours or service_id in self.others:
                return service_id in self.ours
        try:
            service = self.manager.find(name)
        except OpsError:  # gone already, unless the manager's source knew it meanwhile
            with self.lock:
                return service_id in self.ours
        ours = str(service.get("ID")) == service_id and _labelled(service)
        with self.lock:
            (self.ours if ours else self.others).add(service_id)
            return service_id in self.ours

    def first_exit(self, container_id: str) -> bool:
        with self.lock:
            first = container_id not in self.told
            self.told.add(container_id)
            return first


class _SwarmSource(_ContainerSource):
    """A swarm manager's services kstlib made: ``started`` when created, ``removed`` when gone."""

    def __init__(
        self, sink: Sink, closed: threading.Event, names: frozenset[str] | None, swarm: _Swarm
    ) -> None:
        Source.__init__(self, sink, closed, names)
        self.swarm = swarm
        self.engine = swarm.manager
        self.runtime = "swarm"
        self.managed: set[str] = set()

    def event(self, name: str, kind: str, **fields: Any) -> SessionEvent:
        return SessionEvent(name, BackendType.SWARM, kind, engine=self.engine.endpoint, **fields)

    def listing(self) -> None:
        made = [s for s in self.engine.services() if _labelled(s)]
        for service in made:
            self.swarm.add(str(service["ID"]))
        self.managed = {str(s["Spec"]["Name"]) for s in made}
        for name in sorted(self.managed):
            self.emit(self.event(name, "started", snapshot=True))

    def raw_events(self, since_s: float) -> Any:
        return self.engine.api.events(
            decode=True, since=f"{since_s:.9f}", filters={"type": "service"}
        )

    def on_raw(self, raw: Mapping[str, Any]) -> None:
        action = str(raw.get("Action") or "")
        actor = raw.get("Actor") or {}
        name = str((actor.get("Attributes") or {}).get("name", ""))
        if action == "create" and self.wanted(name) and self._is_managed(name):
            self.swarm.add(str(actor.get("ID") or ""))
            self.managed.add(name)
            self.emit(self.event(name, "started", time=_time_of(raw)))
        elif action == "remove" and name in self.managed:
            self.managed.discard(name)
            self.emit(self.event(name, "removed", time=_time_of(raw)))

    def _is_managed(self, name: str) -> bool:
        try:
            return _labelled(self.engine.find(name))
        except OpsError:  # removed already
            return False


class _NodeSource(_ContainerSource):
    """One swarm node's own engine: the exits of the tasks of kstlib's services that ran there.

    An engine's ``/events`` speaks of its own containers only, so a swarm
    stream reads the manager's engine and each node's. The node's engine is
    connected in this source's thread (a node that is down is retried, it
    does not fail the stream) and each reconnect asks for the events since the
    last one read, so a gap loses no exit (one told twice is told once).
    """

    def __init__(
        self,
        sink: Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        swarm: _Swarm,
        engine: Callable[[], Any],
    ) -> None:
        Source.__init__(self, sink, closed, names)
        self.swarm = swarm
        self.connect = engine
        self.since_s = now().timestamp()

    def watch(self, first: bool) -> None:
        engine = self.connect()
        with engine._translate(Op.READ, None, call="events"):
            since_s = self.since_s
            filters = {"type": "container", "event": "die", "label": _SERVICE_LABEL}
            raw = engine.api.events(decode=True, since=f"{since_s:.9f}", filters=filters)
            self.follow(raw, since_s)

    def on_raw(self, raw: Mapping[str, Any]) -> None:
        self.since_s = max(self.since_s, float(raw.get("timeNano", 0)) / 1e9)
        actor = raw.get("Actor") or {}
        attrs: Mapping[str, str] = actor.get("Attributes") or {}
        service = str(attrs.get(_SERVICE_LABEL, ""))
        service_id = str(attrs.get("com.docker.swarm.service.id", ""))
        if (
            str(raw.get("Action") or "") == "die"
            and self.wanted(service)
            and self.swarm.is_ours(service, service_id)
            and self.swarm.first_exit(str(actor.get("ID") or ""))
        ):
            exit_code = _exit_code(attrs)
            self.emit(
                SessionEvent(
                    service,
                    BackendType.SWARM,
                    "exited",
                    _time_of(raw),
                    self.swarm.manager.endpoint,
                    exit_code,
                )
            )


#: The label a swarm puts on each task's container: the name of its service.
_SERVICE_LABEL = "com.docker.swarm.service.name"


def _labelled(service: Mapping[str, Any]) -> bool:
    labels = (service.get("Spec") or {}).get("Labels") or {}
    return bool(labels.get(MANAGED_LABEL) == MANAGED_VALUE)


def _time_of(raw: Mapping[str, Any]) -> datetime:
    stamp = raw.get("timeNano")
    return datetime.fromtimestamp(int(stamp) / 1e9, timezone.utc) if stamp else now()


def _exit_code(attrs: Mapping[str, str]) -> int | None:
    code = str(attrs.get("exitCode", ""))
    return int(code) if code.lstrip("-").isdigit() else None


def _node_urls(urls: Sequence[str], backend: BackendType) -> tuple[str, ...]:
    """``node_urls``, checked: engine URLs, for a swarm stream only."""
    from kstlib.ops.validators import validate_base_url

    found = (urls,) if isinstance(urls, str) else tuple(urls)
    if found and backend is not BackendType.SWARM:
        raise SessionConfigError(
            f"node_urls: a swarm's nodes; this stream's backend is {backend.value}", "node_urls"
        )
    checked = tuple(validate_base_url(url) for url in found)
    if None in checked:
        raise SessionConfigError("node_urls: expected engine URLs, got null", "node_urls")
    return tuple(str(url) for url in checked)


def _swarm_stream(
    names: frozenset[str] | None,
    base_url: str | None,
    node_urls: Sequence[str],
    queue_size: int,
    timeout: float | None,
) -> EventStream:
    """The manager's services, and the task exits of the manager's engine and each node's."""
    from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT
    from kstlib.ops.engines.endpoints import connect, connect_swarm

    timeout = timeout or DEFAULT_TIMEOUT
    # Connected here: a manager that does not answer raises in the caller's thread.
    swarm = _Swarm(connect_swarm(base_url, timeout))

    def services(sink: Sink, closed: threading.Event) -> Source:
        return _SwarmSource(sink, closed, names, swarm)

    def node(engine: Callable[[], Any]) -> Callable[[Sink, threading.Event], Source]:
        return lambda sink, closed: _NodeSource(sink, closed, names, swarm, engine)

    nodes = [node(lambda: swarm.manager)]
    nodes += [node(functools.partial(connect, "docker", url, timeout)) for url in node_urls]
    return EventStream([services, *nodes], queue_size, BackendType.SWARM)


def events(
    names: Iterable[str] | None = None,
    backend: BackendType | str | None = None,
    engine: str | None = None,
    *,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    queue_size: int = QUEUE_SIZE,
    engine_timeout: float | None = None,
    node_urls: Sequence[str] = (),
) -> EventStream:
    """Watch sessions change: a live :class:`EventStream` (list, then watch, then resync).

    ``names`` keeps those sessions only; ``backend`` is ``"container"`` (the
    default), ``"swarm"`` or ``"tmux"``; ``engine`` picks ``"docker"`` or
    ``"podman"`` (``None``: the first that answers) and ``base_url`` one
    endpoint; ``socket_name``/``socket_path`` pick the tmux server (default:
    tmux's default server). An engine that does not answer raises its typed
    error here, before any thread starts; ``engine_timeout`` bounds each of
    the engine calls (seconds; default 30), not the stream's wait for events.

    A swarm stream reads the manager's service events and, for the exits of
    the tasks, the ``/events`` of the manager's own engine and of each engine
    in ``node_urls`` (the swarm's other nodes, as a swarm engine's ``nodes:``
    lists them; an engine's ``/events`` speaks of its own containers only): a
    task's ``exited`` is told once, whichever node it ran on. A node that does
    not answer is retried in the background; ``node_urls`` on another backend
    is a :class:`~kstlib.ops.exceptions.SessionConfigError`.

    Example:
        >>> from kstlib.ops import events
        >>> stream = events(["bot"], backend="tmux", socket_name="kstlib-doc")
        >>> stream.close(); list(stream)
        []
    """
    wanted = None if names is None else frozenset(names)
    kind = BackendType(backend) if backend is not None else BackendType.CONTAINER
    nodes = _node_urls(node_urls, kind)
    if kind is BackendType.SWARM:
        return _swarm_stream(wanted, base_url, nodes, queue_size, engine_timeout)

    def make(sink: Sink, closed: threading.Event) -> Source:
        # Connecting here raises the engine's typed error in the caller's thread.
        if kind is BackendType.TMUX:
            from kstlib.ops.tmux.events import TmuxSource

            return TmuxSource(sink, closed, wanted, socket_name, socket_path)
        return _ContainerSource(sink, closed, wanted, engine, base_url, timeout=engine_timeout)

    return EventStream([make], queue_size, kind)


def config_events(
    names: Iterable[str],
    backend: BackendType,
    config: SessionConfig,
    engine_timeout: float | None = None,
    node_urls: Sequence[str] = (),
) -> EventStream:
    """:func:`events` on the engine (or tmux server) a session's ``config`` names.

    ``node_urls``: a swarm's other nodes (see :func:`events`).

    Example:
        >>> cfg = SessionConfig(name="bot", socket_name="kstlib-doc")
        >>> stream = config_events(["bot"], BackendType.TMUX, cfg); stream.close()
    """
    return events(
        names,
        backend,
        config.runtime,
        base_url=config.base_url,
        socket_name=config.socket_name,
        socket_path=config.socket_path,
        engine_timeout=engine_timeout,
        node_urls=node_urls,
    )
