"""The protocol every backend runner implements.

Example:
    >>> from kstlib.ops import TmuxRunner
    >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), Runner)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, SessionConfig, SessionStatus

__all__ = ["Runner"]


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

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool | None:
        """Stop session ``name`` (gracefully: SIGTERM, wait, then kill) and remove it."""
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
    ) -> Iterator[str]:
        """Yield output lines as they are written, until the session ends."""
        ...

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait for the session's process to exit; return its exit code."""
        ...

    def exists(self, name: str) -> bool:
        """Whether session ``name`` exists."""
        ...

    def list_sessions(self) -> list[SessionStatus]:
        """Every session the backend knows of."""
        ...

    def attach(self, name: str) -> None:
        """Connect the current terminal to session ``name``."""
        ...
