"""tmux's events source: the server's collector journal, pushed to its readers.

Every session's wrapper prints an event mark (carrying the run's secret
nonce) when a run begins and when it exits, with its exit code and whether a
stop ended it; the server's one collector, which reads every pane's output,
cuts the marks out of the logs and appends one record per change to the
server folder's ``events`` journal (0600, rotated to ``events.1`` past 1 MiB),
plus ``removed`` when a session's pane is gone. After each batch it writes a
byte into every reader's FIFO in the folder's ``watch/``: a reader blocks on
its FIFO and a self-pipe (for :meth:`~kstlib.ops.eventstream.EventStream.close`),
no one polls, no inotify. The collector's ``hello`` and ``bye`` records tell
a reader that the collector went away and came back (a new server): the
source then emits ``resync`` and a fresh snapshot.

tmux >= 3.4's control-mode notifications (``%session-closed``...) could
feed this too, but they say nothing of exit codes or restarts, and the
control channel stays off on older servers; the collector sees every run
on every version.

Example:
    >>> _parse(b"2026-01-01T00:00:00.000000Z\\texited\\t3\\t-\\tbot.1f2e")[1:]
    ('exited', 3, None, 'bot.1f2e')
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import select
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kstlib.ops.eventstream import SessionEvent, Sink, Source
from kstlib.ops.exceptions import StateDirError
from kstlib.ops.models import BackendType, SessionState
from kstlib.ops.tmux import files
from kstlib.ops.tmux.collector import EVENTS_FILE, WATCH_DIR
from kstlib.ops.tmux.logs import collector_alive
from kstlib.ops.tmux.pane import parse

__all__: list[str] = []

_KINDS = frozenset({"started", "restarted", "exited", "stopped", "removed"})
_CHUNK = 65536


def _parse(line: bytes) -> tuple[datetime, str, int | None, int | None, str] | None:
    """One journal record: ``(time, kind, code, count, name)``, or ``None`` if malformed."""
    parts = line.split(b"\t", 4)
    if len(parts) != 5:
        return None
    stamp, kind, code, count, name = (p.decode("utf-8", "surrogateescape") for p in parts)
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    number = int(code) if code.isdigit() else None
    return when, kind, number, int(count) if count.isdigit() else None, name


class TmuxSource(Source):
    """One tmux server's sessions: snapshot from a listing, then the collector's journal."""

    def __init__(
        self,
        sink: Sink,
        closed: threading.Event,
        names: frozenset[str] | None,
        socket_name: str | None,
        socket_path: str | None,
    ) -> None:
        super().__init__(sink, closed, names)
        from kstlib.ops.tmux.runner import TmuxRunner

        self.runner = TmuxRunner(socket_name=socket_name, socket_path=socket_path)
        self.engine = socket_path or socket_name or "default"
        self.folder = files.server_folder(socket_name, socket_path, create=True)
        self.journal = self.folder / EVENTS_FILE
        watch = self.folder / WATCH_DIR
        self.fifo = watch / f"{os.getpid()}-{secrets.token_hex(6)}"
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(watch, 0o700)
            st = os.lstat(watch)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                raise StateDirError(str(watch), "is not a folder of yours")
            os.mkfifo(self.fifo, 0o600)
            # O_RDWR: the FIFO never reports end-of-file between the collector's writes.
            self.reader = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(self.fifo)
            if isinstance(err, StateDirError):
                raise
            raise StateDirError(str(watch), f"cannot be used ({err.strerror})") from err
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.fd: int | None = None
        self.partial = b""
        self.collector: int | None = None  # the pid of the collector last known
        self.alive: set[str] = set()  # the runs told and not yet removed
        self.gone = False  # its ``bye`` was read
        self.again = False  # a new collector: resync
        # Per run the snapshot showed: the last run start it told, how many of
        # the run's exits it told, and whether it showed it running. A record
        # the journal brings later of what the listing already showed is skipped.
        self.told: dict[str, list[int]] = {}

    def event(self, name: str, kind: str, **fields: Any) -> SessionEvent:
        return SessionEvent(name, BackendType.TMUX, kind, engine=self.engine, **fields)

    def watch(self, first: bool) -> None:
        if not first:
            self.emit(self.event("", "resync"))
        self._open_journal(at_end=True)
        self.collector, self.gone, self.again = self._collector_pid(), False, False
        self.told.clear()
        self.alive.clear()
        for line in self._listing():
            pane = parse(line, self.runner.socket_name)
            st = pane.status
            if not st.managed:
                continue
            running = st.state is SessionState.RUNNING
            kind = "started" if running else "exited"
            code = None if running else st.exit_code
            if pane.log is not None and pane.log.name.endswith(".log"):
                # The journal may still bring what this listing shows: not told twice.
                count = st.restart_count or 0
                run = pane.log.name[: -len(".log")]
                self.told[run] = [count, count + (not running), running]
                self.alive.add(run)
            self.emit(self.event(st.name, kind, exit_code=code, snapshot=True))
        while not self.closed.is_set():
            self._read_new()
            if self.again or self.closed.is_set():
                return  # the loop sleeps a moment and comes back with a resync
            ready, _, _ = select.select([self.reader, self.wake_r], [], [])
            for fd in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(fd, 4096):
                        pass

    def _collector_pid(self) -> int | None:
        """The pid of the collector serving the folder now, if one is."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.folder / "collector.lock").read_bytes().split()[0])
            return pid if collector_alive(self.folder) else None
        return None

    def _open_journal(self, *, at_end: bool) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.partial = b""
        flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(self.journal, flags, 0o600)
        if at_end:
            os.lseek(self.fd, 0, os.SEEK_END)

    def _read_new(self) -> None:
        """Every complete record appended since the last read (across a rotation)."""
        while self.fd is not None and not self.again:
            chunk = os.read(self.fd, _CHUNK)
            if chunk:
                *lines, self.partial = (self.partial + chunk).split(b"\n")
                for line in lines:
                    if not self.again:  # past a new collector's hello the snapshot tells
                        self._record(line)
                continue
            try:  # at its end: was it rotated (or made anew by a new collector)?
                current = os.stat(self.journal, follow_symlinks=False).st_ino
            except FileNotFoundError:
                return
            if current == os.fstat(self.fd).st_ino:
                return
            self._open_journal(at_end=False)

    def _record(self, line: bytes) -> None:
        parsed = _parse(line)
        if parsed is None:
            return
        when, kind, code, count, name = parsed
        if kind == "hello":  # a collector began: one that left no ``bye`` was lost
            if self.collector is not None and not self.gone:
                self.again = True
            self.collector, self.gone = code, False
        elif kind == "bye":  # everything it served is told; a run no one serves is gone
            self.gone = True
            for run in sorted(self.alive):
                if not os.path.lexists(self.folder / f"{run}.fifo"):
                    self.alive.discard(run)
                    self.told.pop(run, None)
                    self.emit(self.event(run.rpartition(".")[0], "removed", time=when))
        elif kind in _KINDS and name and not self._told(kind, name, count):
            if kind == "removed":
                self.alive.discard(name)
            else:
                self.alive.add(name)
            restarts = count if kind == "restarted" else None
            exit_code = code if kind == "exited" else None
            session = name.rpartition(".")[0]
            self.emit(
                self.event(session, kind, time=when, exit_code=exit_code, restart_count=restarts)
            )

    def _told(self, kind: str, run: str, count: int | None) -> bool:
        """Whether the snapshot already told this record of ``run``."""
        told = self.told.get(run)
        if told is None:
            return False
        if kind == "removed":
            del self.told[run]
            return False
        if kind in ("started", "restarted"):
            return (count or 0) <= told[0]
        if kind == "exited":
            if told[1] > 0:
                told[1] -= 1
                return True
            return False
        return not told[2]  # a stop comes with the last exit: told if it showed it exited

    def _listing(self) -> list[str]:
        """Every session of the server as :data:`~kstlib.ops.tmux.pane.FORMAT` lines."""
        from kstlib.ops.tmux.runner import session_lines

        return session_lines(self.runner)

    def close(self) -> None:
        super().close()
        with self._lock, contextlib.suppress(OSError):  # not once _leave closed it
            if self.wake_w >= 0:
                os.write(self.wake_w, b"x")

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            self._leave()

    def _leave(self) -> None:
        """Close every descriptor; remove the FIFO, and the journal once nobody needs it."""
        with self._lock:
            fds, self.wake_w = (self.fd, self.reader, self.wake_r, self.wake_w), -1
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = None
        with contextlib.suppress(OSError):
            os.unlink(self.fifo)
        _tidy(self.folder)


def _tidy(folder: Path) -> None:
    """With no collector and no reader left, the journal and the folder go."""
    if collector_alive(folder):
        return
    try:
        os.rmdir(folder / WATCH_DIR)
    except OSError as err:
        if err.errno != errno.ENOENT:
            return  # another reader is there
    for name in (EVENTS_FILE, EVENTS_FILE + ".1"):
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
    files.tidy(folder)
