"""How a synchronous callable of kstlib.ops gets its asyncio twin: one signature, one docstring.

Internal module: the public API is :mod:`kstlib.ops.aio`.

The asyncio face is not written a second time: each twin is made from the
synchronous callable it runs, and takes that callable's signature
(``__signature__``, what :func:`inspect.signature`, ``help()`` and Sphinx
read) and docstring, under one line that says how it is run. There are
three ways to run one:

* :func:`awaited` (``"called"``): a single call, in the bounded pool of the
  manager's engine (:func:`~kstlib.ops.aio.pool.off_loop`);
* :func:`awaited` (``"pumped"``): a wait, in a thread of its own with a cancel
  token (:func:`~kstlib.ops.aio.pool.call_in_pump`), so a cancel ends it at once;
* :func:`streamed`: an iterator, in a thread of its own (:class:`Pump`),
  as an async iterator.

:class:`Delegated` makes the same property on the twin;, :class:`LookUp` the
classmethods that make a manager; :func:`offloaded` and :func:`streamed_function`
make the twins of module-level functions.

Example:
    >>> import asyncio, inspect
    >>> def area(width, height=1):
    ...     '''The area of a rectangle.'''
    ...     return width * height
    >>> async_area = offloaded(area, lambda args: "doc")
    >>> inspect.signature(async_area), asyncio.run(async_area(3, height=2))
    (<Signature (width, height=1)>, 6)
    >>> async_area.__doc__.splitlines()[0]
    'The area of a rectangle.'
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from kstlib.ops.aio.pool import Pump, call_in_pump, off_loop
from kstlib.ops.cancel import on_cancel

if TYPE_CHECKING:
    from typing_extensions import Self

    from kstlib.ops.manager import SessionManager

__all__ = [
    "Delegated",
    "Face",
    "LookUp",
    "awaited",
    "offloaded",
    "streamed",
    "streamed_function",
]

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: What each way of running adds to the synchronous docstring's first paragraph.
_HOW = {
    "called": "run off the event loop, in a bounded pool of worker threads per engine",
    "pumped": "run in a thread of its own; cancelling the task ends it at once",
    "streamed": (
        "an async iterator; its thread ends at once when the task is cancelled or the "
        "iterator closed, and closes what it read"
    ),
}


class Face(Protocol):
    """What a twin needs of the asyncio object it is a method of: the synchronous one and its pool."""

    @classmethod
    def from_sync(cls, manager: SessionManager) -> Self:
        """The asyncio object of ``manager``."""
        ...

    @property
    def sync(self) -> SessionManager:
        """The synchronous object whose method the twin runs."""
        ...

    @property
    def _pool_key(self) -> str:
        """The pool its single calls run in (one per engine)."""
        ...


FaceT = TypeVar("FaceT", bound=Face)


def _doc(sync: Callable[..., Any], how: str) -> str:
    """``sync``'s docstring, its first paragraph followed by how the twin runs it."""
    text = inspect.cleandoc(sync.__doc__ or "")
    first, _, rest = text.partition("\n\n")
    role = "meth" if "." in sync.__qualname__ else "func"
    line = (
        f"Awaitable form of :{role}:`{sync.__qualname__} <kstlib.ops.{sync.__qualname__}>` ({how}); "
        "its examples below are the synchronous calls."
    )
    return f"{first}\n\n{line}\n\n{rest}".rstrip() + "\n"


def _dress(twin: F, sync: Callable[..., Any], how: str, returns: object = None) -> F:
    """``twin`` with ``sync``'s name, signature and docstring (``returns``: its own result type)."""
    signature = inspect.signature(sync)
    if returns is not None:
        signature = signature.replace(return_annotation=returns)
    twin.__name__ = sync.__name__
    twin.__qualname__ = sync.__qualname__.replace("SessionManager", "AsyncSessionManager")
    twin.__doc__ = _doc(sync, _HOW[how])
    twin.__signature__ = signature  # type: ignore[attr-defined]
    return twin


async def _in_pool(face: Face, call: Callable[[], T]) -> T:
    """``call()`` in the pool of ``face``'s engine."""
    result: T = await off_loop(face._pool_key, call)
    return result


async def _in_pump(face: Face, call: Callable[[], T]) -> T:
    """``call()`` in a cancellable thread of its own."""
    pump = call_in_pump(call, asyncio.get_running_loop())
    try:
        result: T = await pump.get()
        return result
    finally:
        pump.cancel()


#: How each kind of coroutine twin runs its synchronous call.
_RUN = {"called": _in_pool, "pumped": _in_pump}


