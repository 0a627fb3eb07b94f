"""Cancelling a blocking wait or stream from another thread.

Internal module: the public API is :mod:`kstlib.ops` and :mod:`kstlib.ops.aio`.

The engines' SDKs are synchronous: a follow or a wait runs in a thread and
sleeps between polls or blocks in a socket read. :class:`CancelToken` lets
the thread that started it (the event loop of :mod:`kstlib.ops.aio`) end
it: the token is bound to the worker thread (:func:`bound`), the polling
loops sleep through :func:`pause` (which raises :class:`Cancelled` at
once when the token is cancelled), and a blocking read registers a closer
(:func:`on_cancel`, e.g. a stream's socket shutdown) that the cancel runs.
Without a bound token, :func:`pause` is :func:`time.sleep` and
:func:`on_cancel` does nothing: the synchronous API is unchanged.

Example:
    >>> token = CancelToken()
    >>> with bound(token):
    ...     pause(0.001)
    >>> token.cancel()
    >>> with bound(token):
    ...     pause(10)
    Traceback (most recent call last):
    ...
    kstlib.ops.cancel.Cancelled: cancelled
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

__all__ = ["CancelToken", "Cancelled", "bound", "check", "current", "on_cancel", "pause"]

_local = threading.local()


class Cancelled(BaseException):
    """Raised in a worker thread whose token was cancelled (a ``BaseException``, like ``CancelledError``).

    Example:
        >>> issubclass(Cancelled, Exception)
        False
    """


class CancelToken:
    """A cancel flag and the closers to run when it is set (thread-safe, one-shot).

    The closers run the last registered first (as :class:`contextlib.ExitStack`
    exits), each on its own: an error of one is ignored and the next runs.

    Example:
        >>> token = CancelToken()
        >>> token.on_cancel(lambda: print("closed"))
        >>> token.cancel()
        closed
        >>> token.cancelled
        True
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._closers: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called.

        Example:
            >>> CancelToken().cancelled
            False
        """
        return self._event.is_set()

    def on_cancel(self, closer: Callable[[], object]) -> None:
        """Run ``closer`` on :meth:`cancel` (at once if already cancelled).

        Example:
            >>> token = CancelToken(); token.cancel()
            >>> token.on_cancel(lambda: print("now"))
            now
        """
        with self._lock:
            if not self._event.is_set():
                self._closers.append(closer)
                return
        with suppress(Exception):
            closer()

    def cancel(self) -> None:
        """Set the flag and run every registered closer once, the last first (errors ignored).

        Example:
            >>> token = CancelToken()
            >>> token.on_cancel(lambda: print("first held"))
            >>> token.on_cancel(lambda: print("last held"))
            >>> token.cancel(); token.cancel()
            last held
            first held
        """
        with self._lock:
            self._event.set()
            closers, self._closers = self._closers, []
        for closer in reversed(closers):
            with suppress(Exception):
                closer()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; whether the token was cancelled meanwhile.

        Example:
            >>> CancelToken().wait(0)
            False
        """
        return self._event.wait(max(seconds, 0))


def current() -> CancelToken | None:
    """The token bound to this thread, if any.

    Example:
        >>> current() is None
        True
    """
    token: CancelToken | None = getattr(_local, "token", None)
    return token


@contextmanager
def bound(token: CancelToken) -> Iterator[CancelToken]:
    """Bind ``token`` to this thread for the block.

    Example:
        >>> with bound(CancelToken()) as token:
        ...     current() is token
        True
    """
    previous = current()
    _local.token = token
    try:
        yield token
    finally:
        _local.token = previous


def pause(seconds: float) -> None:
    """Sleep ``seconds``; raise :class:`Cancelled` as soon as this thread's token is cancelled.

    Example:
        >>> pause(0)
    """
    token = current()
    if token is None:
        time.sleep(max(seconds, 0))
        return
    if token.cancelled or token.wait(seconds):
        raise Cancelled("cancelled")


def on_cancel(closer: Callable[[], object]) -> None:
    """Register ``closer`` with this thread's token (nothing without one).

    Example:
        >>> on_cancel(lambda: None)
    """
    token = current()
    if token is not None:
        token.on_cancel(closer)


def check() -> None:
    """Raise :class:`Cancelled` if this thread's token is cancelled.

    Example:
        >>> check()
    """
    token = current()
    if token is not None and token.cancelled:
        raise Cancelled("cancelled")
