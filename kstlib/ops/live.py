"""A live view of the fleet: the session table, kept current by events.

Internal module: its entry points are ``kstlib.ops.live.live_sessions`` and
:class:`LiveSessions` (the terminal's ``kstlib ops list --watch`` and the
notebook's table that updates in place both sit on it).

:class:`LiveSessions` lists the fleet once, then applies the
:class:`~kstlib.ops.eventstream.SessionEvent`\\ s of one or more event streams to
its rows: an exit, a restart or an out-of-memory kill changes the row in
place; a session it has not seen, a removal, a ``resync`` or a ``lost``
marker makes it list again (the listing is the truth, the events say when
to look). :meth:`LiveSessions.updates` yields a :class:`LiveUpdate` (the
table and the rows that changed) each time the table changes, and nothing
while nothing happens: no polling loop. Streams are opened before the first
listing, so nothing that happens after the first table is missed.

The same object is the notebook's face: it shows as the current table
(``_repr_html_``, ``_repr_pretty_``), and :meth:`LiveSessions.show` displays
it with an IPython display handle and updates that display in place on each
change (``ipywidgets`` not needed).

Example:
    >>> from kstlib.ops.eventstream import Closing, SessionEvent
    >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
    >>> row = SessionStatus("bot", SessionState.RUNNING, BackendType.CONTAINER, runtime="docker")
    >>> feed = [SessionEvent("bot", BackendType.CONTAINER, "exited", engine="docker", exit_code=3)]
    >>> view = LiveSessions(lambda: [row], [iter(feed)])
    >>> [u.table[0].state.value for u in view.updates()]
    ['running', 'exited']
    >>> view.changes[-1].line()
    'bot container/docker: running -> exited (3)'
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from kstlib.ops.eventstream import Closing, SessionEvent
from kstlib.ops.exceptions import OpsError
from kstlib.ops.locations import Location
from kstlib.ops.models import BackendType, SessionState, SessionStatus, SessionTable
from kstlib.ops.watch import events

__all__ = ["LiveSessions", "LiveUpdate", "RowChange", "live_sessions", "open_streams", "row_key"]

_POLL_S = 0.1
#: Events that arrive within this many seconds of one another make one update.
_SETTLE_S = 0.05
#: ...and one update waits at most this long for events that keep coming.
_SETTLE_MAX_S = 0.5
_QUEUE_SIZE = 256
_RELIST = frozenset({"removed", "resync", "lost"})


def row_key(status: SessionStatus) -> tuple[str, str, str, str]:
    """What tells one row of the fleet from another: backend, place and name.

    Example:
        >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
        >>> row_key(SessionStatus("a", SessionState.RUNNING, BackendType.CONTAINER, runtime="podman"))
        ('container', '', 'podman', 'a')
    """
    place = status.runtime or status.socket_name or ""
    return (status.backend.value, status.engine or "", place, status.name)


def _state(status: SessionStatus | None) -> str:
    if status is None:
        return "-"
    if status.state is SessionState.EXITED and status.exit_code is not None:
        return f"exited ({status.exit_code})"
    return status.state.value


@dataclass(frozen=True)
class RowChange:
    """One row that changed: ``before`` is ``None`` for a new row, ``after`` for a gone one.

    Example:
        >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
        >>> RowChange(None, SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)).line()
        'a tmux: new, running'
    """

    before: SessionStatus | None
    after: SessionStatus | None

    @property
    def status(self) -> SessionStatus:
        """The row as it is now (as it was, for a row that is gone)."""
        found = self.after if self.after is not None else self.before
        assert found is not None  # a change has a side
        return found

    def line(self) -> str:
        """One plain line: the session, where it runs, and what changed.

        Example:
            >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
            >>> row = SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)
            >>> RowChange(row, None).line()
            'a tmux: gone (was running)'
        """
        row = self.status
        where = "/".join(p for p in (row.backend.value, row.engine, row.runtime) if p)
        head = f"{row.name} {where}"
        if self.before is None:
            return f"{head}: new, {_state(self.after)}"
        if self.after is None:
            return f"{head}: gone (was {_state(self.before)})"
        was, now = _state(self.before), _state(self.after)
        if was != now:
            return f"{head}: {was} -> {now}"
        if self.before.restart_count != self.after.restart_count:
            return f"{head}: restarted ({self.after.restart_count})"
        return f"{head}: {now}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: ``before`` and ``after`` as status mappings (or ``None``).

        Example:
            >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
            >>> row = SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)
            >>> RowChange(None, row).to_dict()["after"]["state"]
            'running'
        """
        return {
            "name": self.status.name,
            "before": None if self.before is None else self.before.to_dict(),
            "after": None if self.after is None else self.after.to_dict(),
        }


