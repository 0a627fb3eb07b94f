"""A service's gathered logs: lines with their task, and a follow that ends with the service.

The manager answers ``GET /services/{id}/logs`` with every task's lines;
with ``details`` each line starts with the ids of its node, service and task
(``com.docker.swarm.node.id=...,com.docker.swarm.service.id=...,com.docker.swarm.task.id=... text``).
:func:`render` turns one such entry into a session line (optionally prefixed
with its task); :func:`follow` reads the followed log, which the swarm never
ends by itself, until a watcher sees that the service has ended.

Example:
    >>> entry = b"com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s,com.docker.swarm.task.id=t1 hi\\n"
    >>> render(entry, timestamps=False, ansi=True, names={"t1": "web.1@n1"})
    'web.1@n1 | hi'
    >>> render(entry, timestamps=False, ansi=True, names=None)
    'hi'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kstlib.ops.container.logs import parse_stamp, render_line
from kstlib.ops.engines.streams import LogStream
from kstlib.ops.exceptions import OpsError, SessionTimeoutError
from kstlib.ops.follow import Follow

__all__ = ["follow", "render", "split_line", "task_names"]

_DETAILS = b"com.docker.swarm."
#: How often the follow's watcher asks whether the service has ended.
_WATCH = 0.3


def split_line(entry: bytes) -> tuple[tuple[int, int] | None, dict[str, str], str]:
    """One service log entry: its time (if asked for), its task details, its text.

    Example:
        >>> split_line(b"2026-11-26T04:49:14.8Z com.docker.swarm.task.id=t1 hi\\n")
        ((1795668554, 800000000), {'task': 't1'}, 'hi')
    """
    stamp = None
    head, sep, rest = entry.partition(b" ")
    if sep and head[:1].isdigit():
        stamp = parse_stamp(head)
        if stamp is not None:
            entry = rest
    details: dict[str, str] = {}
    if entry.startswith(_DETAILS):
        head, _, entry = entry.partition(b" ")
        for item in head.decode("utf-8", errors="replace").split(","):
            key, _, value = item.partition("=")
            details[key.rsplit(".", 2)[-2]] = value  # com.docker.swarm.task.id -> task
    text = entry.decode("utf-8", errors="replace").rstrip("\n")
    return stamp, details, text[:-1] if text.endswith("\r") else text


def task_names(name: str, tasks: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each task's prefix by task id: ``SERVICE.SLOT@NODE`` (global: the node instead of a slot).

    Example:
        >>> task_names("web", [{"ID": "t1", "Slot": 2, "NodeID": "zk9cgsgktkrw9anj72u4piy30"}])
        {'t1': 'web.2@zk9cgsgktkrw'}
    """
    out = {}
    for task in tasks:
        node = str(task.get("NodeID") or "")[:12]
        out[str(task.get("ID"))] = f"{name}.{task.get('Slot') or node}@{node}"
    return out


def render(entry: bytes, *, timestamps: bool, ansi: bool, names: dict[str, str] | None) -> str:
    """One entry as a session line; with ``names``, prefixed with its task (``web.1@NODE | ``).

    A line the manager adds itself (``Error grabbing logs: ...``, when a node
    is down) has no task: it is kept as it is.
    """
    stamp, details, text = split_line(entry)
    if names is not None and details:
        task = details.get("task", "")
        text = f"{names.get(task, task[:12])} | {text}"
    return render_line(stamp, text, timestamps, ansi)


def follow(
    stream: LogStream,
    *,
    ended: Callable[[], bool | None],
    follow: Follow,
    line: Callable[[bytes], str],
) -> Iterator[str]:
    """Yield the lines of a followed service log until ``ended()`` says the service has ended.

    The source of :meth:`Follow.lines <kstlib.ops.follow.Follow.lines>` for a
    service. A watcher thread asks ``ended()`` every 0.3 s (``None``: it
    could not tell, ask again) and then ends the stream: the swarm keeps it
    open for ever, even after the service is removed. The stream and the
    watcher end with the follow, however it ends.
    """
    done = threading.Event()
    over = threading.Event()
    follow.hold(stream.close)
    follow.hold(done.set)

    def watch() -> None:
        while not done.wait(_WATCH):
            if ended():
                done.wait(_WATCH)  # lines still on their way from the nodes
                over.set()
                stream.interrupt()
                return

    threading.Thread(target=watch, name="kstlib-swarm-follow", daemon=True).start()
    while True:
        left = follow.left()
        try:
            entries = stream.read(left)
        except SessionTimeoutError as err:
            raise follow.timeout_error() from err
        except OpsError:
            if over.is_set():
                return  # the watcher ended the stream mid-read
            raise
        if entries is None:
            return
        for entry in entries:
            yield line(entry)
