"""The asyncio face on real tmux: streams end on cancel and leave nothing open, a cancelled
start leaves no session behind, bursts of 200 starts, one winner per race, no idle threads."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
from pathlib import Path

import pytest

from kstlib.ops import SessionExistsError
from kstlib.ops.aio import AsyncSessionManager, list_sessions
from kstlib.ops.tmux import files

from .conftest import unique
from .waiting import eventually

pytestmark = pytest.mark.tmux


def _threads(prefix: str = "kstlib-") -> int:
    return sum(t.name.startswith(prefix) for t in threading.enumerate())


def _fds() -> int:
    gc.collect()  # descriptors of unreachable SDK objects close here
    return len(os.listdir("/proc/self/fd"))


def _run_files(socket: str, name: str) -> list[Path]:
    folder = files.server_folder(socket, None, create=False)
    return sorted(folder.glob(f"{name}.*")) if folder.exists() else []


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_silent_follow_ends_on_cancel_and_closes_its_file(tmux_socket: str, how: str) -> None:
    name = unique("aio")

    async def main() -> None:
        bot = AsyncSessionManager(name, socket_name=tmux_socket)
        await bot.start("echo first; sleep 60")
        await bot.wait_for_log("first", timeout=10)
        # The wait's own thread ends right after it answered.
        assert await asyncio.to_thread(eventually, lambda: _threads("kstlib-aio-stream") == 0)
        threads, fds = 0, _fds()
        got: list[str] = []

        async def follow() -> None:
            async for line in bot.follow_logs(lines=1):
                got.append(line)

        if how == "timeout":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await follow()
        else:
            task = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            assert _threads("kstlib-aio-stream") == threads + 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert got == ["first"]
        # The pump's thread closed the log file and ended (the session printed nothing since).
        assert await asyncio.to_thread(
            eventually, lambda: _threads("kstlib-aio-stream") == threads and _fds() <= fds
        )
        await bot.stop(graceful=False)

    asyncio.run(main())


@pytest.mark.parametrize("what", ["wait", "wait_for_log", "wait_for_port"])
def test_waits_end_on_cancel(tmux_socket: str, what: str) -> None:
    name = unique("aio")

    async def main() -> None:
        bot = AsyncSessionManager(name, socket_name=tmux_socket)
        await bot.start("sleep 60")
        base = 0
        calls = {
            "wait": lambda: bot.wait(timeout=60),
            "wait_for_log": lambda: bot.wait_for_log("never", timeout=60),
            "wait_for_port": lambda: bot.wait_for_port(1, timeout=60),
        }
        task = asyncio.create_task(calls[what]())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(eventually, lambda: _threads("kstlib-aio-stream") == base)
        assert await bot.is_running()
        await bot.stop(graceful=False)

    asyncio.run(main())


def test_wait_returns_the_exit_code_and_times_out_typed(tmux_socket: str) -> None:
    from kstlib.ops import SessionTimeoutError

    async def main() -> None:
        quick = AsyncSessionManager(unique("aio"), socket_name=tmux_socket)
        await quick.start("sleep 0.3; exit 5")
        assert await quick.wait(timeout=10) == 5
        await quick.stop()
        slow = AsyncSessionManager(unique("aio"), socket_name=tmux_socket)
        await slow.start("sleep 60")
        with pytest.raises(SessionTimeoutError, match=r"still running after 0\.3 s"):
            await slow.wait(timeout=0.3)
        await slow.stop(graceful=False)

    asyncio.run(main())


def test_a_cancelled_start_finishes_or_leaves_nothing(tmux_socket: str) -> None:
    rng = random.Random(23)
    names = [unique("aio-cancel") for _ in range(40)]

    async def one(name: str) -> bool:
        bot = AsyncSessionManager(name, socket_name=tmux_socket)
        task = asyncio.create_task(bot.start("sleep 60"))
        await asyncio.sleep(rng.uniform(0, 0.03))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return False
        await bot.stop(graceful=False)  # it finished before the cancel
        return True

    async def main() -> list[bool]:
        return [await one(n) for n in names]

    finished = asyncio.run(main())
    assert not all(finished), "no cancel landed during a start"

    async def left() -> list[str]:
        table = await list_sessions(socket_name=tmux_socket, containers=False, discover=False)
        return [s.name for s in table if s.name in names]

    assert asyncio.run(left()) == []
    for name in names:
        assert _run_files(tmux_socket, name) == [], name


def test_200_concurrent_starts_a_race_and_no_threads_after(tmux_socket: str) -> None:
    base = _threads("kstlib-")
    names = [unique("aio-burst") for _ in range(200)]
    race = unique("aio-race")

    async def main() -> None:
        bots = [AsyncSessionManager(n, socket_name=tmux_socket) for n in names]
        started = await asyncio.gather(*(b.start("sleep 60") for b in bots))
        assert all(st.is_running for st in started)
        statuses = await asyncio.gather(*(b.status() for b in bots))
        assert [st.name for st in statuses] == names
        racers = [AsyncSessionManager(race, socket_name=tmux_socket) for _ in range(10)]
        results = await asyncio.gather(
            *(r.start("sleep 60") for r in racers), return_exceptions=True
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(e, SessionExistsError) for e in losers), losers
        assert await asyncio.gather(*(b.stop(graceful=False) for b in [*bots, racers[0]]))

    asyncio.run(main())
    # Idle pool threads and idle tmux call workers end by themselves.
    assert eventually(lambda: _threads("kstlib-") <= base), [t.name for t in threading.enumerate()]


def test_sync_burst_leaves_no_tmux_call_threads(tmux_socket: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kstlib.ops import SessionManager

    base = _threads("kstlib-tmux-call")
    names = [unique("sync-burst") for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        list(
            pool.map(lambda n: SessionManager(n, socket_name=tmux_socket).start("sleep 60"), names)
        )
        list(
            pool.map(
                lambda n: SessionManager(n, socket_name=tmux_socket).stop(graceful=False), names
            )
        )
    assert eventually(lambda: _threads("kstlib-tmux-call") <= base)
