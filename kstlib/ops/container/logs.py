"""Log-line assembly: engine log entries (parts of lines, timestamps) become session lines.

Entries come from :class:`~kstlib.ops.engines.streams.EntrySplitter`; here they
are joined into lines, their timestamps read and rendered, and a
:class:`Cursor` remembers where a follow stopped so a reconnect resumes there.

Example:
    >>> render_line((0, 0), "hello", timestamps=True, ansi=True)
    '1970-01-01T00:00:00.000000Z hello'
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from kstlib.ops.logfile import strip_ansi

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_CLOCK_RE = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")


_FRACTION_ZONE_RE = re.compile(rb"(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


#: An engine time as ``(Unix seconds, nanoseconds)``: comparable, and exact.
_Stamp = tuple[int, int]


@lru_cache(maxsize=4096)
def _clock_seconds(clock: bytes) -> int | None:
    match = _CLOCK_RE.fullmatch(clock)
    if match is None:
        return None
    return calendar.timegm((*(int(g) for g in match.groups()), 0, 0, 0))


def parse_stamp(raw: bytes) -> _Stamp | None:
    """An engine's RFC 3339 log time (Docker: nanoseconds; Podman: seconds).

    >>> parse_stamp(b"2026-11-25T18:46:55.8195101Z")
    (1795632415, 819510100)
    >>> parse_stamp(b"2026-11-25T19:46:55+01:00")
    (1795632415, 0)
    """
    seconds = _clock_seconds(raw[:19])
    rest = _FRACTION_ZONE_RE.fullmatch(raw, 19) if seconds is not None else None
    if seconds is None or rest is None:
        return None
    fraction, zone = rest.groups()
    if zone != b"Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[:1] == b"+" else -offset
    return seconds, int(fraction.ljust(9, b"0")) if fraction else 0


@lru_cache(maxsize=4096)
def _clock_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _stamp_text(stamp: _Stamp) -> str:
    """The tmux log format: UTC, microseconds, ``Z``.

    >>> _stamp_text((1795632415, 819510100))
    '2026-11-25T18:46:55.819510Z'
    """
    return f"{_clock_text(stamp[0])}.{stamp[1] // 1000:06d}Z"


def stamp_moment(stamp: _Stamp) -> datetime:
    """An engine time as an aware UTC datetime (to microseconds).

    >>> stamp_moment((0, 1500))
    datetime.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=datetime.timezone.utc)
    """
    return _EPOCH + timedelta(seconds=stamp[0], microseconds=stamp[1] // 1000)


def _decode(line: bytes | bytearray) -> str:
    text = bytes(line).decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text  # the terminal's \r\n


class Cursor:
    """Where a followed log stands, so that a new read resumes right after it.

    It counts log entries, as the engines' ``since`` does: ``last`` is the
    engine time of the last entry that went into a yielded line, ``count``
    how many such entries had that time (Podman's times are whole seconds).
    After :meth:`resume`, :meth:`fresh` skips those entries when the new
    read sends them again.

    >>> cursor = Cursor()
    >>> for stamp in [(5, 0), (6, 0), (6, 0)]:
    ...     cursor.consumed(stamp)
    >>> cursor.resume()
    datetime.datetime(1970, 1, 1, 0, 0, 6, tzinfo=datetime.timezone.utc)
    >>> [cursor.fresh(s) for s in [(6, 0), (6, 0), (6, 0), (7, 0)]]
    [False, False, True, True]
    """

    def __init__(self) -> None:
        self.last: _Stamp | None = None
        self.count = 0
        self._skip_until: _Stamp | None = None
        self._skip = 0

    def consumed(self, stamp: _Stamp | None) -> None:
        """Count one entry of this engine time as gone into a yielded line."""
        if stamp is not None and stamp == self.last:
            self.count += 1
        else:
            self.last, self.count = stamp, 1

    def resume(self) -> datetime | None:
        """Skip, from now on, what was consumed; the ``since`` of the new read."""
        self._skip_until, self._skip = self.last, self.count
        return None if self.last is None else stamp_moment(self.last)

    def fresh(self, stamp: _Stamp | None) -> bool:
        """Whether an entry at ``stamp`` is new, rather than one consumed before."""
        if self._skip_until is None or stamp is None:
            return True
        if stamp < self._skip_until:
            return False
        if stamp == self._skip_until and self._skip > 0:
            self._skip -= 1
            return False
        self._skip_until = None
        return True


class LineAssembler:
    """Joins log entries into lines, each with the engine time of its first entry.

    An entry may be a part of a line (Podman writes a partial line as an
    entry of its own); a line is complete at its newline. With a
    :class:`Cursor`, entries read before are skipped and the entries of
    each line returned are counted as consumed.

    >>> lines = LineAssembler(stamped=True)
    >>> lines.feed([b"2026-11-25T18:46:55Z part", b"2026-11-25T18:46:56Z ial\\r\\n"])
    [((1795632415, 0), 'partial')]
    >>> lines.feed([b"2026-11-25T18:46:57Z no newline"]), lines.flush()
    ([], [((1795632417, 0), 'no newline')])
    """

    def __init__(self, stamped: bool, cursor: Cursor | None = None) -> None:
        self._stamped = stamped
        self._cursor = cursor
        self._pending = bytearray()
        self._started = False
        self._stamp: _Stamp | None = None
        self._open: list[_Stamp | None] = []  # entries not wholly in a returned line yet

    def feed(self, entries: Iterable[bytes]) -> list[tuple[_Stamp | None, str]]:
        """The lines these entries complete, each with the engine time of its first entry."""
        if not self._stamped:
            return self._feed_plain(entries)
        out: list[tuple[_Stamp | None, str]] = []
        cursor = self._cursor
        for raw in entries:
            entry, stamp = raw, None
            head, sep, rest = raw.partition(b" ")
            if sep:
                stamp = parse_stamp(head)
                if stamp is not None:
                    entry = rest
            if cursor is not None and not cursor.fresh(stamp):
                continue
            if not self._pending and entry.find(b"\n") == len(entry) - 1:
                out.append((stamp, _decode(entry[:-1])))  # the usual entry: one whole line
                if cursor is not None:
                    cursor.consumed(stamp)
                continue
            self._add(entry, stamp, out)
        return out

    def _add(
        self, entry: bytes, stamp: _Stamp | None, out: list[tuple[_Stamp | None, str]]
    ) -> None:
        self._open.append(stamp)
        start = 0
        while True:
            if not self._started:
                self._started, self._stamp = True, stamp
            end = entry.find(b"\n", start)
            if end < 0:
                self._pending += entry[start:]
                if not self._pending:
                    self._started = False  # an empty entry starts no line
                return
            self._pending += entry[start:end]
            out.append((self._stamp, _decode(self._pending)))
            self._pending.clear()
            self._started = False
            start = end + 1
            whole = start == len(entry)
            done = self._open if whole else self._open[:-1]
            if self._cursor is not None:
                for consumed in done:
                    self._cursor.consumed(consumed)
            self._open = [] if whole else self._open[-1:]
            if whole:
                return

    def _feed_plain(self, entries: Iterable[bytes]) -> list[tuple[_Stamp | None, str]]:
        # Without times, entry boundaries do not matter: cut the bytes at newlines.
        self._pending += b"".join(entries)
        end = self._pending.rfind(b"\n")
        if end < 0:
            return []
        text = self._pending[: end + 1].decode("utf-8", errors="replace")
        del self._pending[: end + 1]
        return [(None, line) for line in text.replace("\r\n", "\n").split("\n")[:-1]]

    def flush(self) -> list[tuple[_Stamp | None, str]]:
        """The end of the output: a last line without a newline, if any."""
        out = [(self._stamp, _decode(self._pending))] if self._pending else []
        if self._cursor is not None:
            for consumed in self._open:
                self._cursor.consumed(consumed)
        self._pending.clear()
        self._open = []
        self._started = False
        return out


def render_line(stamp: _Stamp | None, text: str, timestamps: bool, ansi: bool) -> str:
    """A session line as ``logs()`` returns it: with its time in tmux's format, ANSI kept or not.

    >>> render_line(None, "\x1b[1mhi\x1b[0m", timestamps=True, ansi=False)
    'hi'
    """
    if not ansi:
        text = strip_ansi(text)
    if timestamps and stamp is not None:
        return f"{_stamp_text(stamp)} {text}"
    return text