@dataclass(frozen=True)
class LiveUpdate:
    """The table after a change, the rows that changed and the events that told.

    The first update of a view is its first table: every row is a change then
    (``before`` is ``None``) and ``events`` is empty.
    """

    table: SessionTable
    changes: tuple[RowChange, ...]
    events: tuple[SessionEvent, ...] = ()
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def _diff(old: dict[Any, SessionStatus], new: dict[Any, SessionStatus]) -> tuple[RowChange, ...]:
    changes = [RowChange(old.get(k), row) for k, row in new.items() if old.get(k) != row]
    changes += [RowChange(row, None) for k, row in old.items() if k not in new]
    return tuple(changes)


class LiveSessions(Closing):
    """The fleet's table, kept current by event streams (list, then apply what they say).

    ``list_rows`` lists the fleet (any callable returning statuses: a
    runner's ``list_sessions``, :func:`kstlib.ops.list_sessions`, the CLI's
    listing); ``streams`` are iterators of :class:`SessionEvent` (what
    :func:`kstlib.ops.events` returns; those with a ``close()`` are closed by
    :meth:`close`). Every backend whose events reach a stream shows live.

    Example:
        >>> view = LiveSessions(lambda: [], [])
        >>> [len(u.table) for u in view.updates()]
        [0]
    """

    def __init__(
        self,
        list_rows: Callable[[], Iterable[SessionStatus]],
        streams: Iterable[Iterator[SessionEvent]],
    ) -> None:
        self._list_rows = list_rows
        self._streams = list(streams)
        self._queue: queue.Queue[SessionEvent | None] = queue.Queue(_QUEUE_SIZE)
        self._closed = threading.Event()
        self._rows: dict[Any, SessionStatus] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pumps: list[threading.Thread] = []
        self.changes: tuple[RowChange, ...] = ()
        self.updated: datetime | None = None
        self._started = False
        self._told = False  # whether the last update came from events (not the first listing)

    # -- the core ------------------------------------------------------------------------

    @property
    def table(self) -> SessionTable:
        """The rows as last seen, as a table (empty before the first update).

        Example:
            >>> LiveSessions(lambda: [], []).table
            []
        """
        with self._lock:
            return SessionTable(self._rows.values())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or every stream ended).

        Example:
            >>> LiveSessions(lambda: [], []).closed
            False
        """
        return self._closed.is_set()

    def _pump(self, stream: Iterator[SessionEvent]) -> None:
        try:
            for event in stream:
                self._put(event)
                if self._closed.is_set():
                    break
        finally:
            self._put(None)  # this stream is done

    def _put(self, item: SessionEvent | None) -> None:
        """Queue ``item``; a full queue (a reader that stopped) holds the stream back.

        The stream's own bounded queue then counts what it drops, and its
        ``lost`` event makes the view list again when the reader comes back.
        """
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _listing(self) -> dict[Any, SessionStatus]:
        return {row_key(row): row for row in self._list_rows()}

    def updates(self) -> Iterator[LiveUpdate]:
        """The first table, then one update per change, until :meth:`close` or the streams end.

        A view is read once (its streams feed one reader).

        Example:
            >>> from kstlib.ops.models import BackendType, SessionState, SessionStatus
            >>> row = SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)
            >>> [len(u.changes) for u in LiveSessions(lambda: [row], []).updates()]
            [1]
        """
        if self._started:
            raise RuntimeError("a LiveSessions' updates are read once: make a new view")
        self._started = True
        self._pumps = [
            threading.Thread(target=self._pump, args=(s,), name="kstlib-live", daemon=True)
            for s in self._streams
        ]
        for pump in self._pumps:
            pump.start()
        yield self._commit(self._listing(), ())
        running = len(self._pumps)
        while running and not self._closed.is_set():
            batch, ended = self._batch()
            running -= ended
            if not batch:
                continue
            for rows, told in self._segments(batch):
                update = self._commit(rows, told)
                if update.changes:
                    yield update
        self._closed.set()
        with self._changed:
            self._changed.notify_all()

    def _batch(self) -> tuple[list[SessionEvent], int]:
        """The events waiting: the first blocks (a tenth of a second at most), then they settle.

        Events a twentieth of a second apart make one batch, for half a second
        at most: an engine that never stops talking still gets its updates.
        """
        batch: list[SessionEvent] = []
        ended = 0
        timeout = _POLL_S
        deadline: float | None = None
        while deadline is None or time.monotonic() < deadline:
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if event is None:
                ended += 1
            else:
                batch.append(event)
            if deadline is None:
                deadline = time.monotonic() + _SETTLE_MAX_S
            timeout = _SETTLE_S
        return batch, ended

    def _segments(
        self, batch: Sequence[SessionEvent]
    ) -> Iterator[tuple[dict[Any, SessionStatus], tuple[SessionEvent, ...]]]:
        """The rows after ``batch``, and after each part of it that ends with a listing.

        An event that says it all (an exit, a restart) changes its row in place;
        a session not seen yet, a removal, a ``resync`` or a ``lost`` marker
        makes the view list again. What the events before a listing said is
        its own step, so an exit just before a removal is still a change seen.
        """
        with self._lock:
            rows = dict(self._rows)
        told: list[SessionEvent] = []
        for event in batch:
            if event.snapshot:
                continue  # the state when a stream (re)listed: the table's own listing holds it
            keys = [] if event.kind in _RELIST else _matching(rows, event)
            if not keys:
                if told:
                    yield rows, tuple(told)
                rows, told = self._listing(), [event]
                continue
            told.append(event)
            for key in keys:
                rows[key] = _applied(rows[key], event)
        if told:
            yield rows, tuple(told)

    def _commit(
        self, rows: dict[Any, SessionStatus], batch: tuple[SessionEvent, ...]
    ) -> LiveUpdate:
        with self._lock:
            changes = _diff(self._rows, rows) if self.updated is not None else _diff({}, rows)
            self._rows = rows
            self.changes = changes
            self.updated = datetime.now(timezone.utc)
            self._told = bool(batch)
            table = SessionTable(rows.values())
            self._changed.notify_all()
        return LiveUpdate(table, changes, batch, self.updated)

    def close(self) -> None:
        """End :meth:`updates` from any thread and close the streams (their threads return).

        Example:
            >>> view = LiveSessions(lambda: [], []); view.close(); view.closed
            True
        """
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        for stream in self._streams:
            closer = getattr(stream, "close", None)
            if closer is not None:
                with contextlib.suppress(OpsError):
                    closer()
        if threading.current_thread() not in self._pumps:
            for pump in self._pumps:
                pump.join(timeout=2.0)

    # -- the notebook's face -------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<LiveSessions: {len(self._rows)} sessions, {self._caption()}>"

    def _caption(self) -> str:
        when = self.updated.strftime("%H:%M:%S") if self.updated else "not yet"
        shown = [c.line() for c in self.changes[-3:]] if self._told else []
        return f"updated {when} UTC" + "".join(f"; {line}" for line in shown)

    def _repr_html_(self) -> str:
        """The table as HTML with a caption: when it last changed, and what."""
        import html

        caption = f'<p class="kstlib-live">{html.escape(self._caption())}</p>'
        return caption + self.table._repr_html_()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text view: one line per row, then the caption."""
        for row in self.table:
            printer.text(f"{row.name}  {row.backend.value}  {_state(row)}")
            printer.break_()
        printer.text(self._caption())

    def show(self) -> LiveSessions:
        """Display the table, then update that display in place on each change; returns ``self``.

        The first table is listed and displayed before ``show`` returns;
        the changes are then applied by a background thread (it carries the
        calling cell's context, so the updates belong to that cell) until
        :meth:`close`. Needs IPython (a notebook, a console); ``ipywidgets``
        is not used. :meth:`wait` blocks until the table says what you wait for.

        Example:
            >>> view = live_sessions(backend="container", engine="docker")  # doctest: +SKIP
            >>> view.show()  # doctest: +SKIP
        """
        from IPython.display import display

        updates = self.updates()
        next(updates)
        handle: Any = display(self, display_id=True)  # type: ignore[no-untyped-call]

        def follow() -> None:
            for _ in updates:
                if handle is not None:  # None: IPython is not running, it printed the table
                    handle.update(self)

        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(follow,), name="kstlib-live-show")
        thread.daemon = True
        self._pumps.append(thread)
        thread.start()
        return self

    def wait(
        self, until: Callable[[SessionTable], bool], timeout: float | None = None
    ) -> SessionTable:
        """Block until ``until(table)`` is true (or ``timeout`` seconds pass); the table then.

        Example:
            >>> view = LiveSessions(lambda: [], [])
            >>> view.wait(lambda table: not table, timeout=1)
            []
        """
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    (self.updated is not None and until(SessionTable(self._rows.values())))
                    or self._closed.is_set()
                ),
                timeout,
            )
            return SessionTable(self._rows.values())


