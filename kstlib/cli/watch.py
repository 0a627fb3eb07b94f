"""``kstlib ops list --watch``: the session table, redrawn when something changes.

On a terminal the table is redrawn in place: the cursor goes back up over the
previous frame and each line is rewritten and erased to its end (no
clear-screen, no alternate screen: the last table stays in the scrollback
when the watch ends, and nothing flickers). On anything else (a pipe, a file)
the first table is printed once, then one line per change (one JSON object a
line with ``--json``). Ctrl-C ends the watch with exit code 130 and the
cursor shown again; so does a TERM (exit 143).

The view is :class:`kstlib.ops.live.LiveSessions`: the listing the ``list``
command prints, kept current by the events of every backend that has an
events source; a backend without one is listed, not followed (a note says so).

Example:
    >>> from kstlib.cli.watch import frame
    >>> frame(["a", "b"], 0)
    '\\ra\\x1b[K\\n\\rb\\x1b[K\\n\\x1b[J'
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from kstlib.cli import output
from kstlib.ops.models import BackendType, SessionStatus

if TYPE_CHECKING:
    from kstlib.ops.live import LiveSessions

__all__ = ["fit", "frame", "print_changes", "redraw", "watch_sessions"]

#: ``kstlib.cli.EXIT_INTERRUPTED`` (Ctrl-C) and the exit code of a TERM.
_INTERRUPTED = 130
_TERMINATED = 143
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
_ERASE_LINE = "\x1b[K"
_ERASE_BELOW = "\x1b[J"


class _Context(Protocol):
    """What the watch needs of the CLI's context."""

    @property
    def config(self) -> Any: ...

    def option(self, name: str) -> Any: ...

    def explicit_backend(self) -> tuple[BackendType | None, str | None, str | None]: ...


def frame(lines: Sequence[str], previous: int) -> str:
    """The bytes that replace a ``previous``-line frame with ``lines``, in place.

    Up over the old frame (``ESC [ n A``), each line rewritten and erased to
    its end (``ESC [ K``), then what is left below erased (``ESC [ J``): only
    the lines of the frame are touched, the rest of the screen stays.

    Example:
        >>> frame(["x"], 2)
        '\\r\\x1b[2A\\rx\\x1b[K\\n\\x1b[J'
    """
    up = f"\r\x1b[{previous}A" if previous else ""
    return up + "".join(f"\r{line}{_ERASE_LINE}\n" for line in lines) + _ERASE_BELOW


def fit(lines: list[str], columns: int, rows: int) -> list[str]:
    """``lines`` cut to the terminal: no line wraps (the cursor-up count stays true), no scroll.

    Example:
        >>> fit(["a" * 30, "b", "c", "d"], columns=12, rows=4)
        ['aaaaaaaa...', 'b', '... 2 mo...']
    """
    if rows > 1 and len(lines) > rows - 1:
        hidden = len(lines) - (rows - 2)
        lines = [*lines[: rows - 2], f"... {hidden} more lines"]
    width = max(columns - 1, 10)
    return [line if len(line) <= width else line[: width - 3] + "..." for line in lines]


def _table_lines(statuses: Sequence[SessionStatus]) -> list[str]:
    text = output.render_status_table(statuses) if statuses else "No sessions."
    return [output.printable(line) for line in text.split("\n")]


def _on_term(signum: int, frame_: FrameType | None) -> None:
    raise SystemExit(_TERMINATED)


def watch_sessions(
    ctx: _Context,
    collect: Callable[[], Iterable[SessionStatus]],
    out: TextIO | None = None,
) -> int:
    """Watch the fleet ``collect`` lists until Ctrl-C; returns the exit code (130).

    ``collect`` is ``list``'s own listing (every place, the config's
    definitions); ``--managed`` keeps kstlib's sessions, ``--json`` prints
    one JSON object per change on a non-terminal.

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> ctx = Context(argparse.Namespace(config=None, backend="docker", runtime=None))
        >>> watch_sessions(ctx, list)  # doctest: +SKIP
        130
    """
    from kstlib.cli.engines import list_places
    from kstlib.ops.live import LiveSessions, open_streams

    out = sys.stdout if out is None else out
    managed = bool(ctx.option("managed"))
    quiet = bool(ctx.option("quiet"))

    def rows() -> list[SessionStatus]:
        return [s for s in collect() if s.managed or not managed]

    def skipped(where: str, err: Exception) -> None:
        if not quiet:
            output.note(f"{where}: listed, not followed live ({err})")

    # The places ``list`` asks, each followed where it is (a tmux server on its socket,
    # a swarm with the nodes its engine lists).
    places = list_places(ctx)  # type: ignore[arg-type]
    streams = open_streams(places, on_skip=skipped, swarm_nodes=ctx.config.swarm_nodes)
    view = LiveSessions(rows, streams)
    tty = out.isatty()
    interrupted = False
    previous_term = None
    if sys.platform != "win32" and _main_thread():
        previous_term = signal.signal(signal.SIGTERM, _on_term)
    try:
        if tty:
            out.write(HIDE_CURSOR)
            redraw(view, out)
        else:
            print_changes(view, out, bool(ctx.option("json")))
        return 0  # the streams ended (every engine went away for good)
    except KeyboardInterrupt:
        interrupted = True
        return _INTERRUPTED
    finally:
        view.close()
        if tty:  # the cursor back, and the prompt on a line of its own after the ^C echo
            out.write(SHOW_CURSOR + ("\n" if interrupted else ""))
            out.flush()
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _size(out: TextIO) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(out.fileno())
    except (OSError, ValueError):
        return 80, 24
    return size.columns, size.lines


def redraw(view: LiveSessions, out: TextIO) -> None:
    """The terminal's face: one frame per update of ``view``, drawn over the previous one.

    Example:
        >>> import io
        >>> from kstlib.ops.live import LiveSessions
        >>> out = io.StringIO(); redraw(LiveSessions(lambda: [], []), out)
        >>> out.getvalue().endswith("No sessions.\\x1b[K\\n\\x1b[J")
        True
    """
    drawn = 0
    for update in view.updates():
        when = _clock(update.time)
        count = f"{len(update.table)} session" + ("" if len(update.table) == 1 else "s")
        head = f"kstlib ops list --watch  {when} UTC  {count}  (Ctrl-C ends)"
        lines = [head, *_table_lines(update.table)]
        if update.events:
            lines += [f"{when} {output.printable(c.line())}" for c in update.changes[-3:]]
        lines = fit(lines, *_size(out))
        out.write(frame(lines, drawn))
        out.flush()
        drawn = len(lines)


def print_changes(view: LiveSessions, out: TextIO, as_json: bool) -> None:
    """The pipe's face: the first table, then one line per change (JSON objects: ``as_json``).

    Example:
        >>> from kstlib.ops.live import LiveSessions
        >>> print_changes(LiveSessions(lambda: [], []), sys.stdout, False)
        No sessions.
    """
    for update in view.updates():
        if as_json:
            for change in update.changes:
                out.write(json.dumps({"time": update.time.isoformat(), **change.to_dict()}) + "\n")
        elif not update.events:
            out.write("\n".join(_table_lines(update.table)) + "\n")
        else:
            for change in update.changes:
                out.write(f"{update.time.isoformat()} {output.printable(change.line())}\n")
        out.flush()


def _clock(when: datetime) -> str:
    return when.strftime("%H:%M:%S")
