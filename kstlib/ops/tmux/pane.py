"""What one tmux query says about a session's pane, and how to read it.

One ``-F`` format serves ``new-session -P``, ``list-panes`` (status) and
``list-sessions`` (list), so every call is a single tmux command. Fields
are separated by ``\\x1f``; the session name comes last because a foreign
session's name is the only free text in it.

Example:
    >>> line = SEP.join(["42", "1", "", "", "1767225600", "1", "1", "3", "", "2", "1",
    ...                  "7", "$1", "3 1767225660", "bot"])
    >>> p = parse(line, "sock")
    >>> p.status.state.value, p.status.exit_code, p.status.pid, p.server_pid, p.session_id
    ('exited', 3, None, 7, '$1')
    >>> p.status.restart_count, p.status.last_exit_code, p.status.last_exited_at.isoformat()
    (2, 3, '2026-01-01T00:01:00+00:00')
    >>> parse(line.replace(SEP, "\\\\037"), "sock") == p  # as tmux 3.5a prints it
    True
"""

from __future__ import annotations

from dataclasses import is_dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from kstlib.ops.models import BackendType, SessionState, SessionStatus

__all__ = [
    "EXIT_OPTION",
    "FORMAT",
    "LAST_OPTION",
    "LOG_OPTION",
    "MANAGED_OPTION",
    "RESTARTS_OPTION",
    "Pane",
]

#: Session user option that marks a session started by kstlib.
MANAGED_OPTION = "@kstlib-managed"
#: Pane user option where the session's wrapper records the exit code.
EXIT_OPTION = "@kstlib-exit"
#: Pane user option where the wrapper counts the restarts of its restart policy.
RESTARTS_OPTION = "@kstlib-restarts"
#: Pane user option where a restarting wrapper records its last run: ``CODE UNIX_TIME``.
LAST_OPTION = "@kstlib-last"
#: Session user option holding the path of the session's log file.
LOG_OPTION = "@kstlib-log"
SEP = "\x1f"
_FIELDS = (
    "#{pane_pid}",
    "#{pane_dead}",
    "#{pane_dead_status}",
    "#{pane_dead_signal}",
    "#{session_created}",
    "#{session_windows}",
    f"#{{{MANAGED_OPTION}}}",
    f"#{{{EXIT_OPTION}}}",
    f"#{{{LOG_OPTION}}}",
    f"#{{{RESTARTS_OPTION}}}",
    "#{pane_pipe}",
    "#{pid}",
    "#{session_id}",
    f"#{{{LAST_OPTION}}}",
    "#{session_name}",
)
FORMAT = SEP.join(_FIELDS)
# Newer tmux (3.5a here) prints a format's control characters escaped (octal, the
# backslash itself left as is): SEP then arrives as these four characters.
_SEP_ESCAPED = "\\037"


class Pane(NamedTuple):
    """A session's status plus what kstlib needs of its pane."""

    status: SessionStatus
    log: Path | None
    piped: bool
    server_pid: int | None
    session_id: str


@lru_cache(maxsize=4096)
def _when(unix: str) -> datetime | None:
    """A tmux time (whole seconds since the epoch) as an aware datetime; sessions share many."""
    return datetime.fromtimestamp(int(unix), tz=timezone.utc) if unix.isdigit() else None


_TEMPLATE = SessionStatus(name="", state=SessionState.RUNNING, backend=BackendType.TMUX)
# A listing builds thousands of statuses: filling a copy of a template's fields
# costs a fifth of the frozen dataclass's __init__ (one object.__setattr__ a
# field). Only while SessionStatus stays a plain frozen dataclass without checks.
_FAST = (
    is_dataclass(SessionStatus)
    and not hasattr(SessionStatus, "__post_init__")
    and not hasattr(SessionStatus, "__slots__")
)


def _new_status(values: dict[str, Any]) -> SessionStatus:
    if not _FAST:
        return SessionStatus(**values)
    status = object.__new__(SessionStatus)
    fields_ = status.__dict__
    fields_.update(_TEMPLATE.__dict__)
    fields_.update(values)
    return status


def _status(fields: list[str], socket_name: str | None) -> SessionStatus:
    (pid, dead, dead_status, dead_signal, created, windows, managed, recorded) = fields[:8]
    exit_code: int | None = None
    state = SessionState.RUNNING
    if dead == "1":
        state = SessionState.EXITED
        if recorded.isdigit():
            exit_code = int(recorded)
        elif dead_status:
            exit_code = int(dead_status)
        elif dead_signal:
            exit_code = 128 + int(dead_signal)
    restarts = fields[9]
    last_code, _, last_at = fields[13].partition(" ")
    return _new_status(
        {
            "name": fields[14],
            "state": state,
            "backend": BackendType.TMUX,
            "pid": int(pid) if pid and state is SessionState.RUNNING else None,  # no dead pids
            "created_at": _when(created),
            "window_count": int(windows) if windows else None,
            "exit_code": exit_code,
            "socket_name": socket_name,
            "managed": managed == "1",
            "restart_count": int(restarts) if restarts.isdigit() else 0,
            "last_exit_code": int(last_code) if last_code.isdigit() else None,
            "last_exited_at": _when(last_at),
        }
    )


def _split(line: str) -> list[str]:
    # The name is last, so whatever it holds stays in it.
    sep = SEP if SEP in line or _SEP_ESCAPED not in line else _SEP_ESCAPED
    return line.split(sep, len(_FIELDS) - 1)


def status_of(line: str, socket_name: str | None) -> SessionStatus:
    """Only the status of one line printed with :data:`FORMAT` (what a listing needs)."""
    return _status(_split(line), socket_name)


def parse(line: str, socket_name: str | None) -> Pane:
    """Read one line printed with :data:`FORMAT`."""
    fields = _split(line)
    log, piped, server_pid, session_id = fields[8], fields[10], fields[11], fields[12]
    return Pane(
        _status(fields, socket_name),
        Path(log) if log else None,
        piped == "1",
        int(server_pid) if server_pid.isdigit() else None,
        session_id,
    )
