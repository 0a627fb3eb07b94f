"""``kstlib ops list``: every session of every place, plus those only in the config file.

Example:
    >>> from kstlib.cli import main
    >>> main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"])
    0
"""

from __future__ import annotations

from typing import Any

from kstlib.cli import output
from kstlib.cli.context import Context
from kstlib.cli.places import CONTAINER, SWARM, TMUX, Place, _unique, defined_status
from kstlib.ops.exceptions import (
    BackendNotFoundError,
    OpsError,
)
from kstlib.ops.models import BackendType, SessionStatus

__all__ = ["cmd_list", "collect_sessions"]


def _list_filter(ctx: Context) -> tuple[BackendType | None, str | None, str | None]:
    """``list``'s backend filter: ``-L`` picks the tmux server, it does not hide containers."""
    backend, runtime, socket = ctx.explicit_backend()
    if ctx.option("backend") is None and ctx.option("runtime") is None:
        backend = None
    return backend, runtime, socket


def _list_places(ctx: Context) -> list[Place]:
    backend, runtime, socket = _list_filter(ctx)
    config = ctx.config
    places: list[Place] = []
    if backend in (None, TMUX):
        if socket is not None:
            sockets: list[str | None] = [socket]
        else:
            sockets = _unique(
                [
                    None,
                    config.tmux_socket,
                    *(s.socket_name for s in config.sessions.values() if s.backend is TMUX),
                    # the user's other servers (tmux -L NAME), found in tmux's socket folder
                    *ctx.discovered_sockets(),
                ]
            )
        places.extend(Place(TMUX, socket_name=s) for s in sockets)
    if backend in (None, CONTAINER):
        runtimes = [runtime] if runtime else ["podman", "docker"]
        places.extend(Place(CONTAINER, runtime=rt) for rt in runtimes)
        places.extend(
            Place(CONTAINER, runtime=e.runtime, base_url=e.base_url)
            for e in config.engines.values()
            if runtime is None or e.runtime in (None, runtime)
        )
    # A swarm when asked for (-b swarm), or where the config file defines services.
    swarms = [s.base_url for s in config.sessions.values() if s.backend is SWARM]
    if backend is SWARM and not swarms:
        swarms = [None]
    if backend in (None, SWARM):
        places.extend(Place(SWARM, base_url=url) for url in swarms)
    return _unique(places)


def collect_sessions(ctx: Context) -> tuple[list[SessionStatus], list[str]]:
    """Every session of every reachable place, plus config definitions not running.

    Returns the statuses and the labels of the places that did not answer.

    Example:
        >>> import argparse
        >>> ns = argparse.Namespace(config=None, backend="tmux", runtime=None,
        ...                         socket="kstlib-doc-empty")
        >>> collect_sessions(Context(ns))[0]
        []
    """
    backend, _, _ = _list_filter(ctx)
    statuses: list[SessionStatus] = []
    unreachable: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for place in _list_places(ctx):
        try:
            found = ctx.runner(place).list_sessions()
        except BackendNotFoundError as err:
            where = getattr(err, "endpoints", ())  # which endpoint did not answer
            unreachable.append(f"{place.label} at {', '.join(where)}" if where else place.label)
            continue
        except OpsError as err:
            # One engine failing must not hide the sessions of the others.
            unreachable.append(f"{place.label} ({err})")
            continue
        for st in found:
            key = (st.backend, st.runtime, st.socket_name, st.name, st.created_at)
            if key not in seen:
                seen.add(key)
                statuses.append(st)
    running = {s.name for s in statuses}
    for definition in ctx.config.sessions.values():
        if definition.name in running:
            continue
        if backend is not None and definition.backend is not backend:
            continue
        statuses.append(defined_status(definition))
    return statuses, unreachable


def cmd_list(ctx: Context) -> int:
    """``kstlib ops list``: sessions of every reachable backend and the config's.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"])
        0
    """
    statuses, unreachable = collect_sessions(ctx)
    for err in ctx.invalid_sessions.values():
        output.warn(f"{err}; this entry is not listed")
    explicit, _, _ = _list_filter(ctx)
    if explicit is not None and unreachable and len(unreachable) == len(_list_places(ctx)):
        raise BackendNotFoundError(
            f"{', '.join(unreachable)} did not answer; run 'kstlib ops doctor' to see why"
        )
    if unreachable and not ctx.args.quiet:
        output.note(f"not reachable: {', '.join(unreachable)} (run 'kstlib ops doctor')")
    if ctx.args.managed:
        statuses = [s for s in statuses if s.managed]
    if ctx.args.json:
        output.emit(output.dumps_json([s.to_dict() for s in statuses]))
        return 0
    if ctx.args.quiet:
        for s in statuses:
            output.emit(s.name)
        return 0
    output.emit(output.render_status_table(statuses) if statuses else "No sessions.")
    return 0
