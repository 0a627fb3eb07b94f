"""The CLI and named engines (``ops.engines``): ``--engine NAME``, their timeouts, one search over all.

Example:
    >>> import argparse
    >>> from kstlib.cli.context import Context
    >>> timeout_of(Context(argparse.Namespace(config=None)), Location(CONTAINER))
    30.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from kstlib.cli.parser import UsageError
from kstlib.cli.places import CONTAINER, of_engine, unique  # noqa: F401  (the examples use CONTAINER)
from kstlib.ops.locations import Location
from kstlib.ops.models import BackendType

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig, OpsConfig
    from kstlib.ops.runner import Runner
    from kstlib.ops.runners import RunnerFactory


class Context(Protocol):
    """What these functions use of :class:`kstlib.cli.context.Context` (which imports them)."""

    @property
    def config(self) -> OpsConfig: ...

    @property
    def engine_timeout(self) -> float: ...

    @property
    def runner_factory(self) -> RunnerFactory: ...

    def option(self, name: str) -> Any: ...

    def may_run_config_programs(self) -> bool: ...

    def tmux_binary(self) -> str | None: ...

    def explicit_backend(self) -> tuple[BackendType | None, str | None, str | None]: ...

    def discovered_sockets(self) -> list[str]: ...


__all__ = [
    "list_filter",
    "list_places",
    "named_engine",
    "probe_engines",
    "start_values",
    "timeout_of",
]


def named_engine(ctx: Context) -> EngineConfig | None:
    """The engine ``--engine NAME`` names (``ops.engines``), ``None`` without the option.

    Raises:
        SessionConfigError: no engine of that name (the message lists the known ones).
        UsageError: ``--engine`` together with ``-b``, ``--runtime`` or ``-L``.

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> named_engine(Context(argparse.Namespace(config=None, engine="edge")))
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: engine: 'edge' is not an engine (known: none defined in ops.engines)
    """
    wanted = ctx.option("engine")
    if wanted is None:
        return None
    from kstlib.ops.fleet import engine_named

    for other in ("backend", "runtime", "socket"):
        if ctx.option(other) is not None:
            flag = {"socket": "-L/--socket"}.get(other, f"--{other}")
            raise UsageError(f"--engine names where the session runs; drop {flag}")
    return engine_named(wanted, ctx.config.engines)


def timeout_of(ctx: Context, place: Location) -> float:
    """Seconds an engine call may take at ``place``: its engine's ``timeout``, else the CLI's.

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> timeout_of(Context(argparse.Namespace(config=None)), Location(CONTAINER, engine="x"))
        30.0
    """
    if place.engine is not None:
        engine = ctx.config.engines.get(place.engine)
        if engine is not None and engine.timeout is not None:
            return engine.timeout
    return ctx.engine_timeout


def probe_engines(ctx: Context, name: str) -> list[Location]:
    """Ask every named engine at once whether it holds ``name``; an engine that is down is skipped.

    The library's search of named engines (:func:`kstlib.ops.fleet.find_on_engines`:
    each bounded by its own timeout, so it takes about the time of the slowest
    engine). An ssh:// engine of a project-local config file is not reached
    (ssh would run the host the file names).

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> probe_engines(Context(argparse.Namespace(config=None)), "bot")
        []
    """
    from kstlib.ops.fleet import find_on_engines

    trusted = ctx.may_run_config_programs()
    usable = [
        e
        for e in ctx.config.engines.values()
        if trusted or not (e.base_url or "").startswith("ssh://")
    ]
    if not usable:
        return []
    binary = ctx.tmux_binary() if any(e.backend == "tmux" for e in usable) else None
    base = ctx.runner_factory

    def build(backend: BackendType, **where: Any) -> Runner:
        where.setdefault("tmux_bin", binary)
        return base(backend, **where)

    holding, _ = find_on_engines(name, usable, ctx.engine_timeout, build)
    return [of_engine(e) for e in holding]


def start_values(ctx: Context) -> dict[str, Any]:
    """The session fields ``start --engine NAME`` sets: where the engine is (empty without it).

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> start_values(Context(argparse.Namespace(config=None)))
        {}
    """
    engine = named_engine(ctx)
    if engine is None:
        return {}
    if engine.backend == "tmux":
        return {"backend": BackendType.TMUX, "socket_name": engine.socket_name}
    place = of_engine(engine)
    return {
        "backend": BackendType.coerce(engine.backend),
        "runtime": engine.runtime,
        "base_url": place.endpoint,
    }


def list_filter(ctx: Context) -> tuple[BackendType | None, str | None, str | None]:
    """``list``'s backend filter: ``-L`` picks the tmux server, it does not hide containers."""
    backend, runtime, socket = ctx.explicit_backend()
    if ctx.option("backend") is None and ctx.option("runtime") is None:
        backend = None
    return backend, runtime, socket


def list_places(ctx: Context) -> list[Location]:
    """The places ``list`` asks (and ``list --watch`` follows): tmux servers, engines, swarms."""
    engine = named_engine(ctx)
    if engine is not None:
        return [of_engine(engine)]
    backend, runtime, socket = list_filter(ctx)
    config = ctx.config
    places: list[Location] = []
    if backend in (None, BackendType.TMUX):
        if socket is not None:
            sockets: list[str | None] = [socket]
        else:
            sockets = unique(
                [
                    None,
                    config.tmux_socket,
                    *(
                        s.socket_name
                        for s in config.sessions.values()
                        if s.backend is BackendType.TMUX
                    ),
                    # the user's other servers (tmux -L NAME), found in tmux's socket folder
                    *ctx.discovered_sockets(),
                ]
            )
        places.extend(Location(BackendType.TMUX, socket_name=s) for s in sockets)
    if backend in (None, BackendType.CONTAINER):
        runtimes = [runtime] if runtime else ["podman", "docker"]
        places.extend(Location(BackendType.CONTAINER, runtime=rt) for rt in runtimes)
    named: list[Location] = []  # first: a server or engine both named and local keeps its name
    for e in config.engines.values():
        place = of_engine(e)
        if backend is not None and place.backend is not backend:
            continue
        if (
            place.backend is not BackendType.CONTAINER
            or runtime is None
            or e.runtime in (None, runtime)
        ):
            named.append(place)
    # A swarm when asked for (-b swarm), or where the config file defines services.
    swarms = [s.base_url for s in config.sessions.values() if s.backend is BackendType.SWARM]
    if (
        backend is BackendType.SWARM
        and not swarms
        and not any(p.backend is BackendType.SWARM for p in named)
    ):
        swarms = [None]
    if backend in (None, BackendType.SWARM):
        places.extend(Location(BackendType.SWARM, endpoint=url) for url in swarms)
    return unique([*named, *places])