def _matching(rows: dict[Any, SessionStatus], event: SessionEvent) -> list[Any]:
    """The keys of the rows ``event`` speaks of: its name and backend, on its engine."""
    same = [k for k, r in rows.items() if r.name == event.name and r.backend is event.backend]
    if event.engine is None:
        return same
    on_engine = [
        k for k in same if event.engine in (rows[k].runtime, rows[k].engine, rows[k].socket_name)
    ]
    return on_engine or (same if len(same) == 1 else [])


def _applied(row: SessionStatus, event: SessionEvent) -> SessionStatus:
    """``row`` after ``event`` (a kind that says nothing of the state leaves it as it is)."""
    if event.kind == "started":
        return replace(row, state=SessionState.RUNNING, exit_code=None, reason=None)
    if event.kind == "restarted":
        count = event.restart_count if event.restart_count is not None else row.restart_count + 1
        return replace(row, state=SessionState.RUNNING, exit_code=None, restart_count=count)
    if event.kind == "exited":
        return replace(row, state=SessionState.EXITED, exit_code=event.exit_code, pid=None)
    if event.kind == "oom":
        return replace(row, oom_killed=True, reason="oom-killed")
    return row


def open_streams(
    places: Iterable[Location],
    names: Iterable[str] | None = None,
    on_skip: Callable[[str, OpsError], None] | None = None,
    swarm_nodes: Callable[[str | None], Sequence[str]] | None = None,
) -> list[Iterator[SessionEvent]]:
    """One event stream per place (a tmux server, an engine, a swarm) that answers.

    Each :class:`~kstlib.ops.locations.Location` is followed where it is: a
    tmux server on its own socket, an engine at its endpoint, a swarm at its
    manager with the nodes ``swarm_nodes(manager)`` lists (their engines tell
    the tasks' exits; e.g. :meth:`kstlib.ops.config.OpsConfig.swarm_nodes`).
    A place whose engine does not answer is skipped (``on_skip(label,
    error)`` hears of it): its rows are listed, they just do not change live.

    Example:
        >>> open_streams([Location(BackendType.CONTAINER, "docker")])  # doctest: +SKIP
        [<kstlib.ops.eventstream.EventStream object at ...>]
    """
    wanted = None if names is None else list(names)
    streams: list[Iterator[SessionEvent]] = []
    seen: set[tuple[str | None, ...]] = set()
    for place in places:
        key = (
            place.backend.value,
            place.runtime,
            place.endpoint,
            place.socket_name,
            place.socket_path,
        )
        if key in seen:
            continue
        seen.add(key)
        swarm = place.backend is BackendType.SWARM
        nodes = swarm_nodes(place.endpoint) if swarm and swarm_nodes is not None else ()
        try:
            streams.append(
                events(
                    wanted,
                    place.backend,
                    place.runtime,
                    base_url=place.endpoint,
                    socket_name=place.socket_name,
                    socket_path=place.socket_path,
                    node_urls=nodes,
                )
            )
        except OpsError as err:
            if on_skip is not None:
                where = place.socket_path or place.socket_name or place.endpoint
                on_skip("/".join(p for p in (place.backend.value, place.runtime, where) if p), err)
    return streams


