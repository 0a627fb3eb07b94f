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
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from kstlib.ops.aio.functions import events, list_sessions, pull_image
from kstlib.ops.aio.pool import Pump, call_in_pump, off_loop
from kstlib.ops.cancel import on_cancel
from kstlib.ops.exceptions import OpsError, SessionNotFoundError, SessionTimeoutError
from kstlib.ops.manager import SessionManager

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.config import EngineConfig
    from kstlib.ops.display import LogText
    from kstlib.ops.eventstream import SessionEvent
    from kstlib.ops.logfile import Since
    from kstlib.ops.models import BackendType, Command, SessionConfig, SessionStatus
    from kstlib.ops.options import SessionOptions
    from kstlib.ops.runner import Runner

__all__ = ["AsyncSessionManager", "events", "list_sessions", "pull_image"]

T = TypeVar("T")

#: How long one slice of an async ``wait`` may hold a worker thread.
_WAIT_SLICE = 0.1


async def _pumped(fn: Callable[[], T]) -> T:
    """``fn()`` in a cancellable thread of its own (a wait)."""
    pump = call_in_pump(fn, asyncio.get_running_loop())
    try:
        result: T = await pump.get()
        return result
    finally:
        pump.cancel()


def _engine_key(sync: SessionManager) -> str:
    c = sync.config
    where = c.base_url or c.socket_path or c.socket_name or ""
    return f"{c.backend.value}:{c.runtime or ''}:{where}"


