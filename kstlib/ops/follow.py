"""The one follow loop under every backend's ``follow_logs``.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A :class:`Follow` is one following of a session's output. It owns what every
backend's follow has in common: the deadline (``timeout=``) and its
:class:`~kstlib.ops.exceptions.SessionTimeoutError`, the waits between reads,
the resources to release (an engine's open log answer, a log file), and the
end: when the session's source says it is over, when the consumer stops
iterating, or when :meth:`Follow.close` is called (from any thread).

A backend gives only its *source*: a generator function that takes the
:class:`Follow` and yields the session's lines, asking :meth:`Follow.left`
before each blocking read (the read's timeout), :meth:`Follow.wait` between
polls, and registering what it opens with :meth:`Follow.hold`.
:meth:`Follow.lines` runs the source and is the iterator ``follow_logs``
returns.

Every blocking wait ends promptly on :meth:`Follow.close`: the waits are an
event's, and closing releases the held resources (a stream's socket shut
down, so a read blocked on it returns). An asynchronous consumer can thus run
the iteration in a worker thread and, when it is cancelled, call
:meth:`Follow.close` from the event loop.

Example:
    >>> def source(follow):
    ...     yield "a"
    ...     while follow.wait(0.01):
    ...         yield "tick"
    >>> follow = Follow("job", "tmux", None)
    >>> lines = follow.lines(source)
    >>> next(lines), next(lines)
    ('a', 'tick')
    >>> follow.close()
    >>> list(lines)
    []
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from kstlib.ops.exceptions import SessionTimeoutError

__all__ = ["Follow", "Source"]

#: A backend's lines of one follow: a generator function given the :class:`Follow`.
Source = Callable[["Follow"], Iterator[str]]


class Follow:
    """One following of session ``name``'s output, bounded by ``timeout`` seconds.

    ``reason`` is the :class:`~kstlib.ops.exceptions.SessionTimeoutError`'s
    reason at the deadline (by default "the follow timed out after T s (the
    session is still running)").

    Example:
        >>> follow = Follow("job", "docker", 5)
        >>> 0 < follow.left() <= 5, follow.closed
        (True, False)
        >>> follow.close(); follow.closed
        True
    """

    def __init__(
        self, name: str, backend: str, timeout: float | None, reason: str | None = None
    ) -> None:
        self.name = name
        self.backend = backend
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.reason = reason or (
            f"the follow timed out after {timeout or 0:g} s (the session is still running)"
        )
        self._closed = threading.Event()
        self._held: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the iteration has ended)."""
        return self._closed.is_set()

    def expired(self) -> bool:
        """Whether the deadline has passed (never, without a timeout).

        Example:
            >>> Follow("job", "tmux", None).expired(), Follow("job", "tmux", 0).expired()
            (False, True)
        """
        return self.deadline is not None and time.monotonic() >= self.deadline

    def timeout_error(self) -> SessionTimeoutError:
        """The error this follow raises at its deadline.

        Example:
            >>> Follow("job", "tmux", 2).timeout_error().reason
            'the follow timed out after 2 s (the session is still running)'
        """
        return SessionTimeoutError(self.name, self.backend, self.reason)

    def left(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline); raises once it has passed.

        Example:
            >>> Follow("job", "tmux", None).left() is None
            True
        """
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self.timeout_error()
        return remaining

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (at most until the deadline); ``False`` once the follow is closed.

        It does not raise at the deadline: a source asks :meth:`left` (or
        :meth:`expired`) for that.

        Example:
            >>> Follow("job", "tmux", None).wait(0)
            True
        """
        if self.deadline is not None:
            seconds = min(seconds, self.deadline - time.monotonic())
        return not self._closed.wait(max(seconds, 0))

    def hold(self, release: Callable[[], object]) -> None:
        """Call ``release`` when the follow ends or is closed (an answer's or a file's ``close``).

        Held after :meth:`close`, it is released at once.

        Example:
            >>> follow = Follow("job", "tmux", None)
            >>> follow.hold(lambda: print("released")); follow.close()
            released
        """
        with self._lock:
            if not self._closed.is_set():
                self._held.append(release)
                return
        release()

    def close(self) -> None:
        """End the follow promptly, from any thread (idempotent).

        Waits return ``False``, and what was held is released: a stream's
        read blocked in another thread returns, and the iteration ends
        without raising.
        """
        with self._lock:
            self._closed.set()
            held, self._held = self._held, []
        for release in reversed(held):
            with contextlib.suppress(Exception):  # best effort, each release its own
                release()

    def lines(self, source: Source) -> Iterator[str]:
        """Run ``source`` and yield its lines until it ends, the deadline, or :meth:`close`.

        A :class:`~kstlib.ops.exceptions.SessionTimeoutError` raised once the
        deadline has passed (a read's own timeout included) becomes this
        follow's. Errors raised because the follow was closed meanwhile end
        the iteration quietly. Whatever way it ends, what was held is released.
        """
        if self.timeout is not None:  # the deadline counts from the first line asked for
            self.deadline = time.monotonic() + self.timeout
        produced = source(self)
        try:
            for line in produced:
                if self._closed.is_set():
                    return
                yield line
        except SessionTimeoutError as err:
            if self.expired() and err.reason != self.reason:
                raise self.timeout_error() from err
            raise
        except Exception:
            if self._closed.is_set():
                return  # closed mid-read: the read saw its stream end
            raise
        finally:
            close = getattr(produced, "close", None)
            if close is not None:
                close()
            self.close()
