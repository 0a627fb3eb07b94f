"""Session log files: where they live, reading their tail, following them.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A kstlib tmux session's output goes to ``<state dir>/tmux/<server>/<name>.<run>.log``
(see :mod:`kstlib.ops.tmux.collector`), one ``<timestamp>\\t<text>`` record a line,
rotated to ``<name>.<run>.log.1`` past ``KSTLIB_OPS_MAX_LOG_BYTES`` (see
:func:`kstlib.ops.settings.max_log_bytes`).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.log"
    >>> _ = p.write_text("2026-01-01T00:00:00.000000Z\\thello\\n")
    >>> read_lines(p, lines=10)
    ['hello']
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.statedir import state_dir

__all__ = [
    "Since",
    "ended",
    "follow_lines",
    "read_lines",
    "remove_log",
    "since_stamp",
    "state_dir",
    "strip_ansi",
]

#: A log file is rotated past this size; a session keeps at most twice as much.
_BLOCK = 1 << 16
_END = "#kstlib-end"  # the record the log pipe writes after the command's last output
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

Since = datetime | float | int
"""A start time: an aware ``datetime`` or a Unix timestamp in seconds."""


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences (colours, cursor moves) from ``text``.

    Example:
        >>> strip_ansi("\\x1b[31mred\\x1b[0m")
        'red'
    """
    return _ANSI_RE.sub("", text)


