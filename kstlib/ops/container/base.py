"""What every part of the container runner shares: its engine, and exact-name look-ups.

:class:`ContainerBase` holds the runner's engine (contacted on first use,
forgotten when it stops answering) and inspects a container by its exact name;
:class:`~kstlib.ops.container.runner.ContainerRunner` is built on it from the
lifecycle (``runner``), the log follower (``follow``) and exec/attach
(``exec_attach``).

Example:
    >>> ContainerBase(runtime="docker", base_url="unix:///var/run/docker.sock").runtime
    'docker'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kstlib.ops.engines.adapter import (
    DEFAULT_TIMEOUT,
    ContainerInfo,
)
from kstlib.ops.engines.endpoints import connect, forget
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionNotFoundError,
)
from kstlib.ops.models import (
    BackendType,
)
from kstlib.ops.translate import Op
from kstlib.ops.validators import (
    validate_base_url,
    validate_call_timeout,
    validate_runtime,
)

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter

__all__ = ["POLL", "WAIT_SLICE", "ContainerBase", "require_engine_name"]

_BACKEND = BackendType.CONTAINER


# What Docker and Podman accept as a container name; nothing else can exist
# there, and it is never put into an API path.
_ENGINE_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


# Polling step while a restart is due; longest single engine wait for a
# container with a restart policy (Podman's wait may miss a quick restart).
POLL = 0.1


WAIT_SLICE = 1.0


def require_engine_name(engine: EngineAdapter, name: str) -> None:
    """Raise :class:`SessionNotFoundError` for a name no container can have.

    Such a name cannot exist on Docker or Podman, so it is never put into an API path.

    Example:
        >>> class Engine:
        ...     runtime = "docker"
        >>> require_engine_name(Engine(), "bot-1")  # type: ignore[arg-type]
        >>> require_engine_name(Engine(), "../x")  # type: ignore[arg-type]
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: ...
    """
    if not _ENGINE_NAME_RE.fullmatch(name):
        raise SessionNotFoundError(name, engine.runtime)


class ContainerBase:
    """The engine of a container runner, and look-ups by exact name (see the module)."""

    backend = _BACKEND

    def __init__(
        self,
        runtime: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._runtime = validate_runtime(runtime) if runtime is not None else None
        self.base_url = validate_base_url(base_url)
        self.timeout = validate_call_timeout(timeout)
        self._engine: EngineAdapter | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(runtime={self._runtime!r}, base_url={self.base_url!r})"

    # -- the engine ---------------------------------------------------------------------

    @property
    def engine(self) -> EngineAdapter:
        """The engine adapter (connected on first use).

        Raises:
            ContainerRuntimeNotFoundError: no engine answers; lists the endpoints tried.

        Example:
            >>> ContainerBase(runtime="docker", base_url="unix:///nonexistent.sock").engine
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
        """
        with self._lock:
            if self._engine is None:
                self._engine = connect(self._runtime, self.base_url, self.timeout)
            return self._engine

    @property
    def runtime(self) -> str:
        """``"docker"`` or ``"podman"``: the engine in use (connects when asked to choose).

        Example:
            >>> ContainerBase(runtime="docker").runtime
            'docker'
        """
        if self._runtime is not None:
            return self._runtime
        return self.engine.runtime

    @property
    def endpoint(self) -> str:
        """The API endpoint of the engine in use.

        Example:
            >>> ContainerBase(runtime="docker").endpoint  # doctest: +SKIP
            'unix:///var/run/docker.sock'
        """
        return self.engine.endpoint

    @contextmanager
    def _using(self) -> Iterator[EngineAdapter]:
        engine = self.engine
        with self._forgetting(engine):
            yield engine

    @contextmanager
    def _forgetting(self, engine: EngineAdapter) -> Iterator[None]:
        try:
            yield
        except ContainerRuntimeNotFoundError:
            # The engine went away: ask again (and re-ping) next time.
            forget(engine)
            with self._lock:
                if self._engine is engine:
                    self._engine = None
            raise

    @staticmethod
    def _inspect(engine: EngineAdapter, name: str, op: Op = Op.READ) -> ContainerInfo:
        require_engine_name(engine, name)
        info = engine.inspect(name, op)
        if info.name != name:
            # The engine also matches id prefixes; sessions match names exactly.
            raise SessionNotFoundError(name, engine.runtime)
        return info
