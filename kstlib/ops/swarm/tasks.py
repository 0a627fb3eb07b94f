"""A service's tasks read as a session status: state, exit code, restarts, nodes.

The swarm keeps a history of tasks per slot (one slot per replica; per node
for a global service): a restart is a new task in the same slot. A slot is
*settled* when its newest task has ended and the swarm has given up on it
(its desired state is no longer ``running``): the swarm creates the
replacement task in the same step, so no restart is coming. A task whose
node is down keeps its last reported state: it is *lost*, not running.

Example:
    >>> t = {"ID": "t1", "Slot": 1, "NodeID": "n1", "DesiredState": "shutdown",
    ...      "CreatedAt": "2026-01-01T00:00:00Z",
    ...      "Status": {"State": "failed", "ContainerStatus": {"ExitCode": 3},
    ...                 "Err": "task: non-zero exit (3)"}}
    >>> view = read_tasks([t], {"n1": {"Status": {"State": "ready"}}})
    >>> view.state.value, view.exit_code, view.nodes
    ('exited', 3, ('n1',))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kstlib.ops.engines.streams import parse_timestamp
from kstlib.ops.models import SessionState

__all__ = [
    "ENDED_BY_ITSELF",
    "RUNNING",
    "TERMINAL",
    "TaskView",
    "exit_code_of",
    "last_run",
    "latest",
    "read_tasks",
    "start_failure",
    "task_state",
]

#: Task states after which the task's container does not run any more.
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
RUNNING = "running"
#: Task states of a run that ended by itself (not stopped by the swarm).
ENDED_BY_ITSELF = frozenset({"complete", "failed"})
#: The swarm's words for a task whose program could not be executed (no such file, not executable).
_NOT_STARTED = "starting container failed"
#: What the init process (docker-init, tini) writes when it cannot execute the program.
_INIT_EXEC_FAILED = re.compile(r"\[FATAL tini \(\d+\)\] (exec .* failed: .*)")
#: Desired states that mean the swarm still wants the task to run.
_WANTED = frozenset({"running", "ready", "accepted", "new", "pending", "assigned"})

Task = Mapping[str, Any]


def _status(task: Task) -> Mapping[str, Any]:
    return task.get("Status") or {}


def task_state(task: Task) -> str:
    """The task's reported state (``running``, ``failed``, ...).

    Example:
        >>> task_state({"Status": {"State": "running"}})
        'running'
    """
    return str(_status(task).get("State") or "unknown")


def exit_code_of(task: Task) -> int | None:
    """The exit code of the task's container, if it reported one.

    Example:
        >>> exit_code_of({"Status": {"ContainerStatus": {"ExitCode": 4}}}), exit_code_of({})
        (4, None)
    """
    code = (_status(task).get("ContainerStatus") or {}).get("ExitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _slot(task: Task) -> str:
    slot = task.get("Slot")
    return f"slot {slot}" if slot else f"node {task.get('NodeID', '')}"


def _created(task: Task) -> tuple[float, str]:
    moment = parse_timestamp(task.get("CreatedAt"))
    return (moment.timestamp() if moment else 0.0, str(task.get("ID", "")))


def latest(tasks: Sequence[Task]) -> dict[str, list[Task]]:
    """The tasks grouped by slot (global: by node), oldest first in each group.

    Example:
        >>> groups = latest([{"ID": "b", "Slot": 1, "CreatedAt": "2026-01-01T00:00:02Z"},
        ...                  {"ID": "a", "Slot": 1, "CreatedAt": "2026-01-01T00:00:01Z"}])
        >>> [t["ID"] for t in groups["slot 1"]]
        ['a', 'b']
    """
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(_slot(task), []).append(task)
    for group in groups.values():
        group.sort(key=_created)
    return groups


@dataclass(frozen=True)
class TaskView:
    """What a service's tasks say about the session.

    ``nodes`` are the ids of the nodes of the tasks that count (running ones,
    or the last ones when the service has ended); ``lost`` the tasks that
    seem to run on a node that is down; ``reason`` the swarm's own words
    (a task's error, a down node, a pending task's message).
    """

    state: SessionState
    exit_code: int | None = None
    restart_count: int = 0
    nodes: tuple[str, ...] = ()
    reason: str | None = None
    running: int = 0
    lost: int = 0
    rejected: str | None = None
    settled: bool = False
    #: The exit code and end time of the newest run that ended by itself (failed or complete).
    last_exit_code: int | None = None
    last_exited_at: datetime | None = None


def _node_down(node_id: str, nodes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why the node is not available (``None``: it is ready)."""
    node = nodes.get(node_id)
    if node is None:
        return "the node left the swarm"
    status = node.get("Status") or {}
    state = str(status.get("State") or "unknown")
    if state == "ready":
        return None
    message = status.get("Message")
    return f"node {state}" + (f": {message}" if message else "")


