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

Every blocking wait ends promptly on :meth:`Follow.close`: a follow is ended
the way everything is cancelled in kstlib.ops, by a
:class:`~kstlib.ops.cancel.CancelToken` (its own: the waits are the token's,
and closing cancels it, which releases the held resources, so a read blocked
on a stream's socket returns). An asynchronous consumer runs the iteration
in a worker thread with a token of its own bound (:mod:`kstlib.ops.aio`);
:meth:`Follow.lines` has that token close the follow when it is cancelled.
The two are not one token: the follow ends without cancelling its caller
(the iterator left early, the session over), and the synchronous API has no
caller's token at all.

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

import time
from collections.abc import Callable, Iterator

from kstlib.ops.cancel import CancelToken, on_cancel
from kstlib.ops.exceptions import OpsError, SessionTimeoutError

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
        # Closing is cancelling this follow's own token: its releases are the token's closers.
        self._token = CancelToken()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the iteration has ended)."""
        return self._token.cancelled

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
        return not self._token.wait(seconds)

    def hold(self, release: Callable[[], object]) -> None:
        """Call ``release`` when the follow ends or is closed (an answer's or a file's ``close``).

        Held after :meth:`close`, it is released at once.

        Example:
            >>> follow = Follow("job", "tmux", None)
            >>> follow.hold(lambda: print("released")); follow.close()
            released
        """
        self._token.on_cancel(release)

    def close(self) -> None:
        """End the follow promptly, from any thread (idempotent).

        Waits return ``False``, and what was held is released: a stream's
        read blocked in another thread returns, and the iteration ends
        without raising.
        """
        self._token.cancel()  # the last held is released first, each on its own

    def lines(self, source: Source) -> Iterator[str]:
        """Run ``source`` and yield its lines until it ends, the deadline, or :meth:`close`.

        A :class:`~kstlib.ops.exceptions.SessionTimeoutError` raised once the
        deadline has passed (a read's own timeout included) becomes this
        follow's. An :class:`~kstlib.ops.exceptions.OpsError` raised because
        the follow was closed meanwhile (a read of a stream cut by the close)
        ends the iteration quietly. Whatever way it ends, what was held is released.
        """
        if self.timeout is not None:  # the deadline counts from the first line asked for
            self.deadline = time.monotonic() + self.timeout
        on_cancel(self.close)  # an async caller's cancel (kstlib.ops.cancel) closes it
        produced = source(self)
        try:
            for line in produced:
                if self.closed:
                    return
                yield line
        except SessionTimeoutError as err:
            if self.expired() and err.reason != self.reason:
                raise self.timeout_error() from err
            raise
        except OpsError:
            # Every read error reaches a source translated (an engine's stream, a log
            # file): closed mid-read, the read saw its stream cut. Anything else is a bug.
            if self.closed:
                return
            raise
        finally:
            close = getattr(produced, "close", None)
            if close is not None:
                close()
            self.close()
