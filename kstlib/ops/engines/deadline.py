"""A total deadline per engine call, whatever the engine sends and however slowly.

The SDKs' ``timeout`` bounds each socket read: an engine that answers one byte
a second never lets a read time out, and a call may then run for ever.
:func:`bounded` gives a call a deadline for the whole of it: the connections
the call takes from its client's pools are noted (per thread), and one shared
watchdog thread shuts their sockets down when the deadline passes. The read
in progress then fails at once, and the call raises ``requests``'
``ReadTimeout`` ("no complete answer within N s"), which the adapters'
tables translate into the operation's "timed out" error.

The pools are reached through the client's own adapters (each ``requests``
adapter asks ``get_connection_with_tls_context`` for its pool); nothing
global is patched.

Example:
    >>> import requests
    >>> session = requests.Session()
    >>> with bounded(session, 5):
    ...     pass
    >>> session.close()
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["bounded"]

_local = threading.local()
_ARMED = "_kstlib_deadline_armed"


class _Call:
    """One bounded call: its deadline and the connections it uses."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conns: list[Any] = []
        self.expired = False
        self.done = False
        self.lock = threading.Lock()

    def use(self, conn: Any) -> None:
        with self.lock:
            self.conns.append(conn)
            expired = self.expired
        if expired:
            _shut(conn)

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            conns = list(self.conns)
        for conn in conns:
            _shut(conn)


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires the calls whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: _Call) -> None:
        with self._cond:
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="kstlib-engine-deadline", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is call:
                # The earliest deadline now: wake the thread. Otherwise an earlier
                # one wakes it in time (no thread switch per call).
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                call = heapq.heappop(self._heap)[2]
            call.expire()


_WATCHDOG = _Watchdog()


def _wrap_pool(pool: Any) -> Any:
    if getattr(pool, _ARMED, False):
        return pool
    get_conn = pool._get_conn

    def _get_conn(*args: Any, **kwargs: Any) -> Any:
        conn = get_conn(*args, **kwargs)
        call: _Call | None = getattr(_local, "call", None)
        if call is not None:
            call.use(conn)
        return conn

    pool._get_conn = _get_conn
    setattr(pool, _ARMED, True)
    return pool


def _arm(session: Any) -> None:
    """Note, from now on, which pooled connections bounded calls on ``session`` take."""
    for adapter in list(getattr(session, "adapters", {}).values()):
        if getattr(adapter, _ARMED, False) or not hasattr(
            adapter, "get_connection_with_tls_context"
        ):
            continue
        get_pool = adapter.get_connection_with_tls_context

        def get_connection_with_tls_context(*args: Any, _get: Any = get_pool, **kw: Any) -> Any:
            return _wrap_pool(_get(*args, **kw))

        adapter.get_connection_with_tls_context = get_connection_with_tls_context
        setattr(adapter, _ARMED, True)


@contextlib.contextmanager
def bounded(session: Any, seconds: float) -> Iterator[None]:
    """Let the calls made inside on ``session`` (a ``requests.Session``) take ``seconds`` in all.

    Past the deadline the sockets in use are shut down and ``ReadTimeout``
    is raised in place of whatever error the cut read gave. A nested
    ``bounded`` keeps the earlier deadline.

    Example:
        >>> import requests
        >>> with bounded(requests.Session(), 0.5):
        ...     time.sleep(0.01)
    """
    import requests.exceptions

    outer: _Call | None = getattr(_local, "call", None)
    if outer is not None:
        yield  # the outer call's deadline holds
        return
    _arm(session)
    call = _Call(time.monotonic() + seconds)
    _local.call = call
    _WATCHDOG.watch(call)
    try:
        yield
    except Exception as err:
        if call.expired:
            raise requests.exceptions.ReadTimeout(
                f"no complete answer within {seconds:g} s (the engine sends too slowly)"
            ) from err
        raise
    finally:
        with call.lock:
            call.done = True
        _local.call = None
