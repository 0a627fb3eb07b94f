"""``kstlib ops list``: every session of every place, plus those only in the config file.

Example:
    >>> from kstlib.cli import main
    >>> main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"])
    0
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kstlib.cli import output
from kstlib.cli.context import Context
from kstlib.cli.engines import list_filter, list_places, named_engine, timeout_of
from kstlib.cli.places import (
    TMUX,
    defined_status,
    label,
    of_config,
    of_engine,
)
from kstlib.ops.exceptions import (
    BackendNotFoundError,
    ContainerRuntimeNotFoundError,
    OpsError,
)
from kstlib.ops.locations import Location
from kstlib.ops.models import SessionConfig, SessionStatus

__all__ = ["cmd_list", "collect_sessions"]


def _list_place(ctx: Context, place: Location) -> list[SessionStatus]:
    found = ctx.runner(place).list_sessions()
    if place.engine is None:
        return list(found)
    return [replace(st, engine=place.engine) for st in found]


def collect_sessions(ctx: Context) -> tuple[list[SessionStatus], list[str]]:
    """Every session of every reachable place, plus config definitions not running.

    Every place (tmux servers, the local engines, each named engine) is asked
    at once, each within its own timeout (:func:`kstlib.ops.fleet.gather`).
    Returns the statuses and one line per place that did not answer.

    Example:
        >>> import argparse
        >>> ns = argparse.Namespace(config=None, backend="tmux", runtime=None,
        ...                         socket="kstlib-doc-empty")
        >>> collect_sessions(Context(ns))[0]
        []
    """
    from kstlib.ops.fleet import GRACE, gather, kinds_of

    backend, _, _ = list_filter(ctx)
    places = {str(i): place for i, place in enumerate(list_places(ctx))}
    outcomes = gather(
        {k: (lambda p=p: _list_place(ctx, p)) for k, p in places.items()},  # type: ignore[misc]
        {k: timeout_of(ctx, p) + GRACE for k, p in places.items()},
        lambda key, seconds: BackendNotFoundError(f"no answer within {seconds - GRACE:g} s"),
        [k for p in places.values() for k in kinds_of(p.backend, p.endpoint, p.runtime)],
    )
    statuses: list[SessionStatus] = []
    unreachable: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    # Named engines first: a session an engine shows is labelled with it, even when a
    # local default reaches the same daemon.
    order = sorted(outcomes, key=lambda k: places[k].engine is None)
    for key in order:
        outcome = outcomes[key]
        place = places[key]
        err = outcome.error
        if isinstance(err, OpsError):
            # One engine failing must not hide the sessions of the others.
            unreachable.append(_down_line(place, err))
            continue
        if err is not None:
            raise err
        for st in outcome.value or []:
            key_ = (st.backend, st.runtime, st.socket_name, st.name, st.created_at)
            if key_ not in seen:
                seen.add(key_)
                statuses.append(st)
    running = {s.name for s in statuses}
    engine = named_engine(ctx)
    for definition in ctx.config.sessions.values():
        if definition.name in running:
            continue
        if backend is not None and definition.backend is not backend:
            continue
        if engine is not None and not _on_engine(definition, of_engine(engine)):
            continue  # --engine NAME: that engine's definitions only
        statuses.append(defined_status(definition))
    return statuses, unreachable


def _on_engine(definition: SessionConfig, engine: Location) -> bool:
    """Whether a config file's session runs on the named engine's place."""
    place = of_config(definition)
    if place.backend is not engine.backend:
        return False
    if place.backend is TMUX:
        return (place.socket_name, place.socket_path) == (engine.socket_name, engine.socket_path)
    if place.endpoint != engine.endpoint:
        return False
    return engine.runtime is None or place.runtime in (None, engine.runtime)


def _down_line(place: Location, err: OpsError) -> str:
    """One line for a place that did not answer: which, and why (its error's first sentence)."""
    ssh = isinstance(err, ContainerRuntimeNotFoundError) and err.ssh_problem is not None
    if place.engine is not None or ssh:
        return f"{label(place)}: {err}"
    if isinstance(err, BackendNotFoundError):
        # which endpoint did not answer
        where = err.endpoints if isinstance(err, ContainerRuntimeNotFoundError) else ()
        return f"{label(place)} at {', '.join(where)}" if where else label(place)
    return f"{label(place)} ({err})"


def cmd_list(ctx: Context) -> int:
    """``kstlib ops list``: sessions of every reachable backend and the config's.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"])
        0
    """
    if ctx.option("watch"):
        from kstlib.cli.watch import watch_sessions

        return watch_sessions(ctx, lambda: collect_sessions(ctx)[0])
    statuses, unreachable = collect_sessions(ctx)
    for err in ctx.invalid_sessions.values():
        output.warn(f"{err}; this entry is not listed")
    explicit, _, _ = list_filter(ctx)
    chosen = explicit is not None or ctx.option("engine") is not None
    # Nothing answered: an error, unless the config file defines sessions there to list.
    if chosen and not statuses and unreachable and len(unreachable) == len(list_places(ctx)):
        raise BackendNotFoundError(
            f"{', '.join(unreachable)} did not answer; run 'kstlib ops doctor' to see why"
        )
    if not ctx.args.quiet:
        for line in unreachable:  # one line per place that did not answer
            output.note(f"not reachable: {line} (run 'kstlib ops doctor')")
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