def _words(task: Task) -> str | None:
    status = _status(task)
    text = status.get("Err") or ""
    return str(text) or None


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def last_run(tasks: Sequence[Task]) -> tuple[int | None, datetime | None]:
    """The exit code and end time of the newest task that ended by itself; ``(None, None)``: none.

    A task the swarm shut down (a stop, a scale down, a rolling restart) is
    not a run that ended: only ``failed`` and ``complete`` tasks count.

    Example:
        >>> t = {"Status": {"State": "failed", "Timestamp": "2026-01-01T00:00:05.5Z",
        ...                 "ContainerStatus": {"ExitCode": 4}}}
        >>> code, when = last_run([t])
        >>> code, when.isoformat()
        (4, '2026-01-01T00:00:05.500000+00:00')
    """
    ended = [t for t in tasks if task_state(t) in ENDED_BY_ITSELF]
    if not ended:
        return None, None

    def moment(task: Task) -> float:
        when = parse_timestamp(_status(task).get("Timestamp"))
        return when.timestamp() if when else 0.0

    newest = max(ended, key=moment)
    return exit_code_of(newest), parse_timestamp(_status(newest).get("Timestamp"))


def start_failure(task: Task, log: str = "") -> str | None:
    """Why the task's program could not be executed, in the engine's words; ``None``: it was.

    The swarm says so in the task's error (``starting container failed: ...
    executable file not found``); with an init process, the init says it in
    the task's output (``exec PROG failed: No such file or directory``) and
    exits 127 (not found) or 126 (not executable).

    Example:
        >>> start_failure({"Status": {"State": "failed", "Err": 'starting container failed: '
        ...     'exec: "nope": executable file not found in $PATH: unknown'}})
        'starting container failed: exec: "nope": executable file not found in $PATH: unknown'
        >>> start_failure({"Status": {"State": "failed", "ContainerStatus": {"ExitCode": 127}}},
        ...               "[FATAL tini (7)] exec nope failed: No such file or directory")
        'exec nope failed: No such file or directory'
        >>> start_failure({"Status": {"State": "failed", "ContainerStatus": {"ExitCode": 3}}}) is None
        True
    """
    if task_state(task) != "failed":
        return None
    words = _words(task) or ""
    if words.startswith(_NOT_STARTED):
        return words
    if exit_code_of(task) in (126, 127):
        found = _INIT_EXEC_FAILED.search(log)
        if found is not None:
            return found.group(1)
    return None


