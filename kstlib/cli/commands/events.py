"""``kstlib ops events [NAME...]``: print session events as they happen, one a line.

Example:
    >>> from kstlib.cli.parser import parse_args
    >>> args = parse_args(["ops", "events", "bot", "--engine", "docker", "--json"])
    >>> args.names, args.engine, args.json
    (['bot'], 'docker', True)
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from kstlib.cli import output
from kstlib.cli.context import Context

if TYPE_CHECKING:
    from kstlib.ops.eventstream import SessionEvent

__all__ = ["cmd_events", "line_of"]


def line_of(event: SessionEvent) -> str:
    """The plain line of one event: time, kind, backend/engine, name and what it carries.

    Example:
        >>> from datetime import datetime, timezone
        >>> from kstlib.ops.eventstream import SessionEvent
        >>> from kstlib.ops.models import BackendType
        >>> t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        >>> line_of(SessionEvent("bot", BackendType.CONTAINER, "exited", t, "docker", 3))
        '2026-01-02T03:04:05+00:00 exited container/docker bot exit_code=3'
    """
    where = f"{event.backend}/{event.engine}" if event.engine else str(event.backend)
    parts = [event.time.isoformat(), event.kind, where]
    if event.name:
        parts.append(event.name)
    if event.exit_code is not None:
        parts.append(f"exit_code={event.exit_code}")
    if event.restart_count is not None:
        parts.append(f"restart_count={event.restart_count}")
    if event.dropped is not None:
        parts.append(f"dropped={event.dropped}")
    if event.snapshot:
        parts.append("(snapshot)")
    return " ".join(parts)


def cmd_events(ctx: Context) -> int:
    """``kstlib ops events``: follow session events until Ctrl-C (which exits 0).

    With ``-b swarm``, the exits of tasks on the swarm's other nodes are read
    from the engines a swarm engine of the config file lists in ``nodes:``.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "events", "-b", "container", "--engine", "docker"])  # doctest: +SKIP
        0
    """
    from kstlib.ops.watch import events

    args = ctx.args
    # -b swarm: the manager DOCKER_HOST names, and the nodes a swarm engine of the config lists.
    nodes = ctx.config.swarm_nodes(None) if args.backend == "swarm" else ()
    stream = events(
        args.names or None, args.backend, args.engine, socket_name=args.socket, node_urls=nodes
    )
    try:
        for event in stream:
            text = json.dumps(event.to_dict()) if args.json else line_of(event)
            output.emit(text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        stream.close()
    return 0
