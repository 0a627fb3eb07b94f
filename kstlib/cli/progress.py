"""The pull progress bar of the CLI: one line on stderr, redrawn in place, only on a terminal.

Piped or redirected, stderr gets nothing: the command prints its result and
nothing else (the ``kstlib.ops`` loggers still have a line per layer).

Example:
    >>> import io
    >>> from kstlib.ops.images import PullProgress
    >>> out = io.StringIO()
    >>> bar = ProgressBar(out, width=60)
    >>> bar(PullProgress("app:1", None, "pulling"))
    >>> bar(PullProgress("app:1", "ff67cf588786", "downloading", 1_500_000, 3_000_000))
    >>> bar(PullProgress("app:1", "ff67cf588786", "done"))
    >>> bar(PullProgress("app:1", None, "complete", 3_000_000, 3_000_000))
    >>> print(out.getvalue().split("\\r")[-1].replace("\\x1b[K", "").strip())
    Pulled app:1: 1 layer, 3.0 MB
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from kstlib.ops.images import PullProgress

__all__ = ["ProgressBar", "terminal_progress"]

_BAR = 24


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f}"


class ProgressBar:
    """Draws :class:`~kstlib.ops.images.PullProgress` events as one line on ``stream``.

    Example:
        >>> import io
        >>> ProgressBar(io.StringIO()).dirty
        False
    """

    def __init__(self, stream: TextIO, width: int | None = None) -> None:
        self.stream = stream
        self.width = width
        self.dirty = False
        self._layers: set[str] = set()
        self._done: set[str] = set()
        self._bytes: dict[str, tuple[int, int]] = {}

    def _columns(self) -> int:
        if self.width is not None:
            return self.width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size((80, 24)).columns

    def __call__(self, event: PullProgress) -> None:
        """Take one event and redraw the line (the final event ends it).

        Example:
            >>> import io
            >>> from kstlib.ops.images import PullProgress
            >>> out = io.StringIO()
            >>> ProgressBar(out, width=80)(PullProgress("app:1", "abcabcabcabc", "waiting"))
            >>> "Pulling app:1 [------------------------] 0/1 layers" in out.getvalue()
            True
        """
        if event.layer is not None:
            self._layers.add(event.layer)
            if event.status in ("done", "exists"):
                self._done.add(event.layer)
                known = self._bytes.get(event.layer)
                if known is not None:
                    self._bytes[event.layer] = (known[1], known[1])
            elif event.status == "downloading" and event.total:
                self._bytes[event.layer] = (event.current or 0, event.total)
        if event.is_final:
            self._write(self._final(event), end="\n")
            self.dirty = False
            return
        self._write(self._line(event))

    def _line(self, event: PullProgress) -> str:
        got = sum(c for c, _ in self._bytes.values())
        total = sum(t for _, t in self._bytes.values())
        layers = len(self._layers)
        if total:
            share = got / total
        elif layers:
            share = len(self._done) / layers
        else:
            share = 0.0
        filled = round(share * _BAR)
        bar = "[" + "#" * filled + "-" * (_BAR - filled) + "]"
        size = f" {_megabytes(got)}/{_megabytes(total)} MB" if total else ""
        counted = f" {len(self._done)}/{layers} layers" if layers else ""
        tail = f" {bar}{size}{counted}"
        # A long image name gives way (its end, the tag, stays): the numbers must show.
        room = max(self._columns() - 1 - len("Pulling ") - len(tail), 12)
        image = event.image if len(event.image) <= room else "..." + event.image[-(room - 3) :]
        return f"Pulling {image}{tail}"

    def _final(self, event: PullProgress) -> str:
        layers = len(self._layers)
        size = sum(t for _, t in self._bytes.values())
        what = f"{layers} layer" + ("" if layers == 1 else "s")
        return f"Pulled {event.image}: {what}" + (f", {_megabytes(size)} MB" if size else "")

    def _write(self, text: str, end: str = "") -> None:
        columns = max(self._columns() - 1, 20)
        if len(text) > columns:
            text = text[: columns - 3] + "..."
        # \r and erase-to-end-of-line: the line is redrawn in place.
        self.stream.write(f"\r{text}\x1b[K{end}")
        self.stream.flush()
        self.dirty = not end

    def close(self) -> None:
        """End an unfinished line (a pull that failed), so the error starts on its own line.

        Example:
            >>> import io
            >>> out = io.StringIO(); bar = ProgressBar(out)
            >>> bar.close(); out.getvalue()
            ''
        """
        if self.dirty:
            self.stream.write("\n")
            self.stream.flush()
            self.dirty = False


def terminal_progress(stream: TextIO) -> ProgressBar | None:
    """A :class:`ProgressBar` on ``stream`` if it is a terminal, else ``None`` (stay quiet).

    Example:
        >>> import io
        >>> terminal_progress(io.StringIO()) is None
        True
    """
    try:
        if not os.isatty(stream.fileno()):
            return None
    except (AttributeError, ValueError, OSError):
        return None
    if os.environ.get("TERM") == "dumb":
        return None
    return ProgressBar(stream)
