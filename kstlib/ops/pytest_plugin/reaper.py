"""The reaper: what killed test runs left behind, removed by the next run.

It reads the records under ``$XDG_STATE_HOME/kstlib/ops/pytest-owners/``; for each
whose owner is dead (see :mod:`kstlib.ops.pytest_plugin.owner`), it removes the
session the record names **only if the session still carries that owner's mark**,
then drops the record. A testcontainers record names testcontainers' session id
(the ``org.testcontainers.session-id`` label every testcontainers container gets):
the containers with that label are removed, on the engines the record names.

Example:
    >>> reap_orphans()  # doctest: +SKIP
    ['test_worker-1f2e3d4c']
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from kstlib.ops.exceptions import OpsError, SessionNotFoundError
from kstlib.ops.models import BackendType, SessionStatus
from kstlib.ops.pytest_plugin.owner import claim, forget_record, read_records, records_dir
from kstlib.ops.runners import make_runner

__all__ = [
    "OWNER_LABEL",
    "OWNER_OPTION",
    "TC_SESSION_LABEL",
    "mark_tmux",
    "reap_orphans",
    "reap_testcontainers",
    "tmux_option",
]

#: Label naming the test process that started a container or service (its owner mark).
OWNER_LABEL = "io.kstlib.pytest-owner"
#: tmux session option naming the test process that started the session (its owner mark).
OWNER_OPTION = "@kstlib-pytest-owner"
#: The label testcontainers-python puts on every container it starts (its session id).
TC_SESSION_LABEL = "org.testcontainers.session-id"


def tmux_option(runner: Any, name: str, option: str) -> str | None:
    """The user ``option`` of tmux session ``name`` (``None``: unset, or no such session).

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> tmux_option(TmuxRunner(socket_name="kstlib-doc"), "no-such", OWNER_OPTION) is None
        True
    """
    from libtmux.exc import LibTmuxException

    try:
        proc = runner.server.cmd("show-options", "-qv", "-t", f"={name}:", option)
    except (LibTmuxException, OpsError, OSError):  # no answer means no mark
        return None
    out = [line for line in (proc.stdout or []) if line]
    return out[0] if len(out) == 1 and not proc.stderr else None


def mark_tmux(runner: Any, name: str, option: str, value: str) -> None:
    """Set user ``option`` on tmux session ``name`` (best effort: unmarked is never reaped).

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> mark_tmux(TmuxRunner(socket_name="kstlib-doc"), "no-such", OWNER_OPTION, "1:2")
    """
    from libtmux.exc import LibTmuxException

    with contextlib.suppress(LibTmuxException, OpsError, OSError):
        runner.server.cmd("set-option", "-t", f"={name}:", option, value)


def _reap_tmux(record: dict[str, Any], name: str, token: str) -> str:
    tmux = make_runner(
        BackendType.TMUX,
        socket_name=record.get("socket_name"),
        socket_path=record.get("socket_path"),
        tmux_bin=record.get("tmux_bin"),
    )
    if not tmux.exists(name):
        return "done"
    status: SessionStatus = tmux.status(name)
    if not status.managed or tmux_option(tmux, name, OWNER_OPTION) != token:
        return "done"  # not kstlib's, or not that run's: never touched
    tmux.stop(name, graceful=False)
    return "reaped"


def _reap_container(record: dict[str, Any], name: str, token: str) -> str:
    runtime = record.get("runtime")
    outcome = "done"
    # runtime None: the engine was picked at start; look on both
    for engine_name in [runtime] if runtime else ["podman", "docker"]:
        # the owner mark is a label: read through the runner's engine adapter
        runner: Any = make_runner(
            BackendType.CONTAINER, runtime=engine_name, base_url=record.get("base_url")
        )
        try:
            info = runner.engine.inspect(name)
        except SessionNotFoundError:
            continue
        except OpsError:
            outcome = "retry"  # this engine does not answer now: next run
            continue
        if info.name == name and info.managed and info.labels.get(OWNER_LABEL) == token:
            runner.stop(name, graceful=False)
            return "reaped"
    return outcome


def _reap_service(name: str, token: str, base_url: Any) -> str:
    """Remove swarm service ``name`` if it is kstlib's and carries ``token`` as its owner."""
    from kstlib.ops.swarm.runner import is_managed

    runner: Any = make_runner(BackendType.SWARM, base_url=base_url)
    service = runner.engine.find(name)
    labels = (service.get("Spec") or {}).get("Labels") or {}
    if not is_managed(service) or labels.get(OWNER_LABEL) != token:
        return "done"  # not kstlib's, or not that run's: never touched
    runner.stop(name, graceful=False)
    return "reaped"


