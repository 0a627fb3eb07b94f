"""Plain-text rendering for the CLI: aligned tables and key/value panels.

No colours and no third-party dependency: output stays readable in a pipe,
a CI log and a terminal alike. Every line the CLI prints about sessions
(tables, panels, notes, warnings, errors) goes through :func:`printable`: a
name, an image or a message from an engine can carry terminal escape
sequences (set the clipboard, the title, move the cursor), and these are
shown as text (``\x1b``), never sent to the terminal. A session's own output
(``logs``, ``wait --for``) is printed by :func:`emit_output` instead.

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
    "emit",
    "emit_output",
    "format_created",
    "format_place",
    "note",
    "printable",
    "render_panel",
    "render_status",
    "render_status_table",
    "render_table",
    "terminal_safe",
    "warn",
]

EMPTY = "-"


# C0 (newline and tab included), DEL, C1, and the Unicode marks that reorder or
# break a line (bidi overrides and isolates, line and paragraph separators).
_UNPRINTABLE_RE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    r"""``text`` with every control character written out as a visible escape.

    C0 characters (newline and tab too), DEL, C1 characters and the Unicode
    marks that reorder or break a line become ``\x1b``, ``\x9b``, ``\u202e``...:
    an escape sequence from an engine (``ESC ] 52`` sets the clipboard, others
    retitle the terminal or move the cursor) reaches the screen as text. The one
    function the CLI prints engine-supplied strings through.

    Example:
        >>> print(printable("web\x1b]52;c;ZWNobw==\x07"))
        web\x1b]52;c;ZWNobw==\x07
        >>> print(printable("a\nb\x9b2J"), printable("plain"))
        a\x0ab\x9b2J plain
    """
    if text.isprintable():  # no Cc, Cf, Zl or Zp character: the common case, at C speed
        return text
    return _UNPRINTABLE_RE.sub(_escape, text)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; trailing spaces are trimmed.

    Each cell is :func:`printable` first (one cell, one line).

    Example:
        >>> print(render_table(["A", "LONGER"], [["xyz", "1"]]))
        A    LONGER
        xyz  1
    """
    table = [[printable(c) for c in headers], *([printable(c) for c in r] for r in rows)]
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
    items = [(printable(k), printable(v)) for k, v in items]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join([printable(title), *(f"  {k.ljust(width)}  {v}" for k, v in items)])


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
    if status.backend is BackendType.SWARM:
        return "swarm service"
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
    if status.backend is BackendType.SWARM:  # where its tasks run, and what the swarm says
        items.append(("nodes", ", ".join(status.nodes) or EMPTY))
        items.append(("restarts", str(status.restart_count)))
        if status.reason:
            items.append(("reason", status.reason))
    return render_panel(f"Session {status.name!r}: {_state(status)}", items)


def render_status_table(statuses: Sequence[SessionStatus]) -> str:
    """The table printed by ``kstlib ops list`` (SOCKET and ENGINE columns only when needed).

    Example:
        >>> rows = [SessionStatus("bot", SessionState.RUNNING, BackendType.TMUX, pid=7)]
        >>> print(render_status_table(rows))
        NAME  BACKEND  RUNTIME  STATE    PID  IMAGE  CREATED  MANAGED
        bot   tmux     -        running  7    -      -        no
    """
    with_socket = any(s.socket_name for s in statuses)
    with_engine = any(s.engine for s in statuses)
    headers = ["NAME", "BACKEND", "RUNTIME", "STATE", "PID", "IMAGE", "CREATED", "MANAGED"]
    if with_socket:
        headers.insert(3, "SOCKET")
    if with_engine:
        headers.insert(1, "ENGINE")
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
        if with_engine:
            row.insert(1, s.engine or EMPTY)
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
    text = json.dumps(data, indent=2, ensure_ascii=False)
    # JSON escapes C0 itself; DEL, C1 and the line-breaking marks get \\uXXXX too.
    return _JSON_EXTRA_RE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


_JSON_EXTRA_RE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# -- printing a command's results -----------------------------------------------------------


def emit(text: str = "") -> None:
    r"""Print a command's result on stdout, each of its lines :func:`printable`.

    Example:
        >>> emit("Stopped session 'a\x1b[2J'.")
        Stopped session 'a\x1b[2J'.
    """
    sys.stdout.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


def emit_output(text: str) -> None:
    """Print a session's own output on stdout as prepared (see :func:`terminal_safe`).

    Example:
        >>> emit_output("bot: ready")
        bot: ready
    """
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
    """Print ``kstlib: note: MESSAGE`` on stderr, its lines :func:`printable`."""
    text = "\n".join(printable(line) for line in message.split("\n"))
    sys.stderr.write(f"kstlib: note: {text}\n")


def warn(message: str) -> None:
    """Print ``kstlib: warning: MESSAGE`` on stderr, on one line."""
    line = printable(" ".join(message.split()))
    sys.stderr.write(f"kstlib: warning: {line}\n")
