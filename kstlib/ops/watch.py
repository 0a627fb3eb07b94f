"""The live events stream's entry point and its container sources.

Internal module: the public name is the function ``kstlib.ops.events``.

:func:`events` (public as ``kstlib.ops.events``) returns an
:class:`~kstlib.ops.eventstream.EventStream` fed by one source: Docker's or
Podman's ``/events`` filtered by kstlib's label (:class:`_ContainerSource`),
a swarm manager's service and task events (:class:`_SwarmSource`), or a tmux
server's collector journal (:mod:`kstlib.ops.tmux.events`). Each lists the
world first, then watches, then resyncs (see :mod:`kstlib.ops.eventstream`).

:meth:`EventStream.close` may be called from any thread: it closes the HTTP
responses the sources read (their threads return, none is abandoned) and
iteration ends within a fraction of a second.

Example:
    >>> stream = events(["bot"], backend="container", engine="docker")  # doctest: +SKIP
    >>> next(stream).kind  # doctest: +SKIP
    'started'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
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
from kstlib.ops.exceptions import OpsError
from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.translate import Op

__all__ = ["KINDS", "EventStream", "SessionEvent", "config_events", "events"]


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
        action = str(raw.get("Action") or raw.get("status") or "")
        actor = raw.get("Actor") or {}
        attrs: Mapping[str, str] = actor.get("Attributes") or {}
        ref = str(actor.get("ID") or raw.get("id") or "")
        name = str(attrs.get("name", ""))
        if not name or not self.wanted(name) or ref in self.gone:
            return
        stamp = raw.get("timeNano")
        when = datetime.fromtimestamp(int(stamp) / 1e9, timezone.utc) if stamp else now()
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
        sink: Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        base_url: str | None,
        *,
        timeout: float | None = None,
    ) -> None:
        Source.__init__(self, sink, closed, names)
        from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT
        from kstlib.ops.engines.endpoints import connect_swarm

        self.engine = connect_swarm(base_url, timeout or DEFAULT_TIMEOUT)
        self.runtime = "swarm"
        self.managed: set[str] = set()
        self.dead: set[str] = set()

    def event(self, name: str, kind: str, **fields: Any) -> SessionEvent:
        return SessionEvent(name, BackendType.SWARM, kind, engine=self.engine.endpoint, **fields)

    def listing(self) -> None:
        self.managed = {str(s["Spec"]["Name"]) for s in self.engine.services() if _labelled(s)}
        for name in sorted(self.managed):
            self.emit(self.event(name, "started", snapshot=True))

    def raw_events(self, since_s: float) -> Any:
        return self.engine.api.events(
            decode=True, since=f"{since_s:.9f}", filters={"type": ["service", "container"]}
        )

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
) -> EventStream:
    """Watch sessions change: a live :class:`EventStream` (list, then watch, then resync).

    ``names`` keeps those sessions only; ``backend`` is ``"container"`` (the
    default), ``"swarm"`` or ``"tmux"``; ``engine`` picks ``"docker"`` or
    ``"podman"`` (``None``: the first that answers) and ``base_url`` one
    endpoint; ``socket_name``/``socket_path`` pick the tmux server (default:
    tmux's default server). An engine that does not answer raises its typed
    error here, before any thread starts; ``engine_timeout`` bounds each of
    the engine calls (seconds; default 30), not the stream's wait for events.

    Example:
        >>> from kstlib.ops import events
        >>> stream = events(["bot"], backend="tmux", socket_name="kstlib-doc")
        >>> stream.close(); list(stream)
        []
    """
    wanted = None if names is None else frozenset(names)
    kind = BackendType(backend) if backend is not None else BackendType.CONTAINER

    def make(sink: Sink, closed: threading.Event) -> Source:
        # Connecting here raises the engine's typed error in the caller's thread.
        if kind is BackendType.TMUX:
            from kstlib.ops.tmux.events import TmuxSource

            return TmuxSource(sink, closed, wanted, socket_name, socket_path)
        if kind is BackendType.SWARM:
            return _SwarmSource(sink, closed, wanted, base_url, timeout=engine_timeout)
        return _ContainerSource(sink, closed, wanted, engine, base_url, timeout=engine_timeout)

    return EventStream([make], queue_size, kind)


def config_events(
    names: Iterable[str],
    backend: BackendType,
    config: SessionConfig,
    engine_timeout: float | None = None,
) -> EventStream:
    """:func:`events` on the engine (or tmux server) a session's ``config`` names.

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
    )