def awaited(
    method: Callable[Concatenate[SessionManager, P], T], how: str = "called"
) -> Callable[Concatenate[Face, P], Coroutine[Any, Any, T]]:
    """The coroutine twin of ``method``, run as ``how`` says.

    ``"called"``: one call off the loop, in the engine's pool; ``"pumped"`` (a
    wait): in a thread of its own that a cancel ends at once.

    Example:
        >>> from kstlib.ops import SessionManager
        >>> awaited(SessionManager.status).__qualname__
        'AsyncSessionManager.status'
    """
    name, run = method.__name__, _RUN[how]

    async def twin(self: Face, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bound = getattr(self.sync, name)
        result: T = await run(self, lambda: bound(*args, **kwargs))
        return result

    return _dress(twin, method, how)


class LookUp(classmethod, Generic[P]):  # type: ignore[type-arg]
    """The classmethod twin of a look-up that makes a manager (``find``, ``from_config``).

    Run in the pool ``key`` names; the manager made is handed to the class's
    ``from_sync``, so the twin's result is of the class it is called on.

    Example:
        >>> from kstlib.ops import SessionManager
        >>> LookUp(SessionManager.find, "search").__func__.__qualname__
        'AsyncSessionManager.find'
    """

    def __init__(self, method: Callable[P, SessionManager], key: str) -> None:
        async def twin(cls: type[Face], /, *args: P.args, **kwargs: P.kwargs) -> Face:
            return cls.from_sync(await off_loop(key, method, *args, **kwargs))

        raw = getattr(method, "__func__", method)  # its signature has ``cls``
        super().__init__(_dress(twin, raw, "called", returns="AsyncSessionManager"))

    def __get__(
        self, obj: object, owner: type[FaceT] | None = None
    ) -> Callable[P, Coroutine[Any, Any, FaceT]]:
        bound: Callable[P, Coroutine[Any, Any, FaceT]] = super().__get__(obj, owner)
        return bound


async def _items(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """The items of ``make()``, made and read in a thread of its own (:class:`Pump`)."""
    pump = Pump(make, asyncio.get_running_loop())
    try:
        while (item := await pump.get()) is not Pump.END:
            yield item
    finally:
        pump.cancel()


def _closing(make: Callable[[], Iterator[T]], close: bool) -> Callable[[], Iterator[T]]:
    """``make``, and with ``close`` its iterator's ``close`` run by the pump's cancel."""
    if not close:
        return make

    def made() -> Iterator[T]:
        stream = make()
        on_cancel(stream.close)  # type: ignore[attr-defined]  # ends a blocked __next__ at once
        return stream

    return made


def streamed(
    method: Callable[Concatenate[SessionManager, P], Iterator[T]], *, close: bool = False
) -> Callable[Concatenate[Face, P], AsyncIterator[T]]:
    """The async-iterator twin of ``method`` (``close``: its iterator's ``close`` ends a read).

    Example:
        >>> from kstlib.ops import SessionManager
        >>> inspect.isasyncgenfunction(streamed(SessionManager.follow_logs))
        True
    """
    name = method.__name__

    async def twin(self: Face, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        bound = getattr(self.sync, name)
        async for item in _items(_closing(lambda: bound(*args, **kwargs), close)):
            yield item

    returns = str(inspect.signature(method).return_annotation)
    return _dress(twin, method, "streamed", returns=f"AsyncIterator[{_item_type(returns)}]")


def _item_type(annotation: str) -> str:
    """``str`` of ``Iterator[str]``; ``SessionEvent`` of ``EventStream``."""
    if annotation.startswith("Iterator[") and annotation.endswith("]"):
        return annotation[len("Iterator[") : -1]
    return "SessionEvent" if annotation == "EventStream" else annotation


class Delegated(property, Generic[T]):
    """The same property on the twin, read from its synchronous object.

    ``prop`` is the property read on its class (``SessionManager.name``),
    which type checkers see as its getter.

    Example:
        >>> from kstlib.ops import SessionManager
        >>> Delegated(SessionManager.name).__doc__.splitlines()[0]
        'The session name.'
    """

    def __init__(self, prop: Callable[[SessionManager], T]) -> None:
        source: Any = prop  # a property at run time
        fget = source.fget
        doc = (source.__doc__ or "").replace("SessionManager(", "AsyncSessionManager(")
        super().__init__(lambda face: fget(face.sync))
        self.__doc__ = doc  # a subclass's instance keeps its own (else the class's is read)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: Face, owner: type | None = None) -> T: ...

    def __get__(self, obj: Face | None, owner: type | None = None) -> Any:
        return super().__get__(obj, owner)


def offloaded(
    fn: Callable[P, T], key: Callable[[Mapping[str, Any]], str]
) -> Callable[P, Coroutine[Any, Any, T]]:
    """The coroutine twin of module function ``fn``, run in the pool ``key(arguments)`` names.

    Example:
        >>> from kstlib.ops.discovery import list_sessions
        >>> offloaded(list_sessions, lambda args: "search").__name__
        'list_sessions'
    """
    signature = inspect.signature(fn)

    async def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        where = key(signature.bind(*args, **kwargs).arguments)
        return await off_loop(where, fn, *args, **kwargs)

    return _dress(twin, fn, "called")


def streamed_function(
    fn: Callable[P, Iterator[T]], *, close: bool = False
) -> Callable[P, AsyncIterator[T]]:
    """The async-iterator twin of module function ``fn`` (``close``: as :func:`streamed`).

    Example:
        >>> from kstlib.ops.watch import events
        >>> streamed_function(events, close=True).__name__
        'events'
    """

    async def twin(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        async for item in _items(_closing(lambda: fn(*args, **kwargs), close)):
            yield item

    returns = str(inspect.signature(fn).return_annotation)
    return _dress(twin, fn, "streamed", returns=f"AsyncIterator[{_item_type(returns)}]")
