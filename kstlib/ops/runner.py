"""The protocol every backend runner implements, and the capabilities some have.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

:class:`Runner` is what every backend does; :class:`AbstractRunner` is its
upstream name (the same class). :class:`CommandRunner` (``exec``: containers)
and :class:`KeySender` (``send_keys``: tmux) are capabilities that only some
backends have; :class:`~kstlib.ops.SessionManager` checks them and raises a
clear :class:`~kstlib.ops.exceptions.SessionError` when a backend lacks one.

Example:
    >>> from kstlib.ops import TmuxRunner
    >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), Runner)
    True
    >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), KeySender)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from kstlib.ops.execresult import ExecResult
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, SessionConfig, SessionStatus, SessionTable

__all__ = ["AbstractRunner", "CommandRunner", "KeySender", "Runner", "TerminalAttacher"]


@runtime_checkable
class Runner(Protocol):
    """Session operations common to the tmux and container backends.

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
    ) -> str:
        """Return the last ``lines`` lines of the session's output."""
        ...

    def follow_logs(
        self,
        name: str,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
        *,
        lines: int | None = None,
    ) -> Iterator[str]:
        """Yield output lines as they are written, until the session ends.

        The last ``lines`` lines written before the call come first (of those
        from ``since`` on, with ``since``); without ``lines``, those from
        ``since`` on, else none.
        """
        ...

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


@runtime_checkable
class CommandRunner(Protocol):
    """A runner that can run a command beside the session's process (containers).

    Example:
        >>> from kstlib.ops import ContainerRunner, TmuxRunner
        >>> isinstance(ContainerRunner(runtime="docker"), CommandRunner)
        True
        >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), CommandRunner)
        False
    """

    def exec(self, name: str, command: str | list[str] | tuple[str, ...]) -> ExecResult:
        """Run ``command`` in session ``name``; return ``(exit_code, output)`` (an ExecResult)."""
        ...


@runtime_checkable
class KeySender(Protocol):
    """A runner that can type keys into the session's terminal (tmux).

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), KeySender)
        True
    """

    def send_keys(
        self, name: str, keys: str, enter: bool = True, *, literal: bool | None = None
    ) -> None:
        """Type ``keys`` into session ``name`` (one key name as a key), then Enter."""
        ...


@runtime_checkable
class TerminalAttacher(Protocol):
    """A runner that relays this terminal to the session and tells how it ended (containers).

    Example:
        >>> from kstlib.ops import ContainerRunner, TmuxRunner
        >>> isinstance(ContainerRunner(runtime="docker"), TerminalAttacher)
        True
        >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), TerminalAttacher)
        False
    """

    def attach_terminal(self, name: str) -> int | None:
        """Relay this terminal; ``None`` after a detach, else the session's exit code."""
        ...
