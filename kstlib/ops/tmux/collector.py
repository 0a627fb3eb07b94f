"""The log collector: one process per tmux server writes every session's log.

tmux pipes each kstlib pane's output through ``pipe-pane 'exec cat >FIFO'``
into a per-run FIFO of the server's state folder; this one program (stdlib
only, started by tmux itself with ``run-shell -b``) reads every FIFO and
writes ``<run>.log``: one ``<UTC ISO timestamp>\\t<text>\\n`` record a line,
carriage returns removed, rotated to ``<run>.log.1`` past the run's size
limit. So a session costs a ``cat`` (about 0.14 MB), not an interpreter.

The run's end is the OSC sequence ``ESC ] 7707 ; kstlib-end ; NONCE BEL``
that the session wrapper prints after the command's last output; ``NONCE``
is a per-run secret from the log's header record (``#kstlib-run NONCE
MAX_BYTES``), so output that prints the sequence with any other nonce is
just output. At the mark the collector writes the ``#kstlib-end`` record.

tmux (3.3a at least) can drop what a pane printed just before its process
exited: on the child's exit it closes the pty once ``FIONREAD`` says 0, which
the kernel may say while those last bytes are still on their way. So each
exit also reaches the collector through ``<run>.exit``, a file the wrapper
appends ``N CODE STOP BEGAN`` to before it prints its exit mark; the exit
marks carry ``N`` too, and the collector tells each exit once, from whichever
channel brings it first (the file is read at every prune and when a run ends).

When a write fails (disk full) the output is dropped, the log is marked
degraded by clearing its owner write bit (``chmod`` needs no free block),
and every later chunk is tried again, so logging resumes once there is
room. One collector serves a folder at a time (``flock`` on
``collector.lock``, whose text is ``<pid> <tmux server pid>``). It learns
of new runs through the ``ctl`` FIFO (one ``<run>\\n`` a message). Once its
tmux server is gone it serves what it still has and then exits.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "r.log"), "wb") as f:
    ...     _ = f.write(HEADER + b" n1 4096\\n")
    >>> os.mkfifo(os.path.join(folder, "r.fifo"))
    >>> w = _Writer(folder, "r")
    >>> w.feed(b"a\\r\\nb" + end_mark(b"x") + end_mark(b"n1")); w.close()
    >>> [r.split(b"\\t")[-1] for r in open(os.path.join(folder, "r.log"), "rb").read().splitlines()]
    [b'#kstlib-run n1 4096', b'a', b'b\\x1b]7707;kstlib-end;x\\x07', b'#kstlib-end']
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import selectors
import signal
import stat
import sys
import time
from datetime import datetime, timezone

__all__ = [
    "END_RECORD",
    "EVENTS_FILE",
    "EVENTS_MAX_BYTES",
    "HEADER",
    "WATCH_DIR",
    "end_mark",
    "main",
]

#: The record that marks the end of a run in the log (data records start with a digit).
END_RECORD = b"#kstlib-end\n"
#: The first record of every log: ``#kstlib-run NONCE MAX_BYTES``.
HEADER = b"#kstlib-run"
_CHUNK = 65536
_PARENT_CHECK_S = 0.1
_PRUNE_S = 1.0
# Once its server is gone, the runs it had then get this long to deliver their
# last bytes (their pipe-pane cat ends with the server); a run that never had a
# writer (a start interrupted before its pane existed) is dropped after it.
_ORPHAN_GRACE_S = 5.0
_LOCK_WAIT_S = 2.0
_EVENT = b"\x1b]7707;kstlib-ev;"
_ENC, _ERR = "utf-8", "surrogateescape"
#: The server folder's events journal (see :class:`_Journal`) and its readers' FIFO folder.
EVENTS_FILE, WATCH_DIR = "events", "watch"
#: Past this size the journal is rotated to ``events.1`` (one old file is kept).
EVENTS_MAX_BYTES = 1 << 20


def end_mark(nonce: bytes) -> bytes:
    """The end-of-output sequence for a run with this nonce.

    Example:
        >>> end_mark(b"ab")
        b'\\x1b]7707;kstlib-end;ab\\x07'
    """
    return b"\x1b]7707;kstlib-end;" + nonce + b"\x07"


def _stamp() -> bytes:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class _Writer:
    """One run: its FIFO, its log file, rotation, the end mark, lost output."""

    def __init__(self, folder: str, run: str) -> None:
        self.run = run
        self.path = os.path.join(folder, run + ".log")
        self.fifo = os.path.join(folder, run + ".fifo")
        # No O_CREAT: kstlib creates the log; a run whose session is gone has none.
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        header = os.pread(self.fd, 256, 0).split(b"\n", 1)[0].split()
        if len(header) != 3 or header[0] != HEADER:
            os.close(self.fd)
            raise ValueError("no header")
        self.nonce = header[1]
        self.max_bytes = int(header[2])
        self.size = os.fstat(self.fd).st_size
        self.reader = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.inode = os.fstat(self.reader).st_ino
        self.buffer = b""
        self.in_line = False
        self.degraded = False
        self.added = time.monotonic()  # when the collector took it on
        self.marks: list[list[str]] = []  # event marks read, not yet recorded
        self.begun = False  # a run of it began (its session exists)
        self.exits = os.path.join(folder, run + ".exit")
        self.exits_read = 0  # bytes of the exit file read
        self.next_exit = 0  # the number of the next exit to tell
        self.last_run = -1  # the number of the last run whose begin was told

    def new_exits(self) -> list[list[str]]:
        """The complete records the wrapper appended to the run's exit file since the last call."""
        try:
            fd = os.open(self.exits, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return []  # an older wrapper's run, or removed with its session
        try:
            data = os.pread(fd, _CHUNK, self.exits_read)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        data = data[: data.rfind(b"\n") + 1]
        self.exits_read += len(data)
        return [line.decode("ascii", "replace").split() for line in data.splitlines()]

    def split(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Cut buffered output at marks: ``(text, ended)`` pieces ready to write.

        An event mark (``ESC ] 7707 ; kstlib-ev ; NONCE ; FIELDS BEL``) is cut
        out of the text and its fields are queued on :attr:`marks`.
        """
        mark = end_mark(self.nonce)
        event = _EVENT + self.nonce + b";"
        self.buffer += data.replace(b"\r", b"")
        out: list[tuple[bytes, bool]] = []
        while True:
            at_end, at_event = self.buffer.find(mark), self.buffer.find(event)
            if at_event >= 0 and (at_end < 0 or at_event < at_end):
                stop = self.buffer.find(b"\x07", at_event)
                if stop < 0:
                    break  # the rest of the mark is still to come
                fields = self.buffer[at_event + len(event) : stop].split(b";")
                self.marks.append([f.decode("ascii", "replace") for f in fields])
                if at_event:
                    out.append((self.buffer[:at_event], False))
                self.buffer = self.buffer[stop + 1 :]
            elif at_end >= 0:
                out.append((self.buffer[:at_end], True))
                self.buffer = self.buffer[at_end + len(mark) :]
            else:
                break
        # Keep back a tail that could be the start of a split mark.
        cut = len(self.buffer)
        escape = self.buffer.rfind(b"\x1b", max(0, cut - max(len(mark), len(event) + 16)))
        if escape >= 0:
            tail = self.buffer[escape:]
            if mark.startswith(tail) or event.startswith(tail) or tail.startswith(event):
                cut = escape
        if cut:
            out.append((self.buffer[:cut], False))
            self.buffer = self.buffer[cut:]
        return out

    def _emit(self, text: bytes, ended: bool) -> None:
        """Write ``text`` as records (rotating between records), then the end record."""
        out = bytearray()
        while text:
            if not self.in_line:
                if self.size + len(out) >= self.max_bytes:
                    self._write(bytes(out))
                    out.clear()
                    self._rotate()
                out += _stamp() + b"\t"
                self.in_line = True
            line, newline, text = text.partition(b"\n")
            out += line + newline
            if newline:
                self.in_line = False
        if ended:
            if self.in_line:
                out += b"\n"
                self.in_line = False
            out += END_RECORD
        self._write(bytes(out))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except OSError as err:
                if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
                    raise
                self._mark_degraded()  # dropped; the next chunk tries again
                return
        self.size += len(data)

    def _rotate(self) -> None:
        try:
            os.replace(self.path, self.path + ".1")
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError:
            return  # keep writing the old file: better too long than lost
        os.close(self.fd)
        self.fd, self.size = fd, 0
        if self.degraded:
            self._mark_degraded()

    def _mark_degraded(self) -> None:
        self.degraded = True
        with contextlib.suppress(OSError):
            os.fchmod(self.fd, 0o400)

    def feed(self, data: bytes) -> None:
        """Write new output; ``b""`` flushes what was held back (the pipe closed)."""
        if data:
            pieces = self.split(data)
        else:
            pieces, self.buffer = [(self.buffer, False)], b""
        for text, ended in pieces:
            self._emit(text, ended)

    def close(self) -> None:
        self.feed(b"")
        if self.in_line:
            self._write(b"\n")
            self.in_line = False
        for fd in (self.fd, self.reader):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.present():
            with contextlib.suppress(OSError):
                os.unlink(self.fifo)

    def present(self) -> bool:
        """Whether this run's FIFO is still in the folder (kstlib removes a stopped run's)."""
        try:
            return os.stat(self.fifo, follow_symlinks=False).st_ino == self.inode
        except OSError:
            return False


class _Journal:
    """The server's ``events`` file: one record a run's begin, end, stop and removal.

    A record is ``<UTC stamp>\\t<kind>\\t<exit code|->\\t<restart count|->\\t<run>``
    (``<run>`` is ``<session>.<run id>``, the stem of the run's log);
    ``hello`` (with the collector's pid as code, its server's as count) and ``bye`` mark the collector's
    own start and end. Past :data:`EVENTS_MAX_BYTES` the file is rotated to
    ``events.1``. After each batch every reader FIFO in ``watch/`` gets a byte:
    a reader blocks on its FIFO, no one polls.
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, EVENTS_FILE)
        self.watch = os.path.join(folder, WATCH_DIR)
        self.pending = bytearray()

    def add(self, kind: str, run: str = "", code: str = "-", count: str = "-") -> None:
        fields = (_stamp(), kind.encode(), code.encode(), count.encode(), run.encode(_ENC, _ERR))
        self.pending += b"\t".join(fields) + b"\n"

    def flush(self) -> None:
        if not self.pending:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with contextlib.suppress(OSError):  # a full disk loses events, never the logs
            fd = os.open(self.path, flags, 0o600)
            try:
                if os.fstat(fd).st_size >= EVENTS_MAX_BYTES:
                    os.replace(self.path, self.path + ".1")
                    os.close(fd)
                    fd = os.open(self.path, flags | os.O_EXCL, 0o600)
                os.write(fd, bytes(self.pending))
            finally:
                os.close(fd)
        self.pending.clear()
        self.wake()

    def wake(self) -> None:
        try:
            readers = os.listdir(self.watch)
        except OSError:
            return
        for entry in readers:
            path = os.path.join(self.watch, entry)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as err:
                if err.errno == errno.ENXIO:  # its reader is gone
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                continue
            with contextlib.suppress(OSError):  # full: it has a wake-up pending already
                os.write(fd, b"!")
            os.close(fd)

    def note(self, writer: _Writer) -> None:
        """Record the event marks ``writer`` read."""
        for fields in writer.marks:
            if fields[0] == "run" and len(fields) > 1 and fields[1].isdigit():
                writer.begun = True
                self._began(writer, int(fields[1]))
            elif fields[0] == "exit" and len(fields) > 2:
                number = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None
                self._exited(writer, number, fields[1], fields[2])
        writer.marks.clear()

    def exits(self, writer: _Writer) -> None:
        """Record the exits the wrapper wrote to the run's exit file and no mark told."""
        for fields in writer.new_exits():
            if len(fields) != 4 or not fields[0].isdigit():
                continue
            number = int(fields[0])
            if number < writer.next_exit:
                continue  # its mark told it
            if fields[3] == "1":  # the run began: its begin mark may be lost too
                writer.begun = True
                self._began(writer, number)
            self._exited(writer, number, fields[1], fields[2])

    def _began(self, writer: _Writer, count: int) -> None:
        if count > writer.last_run:
            writer.last_run = count
            kind = "restarted" if count else "started"
            self.add(kind, writer.run, count=str(count or "-"))

    def _exited(self, writer: _Writer, number: int | None, code: str, stop: str) -> None:
        if number is None:  # an older wrapper's mark: no number, told as it comes
            number = writer.next_exit
        if number < writer.next_exit:
            return  # its exit file told it
        writer.next_exit = number + 1
        self.add("exited", writer.run, code=code if code.isdigit() else "-")
        if stop not in ("", "0"):
            self.add("stopped", writer.run)

    def leave(self) -> None:
        """The collector ends: ``bye``; the files go too when no reader is left."""
        self.add("bye")
        self.flush()
        with contextlib.suppress(OSError):
            if not os.listdir(self.watch):
                os.rmdir(self.watch)
        if not os.path.isdir(self.watch):
            for path in (self.path, self.path + ".1"):
                with contextlib.suppress(OSError):
                    os.unlink(path)


