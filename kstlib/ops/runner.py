"""The protocol every backend runner implements, and the capabilities some have.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

:class:`Runner` is what every backend does; :class:`AbstractRunner` is its
upstream name (the same class). :class:`CommandRunner` (``exec``: containers)
and :class:`KeySender` (``send_keys``: tmux) are capabilities that only some
backends have; :class:`~kstlib.ops.SessionManager` checks them and raises a
clear :class:`~kstlib.ops.exceptions.SessionError` when a backend lacks one.

Example:
    >>> from kstlib.ops import ContainerRunner, TmuxRunner
    >>> tmux, docker = TmuxRunner(socket_name="kstlib-doc"), ContainerRunner(runtime="docker")
    >>> for kind in (Runner, CommandRunner, KeySender, TerminalAttacher):
    ...     print(kind.__name__, isinstance(tmux, kind), isinstance(docker, kind))
    Runner True True
    CommandRunner False True
    KeySender True False
    TerminalAttacher False True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kstlib.ops.execresult import ExecResult
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, SessionConfig, SessionStatus, SessionTable

__all__ = [
    "AbstractRunner",
    "CommandRunner",
    "KeySender",
    "LogRequest",
    "Runner",
    "TerminalAttacher",
]


@runtime_checkable
class Runner(Protocol):
    """Session operations common to the tmux and container backends.

    A backend may subclass it to inherit ``logs()`` and ``follow_logs()``
    (see :class:`LogRequest`); a runner that only has the same methods is one too.

    Example:
        >>> sorted(m for m in dir(Runner) if not m.startswith("_"))[:4]
        ['attach', 'exists', 'follow_logs', 'list_sessions']
    """

    backend: BackendType

    def start(self, config: SessionConfig) -> SessionStatus:
        """Start a session from ``config`` and return its status."""
        ...

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool:
        """Stop session ``name`` (gracefully: SIGTERM, wait, then kill) and remove it.

        Returns ``True`` once it is gone (as upstream kstlib did); failures raise
        :class:`~kstlib.ops.exceptions.SessionStopError`, an unknown name
        :class:`~kstlib.ops.exceptions.SessionNotFoundError`.
        """
        ...

    def status(self, name: str) -> SessionStatus:
        """Return the status of session ``name``."""
        ...

    def logs(
        self,
        name: str,
        lines: int | None = 100,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        *,
        prefix: bool = False,
    ) -> str:
        """Return the last ``lines`` lines of the session's output (``None``: all that is kept).

        ``since`` (an aware datetime or a Unix time) keeps the lines written
        from then on; ``timestamps`` prefixes each line with its UTC time;
        ``ansi=False`` strips colours and other escape sequences. ``prefix``
        starts each line with where it was written, for a session with
        several sources (swarm: its task and node, as in ``web.2@NODE |``); a tmux or
        container session has one, and ignores it.

        tmux: a session kstlib started is read from its log file (all of its
        output, after the exit too); others, and a log that lost output, from
        the pane's scrollback. Containers: one engine call (Podman: two when the
        log is shorter than asked: its tail read loses a first line's start);
        stdout and stderr in the order written, ``\\r\\n`` as ``\\n``; Podman's
        times have whole seconds.
        A backend that subclasses this protocol implements ``_read_logs`` (see
        :class:`LogRequest`).
        """
        return _source(self)._read_logs(
            name, LogRequest(lines, since, timestamps, ansi, prefix=prefix)
        )

    def follow_logs(
        self,
        name: str,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
        *,
        lines: int | None = None,
        prefix: bool = False,
    ) -> Iterator[str]:
        """Yield output lines as they are written, until the session ends.

        The last ``lines`` lines written before the call come first (of those
        from ``since`` on, with ``since``), as ``tail -n N -f`` and ``docker
        logs -f --tail N`` do; without ``lines``, those from ``since`` on, else
        none. ``timestamps``, ``ansi`` and ``prefix`` are as for :meth:`logs`. With
        ``timeout`` (seconds), it raises
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` at that deadline if
        the session still runs (no line is yielded after it). Leaving the loop
        early (or ``close()``) releases what the follow holds at once.

        tmux: the log file, polled. Containers: the engine's streaming logs API,
        across restarts by the restart policy, until the container has exited
        for good or is removed; no thread is used. A backend that subclasses
        this protocol implements ``_follow_logs``.
        """
        request = LogRequest(lines, since, timestamps, ansi, timeout, prefix)
        return _source(self)._follow_logs(name, request)

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait for the session's process to exit; return its exit code."""
        ...

    def exists(self, name: str) -> bool:
        """Whether session ``name`` exists."""
        ...

    def list_sessions(self) -> SessionTable:
        """Every session the backend knows of, as a table (a list of statuses)."""
        ...

    def attach(self, name: str) -> None:
        """Connect the current terminal to session ``name``."""
        ...


#: The upstream name of :class:`Runner` (``kstlib.ops.AbstractRunner``).
AbstractRunner = Runner


@dataclass(frozen=True)
class LogRequest:
    """The arguments of one :meth:`Runner.logs` or :meth:`Runner.follow_logs` call, as given.

    A backend that subclasses :class:`Runner` gets ``logs()`` and
    ``follow_logs()`` from it, with their one signature, and implements
    ``_read_logs(name, request) -> str`` and ``_follow_logs(name, request) ->
    Iterator[str]`` (it checks the arguments it uses with :mod:`kstlib.ops.validators`).

    Example:
        >>> LogRequest(lines=5, since=None, timestamps=False, ansi=True).timeout is None
        True
    """

    lines: int | None
    since: Since | None
    timestamps: bool
    ansi: bool
    timeout: float | None = None
    #: Each line starts with its source (a swarm service's task); one-source backends ignore it.
    prefix: bool = False


@runtime_checkable
class _LogSource(Protocol):
    """What a runner that inherits :class:`Runner`'s ``logs()`` and ``follow_logs()`` implements."""

    def _read_logs(self, name: str, request: LogRequest) -> str: ...

    def _follow_logs(self, name: str, request: LogRequest) -> Iterator[str]: ...


def _source(runner: object) -> _LogSource:
    """``runner`` as the source of its output; a runner that has none is a programming error."""
    if not isinstance(runner, _LogSource):
        raise TypeError(f"{type(runner).__name__} implements neither logs() nor _read_logs()")
    return runner


@runtime_checkable
class CommandRunner(Protocol):
    """A runner that can run a command beside the session's process (containers).

    Example: the module's, which shows which backend has which capability.
    """

    def exec(self, name: str, command: str | list[str] | tuple[str, ...]) -> ExecResult:
        """Run ``command`` in session ``name``; return ``(exit_code, output)`` (an ExecResult)."""
        ...


@runtime_checkable
class KeySender(Protocol):
    """A runner that can type keys into the session's terminal (tmux).

    Example: the module's.
    """

    def send_keys(
        self, name: str, keys: str, enter: bool = True, *, literal: bool | None = None
    ) -> None:
        """Type ``keys`` into session ``name`` (one key name as a key), then Enter."""
        ...


@runtime_checkable
class TerminalAttacher(Protocol):
    """A runner that relays this terminal to the session and tells how it ended (containers).

    Example: the module's.
    """

    def attach_terminal(self, name: str) -> int | None:
        """Relay this terminal; ``None`` after a detach, else the session's exit code."""
        ...
