"""One live stream of session events: list, then watch, then resync.

Internal module: the public names are ``kstlib.ops.events``, ``EventStream`` and ``SessionEvent``.

:func:`events` returns an :class:`EventStream`, a sync iterator of
:class:`SessionEvent`. Each source lists the world first (a snapshot: one
event per session, ``snapshot=True``), then watches what the engine pushes
(Docker's and Podman's ``/events``, filtered by kstlib's label), and when the
watch breaks (the engine restarted) it reconnects by itself, emits a
``resync`` marker and a fresh snapshot, and goes on: Kubernetes client-go's
informer. Events wait in a bounded queue; when the consumer stops reading,
what does not fit is counted and the next read returns a ``lost`` event with
that count (re-read the world then).

:meth:`EventStream.close` may be called from any thread: it closes the HTTP
responses the sources read (their threads return, none is abandoned) and
iteration ends within a fraction of a second.

Example:
    >>> ev = SessionEvent("bot", BackendType.CONTAINER, "exited", exit_code=3, engine="docker")
    >>> {k: v for k, v in ev.to_dict().items() if k not in ("time",)}["exit_code"]
    3
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from kstlib.ops.engines.adapter import MANAGED_LABEL, MANAGED_VALUE
from kstlib.ops.exceptions import OpsError, SessionConfigError
from kstlib.ops.models import BackendType
from kstlib.ops.translate import Op

__all__ = ["KINDS", "EventStream", "SessionEvent", "events"]

#: Every ``kind`` an event may have.
KINDS = ("started", "exited", "restarted", "stopped", "removed", "oom", "resync", "lost")
_QUEUE_SIZE = 1024
_POLL_S = 0.1
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SessionEvent:
    """One change of one session (or a ``resync``/``lost`` marker, whose ``name`` is ``""``).

    ``snapshot`` marks the events of a listing (the state found on (re)connect,
    not a change seen happening); ``restart_count`` is set on ``restarted``,
    ``dropped`` on ``lost``.

    Example:
        >>> SessionEvent("job", BackendType.TMUX, "exited", exit_code=0).to_dict()["backend"]
        'tmux'
    """

    name: str
    backend: BackendType
    kind: str
    time: datetime = field(default_factory=_now)
    engine: str | None = None
    exit_code: int | None = None
    managed: bool = True
    restart_count: int | None = None
    snapshot: bool = False
    dropped: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``time`` as ISO 8601).

        Example:
            >>> SessionEvent("a", BackendType.CONTAINER, "oom").to_dict()["kind"]
            'oom'
        """
        return {
            "name": self.name,
            "backend": str(self.backend),
            "engine": self.engine,
            "kind": self.kind,
            "exit_code": self.exit_code,
            "time": self.time.isoformat(),
            "managed": self.managed,
            "restart_count": self.restart_count,
            "snapshot": self.snapshot,
            "dropped": self.dropped,
        }


class _Sink:
    """The bounded queue between the sources and the consumer, with its drop counter."""

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[SessionEvent] = queue.Queue(size)
        self.dropped = 0
        self.lock = threading.Lock()

    def put(self, event: SessionEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self.lock:
                self.dropped += 1

    def take_dropped(self) -> int:
        with self.lock:
            count, self.dropped = self.dropped, 0
            return count


class _Source:
    """One engine's list-watch-resync loop, run by one thread."""

    def __init__(self, sink: _Sink, closed: threading.Event, names: frozenset[str] | None) -> None:
        self.sink = sink
        self.closed = closed
        self.names = names
        self._lock = threading.Lock()
        self._stream: Any = None
        self.thread = threading.Thread(target=self._run, name="kstlib-events", daemon=True)

    def wanted(self, name: str) -> bool:
        return self.names is None or name in self.names

    def emit(self, event: SessionEvent) -> None:
        if not self.closed.is_set() and (event.name == "" or self.wanted(event.name)):
            self.sink.put(event)

    def hold(self, stream: Any) -> bool:
        """Keep ``stream`` to close it from :meth:`close`; ``False`` when already closed."""
        with self._lock:
            if self.closed.is_set():
                _close_quietly(stream)
                return False
            self._stream = stream
            return True

    def close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            _close_quietly(stream)

    def _run(self) -> None:
        attempt = 0
        first = True
        while not self.closed.is_set():
            try:
                self.watch(first)
                attempt = 0
            except Exception:  # any break of the watch is a gap: reconnect, resync
                attempt += 1
            first = False
            if self.closed.is_set():
                break
            self.closed.wait(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])

    def watch(self, first: bool) -> None:  # pragma: no cover - every source overrides it
        raise NotImplementedError