def reap_testcontainers(record: dict[str, Any]) -> tuple[str, list[str]]:
    """Remove the containers carrying the record's testcontainers session id.

    Looks on each engine the record names (``engines``: ``[runtime, base_url]``
    pairs; a unix socket that no longer exists is no engine, so nothing to look
    at). Returns the outcome (``"done"`` or ``"retry"``: an engine did not answer)
    and the names removed.

    Example:
        >>> reap_testcontainers({"session_id": "", "engines": []})
        ('done', [])
    """
    session_id = str(record.get("session_id") or "")
    engines = record.get("engines")
    if not session_id or not isinstance(engines, list):
        return "done", []
    outcome, removed = "done", []
    for pair in engines:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        url = str(pair[1] or "")
        if url.startswith("unix://") and not os.path.exists(url[len("unix://") :]):
            continue  # no socket, no engine: nothing of the run can be there
        runner: Any = make_runner(BackendType.CONTAINER, runtime=pair[0], base_url=pair[1])
        try:
            mine = [
                info
                for info in runner.engine.list_containers()
                if info.labels.get(TC_SESSION_LABEL) == session_id
            ]
            for info in mine:
                with contextlib.suppress(SessionNotFoundError):
                    runner.engine.remove(info.id, info.name)
                removed.append(info.name)
        except OpsError:
            outcome = "retry"
    return outcome, removed


def _reap_one(record: dict[str, Any]) -> tuple[str, list[str]]:
    """Remove what a dead owner's record names if it carries that owner's mark.

    Returns ``"reaped"``, ``"done"`` (gone already, or not that owner's: left
    alone) or ``"retry"`` (the backend did not answer), with the names removed.
    """
    if record.get("kind") == "testcontainers":
        return reap_testcontainers(record)
    name, token = str(record.get("name")), str(record.get("owner"))
    try:
        if record.get("backend") == BackendType.TMUX.value:
            outcome = _reap_tmux(record, name, token)
        elif record.get("backend") == BackendType.SWARM.value:
            outcome = _reap_service(name, token, record.get("base_url"))
        else:
            outcome = _reap_container(record, name, token)
    except SessionNotFoundError:
        return "done", []
    except (OpsError, ValueError, TypeError):
        return "retry", []  # the backend does not answer now: next run
    return outcome, [name] if outcome == "reaped" else []


def reap_orphans() -> list[str]:
    """Stop and remove the sessions of test runs that were killed; return their names.

    Only sessions whose record names an owner that is dead (its lock is free, or,
    without a lock, a pid of this namespace that is gone), and that still carry
    that owner's mark, are removed. Called at the start of every pytest session;
    cheap when there is nothing to reap (one folder listing).

    Example:
        >>> reap_orphans()  # doctest: +SKIP
        ['test_worker-1f2e3d4c']
    """
    folder = records_dir(create=False)
    if folder is None:
        return []
    reaped: list[str] = []
    for path, record in read_records(folder):
        if not path.exists():
            continue  # dropped meanwhile (by a reaper of the same owner)
        with claim(folder, str(record.get("owner"))) as dead:
            if not dead:
                continue
            outcome, names = _reap_one(record)
            if outcome == "retry":
                continue
            forget_record(path)
            reaped += names
    return reaped
