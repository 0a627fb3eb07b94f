"""The threads behind :mod:`kstlib.ops.aio`: a bounded pool per engine, and stream pumps.

Internal module: the public API is :mod:`kstlib.ops` and :mod:`kstlib.ops.aio`.

**Why an own executor.** The SDKs (libtmux, docker, podman-py) are
synchronous, so a single call runs in a worker thread. The stdlib
:class:`~concurrent.futures.ThreadPoolExecutor` keeps its threads for the
life of the process, and anyio's ``CapacityLimiter`` only bounds a pool
that anyio owns (and that keeps idle threads too); :class:`IdlePool` is a
small executor over one queue whose idle workers end after ``idle``
seconds, at most ``size`` at a time per engine, so a burst of 200 calls
leaves no thread behind. It returns stdlib futures, which
:func:`asyncio.wrap_future` awaits.

**Streams.** A follow or a wait runs in its own thread (:class:`Pump`)
with a :class:`~kstlib.ops.cancel.CancelToken` bound to it: cancelling
sets the token, which shuts down the HTTP answer's socket or ends the log
file's poll at once, so the thread closes what it read and ends; no thread
is left blocked.

Example:
    >>> pool = IdlePool("doc", size=2, idle=0.1)
    >>> pool.submit(sum, [1, 2]).result()
    3
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from kstlib.ops.cancel import Cancelled, CancelToken, bound

__all__ = ["IdlePool", "Pump", "call_in_pump", "off_loop", "pool_for"]

T = TypeVar("T")

#: Worker threads per engine at most, and the seconds an idle one waits before it ends.
POOL_SIZE = 16
IDLE_EXIT = 2.0

_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class IdlePool:
    """At most ``size`` worker threads for one engine; an idle one ends after ``idle`` s.

    Example:
        >>> pool = IdlePool("doc", size=1, idle=0.05)
        >>> pool.submit(len, "abc").result(), pool.threads <= 1
        (3, True)
    """

    def __init__(self, key: str, size: int = POOL_SIZE, idle: float = IDLE_EXIT) -> None:
        self.key = key
        self.size = size
        self.idle = idle
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0

    @property
    def threads(self) -> int:
        """The worker threads alive now.

        Example:
            >>> IdlePool("doc").threads
            0
        """
        return self._threads

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker; its future.

        Example:
            >>> IdlePool("doc").submit(max, 1, 2).result()
            2
        """
        future: Future[T] = Future()
        self._jobs.put((future, fn, args, kwargs))
        with self._lock:
            if self._waiting == 0 and self._threads < self.size:
                self._threads += 1
                start = True
            else:
                start = False
        if start:
            name = f"kstlib-aio-{self.key}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                future, fn, args, kwargs = self._jobs.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._jobs.empty():
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._waiting -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as err:  # handed to the awaiting task
                future.set_exception(err)
            else:
                future.set_result(result)
            del future, fn, args, kwargs


_POOLS: dict[str, IdlePool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(key: str) -> IdlePool:
    """The pool of engine ``key`` (one per process and key).

    Example:
        >>> pool_for("tmux:doc") is pool_for("tmux:doc")
        True
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = IdlePool(key)
        return pool


async def off_loop(key: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Await ``fn(*args, **kwargs)`` run in the pool of engine ``key``.

    Example:
        >>> asyncio.run(off_loop("doc", sum, [1, 2]))
        3
    """
    return await asyncio.wrap_future(pool_for(key).submit(fn, *args, **kwargs))


_END = object()


class Pump:
    """Run a blocking iterator (or call) in its own thread; hand its items to the loop.

    ``make`` builds the iterator in that thread, with the pump's cancel
    token bound, so every poll and read inside it ends on :meth:`cancel`.
    At most ``buffer`` items wait for the consumer (the thread waits, and
    stays cancellable, beyond that).

    Example:
        >>> import asyncio
        >>> async def main():
        ...     pump = Pump(lambda: iter([1, 2]), asyncio.get_running_loop())
        ...     return [await pump.get(), await pump.get(), await pump.get() is Pump.END]
        >>> asyncio.run(main())
        [1, 2, True]
    """

    END = _END

    def __init__(
        self,
        make: Callable[[], Iterator[Any]],
        loop: asyncio.AbstractEventLoop,
        buffer: int = 256,
    ) -> None:
        self.token = CancelToken()
        self._loop = loop
        self._items: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
        self._room = threading.Semaphore(buffer)
        self.finished = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(make,), name="kstlib-aio-stream", daemon=True
        )
        self._thread.start()

    def _hand(self, ok: bool, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, (ok, value))
        except RuntimeError:  # the loop is closed: nobody reads any more
            self.token.cancel()

    def _run(self, make: Callable[[], Iterator[Any]]) -> None:
        try:
            with bound(self.token):
                for item in make():
                    while not self._room.acquire(timeout=0.05):
                        if self.token.cancelled:
                            raise Cancelled("cancelled")
                    if self.token.cancelled:
                        raise Cancelled("cancelled")
                    self._hand(True, item)
            self._hand(True, _END)
        except Cancelled:
            pass
        except BaseException as err:  # the consumer raises it
            if not self.token.cancelled:
                self._hand(False, err)
        finally:
            self.finished.set()

    async def get(self) -> Any:
        """The next item, :attr:`END` at the end; raises what the iterator raised.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     return await Pump(lambda: iter([]), asyncio.get_running_loop()).get()
            >>> asyncio.run(main()) is Pump.END
            True
        """
        ok, value = await self._items.get()
        if not ok:
            raise value
        if value is not _END:
            self._room.release()
        return value

    def cancel(self) -> None:
        """End the thread: its poll or blocked read ends, it closes its stream and exits.

        Example:
            >>> import asyncio
            >>> async def main():
            ...     pump = Pump(lambda: iter([]), asyncio.get_running_loop())
            ...     pump.cancel()
            ...     return pump.finished.wait(1)
            >>> asyncio.run(main())
            True
        """
        self.token.cancel()


def call_in_pump(fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> Pump:
    """A :class:`Pump` that yields the single result of ``fn()`` (a cancellable wait).

    Example:
        >>> import asyncio
        >>> async def main():
        ...     return await call_in_pump(lambda: 5, asyncio.get_running_loop()).get()
        >>> asyncio.run(main())
        5
    """

    def once() -> Iterator[T]:
        yield fn()

    return Pump(once, loop)