def _close_quietly(stream: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken stream: nothing left to do
        stream.close()


class _ContainerSource(_Source):
    """Docker or Podman (through its Docker-compatible API): containers kstlib made."""

    def __init__(
        self,
        sink: _Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        runtime: str | None,
        base_url: str | None,
    ) -> None:
        super().__init__(sink, closed, names)
        from kstlib.ops.engines.endpoints import connect

        self.engine: Any = connect(runtime, base_url)  # raises the typed error now, not later
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
        engine = self.engine
        since_s = _now().timestamp()
        with engine._translate(Op.READ, None, call="events"):
            if not first:
                self.emit(self.event("", "resync"))
            for info in engine.list_containers():
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
            stream = self._api().events(
                decode=True,
                since=f"{since_s:.9f}",
                filters={"type": "container", "label": f"{MANAGED_LABEL}={MANAGED_VALUE}"},
            )
            if not self.hold(stream):
                return
            for raw in stream:
                if self.closed.is_set():
                    return
                if float(raw.get("timeNano", 0)) / 1e9 + 1e-6 < since_s:
                    continue  # the listing already holds it
                self.on_raw(raw)
        if not self.closed.is_set():
            raise ConnectionError("the engine closed its event stream")

    def on_raw(self, raw: Mapping[str, Any]) -> None:
        action = str(raw.get("Action") or raw.get("status") or "")
        actor = raw.get("Actor") or {}
        attrs: Mapping[str, str] = actor.get("Attributes") or {}
        ref = str(actor.get("ID") or raw.get("id") or "")
        name = str(attrs.get("name", ""))
        if not name or not self.wanted(name) or ref in self.gone:
            return
        stamp = raw.get("timeNano")
        when = datetime.fromtimestamp(int(stamp) / 1e9, timezone.utc) if stamp else _now()
        if action == "start":
            self.dead.discard(ref)
            # One start event is one restart at most: a late read may inspect a higher count.
            known = self.counts.get(ref, 0)
            if self._restart_count(ref) > known:
                self.counts[ref] = known + 1
                self.emit(self.event(name, "restarted", time=when, restart_count=known + 1))
            else:
                self.emit(self.event(name, "started", time=when))
        elif action == "die" and ref not in self.dead:
            self.dead.add(ref)
            code = attrs.get("exitCode")
            exit_code = int(code) if code is not None and str(code).lstrip("-").isdigit() else None
            self.emit(self.event(name, "exited", time=when, exit_code=exit_code))
        elif action == "oom":
            self.emit(self.event(name, "oom", time=when))
        elif action == "stop" and self.runtime == "docker":
            # Podman sends ``stop`` only when its own stop procedure is not overtaken by
            # the container's cleanup (a race inside Podman): dropped, so that Podman's
            # answer is always the same; its ``exited`` code (143 for SIGTERM) tells.
            self.emit(self.event(name, "stopped", time=when))
        elif action in ("destroy", "remove"):
            self.counts.pop(ref, None)
            self.gone.add(ref)
            self.emit(self.event(name, "removed", time=when))

    def _restart_count(self, ref: str) -> int:
        try:
            return int(self.engine.inspect(ref).restart_count)
        except OpsError:  # gone already: no restart to count
            return 0


class _SwarmSource(_ContainerSource):
    """A swarm manager: services kstlib made (create, remove) and their tasks' exits there.

    A task's exit is seen when its container ran on the manager's own node
    (an engine's ``/events`` speaks of its own containers only).
    """

    def __init__(
        self,
        sink: _Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        base_url: str | None,
    ) -> None:
        _Source.__init__(self, sink, closed, names)
        from kstlib.ops.engines.endpoints import connect_swarm

        self.engine = connect_swarm(base_url)
        self.runtime = "swarm"
        self.managed: set[str] = set()
        self.dead: set[str] = set()

    def event(self, name: str, kind: str, **fields: Any) -> SessionEvent:
        return SessionEvent(name, BackendType.SWARM, kind, engine=self.engine.endpoint, **fields)

    def watch(self, first: bool) -> None:
        engine = self.engine
        since_s = _now().timestamp()
        with engine._translate(Op.READ, None, call="events"):
            if not first:
                self.emit(self.event("", "resync"))
            self.managed = {str(svc["Spec"]["Name"]) for svc in engine.services() if _labelled(svc)}
            for name in sorted(self.managed):
                self.emit(self.event(name, "started", snapshot=True))
            stream = engine.api.events(
                decode=True, since=f"{since_s:.9f}", filters={"type": ["service", "container"]}
            )
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
        action = str(raw.get("Action") or "")
        actor = raw.get("Actor") or {}
        attrs: Mapping[str, str] = actor.get("Attributes") or {}
        when = datetime.fromtimestamp(int(raw.get("timeNano") or 0) / 1e9, timezone.utc)
        if raw.get("Type") == "service":
            name = str(attrs.get("name", ""))
            if action == "create" and self.wanted(name) and self._is_managed(name):
                self.managed.add(name)
                self.emit(self.event(name, "started", time=when))
            elif action == "remove" and name in self.managed:
                self.managed.discard(name)
                self.emit(self.event(name, "removed", time=when))
            return
        service = str(attrs.get("com.docker.swarm.service.name", ""))
        ref = str(actor.get("ID") or "")
        if service in self.managed and action == "die" and ref not in self.dead:
            self.dead.add(ref)
            code = str(attrs.get("exitCode", ""))
            exit_code = int(code) if code.lstrip("-").isdigit() else None
            self.emit(self.event(service, "exited", time=when, exit_code=exit_code))

    def _is_managed(self, name: str) -> bool:
        try:
            return _labelled(self.engine.find(name))
        except OpsError:  # removed already
            return False


def _labelled(service: Mapping[str, Any]) -> bool:
    labels = (service.get("Spec") or {}).get("Labels") or {}
    return bool(labels.get(MANAGED_LABEL) == MANAGED_VALUE)


class EventStream(Iterator[SessionEvent]):
    """A live, closable iterator of :class:`SessionEvent` (also a context manager).

    Example:
        >>> with events(backend="container", engine="docker") as stream:  # doctest: +SKIP
        ...     for ev in stream:
        ...         if ev.kind == "exited":
        ...             print(ev.name, ev.exit_code)
    """

    def __init__(
        self,
        make_sources: Iterable[Callable[[_Sink, threading.Event], _Source]],
        size: int = _QUEUE_SIZE,
        backend: BackendType = BackendType.CONTAINER,
    ) -> None:
        self._backend = backend
        self._sink = _Sink(size)
        self._closed = threading.Event()
        self._sources = [make(self._sink, self._closed) for make in make_sources]
        for source in self._sources:
            source.thread.start()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called.

        Example:
            >>> EventStream([]).closed
            False
        """
        return self._closed.is_set()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> SessionEvent:
        while not self._closed.is_set():
            dropped = self._sink.take_dropped()
            if dropped:
                return SessionEvent("", self._backend, "lost", dropped=dropped)
            try:
                return self._sink.queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        raise StopIteration

    def close(self) -> None:
        """Stop the stream from any thread: close the responses read, end iteration.

        Example:
            >>> stream = EventStream([]); stream.close(); list(stream)
            []
        """
        self._closed.set()
        for source in self._sources:
            source.close()
        if threading.current_thread() not in [s.thread for s in self._sources]:
            for source in self._sources:
                source.thread.join(timeout=2.0)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def events(
    names: Iterable[str] | None = None,
    backend: BackendType | str | None = None,
    engine: str | None = None,
    *,
    base_url: str | None = None,
    queue_size: int = _QUEUE_SIZE,
) -> EventStream:
    """Watch sessions change: a live :class:`EventStream` (list, then watch, then resync).

    ``names`` keeps those sessions only; ``backend`` is ``"container"`` (the
    default); ``engine`` picks ``"docker"`` or ``"podman"`` (``None``: the first
    that answers) and ``base_url`` one endpoint. An engine that does not answer
    raises its typed error here, before any thread starts.

    Example:
        >>> stream = events(["bot"], backend="container", engine="docker")  # doctest: +SKIP
        >>> next(stream).kind  # doctest: +SKIP
        'started'
    """
    wanted = None if names is None else frozenset(names)
    kind = BackendType(backend) if backend is not None else BackendType.CONTAINER
    if kind is BackendType.TMUX:
        raise SessionConfigError("backend: events are not available for tmux yet", "backend")

    def make(sink: _Sink, closed: threading.Event) -> _Source:
        # Connecting here raises the engine's typed error in the caller's thread.
        if kind is BackendType.SWARM:
            return _SwarmSource(sink, closed, wanted, base_url)
        return _ContainerSource(sink, closed, wanted, engine, base_url)

    return EventStream([make], queue_size, kind)


class _CallableModule(types.ModuleType):
    """``kstlib.ops.events(...)`` calls :func:`events`: the module and the function share a name.

    Example:
        >>> import kstlib.ops
        >>> callable(kstlib.ops.events)
        True
    """

    def __call__(self, *args: Any, **kwargs: Any) -> EventStream:
        return events(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
