"""The asyncio face keeps SessionManager's surface: same names, parameters and defaults.

Walks ``SessionManager`` itself, so a method added there without its async twin fails here.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

import kstlib.ops
from kstlib.ops import SessionManager, aio
from kstlib.ops.aio import AsyncSessionManager
from kstlib.ops.aio.pool import IdlePool, Pump
from kstlib.ops.cancel import CancelToken, bound, pause


def _public(cls: type) -> dict[str, object]:
    return {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }


def _params(func: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def _unwrap(member: object) -> object:
    if isinstance(member, (classmethod, staticmethod)):
        return member.__func__
    return member


SYNC = _public(SessionManager)
ASYNC = _public(AsyncSessionManager)
METHODS = sorted(n for n, m in SYNC.items() if not isinstance(m, property))
PROPERTIES = sorted(n for n, m in SYNC.items() if isinstance(m, property))


def test_the_surface_is_walked() -> None:
    assert {"start", "stop", "status", "follow_logs", "wait_for_log", "find"} <= set(METHODS)
    assert {"name", "backend", "config"} <= set(PROPERTIES)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_an_async_twin_with_the_same_parameters(name: str) -> None:
    assert name in ASYNC, f"AsyncSessionManager lacks {name}()"
    sync, twin = SYNC[name], ASYNC[name]
    assert isinstance(sync, classmethod) == isinstance(twin, classmethod), name
    assert _params(_unwrap(sync)) == _params(_unwrap(twin)), name
    func = inspect.unwrap(_unwrap(twin))  # type: ignore[arg-type]
    generator = inspect.isgeneratorfunction(inspect.unwrap(_unwrap(sync)))  # type: ignore[arg-type]
    returned = str(inspect.signature(_unwrap(sync)).return_annotation)  # type: ignore[arg-type]
    returns_iterator = "Iterator[" in returned or returned == "EventStream"
    if name == "running":
        assert hasattr(twin, "__wrapped__") and inspect.isasyncgenfunction(func)
    elif generator or returns_iterator:
        assert inspect.isasyncgenfunction(func), f"{name} must be an async iterator"
    else:
        assert inspect.iscoroutinefunction(func), f"{name} must be a coroutine"


@pytest.mark.parametrize("name", PROPERTIES)
def test_every_property_is_there(name: str) -> None:
    assert isinstance(ASYNC.get(name), property), name


@pytest.mark.parametrize("name", ["list_sessions", "pull_image", "events"])
def test_module_functions_keep_their_parameters(name: str) -> None:
    sync = getattr(kstlib.ops, name)
    assert inspect.isfunction(sync), name  # one thing: kstlib.ops.events is a function
    twin = getattr(aio, name)
    assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin)
    assert _params(sync) == _params(twin)


def test_exported_lazily_from_kstlib_ops() -> None:
    assert kstlib.ops.AsyncSessionManager is AsyncSessionManager
    assert "AsyncSessionManager" in kstlib.ops.__all__


def test_the_constructor_validates_as_the_sync_one() -> None:
    with pytest.raises(kstlib.ops.SessionConfigError):
        AsyncSessionManager("worker", colour="blue")  # type: ignore[call-arg]


def test_idle_pool_threads_end_and_stay_bounded() -> None:
    pool = IdlePool("test", size=3, idle=0.05)
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 5) for _ in range(10)]
    assert pool.threads == 3
    gate.set()
    assert all(f.result(5) for f in futures)
    deadline = time.monotonic() + 5
    while pool.threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.threads == 0
    assert pool.submit(sum, [2, 3]).result(5) == 5  # a new burst starts new threads


def test_pause_ends_when_the_token_is_cancelled() -> None:
    token = CancelToken()
    ended = threading.Event()

    def sleeper() -> None:
        with bound(token):
            try:
                pause(60)
            except BaseException:
                ended.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    token.cancel()
    thread.join(5)
    assert ended.is_set() and not thread.is_alive()


def test_a_cancelled_pump_ends_its_thread() -> None:
    def forever():  # type: ignore[no-untyped-def]
        yield 1
        while True:
            pause(0.05)

    async def main() -> Pump:
        pump = Pump(forever, asyncio.get_running_loop())
        assert await pump.get() == 1
        pump.cancel()
        return pump

    pump = asyncio.run(main())
    assert pump.finished.wait(5)


#: The twins written by hand: what they add (a cancel-safe start, a wait in slices, an
#: async context manager) is said in their own docstrings.
WRITTEN = {"start", "wait", "running", "from_sync"}


@pytest.mark.parametrize("name", sorted(set(METHODS) - WRITTEN))
def test_each_made_twin_carries_its_sync_docstring(name: str) -> None:
    sync = inspect.getdoc(_unwrap(SYNC[name])) or ""
    twin = inspect.getdoc(_unwrap(ASYNC[name])) or ""
    first, _, rest = sync.partition("\n\n")
    assert twin.startswith(first + "\n\nAwaitable form of :meth:`SessionManager."), name
    assert twin.endswith(rest), name


@pytest.mark.parametrize("name", ["list_sessions", "pull_image", "events"])
def test_each_module_twin_carries_its_sync_docstring(name: str) -> None:
    sync = getattr(kstlib.ops, name)
    if inspect.ismodule(sync):
        sync = getattr(sync, name)
    first = (inspect.getdoc(sync) or "").partition("\n\n")[0]
    assert (inspect.getdoc(getattr(aio, name)) or "").startswith(first + "\n\nAwaitable form of")
