"""What :class:`~kstlib.ops.manager.SessionManager` adds for swarm services: scale, rolling restart.

Example:
    >>> from kstlib.ops import SessionManager
    >>> SessionManager("doc-scale", socket_name="kstlib-doc").scale(2)
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionError: session 'doc-scale' runs on tmux, which has no replicas to scale; use backend='swarm'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kstlib.ops.exceptions import SessionError, SessionNotFoundError
from kstlib.ops.validators import validate_replicas

if TYPE_CHECKING:
    from kstlib.ops.models import SessionConfig, SessionStatus
    from kstlib.ops.runner import Runner
    from kstlib.ops.swarm.runner import SwarmRunner

__all__ = ["SwarmSessionOps"]


class SwarmSessionOps:
    """The swarm-only operations of :class:`~kstlib.ops.manager.SessionManager`, which inherits them.

    Example:
        >>> from kstlib.ops import SessionManager
        >>> issubclass(SessionManager, SwarmSessionOps)
        True
    """

    if TYPE_CHECKING:  # what SessionManager provides

        @property
        def name(self) -> str:
            """The session's name."""

        _config: SessionConfig

        def _lookup(self) -> Runner: ...

        def _where(self) -> str: ...

        def start(self, command: None = None) -> SessionStatus:
            """Start the session."""

    def _swarm(self, what: str) -> SwarmRunner:
        from kstlib.ops.swarm.runner import SwarmRunner

        runner = self._lookup()
        if not isinstance(runner, SwarmRunner):
            raise SessionError(
                f"session {self.name!r} runs on {self._where()}, which has no {what}; "
                "use backend='swarm'"
            )
        return runner

    def scale(self, replicas: int, *, timeout: float | None = None) -> SessionStatus:
        """Run ``replicas`` tasks of the service; return once that many run (swarm only).

        Raises:
            SessionError: the session is not a swarm service.

        Example:
            >>> SessionManager("web", backend="swarm").scale(3).state.value  # doctest: +SKIP
            'running'
        """
        validate_replicas(replicas)  # bad input first, whatever the backend
        return self._swarm("replicas to scale").scale(self.name, replicas, timeout=timeout)

    def _rolling_restart(self) -> SessionStatus:
        """Replace every task one at a time (the service stays); start it if it does not exist."""
        try:
            return self._swarm("rolling restart").restart(self.name)
        except SessionNotFoundError:
            return self.start()