def read_tasks(tasks: Sequence[Task], nodes: Mapping[str, Mapping[str, Any]]) -> TaskView:
    """Read ``tasks`` (every task of one service) with the swarm's ``nodes`` (by id).

    RUNNING while a task runs on a node that is up (or a slot is between a
    failure and its restart); EXITED, with the exit code of the last task
    (the first non-zero one over the slots), once every slot is settled;
    UNKNOWN when the only tasks left seem to run on down nodes, or when no
    task has run yet (the reason says why: pending, no suitable node, ...).
    ``restart_count`` is the tasks of each slot beyond its first, as far as
    the swarm's task history goes (it keeps 5 per slot by default).

    Example:
        >>> up = {"n1": {"Status": {"State": "ready"}},
        ...       "n2": {"Status": {"State": "down", "Message": "heartbeat failure"}}}
        >>> run = lambda i, n: {"ID": i, "Slot": int(i), "NodeID": n, "DesiredState": "running",
        ...                     "Status": {"State": "running"}}
        >>> view = read_tasks([run("1", "n1"), run("2", "n2")], up)
        >>> view.state.value, view.nodes, view.lost
        ('running', ('n1',), 1)
        >>> view.reason
        'task of slot 2 on node n2 is unreachable (node down: heartbeat failure)'
    """
    view = _read(tasks, nodes)
    code, when = last_run(tasks)
    return replace(view, last_exit_code=code, last_exited_at=when)


def _read(tasks: Sequence[Task], nodes: Mapping[str, Mapping[str, Any]]) -> TaskView:
    groups = latest(tasks)
    restarts = sum(len(g) - 1 for g in groups.values())
    live: list[Task] = []
    lost: list[tuple[Task, str]] = []
    waiting: list[Task] = []
    ended: list[Task] = []
    rejected: str | None = None
    for group in groups.values():
        newest = group[-1]
        for task in group:
            state = task_state(task)
            if state not in TERMINAL:
                down = (
                    _node_down(str(task.get("NodeID") or ""), nodes) if task.get("NodeID") else None
                )
                if down is not None:
                    lost.append((task, down))
                elif state == RUNNING:
                    live.append(task)
                elif task is newest or task.get("DesiredState") in _WANTED:
                    waiting.append(task)
            elif state == "rejected" and rejected is None:
                rejected = _words(task) or "rejected"
        if task_state(newest) in TERMINAL:
            ended.append(newest)
    notes = [
        f"task of {_slot(t)} on node {t.get('NodeID')} is unreachable ({why})" for t, why in lost
    ]
    settled = bool(groups) and all(
        task_state(g[-1]) in TERMINAL and g[-1].get("DesiredState") not in _WANTED
        for g in groups.values()
    )
    if live:
        return TaskView(
            SessionState.RUNNING,
            restart_count=restarts,
            nodes=_unique([str(t.get("NodeID") or "") for t in live]),
            reason="; ".join(notes) or None,
            running=len(live),
            lost=len(lost),
            rejected=rejected,
        )
    if lost:
        return TaskView(
            SessionState.UNKNOWN,
            restart_count=restarts,
            nodes=_unique([str(t.get("NodeID") or "") for t, _ in lost]),
            reason="; ".join(notes),
            lost=len(lost),
            rejected=rejected,
        )
    if settled:
        codes = [c for c in (exit_code_of(t) for t in ended) if c is not None]
        failing = [c for c in codes if c != 0]
        code = failing[0] if failing else (codes[0] if codes else None)
        words = _unique([_words(t) or "" for t in ended])
        return TaskView(
            SessionState.EXITED,
            exit_code=code,
            restart_count=restarts,
            nodes=_unique([str(t.get("NodeID") or "") for t in ended]),
            reason="; ".join(words) or None,
            rejected=rejected,
            settled=True,
        )
    if restarts:
        # Between a failure and the restart the swarm has scheduled (Docker's "restarting").
        return TaskView(
            SessionState.RUNNING,
            restart_count=restarts,
            nodes=_unique([str(t.get("NodeID") or "") for t in waiting]),
            rejected=rejected,
        )
    pending = [
        f"{task_state(t)}: {_words(t) or _status(t).get('Message') or 'waiting'}" for t in waiting
    ]
    return TaskView(
        SessionState.UNKNOWN,
        restart_count=restarts,
        nodes=_unique([str(t.get("NodeID") or "") for t in waiting]),
        reason="; ".join(_unique(pending)) or ("no task yet" if not tasks else None),
        rejected=rejected,
    )
