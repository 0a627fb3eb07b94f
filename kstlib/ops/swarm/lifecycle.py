"""The waits of a service's life and the secrets that live and die with it.

Plain functions over a :class:`~kstlib.ops.engines.services.ServiceEngine`,
called by :class:`~kstlib.ops.swarm.SwarmRunner`: wait for a start (and tell a
program that could not be executed from one that ended), wait for a removal
to reach every node, wait for fresh tasks after a scale or a rolling restart,
create a session's secrets and remove them with it.

Example:
    >>> secret_labels("bot")
    {'io.kstlib.managed': 'true', 'io.kstlib.secret-of': 'bot'}
"""

from __future__ import annotations

import secrets as tokens
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from kstlib.ops.engines.adapter import MANAGED_LABEL, MANAGED_VALUE
from kstlib.ops.engines.streams import LogQuery
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionNotFoundError,
    SessionStartError,
    SessionTimeoutError,
)
from kstlib.ops.models import SessionState, SessionStatus
from kstlib.ops.swarm.tasks import (
    ENDED_BY_ITSELF,
    RUNNING,
    TaskView,
    exit_code_of,
    read_tasks,
    start_failure,
    task_state,
)
from kstlib.ops.translate import Op

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter
    from kstlib.ops.engines.services import ServiceEngine

__all__ = [
    "SECRET_OF_LABEL",
    "create_secrets",
    "remove_and_wait",
    "remove_secrets",
    "secret_labels",
    "until_fresh",
    "until_started",
]

Service = Mapping[str, Any]
#: The label of a secret kstlib created for a session (value: the session's name).
SECRET_OF_LABEL = "io.kstlib.secret-of"
#: Polling step while waiting on tasks (the manager answers a task list in ~5 ms).
POLL = 0.1
#: Beyond the grace period, how long a removal waits for every node to report its task gone.
STOP_MARGIN = 30.0
#: The longest a start waits for a first task to run (a node may be pulling the image).
START_WAIT = 120.0
#: The swarm's reason for a task no node can take (a constraint, or no node up).
_NO_NODE = "no suitable node"
_RUNTIME = "swarm"
#: How many of the service's last log lines a start reads to find the init's exec failure.
_INIT_LINES = 20
#: How long a task that ended 126/127 without the init's words is read again for them.
_LOG_LAG = 2.0


def secret_labels(session: str) -> dict[str, str]:
    """The labels of a secret kstlib creates for ``session`` (what its removal looks for).

    Example:
        >>> secret_labels("web")[SECRET_OF_LABEL]
        'web'
    """
    return {MANAGED_LABEL: MANAGED_VALUE, SECRET_OF_LABEL: session}


