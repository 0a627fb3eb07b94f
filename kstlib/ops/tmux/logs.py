"""Reading a tmux session's output: its log file, tmux's scrollback, following it.

A session kstlib started has a log written by the server's collector
(:mod:`kstlib.ops.tmux.collector`). When that log lost output (a full disk,
a killed collector), the status says ``log_degraded``, one warning says so,
reads fall back to what tmux still holds, and logging is resumed where it can
be (a new collector, the pane piped again).

Example:
    >>> pipe_command(Path("/s/#1.fifo"))  # tmux would expand a single '#'
    "[ -p '/s/##1.fifo' ] && exec cat >'/s/##1.fifo'"
"""

from __future__ import annotations

import os
import secrets
import shlex
import stat
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from kstlib.ops.cancel import pause
from kstlib.ops.exceptions import SessionError, SessionNotFoundError, SessionTimeoutError
from kstlib.ops.follow import Follow
from kstlib.ops.logfile import Since, ended, follow_lines, read_lines, strip_ansi
from kstlib.ops.runner import LogRequest, Runner
from kstlib.ops.tmux import files
from kstlib.ops.tmux.call import arg, fmt
from kstlib.ops.tmux.client import BACKEND, TmuxClient, exact_pane
from kstlib.ops.tmux.files import collector_alive
from kstlib.ops.tmux.pane import FORMAT, Pane, parse
from kstlib.ops.validators import validate_lines, validate_lookup_name, validate_optional_timeout

__all__ = ["TmuxLogs", "collector_alive"]

_COLLECTOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "collector.py")
#: How long a reader waits for the collector to catch up with an exited process.
_LOG_SETTLE = 2.0
HEIGHT = 50
_warned: set[str] = set()


def collector_command(folder: Path) -> str:
    """The ``run-shell -b`` command that starts a folder's collector (format-escaped)."""
    argv = [sys.executable, "-I", "-S", _COLLECTOR, str(folder)]
    # tmux ends its jobs with SIGTERM when its server exits: a collector still
    # starting up would die of it before it opened the FIFOs whose pipe-pane
    # shells wait in open(). Ignored, the signal is lost instead; the collector
    # sees its server gone by itself and serves (so frees) every run it finds.
    command = "trap '' TERM HUP; exec " + shlex.join(argv) + " </dev/null >/dev/null 2>&1"
    return arg(fmt(command))


def pipe_command(fifo: Path) -> str:
    """The ``pipe-pane`` command that feeds a pane's output into its run's FIFO."""
    # Only into the FIFO: were it gone, ">" would make a regular file that grows forever.
    quoted = shlex.quote(str(fifo))
    return arg(fmt(f"[ -p {quoted} ] && exec cat >{quoted}"))


#: How often a follow asks tmux whether its session still runs (seconds).
_ASK_EVERY = 2.0