class AsyncSessionManager:
    """Manage one named session from asyncio code (see :class:`~kstlib.ops.SessionManager`).

    The constructor takes the same arguments as ``SessionManager``'s (it does
    no I/O, except ``backend=None``, which searches: prefer ``await
    AsyncSessionManager.find(name)``).

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
    def from_sync(cls, manager: SessionManager) -> AsyncSessionManager:
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
    def name(self) -> str:
        """The session name.

        Example:
            >>> AsyncSessionManager("bot").name
            'bot'
        """
        return self._sync.name

    @property
    def backend(self) -> BackendType:
        """The backend that runs this session.

        Example:
            >>> AsyncSessionManager("bot").backend.value
            'tmux'
        """
        return self._sync.backend

    @property
    def config(self) -> SessionConfig:
        """The validated configuration.

        Example:
            >>> AsyncSessionManager("bot", command="sleep 5").config.command
            'sleep 5'
        """
        return self._sync.config

    @property
    def runner(self) -> Runner:
        """The backend runner (created on first use; creating it does no I/O).

        Example:
            >>> AsyncSessionManager("bot", socket_name="kstlib-doc").runner
            TmuxRunner(socket='kstlib-doc')
        """
        return self._sync.runner

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await off_loop(_engine_key(self._sync), fn, *args, **kwargs)

    # -- look-ups --------------------------------------------------------------------------

    @classmethod
    async def find(
        cls,
        name: str,
        *,
        socket_name: str | None = None,
        socket_path: str | None = None,
        runtime: str | None = None,
        base_url: str | None = None,
        engines: Iterable[str | EngineConfig] | None = None,
        swarms: Iterable[str | None] = (),
        **options: Any,
    ) -> AsyncSessionManager:
        """The manager of an existing session, wherever it runs (:meth:`SessionManager.find`).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager.find("ghost", socket_name="kstlib-doc",
            ...     runtime="docker", base_url="unix:///nonexistent.sock"))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'ghost' was not found ...
        """
        found = await off_loop(
            "search",
            SessionManager.find,
            name,
            socket_name=socket_name,
            socket_path=socket_path,
            runtime=runtime,
            base_url=base_url,
            engines=engines,
            swarms=swarms,
            **options,
        )
        return cls.from_sync(found)

    @classmethod
    async def from_config(
        cls, name: str, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> AsyncSessionManager:
        """The manager of session ``name`` as defined in ``kstlib.conf.yml`` (read off the loop).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager.from_config("bot", path="/nonexistent.yml"))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: ...
        """
        made = await off_loop("config", SessionManager.from_config, name, path, **overrides)
        return cls.from_sync(made)

    # -- single calls ----------------------------------------------------------------------

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
        future = asyncio.ensure_future(self._call(self._sync.start, command, **overrides))
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
            await self._call(self._sync.stop, graceful=False, timeout=1)

    async def stop(self, *, graceful: bool = True, timeout: float = 10) -> bool:
        """Stop the session and remove it (:meth:`SessionManager.stop`).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").stop())
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'ghost' was not found ...
        """
        return await self._call(self._sync.stop, graceful=graceful, timeout=timeout)

    async def status(self) -> SessionStatus:
        """The session's state, pid, exit code and creation time.

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").status())
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'ghost' was not found ...
        """
        return await self._call(self._sync.status)

    async def logs(
        self,
        lines: int | None = 100,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
    ) -> LogText:
        """The last ``lines`` lines of output (:meth:`SessionManager.logs`).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").logs())
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'ghost' was not found ...
        """
        return await self._call(
            self._sync.logs, lines, since=since, timestamps=timestamps, ansi=ansi
        )

    async def exec(self, command: Command) -> tuple[int, str]:
        """Run ``command`` beside the session's process (containers).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("bot", socket_name="kstlib-doc").exec("true"))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: session 'bot' runs on tmux, which cannot run ...
        """
        return await self._call(self._sync.exec, command)

    async def send_keys(
        self, keys: str, *, enter: bool = True, literal: bool | None = None
    ) -> None:
        """Type ``keys`` into the session's terminal (tmux).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").send_keys("x"))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'ghost' was not found ...
        """
        await self._call(self._sync.send_keys, keys, enter=enter, literal=literal)

    async def restart(self, *, timeout: float = 10, **overrides: Any) -> SessionStatus:
        """Stop the session if it exists and start it again (:meth:`SessionManager.restart`).

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-arestart", socket_name="kstlib-doc")
            ...     first = (await bot.start("sleep 30")).pid
            ...     second = (await bot.restart()).pid
            ...     await bot.stop(graceful=False)
            ...     return first != second
            >>> asyncio.run(main())
            True
        """
        return await self._call(self._sync.restart, timeout=timeout, **overrides)

    async def exists(self) -> bool:
        """Whether the session exists (running or exited).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").exists())
            False
        """
        return await self._call(self._sync.exists)

    async def is_running(self) -> bool:
        """Whether the session exists and its process is alive.

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc").is_running())
            False
        """
        return await self._call(self._sync.is_running)

    async def attach(self) -> None:
        """Connect this terminal to the session (:meth:`SessionManager.attach`).

        Example:
            >>> asyncio.run(AsyncSessionManager("bot").attach())  # doctest: +SKIP
        """
        await self._call(self._sync.attach)

    async def scale(self, replicas: int, *, timeout: float | None = None) -> SessionStatus:
        """Run ``replicas`` tasks of the service (swarm only).

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("bot", socket_name="kstlib-doc").scale(2))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: session 'bot' runs on tmux, which has no replicas ...
        """
        return await self._call(self._sync.scale, replicas, timeout=timeout)

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

    async def follow_logs(
        self,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
        lines: int | None = None,
    ) -> AsyncIterator[str]:
        """Yield output lines as they are written; ends with the session (an async iterator).

        Cancelling the task (or leaving the loop and closing the iterator,
        e.g. with :func:`contextlib.aclosing`) closes the log file or HTTP
        answer being read.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-afollow", socket_name="kstlib-doc")
            ...     await bot.start("sleep 0.3; echo a; echo b")
            ...     got = [line async for line in bot.follow_logs()]
            ...     await bot.stop()
            ...     return got
            >>> asyncio.run(main())
            ['a', 'b']
        """

        def make() -> Iterator[str]:
            return self._sync.follow_logs(
                since=since, timestamps=timestamps, ansi=ansi, timeout=timeout, lines=lines
            )

        pump = Pump(make, asyncio.get_running_loop())
        try:
            while (line := await pump.get()) is not Pump.END:
                yield line
        finally:
            pump.cancel()

    async def events(self, name: str | None = None) -> AsyncIterator[SessionEvent]:
        """Live events of ``name`` (default: this session), as :meth:`SessionManager.events`.

        Example:
            >>> async def first(bot):  # doctest: +SKIP
            ...     async for event in bot.events():
            ...         return event.kind
        """
        sync = self._sync

        def make() -> Iterator[SessionEvent]:
            stream = sync.events(name)
            on_cancel(stream.close)  # the pump's cancel ends a blocked __next__ at once
            return stream

        pump = Pump(make, asyncio.get_running_loop())
        try:
            while (event := await pump.get()) is not Pump.END:
                yield event
        finally:
            pump.cancel()

    async def wait(self, timeout: float | None = None) -> int:
        """Wait until the process exits (after any restarts); its exit code.

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
                return await self._call(self._sync.wait, timeout=max(left, 0))
            except SessionTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    where = self.config.runtime or self.backend
                    raise SessionTimeoutError(
                        self.name, where, f"still running after {timeout:g} s"
                    ) from None

    async def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30) -> str:
        """The first output line that matches ``pattern`` (:meth:`SessionManager.wait_for_log`).

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-aready", socket_name="kstlib-doc")
            ...     await bot.start("echo 'listening on :8080'; sleep 30")
            ...     line = await bot.wait_for_log(r"listening on :\\d+", timeout=10)
            ...     await bot.stop(graceful=False)
            ...     return line
            >>> asyncio.run(main())
            'listening on :8080'
        """
        return await _pumped(lambda: self._sync.wait_for_log(pattern, timeout))

    async def wait_for_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30) -> None:
        """Wait until a TCP connection to ``host:port`` succeeds.

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc")
            ...     .wait_for_port(0))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: port: 0 is not a port number (1-65535)
        """
        await _pumped(lambda: self._sync.wait_for_port(port, host, timeout))

    async def wait_for_http(self, url: str, status: int = 200, timeout: float = 30) -> int:
        """Wait until ``GET url`` answers with HTTP ``status``; that status.

        Example:
            >>> import asyncio
            >>> asyncio.run(AsyncSessionManager("ghost", socket_name="kstlib-doc")
            ...     .wait_for_http("ftp://x/"))
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: url: 'ftp://x/' must start with http:// or https://
        """
        return await _pumped(lambda: self._sync.wait_for_http(url, status, timeout))

    async def wait_until_running(self, timeout: float = 30) -> SessionStatus:
        """Wait until the session exists and runs; its status.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     bot = AsyncSessionManager("doc-aup", socket_name="kstlib-doc")
            ...     await bot.start("sleep 30")
            ...     st = await bot.wait_until_running(timeout=5)
            ...     await bot.stop(graceful=False)
            ...     return st.state.value
            >>> asyncio.run(main())
            'running'
        """
        return await _pumped(lambda: self._sync.wait_until_running(timeout))
