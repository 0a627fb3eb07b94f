"""Whether a container's init could run its command: a start must not hide "not found".

Without an init the engine reports a command it cannot execute when it starts
the container (``executable file not found``: the start fails). With one (the
default), the init starts, forks and then fails to exec the command: it prints
why (Docker's tini ``[FATAL tini (7)] exec x failed: No such file or
directory``, Podman's catatonit ``failed to exec pid1: ...``) and exits 127,
126 or 1. :func:`exec_failure` waits until the init has handed over to the
command (a child of the init with its own command line) or the container
ended, and then reads that line.

Example:
    >>> _failure_line("[FATAL tini (7)] exec nosuch failed: No such file or directory\\r\\n")
    'exec nosuch failed: No such file or directory'
    >>> _failure_line("ERROR (catatonit:6): failed to exec pid1: Permission denied\\n")
    'failed to exec pid1: Permission denied'
    >>> _failure_line("exec nosuch failed") is None
    True
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from kstlib.ops.engines.streams import LogQuery
from kstlib.ops.exceptions import OpsError

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import ContainerInfo, EngineAdapter

__all__ = ["exec_failure"]

# Podman's log may lose the start of catatonit's line ("ERROR (catatonit:6): ").
_INIT_FAILED = re.compile(
    r"^\[FATAL tini \(\d+\)\] (exec .* failed: .*)$|(failed to exec pid1: .*)$",
    re.MULTILINE,
)
#: Exit codes of an init whose command could not be run (tini: 127/126, catatonit: 1).
_INIT_CODES = frozenset({1, 126, 127})
_ENDED = frozenset({"exited", "stopped", "dead", "restarting"})
_POLL = 0.02
#: How long an ended container's empty log is read again for the init's words.
_LOG_LAG = 2.0


def _failure_line(output: str) -> str | None:
    match = _INIT_FAILED.search(output.replace("\r\n", "\n"))
    if match is None:
        return None
    return (match.group(1) or match.group(2)).strip()


def _handed_over(engine: EngineAdapter, ref: str) -> bool:
    """Whether a child of the init runs a command line of its own (the exec is done)."""
    try:
        rows = engine.processes(ref)
    except OpsError:
        return False  # it ended meanwhile (HTTP 409 "not running"): the inspect tells
    pids = {pid for pid, _, _ in rows}
    roots = [(pid, cmd) for pid, ppid, cmd in rows if ppid not in pids]
    return any(ppid == pid and cmd != init for pid, init in roots for _, ppid, cmd in rows)


def exec_failure(
    engine: EngineAdapter, info: ContainerInfo, deadline: float, inspect: object
) -> tuple[ContainerInfo, str | None]:
    """Wait for the init's hand-over (at most until ``deadline``); why the exec failed, if it did.

    ``inspect`` re-reads the container (a ``ref -> ContainerInfo`` callable).
    Returns the container as last seen and the init's failure line, or
    ``None`` when the command runs (or ran and ended on its own).
    """
    assert callable(inspect)
    while info.state not in _ENDED and time.monotonic() < deadline:
        if info.state == "running" and _handed_over(engine, info.id):
            return info, None
        time.sleep(_POLL)
        info = inspect(info.id)
    if info.state not in _ENDED or info.exit_code not in _INIT_CODES:
        return info, None
    # Podman's log may get the init's words a moment after the exit: a silent
    # end is read again, briefly (until the deadline, at most _LOG_LAG s).
    settle = min(deadline, time.monotonic() + _LOG_LAG)
    while True:
        try:
            # The whole log, not a tail: Podman 4.3 reads a tail backwards and drops
            # the partial entries of its first line (catatonit's line comes in two).
            # The container ended before its hand-over was seen: its log is short.
            entries = engine.logs(info.id, LogQuery(None), keep=20)
        except OpsError:
            return info, None
        if entries or time.monotonic() >= settle:
            return info, _failure_line(b"".join(entries).decode("utf-8", errors="replace"))
        time.sleep(_POLL)