def since_stamp(since: Since) -> str:
    """The log-file timestamp text for ``since`` (records compare as strings).

    Example:
        >>> since_stamp(0)
        '1970-01-01T00:00:00.000000Z'
    """
    if isinstance(since, datetime):
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    elif isinstance(since, (int, float)) and not isinstance(since, bool):
        try:
            moment = datetime.fromtimestamp(float(since), tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as err:
            raise SessionConfigError(
                f"since: {since!r} is not a usable time ({err})", "since"
            ) from None
    else:
        raise SessionConfigError(
            f"since: expected a datetime or a Unix time in seconds, got {type(since).__name__}",
            "since",
        )
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ended(path: Path) -> bool:
    """Whether the log holds all of its run's output (its last record is the end mark).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.log"
        >>> _ = p.write_text("#kstlib-end\\n")
        >>> ended(p)
        True
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - len(_END) - 1))
            return handle.read().rstrip(b"\n").endswith(_END.encode())
    except FileNotFoundError:
        return False


def _data(records: list[str]) -> list[str]:
    return [r for r in records if not r.startswith("#")]


def _render(record: str, timestamps: bool, ansi: bool) -> str:
    stamp, _, text = record.partition("\t")
    if not ansi:
        text = strip_ansi(text)
    return f"{stamp} {text}" if timestamps else text


def _tail_records(path: Path, count: int, end: int | None = None) -> list[str]:
    """The last ``count`` records of one file (of its first ``end`` bytes), read backwards."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END) if end is None else end
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= count:
            step = min(_BLOCK, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    records = data.decode("utf-8", "replace").splitlines()
    if pos > 0:
        records = records[1:]  # the first one may be cut
    return records[-count:] if count else []


def _all_records(path: Path) -> list[str]:
    out: list[str] = []
    for part in (Path(f"{path}.1"), path):
        try:
            out.extend(part.read_text("utf-8", "replace").splitlines())
        except FileNotFoundError:
            continue
    return out


def read_lines(
    path: Path,
    lines: int | None = 100,
    *,
    since: Since | None = None,
    timestamps: bool = False,
    ansi: bool = True,
) -> list[str]:
    """The last ``lines`` lines of a log (``None``: all kept), oldest first.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.log"
        >>> _ = p.write_text("2026-01-01T00:00:00.000000Z\\ta\\n2026-01-01T00:00:01.000000Z\\tb\\n")
        >>> read_lines(p, lines=1, timestamps=True)
        ['2026-01-01T00:00:01.000000Z b']
        >>> read_lines(p, since=1767225600.5)
        ['b']
    """
    if since is None and lines is not None:
        records = _data(_tail_records(path, lines + 1))[-lines:] if lines else []
        if len(records) < lines:
            older = _data(_tail_records(Path(f"{path}.1"), lines - len(records) + 1))
            records = older[len(older) - (lines - len(records)) :] + records
    else:
        records = _data(_all_records(path))
        if since is not None:
            threshold = since_stamp(since)
            records = [r for r in records if r.partition("\t")[0] >= threshold]
        if lines is not None:
            records = records[-lines:] if lines else []
    return [_render(r, timestamps, ansi) for r in records]


def _backlog(path: Path, lines: int, threshold: str | None) -> tuple[list[str], int]:
    """The last ``lines`` records written so far (from ``threshold`` on), and where they end.

    The end is the offset right after the last whole record, so that a
    follow from there neither repeats nor skips one.
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _BLOCK))
            tail = handle.read()
            end = size - len(tail) + tail.rfind(b"\n") + 1  # after the last whole record
            if threshold is not None:
                handle.seek(0)
                head = handle.read(end).decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return [], 0
    if threshold is None:
        records = _data(_tail_records(path, lines + 1, end))[-lines:] if lines else []
        if len(records) < lines:
            older = _data(_tail_records(Path(f"{path}.1"), lines - len(records) + 1))
            records = older[len(older) - (lines - len(records)) :] + records
        return records, end
    records = _data([*_all_records(Path(f"{path}.1")), *head])
    records = [r for r in records if r.partition("\t")[0] >= threshold]
    return (records[-lines:] if lines else []), end


def follow_lines(
    path: Path,
    alive: Callable[[], bool],
    *,
    since: Since | None = None,
    lines: int | None = None,
    timestamps: bool = False,
    ansi: bool = True,
    poll: float = 0.05,
    wait: Callable[[float], bool] | None = None,
) -> Iterator[str]:
    """Yield the log's lines as they are written until ``alive()`` turns false.

    Lines already in the file are yielded first: the last ``lines`` of them
    when given (of those from ``since`` on, with ``since``), else those from
    ``since`` on, else none. It ends at the run's end mark, or once
    ``alive()`` is false and the file has been drained. ``wait(poll)`` pauses
    between reads (by default :func:`time.sleep`); it ends the follow when it
    returns false (a :meth:`kstlib.ops.follow.Follow.wait`, closed).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.log"
        >>> _ = p.write_text("2026-01-01T00:00:00.000000Z\\tdone\\n")
        >>> list(follow_lines(p, alive=lambda: False, since=0))
        ['done']
        >>> _ = p.write_text("".join(f"2026-01-01T00:00:0{i}.000000Z\\t{i}\\n" for i in range(5)))
        >>> list(follow_lines(p, alive=lambda: False, lines=2))
        ['3', '4']
    """
    threshold = since_stamp(since) if since is not None else None
    handle = None
    inode = None
    pending = b""
    if lines is not None:
        backlog, start = _backlog(path, lines, threshold)
        for record in backlog:
            yield _render(record, timestamps, ansi)
    elif threshold is None:
        try:
            start = path.stat().st_size
        except FileNotFoundError:
            start = 0
    else:
        start = 0
        for record in _data(_all_records(Path(f"{path}.1"))):
            if record >= threshold:
                yield _render(record, timestamps, ansi)
    last_check = time.monotonic()
    finished = False
    draining = False
    while True:
        now = time.monotonic()
        if not draining and now - last_check >= 0.2:
            # checked between reads too, so a chatty process cannot hide a stop
            last_check = now
            if not alive():
                draining = True  # one more read, then stop
        if handle is None:
            try:
                handle = path.open("rb")
                inode = os.fstat(handle.fileno()).st_ino
                handle.seek(start)
            except FileNotFoundError:
                handle = None
        if handle is not None:
            chunk = handle.read(_BLOCK)
            if chunk:
                pending += chunk
                *records, rest = pending.split(b"\n")
                pending = rest
                for raw in records:
                    record = raw.decode("utf-8", "replace")
                    if record == _END:
                        finished = True
                        break
                    if threshold is None or record >= threshold:
                        yield _render(record, timestamps, ansi)
                if finished:
                    break
                continue
            try:
                if path.stat().st_ino != inode:  # rotated: read the new file from its start
                    handle.close()
                    handle, start = None, 0
                    continue
            except FileNotFoundError:
                pass
        if draining:
            break
        if wait is None:
            time.sleep(poll)
        elif not wait(poll):
            break
    if handle is not None:
        handle.close()


def remove_log(path: Path) -> None:
    """Delete a session's log file and its rotated part, if any.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.log"
        >>> _ = p.write_text("x")
        >>> remove_log(p); p.exists()
        False
    """
    for part in (path, Path(f"{path}.1")):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    with contextlib.suppress(OSError):  # the server's folder, once it is empty
        path.parent.rmdir()
