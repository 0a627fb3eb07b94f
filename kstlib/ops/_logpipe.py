"""The tmux ``pipe-pane`` reader that keeps a session's output in a log file.

tmux runs ``python -m kstlib.ops._logpipe PATH MAX_BYTES`` with the pane's
output on stdin. Each line is written as ``<UTC ISO timestamp>\\t<text>\\n``
(carriage returns of the terminal removed). When the file would pass
``MAX_BYTES`` it is renamed to ``PATH.1`` (replacing an older one) and a new
file is started, so a session keeps at most twice ``MAX_BYTES`` of output.

Example:
    >>> import io, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "s.log")
    >>> open(path, "w").close()
    >>> pump(io.BytesIO(b"one\\r\\ntwo"), path, 1024)
    >>> [line.split("\\t", 1)[1] for line in open(path).read().splitlines()]
    ['one', 'two']
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import BinaryIO

__all__ = ["END_MARKER", "END_RECORD", "pump"]

_CHUNK = 65536
#: Written to the terminal by the session wrapper after the command exits: an
#: OSC sequence the terminal ignores, so everything before it is the output.
END_MARKER = b"\x1b]7707;kstlib-end\x07"
#: The record that marks the end of a run in the log file (records otherwise
#: start with a timestamp digit).
END_RECORD = b"#kstlib-end\n"


def _stamp() -> bytes:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class _Writer:
    """Appends records as bytes arrive, so a partial line (a prompt) is visible at once."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        # kstlib creates the file before the session starts; no O_CREAT, so a
        # writer that starts after its session was stopped and its log removed
        # writes nowhere instead of leaving a file behind.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.file = os.fdopen(fd, "ab")
        self.size = self.file.tell()
        self.in_line = False

    def _rotate_if_full(self) -> None:
        if self.size >= self.max_bytes:
            self.file.close()
            os.replace(self.path, self.path + ".1")
            self.file = open(self.path, "ab")  # noqa: SIM115 - open until the pane closes
            self.size = 0

    def _put(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def feed(self, data: bytes) -> None:
        """Write terminal output: each line becomes ``<stamp>\\t<text>\\n``."""
        data = data.replace(b"\r", b"")
        while data:
            if not self.in_line:
                self._rotate_if_full()
                self._put(_stamp() + b"\t")
                self.in_line = True
            text, newline, data = data.partition(b"\n")
            self._put(text + newline)
            if newline:
                self.in_line = False

    def end(self) -> None:
        """Close a partial line and write the end-of-run record."""
        if self.in_line:
            self._put(b"\n")
            self.in_line = False
        self._put(END_RECORD)

    def close(self) -> None:
        if self.in_line:
            self._put(b"\n")
        self.file.close()


def pump(stream: BinaryIO, path: str, max_bytes: int) -> None:
    """Copy ``stream`` to the log file ``path`` line by line, with timestamps.

    Example:
        >>> import io, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "s.log")
        >>> open(path, "w").close()
        >>> pump(io.BytesIO(b"a\\nb" + END_MARKER), path, 1024)
        >>> [r.split(b"\\t")[-1] for r in open(path, "rb").read().splitlines()]
        [b'a', b'b', b'#kstlib-end']
    """
    try:
        writer = _Writer(path, max_bytes)
    except FileNotFoundError:  # the session is already gone: drain and leave
        while stream.read(_CHUNK):
            pass
        return
    # Keep back a tail that could be the start of a split end marker.
    keep = len(END_MARKER) - 1
    pending = b""
    try:
        while True:
            chunk = stream.read1(_CHUNK) if hasattr(stream, "read1") else stream.read(_CHUNK)
            if not chunk:
                break
            pending += chunk
            while END_MARKER in pending:
                before, _, pending = pending.partition(END_MARKER)
                writer.feed(before)
                writer.end()
            cut = len(pending)
            escape = pending.rfind(b"\x1b", max(0, cut - keep))
            if escape >= 0 and END_MARKER.startswith(pending[escape:]):
                cut = escape
            writer.feed(pending[:cut])
            pending = pending[cut:]
            writer.file.flush()
        writer.feed(pending)
    finally:
        writer.close()


def main(argv: list[str]) -> int:
    """Entry point used by tmux ``pipe-pane``.

    Example:
        >>> main([])
        2
    """
    if len(argv) != 2:
        return 2
    pump(sys.stdin.buffer, argv[0], int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
