"""Plain-text rendering for the CLI: aligned tables and key/value panels.

No colours and no third-party dependency: output stays readable in a pipe,
a CI log and a terminal alike.

Example:
    >>> print(render_table(["NAME", "STATE"], [["bot", "running"], ["worker-2", "exited"]]))
    NAME      STATE
    bot       running
    worker-2  exited
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from kstlib.ops.models import BackendType, SessionState, SessionStatus

__all__ = [
    "dumps_json",
    "format_created",
    "format_place",
    "render_panel",
    "render_status",
    "render_status_table",
    "render_table",
    "terminal_safe",
]

EMPTY = "-"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; trailing spaces are trimmed.

    Example:
        >>> print(render_table(["A", "LONGER"], [["xyz", "1"]]))
        A    LONGER
        xyz  1
    """
    table = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    ]
    return "\n".join(lines)


def render_panel(title: str, items: Sequence[tuple[str, str]]) -> str:
    """A title line, then indented ``key  value`` lines with the keys aligned.

    Example:
        >>> print(render_panel("Session 'bot'", [("state", "running"), ("pid", "42")]))
        Session 'bot'
          state  running
          pid    42
    """
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join([title, *(f"  {k.ljust(width)}  {v}" for k, v in items)])


def format_created(created: datetime | None) -> str:
    """A creation time in the local time zone, to the second.

    Example:
        >>> format_created(None)
        '-'
    """
    if created is None:
        return EMPTY
    return created.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_place(status: SessionStatus) -> str:
    """Where a session runs, as a person would say it.

    Example:
        >>> format_place(SessionStatus("a", SessionState.RUNNING, BackendType.TMUX,
        ...                            socket_name="work"))
        'tmux (socket work)'
    """
    if status.backend is BackendType.TMUX:
        server = f"socket {status.socket_name}" if status.socket_name else "default server"
        return f"tmux ({server})"
    return f"container ({status.runtime})" if status.runtime else "container"


def _state(status: SessionStatus) -> str:
    if status.state is SessionState.EXITED and status.exit_code is not None:
        return f"exited ({status.exit_code})"
    return status.state.value


def render_status(status: SessionStatus) -> str:
    """The panel printed by ``kstlib ops status`` and ``start``.

    Example:
        >>> print(render_status(SessionStatus("bot", SessionState.DEFINED, BackendType.TMUX)))
        Session 'bot': defined
          backend    tmux (default server)
          pid        -
          created    -
          exit code  -
          image      -
          managed    no
    """
    items = [
        ("backend", format_place(status)),
        ("pid", str(status.pid) if status.pid is not None else EMPTY),
        ("created", format_created(status.created_at)),
        ("exit code", str(status.exit_code) if status.exit_code is not None else EMPTY),
        ("image", status.image or EMPTY),
        ("managed", "yes" if status.managed else "no"),
    ]
    return render_panel(f"Session {status.name!r}: {_state(status)}", items)


def render_status_table(statuses: Sequence[SessionStatus]) -> str:
    """The table printed by ``kstlib ops list`` (a SOCKET column only when needed).

    Example:
        >>> rows = [SessionStatus("bot", SessionState.RUNNING, BackendType.TMUX, pid=7)]
        >>> print(render_status_table(rows))
        NAME  BACKEND  RUNTIME  STATE    PID  IMAGE  CREATED  MANAGED
        bot   tmux     -        running  7    -      -        no
    """
    with_socket = any(s.socket_name for s in statuses)
    headers = ["NAME", "BACKEND", "RUNTIME", "STATE", "PID", "IMAGE", "CREATED", "MANAGED"]
    if with_socket:
        headers.insert(3, "SOCKET")
    rows = []
    for s in statuses:
        row = [
            s.name,
            s.backend.value,
            s.runtime or EMPTY,
            _state(s),
            str(s.pid) if s.pid is not None else EMPTY,
            s.image or EMPTY,
            format_created(s.created_at),
            "yes" if s.managed else "no",
        ]
        if with_socket:
            row.insert(3, s.socket_name or ("default" if s.backend is BackendType.TMUX else EMPTY))
        rows.append(row)
    return render_table(headers, rows)


# One escape sequence or control character at a time: CSI (ESC [ or C1 0x9b),
# OSC/DCS/APC/PM/SOS strings up to their terminator (or the end of the text),
# two-byte ESC sequences, then any other C0/C1 control character or DEL.
_CONTROL_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x9d\x9e\x9f\x98])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
# Colours and text attributes (SGR): ESC [ digits ; : m, nothing else.
_SGR_RE = re.compile(r"\x1b\[[0-9;:]*m")


def _visible(sequence: str) -> str:
    """A control sequence as text, in the caret notation of ``cat -v`` (ESC is ``^[``)."""
    out = []
    for char in sequence:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            out.append("^" + chr(code ^ 0x40))
        elif 0x80 <= code <= 0x9F:
            out.append(f"<U+{code:04X}>")
        else:
            out.append(char)
    return "".join(out)


def terminal_safe(text: str) -> str:
    r"""Session output made safe to print on a terminal: colours pass, the rest is shown.

    Colour and attribute sequences (SGR, ``ESC [ ... m``) pass unchanged; every
    other escape sequence and control character is written out in caret
    notation (``ESC[6n`` as ``^[[6n``), so that output can never query the
    terminal (whose answer would be typed into the user's shell), set its
    title or clipboard, or move the cursor. Newlines, tabs and carriage
    returns pass.

    Example:
        >>> terminal_safe("\x1b[31mred\x1b[0m ok")
        '\x1b[31mred\x1b[0m ok'
        >>> terminal_safe("prompt\x1b[6n \x1b]0;title\x07 bell\x07")
        'prompt^[[6n ^[]0;title^G bell^G'
    """
    if not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        return text

    def show(match: re.Match[str]) -> str:
        sequence = match.group(0)
        if sequence in "\n\t\r" or _SGR_RE.fullmatch(sequence):
            return sequence
        return _visible(sequence)

    return _CONTROL_RE.sub(show, text)


def dumps_json(data: Any) -> str:
    """The JSON text printed by ``--json``: stable key order, two-space indent.

    Example:
        >>> print(dumps_json({"name": "bot", "pid": None}))
        {
          "name": "bot",
          "pid": null
        }
    """
    return json.dumps(data, indent=2, ensure_ascii=False)


# -- printing a command's results -----------------------------------------------------------


def emit(text: str = "") -> None:
    """Print one line of a command's result on stdout."""
    sys.stdout.write(text + "\n")


class HasOptions(Protocol):
    """What :func:`emit_status` needs of a command's context: its options."""

    def option(self, name: str) -> Any:
        """The value of option ``name``, ``None`` when the command has none."""


def emit_status(ctx: HasOptions, status: SessionStatus, quiet_text: str | None) -> None:
    """Print a status as ``--json``, ``--quiet`` (``quiet_text``) or a panel asks."""
    if ctx.option("json"):
        emit(dumps_json(status.to_dict()))
    elif ctx.option("quiet"):
        if quiet_text is not None:
            emit(quiet_text)
    else:
        emit(render_status(status))


def note(message: str) -> None:
    """Print ``kstlib: note: MESSAGE`` on stderr."""
    sys.stderr.write(f"kstlib: note: {message}\n")


def warn(message: str) -> None:
    """Print ``kstlib: warning: MESSAGE`` on stderr, on one line."""
    line = " ".join(message.split())
    sys.stderr.write(f"kstlib: warning: {line}\n")
