"""kstlib.ops.aio: the asyncio face of :class:`~kstlib.ops.SessionManager`.

:class:`AsyncSessionManager` has every public method of ``SessionManager``,
with the same names and parameters, as coroutines; ``follow_logs`` is an
async iterator and ``running`` an async context manager. It is built on
``SessionManager``'s public methods only: one core, two faces.

* **Single calls** (``start``, ``status``, ``stop``, ...) run off the loop
  in a bounded pool per engine (:mod:`kstlib.ops.aio.pool`: an own small
  executor whose idle threads end after 2 s; not the stdlib
  ``ThreadPoolExecutor``, which keeps its threads, nor anyio, which the
  standard library makes unnecessary here).
* **Streams and waits** (``follow_logs``, ``wait_for_log``, ``wait_*``) run
  in a thread of their own with a cancel token: ``task.cancel()`` or
  :func:`asyncio.timeout` ends them at once; the token shuts down the HTTP
  answer's socket or ends the log file's poll, so the thread closes what it
  read and ends. ``wait`` asks the engine in slices of 0.1 s.
* **A cancelled ``start()`` leaves nothing behind**: the engine call is
  shielded; when it returns after the cancel, the session it made is
  stopped and removed, then :class:`asyncio.CancelledError` is raised (so a
  cancelled start never leaves a session, container, run file or FIFO).

Example:
    >>> import asyncio
    >>> from kstlib.ops.aio import AsyncSessionManager
    >>> async def main():
    ...     bot = AsyncSessionManager("doc-aio", socket_name="kstlib-doc")
    ...     await bot.start("echo ready; sleep 30")
    ...     line = await bot.wait_for_log("ready", timeout=10)
    ...     await bot.stop(graceful=False)
    ...     return line
    >>> asyncio.run(main())
    'ready'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from kstlib.ops.aio.functions import events, list_sessions, pull_image
from kstlib.ops.aio.pool import off_loop
from kstlib.ops.aio.twins import Delegated, LookUp, awaited, streamed
from kstlib.ops.exceptions import OpsError, SessionNotFoundError, SessionTimeoutError
from kstlib.ops.manager import SessionManager

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from kstlib.ops.config import EngineConfig
    from kstlib.ops.models import BackendType, Command, SessionStatus
    from kstlib.ops.options import SessionOptions

__all__ = ["AsyncSessionManager", "events", "list_sessions", "pull_image"]

#: How long one slice of an async ``wait`` may hold a worker thread.
_WAIT_SLICE = 0.1


class AsyncSessionManager:
    """Manage one named session from asyncio code (see :class:`~kstlib.ops.SessionManager`).

    The constructor takes the same arguments as ``SessionManager``'s (it does
    no I/O, except ``backend=None``, which searches: prefer ``await
    AsyncSessionManager.find(name)``). Each method is made from
    ``SessionManager``'s (:mod:`kstlib.ops.aio.twins`): the same signature and
    documentation, awaited.

    Example:
        >>> AsyncSessionManager("worker", socket_name="kstlib-doc")
        AsyncSessionManager('worker', backend='tmux')
    """

    def __init__(
        self,
        name: str,
        *,
        backend: str | BackendType | None = "auto",
        engine: str | EngineConfig | None = None,
        **given: Unpack[SessionOptions],
    ) -> None:
        self._sync = SessionManager(name, backend=backend, engine=engine, **given)

    @classmethod
    def from_sync(cls, manager: SessionManager) -> Self:
        """The async face of an existing ``SessionManager`` (they share their state).

        Example:
            >>> AsyncSessionManager.from_sync(SessionManager("bot")).sync.name
            'bot'
        """
        self = cls.__new__(cls)
        self._sync = manager
        return self

    def __repr__(self) -> str:
        return f"AsyncSessionManager({self.name!r}, backend={self.backend.value!r})"

    @property
    def sync(self) -> SessionManager:
        """The synchronous manager behind this one.

        Example:
            >>> AsyncSessionManager("bot").sync
            SessionManager('bot', backend='tmux')
        """
        return self._sync

    @property
    def _pool_key(self) -> str:
        """The engine whose pool runs this manager's single calls."""
        c = self._sync.config
        where = c.base_url or c.socket_path or c.socket_name or ""
        return f"{c.backend.value}:{c.runtime or ''}:{where}"

    name = Delegated(SessionManager.name)
    backend = Delegated(SessionManager.backend)
    config = Delegated(SessionManager.config)
    runner = Delegated(SessionManager.runner)

    # -- look-ups and single calls ---------------------------------------------------------

    find = LookUp(SessionManager.find, "search")
    from_config = LookUp(SessionManager.from_config, "config")
    stop = awaited(SessionManager.stop)
    status = awaited(SessionManager.status)
    logs = awaited(SessionManager.logs)
    exec = awaited(SessionManager.exec)
    send_keys = awaited(SessionManager.send_keys)
    restart = awaited(SessionManager.restart)
    exists = awaited(SessionManager.exists)
    is_running = awaited(SessionManager.is_running)
    attach = awaited(SessionManager.attach)
    scale = awaited(SessionManager.scale)

    async def start(self, command: Command | None = None, **overrides: Any) -> SessionStatus:
        """Start the session (:meth:`SessionManager.start`).

        Cancelling the awaiting task never half-creates: the engine call
        finishes off the loop, the session it made is stopped and removed,
        then ``CancelledError`` is raised.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-astart", socket_name="kstlib-doc")
            ...     st = await bot.start("sleep 30")
            ...     return st.state.value, await bot.stop(graceful=False)
            >>> asyncio.run(main())
            ('running', True)
        """
        call = off_loop(self._pool_key, self._sync.start, command, **overrides)
        future = asyncio.ensure_future(call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Let the engine call end, then remove what it made; a second
            # cancel does not stop the clean-up (it runs on in the task below).
            cleanup = asyncio.ensure_future(self._undo_start(future))
            with suppress(asyncio.CancelledError):
                await asyncio.shield(cleanup)
            raise

    async def _undo_start(self, started: asyncio.Future[SessionStatus]) -> None:
        try:
            await started
        except BaseException:
            return
        with suppress(OpsError):
            await self.stop(graceful=False, timeout=1)

    @asynccontextmanager
    async def running(
        self, command: Command | None = None, *, stop_timeout: float = 10, **overrides: Any
    ) -> AsyncIterator[AsyncSessionManager]:
        """Start the session for an ``async with`` block; stop and remove it afterwards.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-arunning", socket_name="kstlib-doc")
            ...     async with bot.running("sleep 30") as s:
            ...         alive = await s.is_running()
            ...     return alive, await bot.exists()
            >>> asyncio.run(main())
            (True, False)
        """
        await self.start(command, **overrides)
        try:
            yield self
        finally:
            with suppress(SessionNotFoundError):
                await asyncio.shield(self.stop(graceful=True, timeout=stop_timeout))

    # -- streams and waits -----------------------------------------------------------------

    follow_logs = streamed(SessionManager.follow_logs)
    events = streamed(SessionManager.events, close=True)
    wait_for_log = awaited(SessionManager.wait_for_log, "pumped")
    wait_for_port = awaited(SessionManager.wait_for_port, "pumped")
    wait_for_http = awaited(SessionManager.wait_for_http, "pumped")
    wait_until_running = awaited(SessionManager.wait_until_running, "pumped")

    async def wait(self, timeout: float | None = None) -> int:
        """Wait until the process exits (after any restarts); its exit code.

        The engine is asked in slices of 0.1 s, so a cancel ends the wait at once.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-await", socket_name="kstlib-doc")
            ...     await bot.start("exit 7")
            ...     code = await bot.wait(timeout=5)
            ...     await bot.stop()
            ...     return code
            >>> asyncio.run(main())
            7
        """
        if timeout is not None:
            from kstlib.ops.validators import validate_timeout

            validate_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = (
                _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            )
            try:
                return await off_loop(self._pool_key, self._sync.wait, timeout=max(left, 0))
            except SessionTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    where = self.config.runtime or self.backend
                    raise SessionTimeoutError(
                        self.name, where, f"still running after {timeout:g} s"
                    ) from None