def live_sessions(
    names: Iterable[str] | None = None,
    backend: BackendType | str | None = None,
    engine: str | None = None,
    *,
    base_url: str | None = None,
) -> LiveSessions:
    """A live view of the sessions of one backend (``None``: tmux and both container engines).

    ``engine`` picks ``"docker"`` or ``"podman"``; ``base_url`` one endpoint
    (the manager's, for ``backend="swarm"``); ``names`` keeps those sessions.

    Example:
        >>> view = live_sessions(backend="container", engine="docker")  # doctest: +SKIP
        >>> view.show().wait(lambda table: not table, timeout=60)  # doctest: +SKIP
    """
    import warnings

    from kstlib.ops.discovery import EngineUnavailableWarning, list_sessions

    kind = BackendType(backend) if backend is not None else None
    wanted = None if names is None else frozenset(names)
    runtimes = [engine] if engine else ["podman", "docker"]
    places: list[Location] = []
    if kind in (None, BackendType.TMUX):
        places.append(Location(BackendType.TMUX))
    if kind in (None, BackendType.CONTAINER):
        places.extend(Location(BackendType.CONTAINER, rt, base_url) for rt in runtimes)
    if kind is BackendType.SWARM:
        places.append(Location(BackendType.SWARM, endpoint=base_url))

    def list_rows() -> list[SessionStatus]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EngineUnavailableWarning)
            table = list_sessions(
                tmux=kind in (None, BackendType.TMUX),
                containers=kind in (None, BackendType.CONTAINER),
                runtime=engine,
                base_url=base_url if kind is not BackendType.SWARM else None,
                swarms=[base_url] if kind is BackendType.SWARM else (),
            )
        return [row for row in table if wanted is None or row.name in wanted]

    return LiveSessions(list_rows, open_streams(places, wanted))