class _Collector:
    def __init__(self, folder: str, server_pid: int) -> None:
        self.folder = folder
        self.journal = _Journal(folder)
        self.server_pid = server_pid
        self.selector = selectors.DefaultSelector()
        self.writers: dict[int, _Writer] = {}
        self.runs: set[str] = set()
        # Started after its server died (a server killed at once): an orphan from birth.
        self.orphaned = not _is_tmux(server_pid)
        # An orphan from birth cannot tell which server it was started by.
        server = "-" if self.orphaned else str(server_pid)
        self.journal.add("hello", code=str(os.getpid()), count=server)
        self.orphaned_at: float | None = None  # when the loop first saw it orphaned
        ctl = os.path.join(folder, "ctl")
        with contextlib.suppress(FileExistsError):
            os.mkfifo(ctl, 0o600)
        # O_RDWR: the control FIFO never reports end-of-file between writers.
        self.ctl = os.open(ctl, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        self.selector.register(self.ctl, selectors.EVENT_READ)
        self.pending = b""
        # A signal (tmux ending its jobs) wakes the loop through this pipe.
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def add(self, run: str) -> None:
        if run in self.runs or "/" in run or not run:
            return
        try:
            writer = _Writer(self.folder, run)
        except (OSError, ValueError):
            return  # its session is gone, or not a run of ours
        self.runs.add(run)
        self.writers[writer.reader] = writer
        self.selector.register(writer.reader, selectors.EVENT_READ)

    def scan(self) -> None:
        for entry in os.listdir(self.folder):
            if entry.endswith(".fifo"):
                self.add(entry[: -len(".fifo")])
        # Runs found at start-up were begun under an earlier collector: their
        # removal is still news (a run announced later reports its own begin).
        # What they did before is told again (their marks wait in their FIFO;
        # after a lost collector a reader resyncs and skips what it was shown).
        for writer in self.writers.values():
            writer.begun = True

    def drop(self, writer: _Writer) -> None:
        self.selector.unregister(writer.reader)
        del self.writers[writer.reader]
        self.runs.discard(writer.run)
        writer.close()
        self.journal.note(writer)
        self.journal.exits(writer)
        if writer.begun:
            self.journal.add("removed", writer.run)

    def read_ctl(self) -> None:
        while True:
            try:
                chunk = os.read(self.ctl, _CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.pending += chunk
        *runs, self.pending = self.pending.split(b"\n")
        for run in runs:
            self.add(run.decode("utf-8", "replace"))

    def pump(self, writer: _Writer) -> None:
        try:
            data = os.read(writer.reader, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            writer.feed(data)
            self.journal.note(writer)
        else:  # the pane's pipe closed: this run's output is complete
            self.drop(writer)

    def prune(self) -> None:
        """Record the exits the output lost; drop the runs no output can come for any more.

        Those whose FIFO was removed (a stopped session, a start that failed),
        and, a while after the server died, the runs it had then.
        """
        orphaned_at = self.orphaned_at
        late = orphaned_at is not None and time.monotonic() - orphaned_at > _ORPHAN_GRACE_S
        for writer in list(self.writers.values()):
            self.journal.exits(writer)
            if not writer.present() or (late and writer.added <= (orphaned_at or 0.0)):
                self.drop(writer)

    def run(self) -> None:
        self.scan()
        pruned = time.monotonic()
        while True:
            for key, _ in self.selector.select(_PARENT_CHECK_S):
                if key.fd == self.ctl:
                    self.read_ctl()
                elif key.fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 512)
                elif key.fd in self.writers:
                    self.pump(self.writers[key.fd])
            if os.getppid() != self.server_pid:
                self.orphaned = True  # the tmux server is gone
            if self.orphaned and self.orphaned_at is None:
                self.orphaned_at = time.monotonic()
            if self.orphaned or time.monotonic() - pruned > _PRUNE_S:
                self.prune()
                pruned = time.monotonic()
            # A collector whose server is gone still serves every run it has
            # (a new server's runs too, if it was told of them): it leaves only
            # once none is left and nobody has just announced one.
            self.journal.flush()
            if self.orphaned and not self.writers:
                self.read_ctl()
                if not self.writers:
                    break


def _lock(folder: str) -> int | None:
    """Hold ``collector.lock``; ``None`` if another collector keeps it."""
    path = os.path.join(folder, "collector.lock")
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # A collector whose server just died lets go within a moment.
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)
            continue
        try:  # a leaving collector unlinks the file: hold the one at the path
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _is_tmux(pid: int) -> bool:
    """Whether ``pid`` is a tmux process (the server that started this collector)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as handle:
            return handle.read().startswith(b"tmux")
    except OSError:
        return pid != 1  # no /proc: trust anything but init


def _raise_fd_limit() -> None:
    """Allow as many open files as the hard limit: two a session (its FIFO and its log)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _leave(folder: str) -> None:
    """Remove the control FIFO and the lock (still held), and the folder if empty."""
    for name in ("ctl", "collector.lock"):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def main(argv: list[str]) -> int:
    """Collect the logs of the tmux server folder ``argv[0]`` (run by tmux).

    Example:
        >>> main([])
        2
    """
    if len(argv) != 1:
        return 2
    folder = argv[0]
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return 2
    server_pid = os.getppid()
    _raise_fd_limit()
    fd = _lock(folder)
    if fd is None:
        return 0
    collector = _Collector(folder, server_pid)

    def orphan(_signum: int, _frame: object) -> None:
        collector.orphaned = True  # tmux ends its jobs when it exits

    signal.signal(signal.SIGTERM, orphan)
    signal.signal(signal.SIGHUP, orphan)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # informative only; a full disk must not stop us
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {server_pid}\n".encode(), 0)
    try:
        collector.run()
    finally:
        collector.journal.leave()
        _leave(folder)
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except (OSError, ValueError):  # its folder vanished or is not ours: nothing to collect
        code = 1
    sys.exit(code)
