"""The asyncio face on Docker and Podman: a cancelled follow closes its HTTP answer, a
cancelled start leaves no container, 50 concurrent starts, one winner per race."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading

import pytest
import urllib3

from kstlib.ops import SessionExistsError
from kstlib.ops.aio import AsyncSessionManager

from .conftest import ENGINE_URLS, TEST_IMAGE, unique
from .waiting import eventually

RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]


def _bot(runtime: str, name: str | None = None) -> AsyncSessionManager:
    return AsyncSessionManager(
        name or unique("aio"),
        backend=runtime,
        base_url=ENGINE_URLS[runtime],
        image=TEST_IMAGE,
    )


def _streams() -> int:
    return sum(t.name == "kstlib-aio-stream" for t in threading.enumerate())


def _inode(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed while listed


def _sockets() -> set[str]:
    """The sockets this process holds open (``socket:[inode]``), whoever opened them."""
    gc.collect()  # descriptors of unreachable SDK objects close here
    held = {_inode(int(fd)) for fd in os.listdir("/proc/self/fd")}
    return {target for target in held if target and target.startswith("socket:")}


def _idle_in_a_pool() -> set[str]:
    """Sockets of kept-alive connections waiting in an HTTP connection pool (urllib3's).

    A follow's status checks borrow such connections and hand them back; they are
    the client's to keep, not the follow's answer.
    """
    idle = set()
    for pool in (o for o in gc.get_objects() if isinstance(o, urllib3.HTTPConnectionPool)):
        for conn in list(getattr(pool.pool, "queue", None) or ()):
            sock = getattr(conn, "sock", None)
            if sock is not None and sock.fileno() >= 0:
                idle.add(_inode(sock.fileno()))
    return {target for target in idle if target}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cancelled_follow_closes_its_http_answer(runtime: str) -> None:
    async def main() -> None:
        bot = _bot(runtime)
        await bot.start(["sh", "-c", "echo first; sleep 60"])
        try:
            await bot.wait_for_log("first", timeout=20)
            got: list[str] = []

            async def follow() -> None:
                async for line in bot.follow_logs(lines=1):
                    got.append(line)

            # A first follow opens the client's kept-alive connections (not a leak).
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await follow()
            got.clear()
            assert await asyncio.to_thread(eventually, lambda: _streams() == 0)
            before = _sockets()

            task = asyncio.create_task(follow())
            await asyncio.sleep(1.0)  # the stream is open and its read blocks
            assert _streams() == 1
            # The follow's own connection: sockets the process did not hold before it.
            # (The process-wide fd count is no measure: other tests' threads open and
            # close descriptors of their own while this one runs.)
            opened = _sockets() - before
            assert opened, "the follow holds a connection of its own"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert got == ["first"]

            # The answer's socket was shut down: the read returned, the answer was closed.
            # Connections the follow borrowed for its checks may wait in the pool.
            def answer_closed() -> bool:
                return _streams() == 0 and not (opened & _sockets() - _idle_in_a_pool())

            assert await asyncio.to_thread(eventually, answer_closed), (
                _streams(),
                opened & _sockets(),
                _idle_in_a_pool(),
            )
            assert len(opened & _sockets()) < len(opened), "the answer's own socket is closed"
        finally:
            await bot.stop(graceful=False)

    asyncio.run(main())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cancelled_wait_ends(runtime: str) -> None:
    async def main() -> None:
        bot = _bot(runtime)
        await bot.start("sleep 60")
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await bot.wait()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await bot.wait_for_log("never")
            assert await asyncio.to_thread(eventually, lambda: _streams() == 0)
            assert await bot.is_running()
        finally:
            await bot.stop(graceful=False)

    asyncio.run(main())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cancelled_start_finishes_or_leaves_nothing(runtime: str) -> None:
    rng = random.Random(runtime)
    names = [unique("aio-cancel") for _ in range(12)]

    async def one(name: str) -> bool:
        bot = _bot(runtime, name)
        task = asyncio.create_task(bot.start("sleep 60"))
        await asyncio.sleep(rng.uniform(0, 0.3))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return False
        await bot.stop(graceful=False)
        return True

    async def main() -> list[bool]:
        finished = await asyncio.gather(*(one(n) for n in names))
        left = await asyncio.gather(*(_bot(runtime, n).exists() for n in names))
        assert not any(left), [n for n, there in zip(names, left, strict=True) if there]
        return finished

    assert not all(asyncio.run(main())), "no cancel landed during a start"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_50_concurrent_starts_and_a_race(runtime: str) -> None:
    names = [unique("aio-burst") for _ in range(50)]
    race = unique("aio-race")

    async def main() -> None:
        bots = [_bot(runtime, n) for n in names]
        racers = [_bot(runtime, race) for _ in range(5)]
        try:
            started = await asyncio.gather(*(b.start("sleep 60") for b in bots))
            assert all(st.is_running for st in started)
            results = await asyncio.gather(
                *(r.start("sleep 60") for r in racers), return_exceptions=True
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            losers = [r for r in results if isinstance(r, BaseException)]
            assert len(winners) == 1
            assert all(isinstance(e, SessionExistsError) for e in losers), losers
        finally:
            await asyncio.gather(
                *(b.stop(graceful=False) for b in [*bots, racers[0]]), return_exceptions=True
            )

    asyncio.run(main())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_async_follow_of_a_chatty_container_misses_nothing(runtime: str) -> None:
    """Podman answers a followed log with its first entry: the async follow asks in short
    slices (to see a cancel) and still yields every new line once, in order."""

    async def main() -> list[int]:
        bot = _bot(runtime)
        await bot.start(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"])
        got: list[int] = []
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2.5):
                    async for line in bot.follow_logs():
                        got.append(int(line))
        finally:
            await bot.stop(graceful=False)
        return got

    got = asyncio.run(main())
    assert len(got) >= 3, got
    assert got == list(range(got[0], got[-1] + 1))
