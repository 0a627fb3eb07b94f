"""Session events and their stream: the parts every engine's source shares.

Internal module: the public names are ``kstlib.ops.events``, ``EventStream`` and ``SessionEvent``.

A :class:`SessionEvent` is one change of one session; an :class:`EventStream`
is a live, closable iterator of them, fed by one thread per source through a
bounded queue (:class:`Sink`). A source (:class:`Source`) runs Kubernetes
client-go's informer loop: it lists the world first (one event per session,
``snapshot=True``), then watches what its engine pushes, and when the watch
breaks it reconnects by itself, emits a ``resync`` marker and a fresh
snapshot, and goes on. When the consumer stops reading, what does not fit
the queue is counted and the next read returns a ``lost`` event with that
count. The sources are in :mod:`kstlib.ops.watch` (Docker, Podman, swarm)
and :mod:`kstlib.ops.tmux.events` (tmux); the public entry point is
:func:`kstlib.ops.events`.

Example:
    >>> ev = SessionEvent("bot", BackendType.CONTAINER, "exited", exit_code=3, engine="docker")
    >>> {k: v for k, v in ev.to_dict().items() if k not in ("time",)}["exit_code"]
    3
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kstlib.ops.models import BackendType

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["KINDS", "Closing", "EventStream", "SessionEvent"]

#: Every ``kind`` an event may have.
KINDS = ("started", "exited", "restarted", "stopped", "removed", "oom", "resync", "lost")
QUEUE_SIZE = 1024
_POLL_S = 0.1
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)


def now() -> datetime:
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
    time: datetime = field(default_factory=now)
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


class Sink:
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


class Source:
    """One engine's list-watch-resync loop, run by one thread."""

    def __init__(self, sink: Sink, closed: threading.Event, names: frozenset[str] | None) -> None:
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


class Closing:
    """``with x:`` closes ``x`` at the end: what an event stream and a live view share.

    Example:
        >>> class Tap(Closing):
        ...     def close(self) -> None:
        ...         print("closed")
        >>> with Tap() as tap:
        ...     pass
        closed
    """

    def close(self) -> None:
        """Release what the object holds (a subclass says what)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventStream(Closing, Iterator[SessionEvent]):
    """A live, closable iterator of :class:`SessionEvent` (also a context manager).

    Example:
        >>> from kstlib.ops import events
        >>> with events(backend="container", engine="docker") as stream:  # doctest: +SKIP
        ...     for ev in stream:
        ...         if ev.kind == "exited":
        ...             print(ev.name, ev.exit_code)
    """

    def __init__(
        self,
        make_sources: Iterable[Callable[[Sink, threading.Event], Source]],
        size: int = QUEUE_SIZE,
        backend: BackendType = BackendType.CONTAINER,
    ) -> None:
        self._backend = backend
        self._sink = Sink(size)
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
