"""The module-level coroutines of :mod:`kstlib.ops.aio`: listing sessions and pulling images.

Internal module: they are public as ``kstlib.ops.aio.list_sessions`` and ``pull_image``.

Example:
    >>> import asyncio
    >>> asyncio.run(list_sessions(socket_name="kstlib-doc", containers=False)).__class__.__name__
    'SessionTable'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from kstlib.ops.aio.pool import Pump, off_loop
from kstlib.ops.cancel import on_cancel
from kstlib.ops.images import DEFAULT_PULL_TIMEOUT

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig
    from kstlib.ops.eventstream import SessionEvent
    from kstlib.ops.images import ProgressCallback, PullResult, RegistryAuth
    from kstlib.ops.models import BackendType, SessionTable
    from kstlib.ops.runners import RunnerFactory

__all__ = ["list_sessions", "pull_image"]


async def list_sessions(
    *,
    socket_name: str | None = None,
    socket_path: str | None = None,
    runtime: str | None = None,
    base_url: str | None = None,
    tmux: bool = True,
    containers: bool = True,
    timeout: float | None = None,
    discover: bool = True,
    engines: Iterable[EngineConfig | str] | Mapping[str, EngineConfig] | None = None,
    swarms: Iterable[str | None] = (),
    runner_factory: RunnerFactory | None = None,
) -> SessionTable:
    """Every session on tmux and on every reachable engine (:func:`kstlib.ops.list_sessions`).

    Example:
        >>> import asyncio
        >>> table = asyncio.run(list_sessions(socket_name="kstlib-doc", containers=False))
        >>> type(table).__name__
        'SessionTable'
    """
    from kstlib.ops.discovery import list_sessions as sync_list

    return await off_loop(
        "search",
        sync_list,
        socket_name=socket_name,
        socket_path=socket_path,
        runtime=runtime,
        base_url=base_url,
        tmux=tmux,
        containers=containers,
        timeout=timeout,
        discover=discover,
        engines=engines,
        swarms=swarms,
        runner_factory=runner_factory,
    )


async def pull_image(
    image: str,
    runtime: str | None = None,
    base_url: str | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    registry_auth: RegistryAuth | Mapping[str, str] | None = None,
    insecure_registries: Iterable[str] = (),
    insecure: bool | None = None,
    timeout: float = DEFAULT_PULL_TIMEOUT,
) -> PullResult:
    """Pull ``image`` into an engine off the loop (:func:`kstlib.ops.pull_image`).

    ``on_progress`` is called in the pulling thread.

    Example:
        >>> import asyncio
        >>> asyncio.run(pull_image("localhost/kstlib-test:latest", runtime="docker")).image
        ... # doctest: +SKIP
        'localhost/kstlib-test:latest'
    """
    from kstlib.ops.images import pull_image as sync_pull

    return await off_loop(
        f"pull:{runtime or ''}:{base_url or ''}",
        sync_pull,
        image,
        runtime,
        base_url,
        on_progress,
        registry_auth=registry_auth,
        insecure_registries=insecure_registries,
        insecure=insecure,
        timeout=timeout,
    )


async def events(
    names: Iterable[str] | None = None,
    backend: BackendType | str | None = None,
    engine: str | None = None,
    *,
    base_url: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    queue_size: int = 1024,
) -> AsyncIterator[SessionEvent]:
    """Live session events (:func:`kstlib.ops.events`) as an async iterator.

    The one :class:`~kstlib.ops.eventstream.EventStream` runs in a thread of its own;
    cancelling the task (or closing the iterator) closes it, which closes the
    engine's ``/events`` answer.

    Example:
        >>> async def first_exit():  # doctest: +SKIP
        ...     async for event in events(backend="container", engine="docker"):
        ...         if event.kind == "exited":
        ...             return event
    """
    from kstlib.ops.watch import events as sync_events

    def make() -> Iterator[SessionEvent]:
        stream = sync_events(
            names,
            backend,
            engine,
            base_url=base_url,
            socket_name=socket_name,
            socket_path=socket_path,
            queue_size=queue_size,
        )
        on_cancel(stream.close)  # the pump's cancel ends a blocked __next__ at once
        return stream

    pump = Pump(make, asyncio.get_running_loop())
    try:
        while (event := await pump.get()) is not Pump.END:
            yield event
    finally:
        pump.cancel()