def create_secrets(
    engine: ServiceEngine, session: str, values: Mapping[str, str], refs: Sequence[str]
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Create the session's secrets from ``values``, look up ``refs``; the mounts and new ids.

    Each value becomes a swarm secret of a unique name (``kstlib-HEX-NAME``),
    labelled as the session's; each ref must name an existing secret. On any
    failure the secrets created so far are removed before the error goes up.

    Example:
        >>> create_secrets(engine, "web", {"token": "s3cr3t"}, ["db-password"])  # doctest: +SKIP
        ({'token': ('x1..', 'kstlib-5f2a9c-token'), 'db-password': ('y2..', 'db-password')}, ['x1..'])
    """
    mounts: dict[str, tuple[str, str]] = {}
    created: list[str] = []
    try:
        for ref in refs:
            mounts[ref] = engine.find_secret(ref, session)
        labels = secret_labels(session)
        for file_name, value in values.items():
            secret_name = f"kstlib-{tokens.token_hex(6)}-{file_name}"
            secret_id = engine.create_secret(secret_name, value.encode(), labels, session)
            created.append(secret_id)
            mounts[file_name] = (secret_id, secret_name)
    except BaseException:
        for secret_id in created:
            with suppress(OpsError):
                engine.remove_secret(secret_id, session, Op.START)
        raise
    return mounts, created


def remove_secrets(engine: ServiceEngine, service: Service, op: Op) -> None:
    """Remove the secrets kstlib created for the (removed) service; existing refs stay.

    Example:
        >>> remove_secrets(engine, engine.find("web"), Op.STOP)  # doctest: +SKIP
    """
    name = str(service["Spec"]["Name"])
    container = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    for ref in container.get("Secrets") or ():
        secret_id = str(ref.get("SecretID") or "")
        labels = engine.secret_labels(secret_id, name) if secret_id else None
        if labels is not None and labels.get(SECRET_OF_LABEL) == name:
            engine.remove_secret(secret_id, name, op)


def remove_and_wait(
    engine: ServiceEngine,
    service: Service,
    op: Op,
    grace: float,
    nodes: Sequence[EngineAdapter] = (),
) -> None:
    """Remove the service, then wait until no node is left with a task or container of it.

    First the manager's task list (tasks on a node that is down are not
    waited for), then the containers: a node removes a task's container a
    moment after the swarm forgot the task. The manager's own node is always
    asked; ``nodes`` are the other nodes' engines, when the caller can reach
    them. Then the secrets kstlib created for the service go. Past the grace
    period plus :data:`STOP_MARGIN`: the op's error, naming what is left.

    Example:
        >>> remove_and_wait(engine, engine.find("web"), Op.STOP, 10.0)  # doctest: +SKIP
    """
    name, service_id = str(service["Spec"]["Name"]), str(service["ID"])
    with suppress(SessionNotFoundError):  # removed meanwhile: still wait for its tasks
        engine.remove(service_id, name, op)
    deadline = time.monotonic() + grace + STOP_MARGIN

    def fail(what: str) -> OpsError:
        return op.error_class(name, _RUNTIME, f"{what} after the grace period")  # type: ignore[call-arg]

    while True:
        tasks = engine.tasks(service_id, name, op)
        up = engine.nodes(name) if tasks else {}
        left = [
            t
            for t in tasks
            if (up.get(str(t.get("NodeID"))) or {}).get("Status", {}).get("State") == "ready"
        ]
        if not left:
            break
        if time.monotonic() >= deadline:
            where = ", ".join(sorted({f"{t.get('NodeID')} ({task_state(t)})" for t in left}))
            raise fail(f"tasks still on nodes: {where}")
        time.sleep(POLL)
    label = "com.docker.swarm.service.id"
    reachable = list(nodes)
    while True:
        count = engine.local_task_containers(service_id, name, op)
        for node in list(reachable):
            try:
                count += sum(c.labels.get(label) == service_id for c in node.list_containers())
            except ContainerRuntimeNotFoundError:
                reachable.remove(node)  # went down: it removes the container when back
        if not count:
            break
        if time.monotonic() >= deadline:
            raise fail(f"{count} containers of its tasks still on the nodes")
        time.sleep(POLL)
    remove_secrets(engine, service, op)


def _start_failure(
    engine: ServiceEngine, service: Service, tasks: Sequence[Any]
) -> tuple[str | None, bool]:
    """Why a task's program could not be executed, if so; and whether its words may be late.

    The second item is ``True`` for a task that ended 126/127 without the
    init's words in the output yet (the log may reach the manager a moment
    after the task's end).
    """
    failed = [t for t in tasks if task_state(t) == "failed"]
    found = next((f for f in map(start_failure, failed) if f is not None), None)
    if found is not None or not any(exit_code_of(t) in (126, 127) for t in failed):
        return found, False
    # With an init process, the init says it in the task's output (one more call).
    entries = engine.logs(str(service["ID"]), LogQuery(_INIT_LINES))
    log = b"\n".join(entries).decode("utf-8", "replace")
    found = next((f for f in (start_failure(t, log) for t in failed) if f is not None), None)
    return found, found is None


def _init_pending(engine: ServiceEngine, name: str, tasks: Sequence[Any]) -> bool:
    """Whether a running task on the manager's node has an init that did not run the command yet.

    Once a task ended by itself without a start failure, the command was
    executed: nothing to wait for. Tasks on other nodes cannot be asked.
    """
    if any(task_state(t) in ENDED_BY_ITSELF for t in tasks):
        return False
    local = [
        str((t.get("Status") or {}).get("ContainerStatus", {}).get("ContainerID") or "")
        for t in tasks
        if task_state(t) == RUNNING and t.get("NodeID") == engine.node_id
    ]
    return any(engine.local_handed_over(c, name) is False for c in local if c)


def until_started(
    engine: ServiceEngine,
    name: str,
    replicas: int | None,
    timeout: float,
    status: Callable[[Service, TaskView], SessionStatus],
    *,
    init: bool = False,
) -> SessionStatus:
    """Wait until the wanted tasks run or the service has ended; raise if it could not start.

    A task the swarm rejects, a placement no node fits, or a program that
    could not be executed (not found, not executable) raise
    :class:`~kstlib.ops.exceptions.SessionStartError` with the engine's
    words (the caller removes the service). With ``init``, a task on the
    manager's own node counts as started once its init has executed the
    command (one ``top``), so that a command the init cannot execute is
    caught there too; a task on another node counts once it runs.

    Example:
        >>> until_started(engine, "web", 2, 120, to_status).state.value  # doctest: +SKIP
        'running'
    """
    limit = max(timeout, START_WAIT)
    deadline = time.monotonic() + limit
    silent_since: float | None = None
    while True:
        service = engine.find(name, Op.START)
        tasks = engine.tasks(str(service["ID"]), name, Op.START)
        view = read_tasks(tasks, engine.nodes(name) if tasks else {})
        if view.rejected is not None:
            raise SessionStartError(name, _RUNTIME, f"the swarm rejected a task: {view.rejected}")
        if view.reason and _NO_NODE in view.reason and view.running == 0:
            raise SessionStartError(name, _RUNTIME, view.reason)
        failure, late = _start_failure(engine, service, tasks)
        if failure is not None:
            raise SessionStartError(name, _RUNTIME, f"the command could not be executed: {failure}")
        if late and silent_since is None:
            silent_since = time.monotonic()
        if late and time.monotonic() - (silent_since or 0.0) < _LOG_LAG:
            time.sleep(POLL)  # an exit 126/127 whose output has not reached the manager yet
            continue
        # A global service: one running task is enough (how many nodes fit is the swarm's).
        wanted = 1 if replicas is None else replicas
        started = view.running >= wanted or view.state is SessionState.EXITED
        if started and not (init and _init_pending(engine, name, tasks)):
            return status(service, view)
        if time.monotonic() >= deadline:
            raise SessionStartError(
                name,
                _RUNTIME,
                f"no task ran within {limit:g} s ({view.reason or view.state.value})",
            )
        time.sleep(POLL)


def until_fresh(
    engine: ServiceEngine,
    name: str,
    old: set[str],
    wanted: int | None,
    *,
    limit: float,
    status: Callable[[Service, TaskView], SessionStatus],
    exact: bool = False,
) -> SessionStatus:
    """Wait until ``wanted`` tasks not in ``old`` run (``exact``: and no more run).

    Example:
        >>> until_fresh(engine, "web", set(), 3, limit=120, status=to_status, exact=True).state.value  # doctest: +SKIP
        'running'
    """
    deadline = time.monotonic() + limit
    while True:
        service = engine.find(name)
        tasks = engine.tasks(str(service["ID"]), name)
        fresh = [t for t in tasks if str(t.get("ID")) not in old and task_state(t) == RUNNING]
        live = [t for t in tasks if task_state(t) == RUNNING]
        count = 1 if wanted is None else wanted
        if len(fresh) >= count and (not exact or len(live) == count):
            return status(service, read_tasks(tasks, engine.nodes(name)))
        if time.monotonic() >= deadline:
            raise SessionTimeoutError(
                name, _RUNTIME, f"{len(fresh)} of {count} tasks running after {limit:g} s"
            )
        time.sleep(POLL)