def _exists(pid: int) -> bool:
    """Whether process ``pid`` exists (a signal 0 to it; refused: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def log_lost_output(log: Path) -> bool:
    """Whether the collector marked this log as having lost output (owner write bit off)."""
    try:
        return not os.stat(log, follow_symlinks=False).st_mode & stat.S_IWUSR
    except OSError:
        return False


class TmuxLogs(TmuxClient, Runner):
    """Log reading, following and waiting for tmux sessions (a base of TmuxRunner)."""

    def _degraded(self, pane: Pane) -> bool:
        """Whether output of this run is missing from its log (and resume logging)."""
        if pane.log is None or not pane.status.managed:
            return False
        broken = pane.status.is_running and not pane.piped
        if broken:
            self._resume(pane, pane.log)
        if broken or log_lost_output(pane.log):
            key = str(pane.log)
            if key not in _warned:
                _warned.add(key)
                message = (
                    f"the log of tmux session {pane.status.name!r} lost output (disk full or "
                    "log collector killed); reads fall back to tmux's scrollback"
                )
                warnings.warn(message, RuntimeWarning, stacklevel=4)
            return True
        return False

    def _resume(self, pane: Pane, log: Path) -> None:
        """Pipe a pane whose pipe died into a (new) collector again."""
        folder, run = log.parent, log.name[: -len(".log")]
        fifo = folder / f"{run}.fifo"
        with suppress(OSError):
            os.chmod(log, 0o400, follow_symlinks=False)  # output was lost: say so for good
        try:
            os.mkfifo(fifo, 0o600)
        except FileExistsError:
            pass
        except OSError:
            return  # its folder is gone: nothing to resume into
        args: list[str] = []
        if not (files.wake_collector(folder, run) and collector_alive(folder)):
            args += ["run-shell", "-b", collector_command(folder), ";"]
        args += ["pipe-pane", "-t", exact_pane(pane.status.name), "-o", pipe_command(fifo)]
        self._run(SessionError, pane.status.name, *args, missing_ok=True)

    def _settle(self, pane: Pane) -> None:
        """For an exited session, wait (briefly) until its log holds all its output."""
        log = pane.log
        if log is None or pane.status.is_running or not pane.piped or ended(log):
            return  # nothing to wait for, or nobody left to write it
        if log_lost_output(log):
            return
        if not collector_alive(log.parent):
            self._run(SessionError, None, "run-shell", "-b", collector_command(log.parent))
        deadline = time.monotonic() + _LOG_SETTLE
        # While the collector rotates, the log is briefly only "<run>.log.1": still settling.
        rotated = log.with_name(log.name + ".1")
        while not ended(log) and time.monotonic() < deadline:
            if not log.exists() and not rotated.exists():
                return  # stopped and tidied away meanwhile
            time.sleep(0.01)

    def _read_logs(self, name: str, request: LogRequest) -> str:
        """:meth:`~kstlib.ops.runner.Runner.logs` on tmux: the log file, else the scrollback.

        (Example: :meth:`wait`'s.)
        """
        lines, since, timestamps, ansi = (
            request.lines,
            request.since,
            request.timestamps,
            request.ansi,
        )
        validate_lookup_name(name)
        validate_lines(lines)
        captured: list[str] | None = None
        if lines is not None and since is None and not timestamps and self._channels is None:
            pane, captured = self._pane_and_capture(name, lines, ansi)
        else:
            pane = self._pane_or_missing(name)
        degraded = self._degraded(pane)
        if not degraded:
            self._settle(pane)
        has_log = pane.log is not None and pane.log.exists()
        # A degraded log still holds the only timestamps; otherwise tmux holds more.
        if pane.log is not None and has_log and (not degraded or since is not None or timestamps):
            return "\n".join(
                read_lines(pane.log, lines, since=since, timestamps=timestamps, ansi=ansi)
            )
        if since is not None or timestamps:
            raise SessionError(
                f"tmux session {name!r} was not started by kstlib, so it has no log file; "
                "since= and timestamps= need one"
            )
        return self._capture(name, lines, ansi, captured)

    @staticmethod
    def _capture_args(name: str, lines: int | None, ansi: bool) -> list[str]:
        start = "-" if lines is None else f"-{max(lines, 1) + HEIGHT}"
        args = ["capture-pane", "-p", "-J", "-t", exact_pane(name), "-S", start]
        return [*args, "-e"] if ansi else args

    def _pane_and_capture(self, name: str, lines: int, ansi: bool) -> tuple[Pane, list[str]]:
        """The pane and its last ``lines`` of scrollback in one tmux call (forked path).

        The scrollback serves a session without a log (one kstlib did not
        start); a random mark line separates the two answers.
        """
        mark = f"kstlib-capture-{secrets.token_hex(8)}"
        query = ["list-panes", "-t", exact_pane(name), "-F", FORMAT, ";"]
        query += ["display-message", "-p", mark, ";", *self._capture_args(name, lines, ansi)]
        out, _ = self._chain(SessionError, name, *query)
        if mark not in out or out[0] == mark:  # list-panes failed: no such session
            raise SessionNotFoundError(name, BACKEND)
        at = out.index(mark)
        return self._trusted(parse(out[0], self.socket_name)), out[at + 1 :]

    def _capture(
        self, name: str, lines: int | None, ansi: bool, captured: list[str] | None = None
    ) -> str:
        if captured is None:
            captured = self._run(SessionError, name, *self._capture_args(name, lines, ansi))
        text = [line.rstrip() for line in captured or []]
        while text and not strip_ansi(text[-1]).strip():
            text.pop()
        if text and strip_ansi(text[-1]).startswith("Pane is dead ("):
            text.pop()
            while text and not strip_ansi(text[-1]).strip():
                text.pop()
        if lines is not None:
            text = text[-lines:] if lines else []
        return "\n".join(text)

    def _follow_logs(self, name: str, request: LogRequest) -> Iterator[str]:
        """:meth:`~kstlib.ops.runner.Runner.follow_logs` on tmux: the session's log file, polled.

        It ends when the session's process has exited and its last lines are read.

        Example:
            >>> from kstlib.ops import SessionConfig, TmuxRunner
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc6", command="sleep 0.3; echo a; echo b"))
            >>> list(runner.follow_logs("doc6"))
            ['a', 'b']
            >>> list(runner.follow_logs("doc6", lines=1))
            ['b']
            >>> runner.stop("doc6")
            True
        """
        since, lines, timeout = request.since, request.lines, request.timeout
        validate_lookup_name(name)
        validate_optional_timeout(timeout)
        validate_lines(lines)
        pane = self._pane_or_missing(name)
        if pane.log is None:
            raise SessionError(
                f"tmux session {name!r} was not started by kstlib, so it has no log file to follow"
            )
        if lines is not None:
            self._settle(pane)  # an exited session's backlog holds all of its output
        return self._follow(
            name,
            pane.log,
            since=since,
            lines=lines,
            timestamps=request.timestamps,
            ansi=request.ansi,
            timeout=timeout,
        )

    def _follow(
        self,
        name: str,
        log: Path,
        *,
        since: Since | None,
        lines: int | None,
        timestamps: bool,
        ansi: bool,
        timeout: float | None,
    ) -> Iterator[str]:
        follow = Follow(name, BACKEND, timeout, f"still running after {timeout} s")

        def source(follow: Follow) -> Iterator[str]:
            timed_out = False
            pid: int | None = None  # the pane's process, as tmux last said
            asked = 0.0

            def alive() -> bool:
                nonlocal timed_out, pid, asked
                if follow.expired():
                    timed_out = True
                    return False
                # Between tmux's answers (each one a tmux client forked), the pane's
                # process still there says the run goes on; tmux is asked anyway every
                # _ASK_EVERY s (a stop that left the process alive, a reused pid).
                if pid is not None and time.monotonic() - asked < _ASK_EVERY and _exists(pid):
                    return True
                asked = time.monotonic()
                current = self._query(name)
                pid = current.status.pid if current is not None else None
                return current is not None and current.status.is_running

            yield from follow_lines(
                log,
                alive,
                since=since,
                lines=lines,
                timestamps=timestamps,
                ansi=ansi,
                wait=follow.wait,
            )
            if timed_out:
                raise follow.timeout_error()

        return follow.lines(source)

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait for the session's process to exit and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds (``None``: wait as long as it takes).

        Example:
            >>> from kstlib.ops import SessionConfig, TmuxRunner
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc7", command="echo hi; exit 7"))
            >>> runner.wait("doc7", timeout=5)
            7
            >>> runner.logs("doc7")  # all of it, after the exit too
            'hi'
            >>> runner.stop("doc7")
            True
        """
        validate_lookup_name(name)
        validate_optional_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.02
        while True:
            pane = self._pane_or_missing(name)
            st = pane.status
            if not st.is_running:
                self._settle(pane)
                return st.exit_code if st.exit_code is not None else -1
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionTimeoutError(name, BACKEND, f"still running after {timeout} s")
            pause(interval)
            interval = min(interval * 1.5, 0.2)
