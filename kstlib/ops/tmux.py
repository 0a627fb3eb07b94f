"""The tmux backend: sessions on a tmux server, driven through libtmux.

libtmux is imported on first use, so ``import kstlib.ops`` stays fast. Every
operation is a single targeted tmux command (``=name`` exact targets), never
a listing of every session to read one; ``list_sessions`` is one command
however many sessions exist.

Example:
    >>> runner = TmuxRunner(socket_name="kstlib-doc")
    >>> st = runner.start(SessionConfig(name="doc", command="echo hello; sleep 30"))
    >>> runner.status("doc").state.value
    'running'
    >>> runner.stop("doc")
    >>> runner.exists("doc")
    False
"""

from __future__ import annotations

import math
import os
import re
import select
import shlex
import signal
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from kstlib.ops.exceptions import (
    OpsError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
    TmuxNotFoundError,
)
from kstlib.ops.logfile import (
    MAX_LOG_BYTES,
    Since,
    ended,
    follow_lines,
    read_lines,
    remove_log,
    state_dir,
    strip_ansi,
)
from kstlib.ops.models import (
    BackendType,
    SessionConfig,
    SessionState,
    SessionStatus,
    SessionTable,
)
from kstlib.ops.validators import validate_lookup_name

if TYPE_CHECKING:
    import libtmux

__all__ = ["MANAGED_OPTION", "TmuxRunner"]

#: Session user option that marks a session started by kstlib.
MANAGED_OPTION = "@kstlib-managed"
#: Pane user option where the session's wrapper records the exit code.
EXIT_OPTION = "@kstlib-exit"
#: Pane user option where the wrapper counts the restarts of its restart policy.
RESTARTS_OPTION = "@kstlib-restarts"
#: Session user option holding the path of the session's log file.
LOG_OPTION = "@kstlib-log"
_LOGPIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_logpipe.py")
_SEP = "\x1f"
# tmux 3.3 loses the exit status of a process that exits within milliseconds
# of starting in about 1 start of 100 (pane dead, no status). A tiny sh
# wrapper runs the command as its only child and stores the code in a pane
# option before it exits, so the status is never lost. It handles TERM and
# INT with a no-op so it outlives the command: the command itself keeps the
# default dispositions and its own traps. HUP keeps its default: when the
# terminal goes away (the tmux server was killed, or the session killed from
# outside), the wrapper dies as the session leader and the kernel hangs up
# the command too, as under plain tmux; trapping it would leave the command
# running forever with nobody to stop it.
_WRAPPER = (
    # $1 tmux binary, $2 restart mode, $3 most restarts (0: no limit), then the command.
    "t=$1; mode=$2; most=$3; shift 3; stop=0; n=0; "
    "trap 'stop=1' TERM INT; "
    "while :; do "
    '"$@"; s=$?; '
    '"$t" set-option -p -t "$TMUX_PANE" ' + EXIT_OPTION + ' "$s" 2>/dev/null; '
    '[ "$stop" = 1 ] && break; '
    "case $mode in always|unless-stopped) ;; "
    'on-failure) [ "$s" -ne 0 ] || break; [ "$most" -eq 0 ] || [ "$n" -lt "$most" ] || break;; '
    "*) break;; esac; "
    "n=$((n+1)); "
    '"$t" set-option -p -t "$TMUX_PANE" ' + RESTARTS_OPTION + ' "$n" 2>/dev/null; '
    'sleep 0.1; [ "$stop" = 1 ] && break; '
    "done; "
    # An OSC sequence the terminal ignores: the log pipe's end-of-output mark.
    "printf '\\033]7707;kstlib-end\\007'; "
    'exit "$s"'
)
#: How long a reader waits for the log pipe to catch up with an exited process.
_LOG_SETTLE = 2.0
# One format serves status() and list_sessions(); the name comes last because
# a foreign session's name is the only free text in it.
_FIELDS = (
    "#{pane_pid}",
    "#{pane_dead}",
    "#{pane_dead_status}",
    "#{pane_dead_signal}",
    "#{session_created}",
    "#{session_windows}",
    f"#{{{MANAGED_OPTION}}}",
    f"#{{{EXIT_OPTION}}}",
    f"#{{{LOG_OPTION}}}",
    f"#{{{RESTARTS_OPTION}}}",
    "#{session_name}",
)
_FORMAT = _SEP.join(_FIELDS)
_POLL_INTERVAL = 0.02
_SERVER_RESTART_WAIT = 2.0
_WIDTH, _HEIGHT = "200", "50"
_BACKEND = BackendType.TMUX

# tmux's own error texts, grouped by what they mean for a caller.
_NOT_FOUND = (
    "can't find session",
    "no such session",
    "session not found",
    "can't find pane",
    "can't find window",
)
_NO_SERVER = (
    "no server running",
    "error connecting to",
    "server exited unexpectedly",
    "no current target",  # a server that is shutting down
)
_DUPLICATE = ("duplicate session",)


def _exact(name: str) -> str:
    """Target a session by exact name (tmux otherwise matches prefixes)."""
    return f"={name}"


def _exact_pane(name: str) -> str:
    """Target the active pane of a session by exact name."""
    return f"={name}:"


@contextmanager
def _translate(op_error: type[SessionError] | None, name: str | None) -> Iterator[None]:
    """Translate every libtmux and OS error raised inside into the OpsError tree."""
    from libtmux import exc as tmux_exc

    try:
        yield
    except OpsError:
        raise
    except tmux_exc.TmuxCommandNotFound as err:
        raise TmuxNotFoundError() from err
    except tmux_exc.VersionTooLow as err:
        raise TmuxNotFoundError(
            f"The tmux found is too old ({err}); kstlib needs tmux 3.2a or newer. "
            "Ubuntu/Debian: apt install tmux; macOS: brew install tmux."
        ) from err
    except (tmux_exc.LibTmuxException, OSError) as err:
        _raise_op_error(op_error, name, str(err) or type(err).__name__, err)


def _raise_op_error(
    op_error: type[SessionError] | None,
    name: str | None,
    reason: str,
    cause: BaseException | None = None,
) -> NoReturn:
    if op_error is not None and name is not None and op_error is not SessionError:
        raise op_error(name, _BACKEND, reason) from cause  # type: ignore[call-arg]
    subject = f" for session {name!r}" if name else ""
    raise SessionError(f"tmux failed{subject}: {reason}") from cause


class _Pane(NamedTuple):
    status: SessionStatus
    log: Path | None


def _parse(line: str, socket_name: str | None) -> _Pane:
    (
        pid,
        dead,
        dead_status,
        dead_signal,
        created,
        windows,
        managed,
        recorded,
        log,
        restarts,
        name,
    ) = line.split(_SEP, 10)
    exit_code: int | None = None
    state = SessionState.RUNNING
    if dead == "1":
        state = SessionState.EXITED
        if recorded.isdigit():
            exit_code = int(recorded)
        elif dead_status:
            exit_code = int(dead_status)
        elif dead_signal:
            exit_code = 128 + int(dead_signal)
    status = SessionStatus(
        name=name,
        state=state,
        backend=_BACKEND,
        pid=int(pid) if pid else None,
        created_at=datetime.fromtimestamp(int(created), tz=timezone.utc) if created else None,
        window_count=int(windows) if windows else None,
        exit_code=exit_code,
        socket_name=socket_name,
        managed=managed == "1",
        restart_count=int(restarts) if restarts.isdigit() else 0,
    )
    return _Pane(status, Path(log) if log else None)


def _check_timeout(timeout: object, *, optional: bool) -> None:
    if timeout is None and optional:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or math.isnan(timeout)
        or timeout < 0
    ):
        raise SessionConfigError(
            f"timeout: {timeout!r} must be a non-negative number of seconds", "timeout"
        )


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or ``None`` where unsupported."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _check_lines(lines: object) -> None:
    if lines is not None and (isinstance(lines, bool) or not isinstance(lines, int) or lines < 0):
        raise SessionConfigError(f"lines: {lines!r} must be a non-negative integer", "lines")


class TmuxRunner:
    """Run sessions on one tmux server.

    Args:
        socket_name: tmux ``-L`` socket name (``None``: the default server).
        socket_path: tmux ``-S`` socket path; wins over ``socket_name``.
        tmux_bin: path of the tmux binary (``None``: ``tmux`` on ``PATH``).

    Example:
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> runner.exists("no-such-session")
        False
    """

    backend = _BACKEND

    def __init__(
        self,
        socket_name: str | None = None,
        socket_path: str | None = None,
        tmux_bin: str | None = None,
    ) -> None:
        self.socket_name = socket_name
        self.socket_path = socket_path
        self.tmux_bin = tmux_bin
        self._server: libtmux.Server | None = None

    def __repr__(self) -> str:
        where = self.socket_path or self.socket_name or "default"
        return f"TmuxRunner(socket={where!r})"

    @property
    def server(self) -> libtmux.Server:
        """The :class:`libtmux.Server` this runner drives (created on first use).

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").server.socket_name
            'kstlib-doc'
        """
        if self._server is None:
            import libtmux
            from libtmux.common import has_minimum_version

            with _translate(None, None):
                has_minimum_version(raises=True, tmux_bin=self.tmux_bin)
            # A resolved binary spares libtmux a PATH lookup on every command.
            self._server = libtmux.Server(
                socket_name=self.socket_name,
                socket_path=self.socket_path,
                tmux_bin=self._tmux_path(),
            )
        return self._server

    # -- the one place tmux is called -------------------------------------------------

    def _run(
        self,
        op_error: type[SessionError],
        name: str | None,
        *args: str,
        missing_ok: bool = False,
    ) -> list[str] | None:
        """Run one tmux command; return its stdout lines, ``None`` for a missing session."""
        with _translate(op_error, name):
            proc = self.server.cmd(*args)
            if proc.returncode == 0:
                return list(proc.stdout)
            message = "; ".join(proc.stderr) or f"tmux {args[0]} exited with {proc.returncode}"
        lowered = message.lower()
        if any(s in lowered for s in _NOT_FOUND + _NO_SERVER):
            if missing_ok:
                return None
            if name is not None:
                raise SessionNotFoundError(name, _BACKEND)
        if name is not None and any(s in lowered for s in _DUPLICATE):
            raise SessionExistsError(name, _BACKEND)
        _raise_op_error(op_error, name, message)

    def _query(self, name: str, op_error: type[SessionError] = SessionError) -> _Pane | None:
        out = self._run(
            # list-panes fails on a missing target (display-message prints blanks),
            # and "=name:" (not "=name") keeps tmux from falling back to a window.
            op_error,
            name,
            "list-panes",
            "-t",
            _exact_pane(name),
            "-F",
            _FORMAT,
            missing_ok=True,
        )
        if not out:
            return None
        return _parse(out[0], self.socket_name)

    def _log_folder(self) -> Path:
        """The folder of this server's session logs."""
        if self.socket_path:
            server = "S-" + re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.abspath(self.socket_path))
        else:
            server = f"L-{self.socket_name}" if self.socket_name else "default"
        return state_dir() / "tmux" / server

    def _new_log(self, name: str) -> Path:
        """Create an empty log file for a new run of ``name`` (unique per run)."""
        path = self._log_folder() / f"{name}.{uuid.uuid4().hex[:12]}.log"
        for attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=False)
                return path
            except FileNotFoundError:  # the folder was just removed as empty: again
                if attempt == 2:
                    raise SessionStartError(name, _BACKEND, f"cannot create {path}") from None
            except OSError as err:
                raise SessionStartError(name, _BACKEND, f"cannot create {path}: {err}") from err
        raise AssertionError("unreachable")

    @staticmethod
    def _settle(pane: _Pane) -> None:
        """For an exited session, wait (briefly) until its log holds all its output."""
        if pane.log is None or pane.status.is_running:
            return
        deadline = time.monotonic() + _LOG_SETTLE
        while not ended(pane.log) and time.monotonic() < deadline and pane.log.exists():
            time.sleep(0.01)

    def _pane_or_missing(self, name: str, op_error: type[SessionError] = SessionError) -> _Pane:
        pane = self._query(name, op_error)
        if pane is None:
            raise SessionNotFoundError(name, _BACKEND)
        return pane

    # -- public API ---------------------------------------------------------------------

    def start(self, config: SessionConfig) -> SessionStatus:
        """Start ``config.command`` in a new detached session named ``config.name``.

        A name whose previous session has exited is replaced; a running one raises
        :class:`~kstlib.ops.exceptions.SessionExistsError`. The session keeps its
        pane after the process exits, so its exit code and output stay readable.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> runner.start(SessionConfig(name="doc2", command=["sleep", "30"])).state.value
            'running'
            >>> runner.stop("doc2", graceful=False)
        """
        if not isinstance(config, SessionConfig):
            raise SessionConfigError(
                f"config: expected a SessionConfig, got {type(config).__name__}", "config"
            )
        name = config.name
        self._check_socket_path()
        if config.working_dir is not None and not os.path.isdir(config.working_dir):
            raise SessionConfigError(
                f"working_dir: {config.working_dir!r} is not an existing directory",
                field="working_dir",
            )
        log = self._new_log(name)
        pipe = shlex.join([sys.executable, "-I", _LOGPIPE, str(log), str(MAX_LOG_BYTES)])

        args = ["new-session", "-d", "-s", name, "-x", _WIDTH, "-y", _HEIGHT]
        if config.working_dir is not None:
            args += ["-c", config.working_dir]
        for key, value in config.env.items():
            args += ["-e", f"{key}={value}"]
        args += ["-P", "-F", _FORMAT, *self._pane_argv(config)]
        # Chained in one tmux call, so both options are set before the server
        # reaps even a process that exits at once.
        args += [";", "set-option", "-t", _exact_pane(name), MANAGED_OPTION, "1"]
        args += [";", "set-option", "-w", "-t", _exact_pane(name), "remain-on-exit", "on"]
        args += [";", "set-option", "-t", _exact_pane(name), LOG_OPTION, str(log)]
        args += [";", "pipe-pane", "-t", _exact_pane(name), "-o", f"exec {pipe}"]
        try:
            try:
                out = self._new_session(name, args)
            except SessionExistsError:
                # The name is taken. An exited session of that name is replaced
                # (asked only now, so the usual start costs one tmux call); a
                # running one, or a second loss of the race, is an error.
                if not self._remove_exited(name):
                    raise
                out = self._new_session(name, args)
        except SessionStartError:
            # new-session may have succeeded before a later command failed.
            self._run(SessionStartError, name, "kill-session", "-t", _exact(name), missing_ok=True)
            remove_log(log)
            raise
        except BaseException:  # SessionExistsError (lost a race), interrupts: no stray file
            remove_log(log)
            raise
        if not out:
            raise SessionStartError(name, _BACKEND, "tmux printed no session details")
        # The status was printed before the chained set-option marked it.
        return replace(_parse(out[0], self.socket_name).status, managed=True)

    def _remove_exited(self, name: str) -> bool:
        """Remove session ``name`` if its process has exited; ``False`` if it runs."""
        previous = self._query(name, SessionStartError)
        if previous is None:
            return True  # gone meanwhile
        if previous.status.is_running:
            return False
        self._run(SessionStartError, name, "kill-session", "-t", _exact(name), missing_ok=True)
        if previous.log is not None:
            remove_log(previous.log)
        return True

    def _check_socket_path(self) -> None:
        """Refuse a ``socket_path`` tmux cannot serve on, before tmux replaces or misreads it.

        tmux unlinks whatever is at the path to bind its socket (a user's file
        is lost), and a missing folder makes it fail without a word.
        """
        path = self.socket_path
        if not path:
            return
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise SessionConfigError(
                    f"socket_path: the folder {folder!r} of {path!r} does not exist",
                    "socket_path",
                ) from None
            return
        except OSError as err:
            raise SessionConfigError(f"socket_path: {path!r}: {err}", "socket_path") from err
        if not stat.S_ISSOCK(mode):
            raise SessionConfigError(
                f"socket_path: {path!r} exists and is not a socket; tmux would replace it",
                "socket_path",
            )

    def _new_session(self, name: str, args: list[str]) -> list[str] | None:
        # A server whose last session was just killed is still shutting down
        # for a few milliseconds and refuses clients ("server exited
        # unexpectedly"); nothing was created, so try again on a new server.
        deadline = time.monotonic() + _SERVER_RESTART_WAIT
        while True:
            try:
                return self._run(SessionStartError, name, *args)
            except SessionNotFoundError as err:
                if time.monotonic() >= deadline:
                    raise SessionStartError(
                        name, _BACKEND, "the tmux server kept exiting while the session started"
                    ) from err
                time.sleep(_POLL_INTERVAL)

    def _tmux_path(self) -> str:
        import shutil

        binary = self.tmux_bin or shutil.which("tmux")
        if binary is None:
            raise TmuxNotFoundError()
        return os.path.abspath(binary) if os.sep in binary else binary

    def _pane_argv(self, config: SessionConfig) -> list[str]:
        """The pane's argv: the wrapper, then the command (tmux execs it, no shell)."""
        if config.command is None:
            command = [os.environ.get("SHELL") or "/bin/sh"]
        elif isinstance(config.command, str):
            command = ["/bin/sh", "-c", config.command]
        else:
            command = list(config.command)
        mode, _, most = (config.restart or "no").partition(":")
        return [
            "/bin/sh",
            "-c",
            _WRAPPER,
            "kstlib-session",
            self._tmux_path(),
            mode,
            most or "0",
            *command,
        ]

    def status(self, name: str) -> SessionStatus:
        """Return the state, pid, exit code and creation time of session ``name``.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").status("missing")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'missing' was not found on the tmux backend; check the name with 'kstlib ops list'.
        """
        validate_lookup_name(name)
        return self._pane_or_missing(name).status

    def exists(self, name: str) -> bool:
        """Whether a session named exactly ``name`` exists (running or exited).

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").exists("missing")
            False
        """
        validate_lookup_name(name)
        return (
            self._run(SessionError, name, "has-session", "-t", _exact(name), missing_ok=True)
            is not None
        )

    def list_sessions(self) -> list[SessionStatus]:
        """Every session on this tmux server, kstlib's own marked ``managed``.

        One tmux call, however many sessions exist.

        Example:
            >>> isinstance(TmuxRunner(socket_name="kstlib-doc").list_sessions(), list)
            True
        """
        out = self._run(SessionError, None, "list-sessions", "-F", _FORMAT, missing_ok=True)
        return SessionTable(_parse(line, self.socket_name).status for line in out or [] if line)

    def logs(
        self,
        name: str,
        lines: int | None = 100,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
    ) -> str:
        """The last ``lines`` lines of the session's output (``None``: all that is kept).

        A session started by kstlib writes its output to a log file, so the
        whole output is readable, beyond the scrollback and after the process
        has exited. ``since`` (an aware datetime or a Unix time) keeps lines
        written from then on; ``timestamps`` prefixes each line with its UTC
        time; ``ansi=False`` strips colours and other escape sequences.
        Sessions kstlib did not start are read from the pane's scrollback.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc3", command="echo hi"))
            >>> runner.wait("doc3", timeout=5)
            0
            >>> runner.logs("doc3")
            'hi'
            >>> runner.stop("doc3")
        """
        validate_lookup_name(name)
        _check_lines(lines)
        pane = self._pane_or_missing(name)
        self._settle(pane)
        if pane.log is not None and pane.log.exists():
            return "\n".join(
                read_lines(pane.log, lines, since=since, timestamps=timestamps, ansi=ansi)
            )
        if since is not None or timestamps:
            raise SessionError(
                f"tmux session {name!r} was not started by kstlib, so it has no log file; "
                "since= and timestamps= need one"
            )
        return self._capture(name, lines, ansi)

    def _capture(self, name: str, lines: int | None, ansi: bool) -> str:
        start = "-" if lines is None else f"-{max(lines, 1) + int(_HEIGHT)}"
        args = ["capture-pane", "-p", "-J", "-t", _exact_pane(name), "-S", start]
        if ansi:
            args.append("-e")
        text = [line.rstrip() for line in self._run(SessionError, name, *args) or []]
        while text and not strip_ansi(text[-1]).strip():
            text.pop()
        if text and strip_ansi(text[-1]).startswith("Pane is dead ("):
            text.pop()
            while text and not strip_ansi(text[-1]).strip():
                text.pop()
        if lines is not None:
            text = text[-lines:] if lines else []
        return "\n".join(text)

    def follow_logs(
        self,
        name: str,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield the session's output lines as they are written; end when it ends.

        Lines written before the call are included only from ``since`` on.
        With ``timeout`` (seconds), raise
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` if the session is
        still running then.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc6", command="sleep 0.3; echo a; echo b"))
            >>> list(runner.follow_logs("doc6"))
            ['a', 'b']
            >>> runner.stop("doc6")
        """
        validate_lookup_name(name)
        _check_timeout(timeout, optional=True)
        pane = self._pane_or_missing(name)
        if pane.log is None:
            raise SessionError(
                f"tmux session {name!r} was not started by kstlib, so it has no log file to follow"
            )
        return self._follow(
            name, pane.log, since=since, timestamps=timestamps, ansi=ansi, timeout=timeout
        )

    def _follow(
        self,
        name: str,
        log: Path,
        *,
        since: Since | None,
        timestamps: bool,
        ansi: bool,
        timeout: float | None,
    ) -> Iterator[str]:
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False

        def alive() -> bool:
            nonlocal timed_out
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                return False
            current = self._query(name)
            return current is not None and current.status.is_running

        yield from follow_lines(log, alive, since=since, timestamps=timestamps, ansi=ansi)
        if timed_out:
            raise SessionTimeoutError(name, _BACKEND, f"still running after {timeout} s")

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait for the session's process to exit and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds (``None``: wait as long as it takes).

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc7", command="exit 7"))
            >>> runner.wait("doc7", timeout=5)
            7
            >>> runner.stop("doc7")
        """
        validate_lookup_name(name)
        _check_timeout(timeout, optional=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = _POLL_INTERVAL
        while True:
            pane = self._pane_or_missing(name)
            st = pane.status
            if not st.is_running:
                self._settle(pane)
                return st.exit_code if st.exit_code is not None else -1
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionTimeoutError(name, _BACKEND, f"still running after {timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.2)

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> None:
        """Stop session ``name`` and remove it.

        Graceful: SIGTERM to the session's process group, wait up to ``timeout``
        seconds for it to exit (a ``trap`` handler gets to run), then SIGKILL.
        Not graceful: SIGKILL at once.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc4", command="sleep 30"))
            >>> runner.stop("doc4", timeout=5)
            >>> runner.exists("doc4")
            False
        """
        validate_lookup_name(name)
        _check_timeout(timeout, optional=False)
        pane = self._pane_or_missing(name, SessionStopError)
        st = pane.status
        if st.is_running and st.pid is not None:
            if graceful:
                self._signal(name, st.pid, signal.SIGTERM)
                self._await_exit(name, st.pid, timeout)
            else:
                self._signal(name, st.pid, signal.SIGKILL)
        # One call: remove the session and see whether the server has any left.
        left = self._run(
            SessionStopError,
            name,
            "kill-session",
            "-t",
            _exact(name),
            ";",
            "list-sessions",
            "-F",
            "x",
            missing_ok=True,
        )
        if pane.log is not None:
            remove_log(pane.log)
        if not left:
            self._settle_server()

    def _await_exit(self, name: str, pid: int, timeout: float) -> None:
        """Wait up to ``timeout`` s for the session's process to exit, then SIGKILL it.

        A pidfd wakes us the moment the process exits (Linux 5.3+); elsewhere
        tmux is polled.
        """
        deadline = time.monotonic() + timeout
        pidfd = _pidfd(pid)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if pidfd is not None:
                    ready, _, _ = select.select([pidfd], [], [], max(0.0, min(remaining, 0.25)))
                    if ready:
                        current = self._query(name, SessionStopError)
                        if current is None:  # vanished (server killed): no orphans
                            self._signal(name, pid, signal.SIGKILL)
                        return
                current = self._query(name, SessionStopError)
                if current is None:
                    # The session vanished meanwhile (its server was killed, or
                    # someone killed it): its processes must not outlive it.
                    self._signal(name, pid, signal.SIGKILL)
                    return
                if not current.status.is_running:
                    return
                if time.monotonic() >= deadline:
                    self._signal(name, pid, signal.SIGKILL)
                    return
                if pidfd is None:
                    time.sleep(_POLL_INTERVAL)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _settle_server(self) -> None:
        """Wait until a server left without sessions has exited.

        tmux exits once its last session is gone, but for some milliseconds it
        still accepts clients and drops what they create; waiting here makes
        the next start() meet either a live server or none.
        """
        deadline = time.monotonic() + _SERVER_RESTART_WAIT
        while time.monotonic() < deadline:
            out = self._run(SessionError, None, "list-sessions", "-F", "x", missing_ok=True)
            if out is None or out:
                return
            time.sleep(0.005)

    @staticmethod
    def _signal(name: str, pid: int, sig: signal.Signals) -> None:
        # tmux gives each pane its own process group led by the pane's process,
        # so the whole command (a shell and its children) gets the signal.
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except OSError as err:
            raise SessionStopError(name, _BACKEND, f"cannot signal pid {pid}: {err}") from err

    def send_keys(self, name: str, keys: str, enter: bool = True) -> None:
        """Type ``keys`` literally into the session, then Enter unless ``enter=False``.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc5", command="cat"))
            >>> runner.send_keys("doc5", "ping")
            >>> runner.stop("doc5", graceful=False)
        """
        validate_lookup_name(name)
        if not isinstance(keys, str):
            raise SessionConfigError(f"keys: expected a string, got {type(keys).__name__}", "keys")
        args = ["send-keys", "-t", _exact_pane(name), "-l", "--", keys]
        if enter:
            args += [";", "send-keys", "-t", _exact_pane(name), "Enter"]
        self._run(SessionError, name, *args)

    def attach_argv(self, name: str) -> list[str]:
        """The tmux client command line that attaches to exactly ``name``.

        Example:
            >>> TmuxRunner(socket_name="s", tmux_bin="/usr/bin/tmux").attach_argv("bot")
            ['/usr/bin/tmux', '-L', 's', 'attach-session', '-t', '=bot']
        """
        argv = [self._tmux_path()]
        if self.socket_path:
            argv += ["-S", self.socket_path]
        elif self.socket_name:
            argv += ["-L", self.socket_name]
        return [*argv, "attach-session", "-t", _exact(name)]

    def attach(self, name: str) -> NoReturn:
        """Replace this process with the tmux client attached to session ``name``.

        Detach with the tmux prefix then ``d``; the session keeps running.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").attach("missing")  # doctest: +SKIP
        """
        validate_lookup_name(name)
        if not self.exists(name):
            raise SessionNotFoundError(name, _BACKEND)
        if not os.isatty(0):
            raise SessionAttachError(name, _BACKEND, "standard input is not a terminal")
        argv = self.attach_argv(name)
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as err:
            raise SessionAttachError(name, _BACKEND, f"cannot run {argv[0]}: {err}") from err

    def kill_server(self) -> None:
        """Kill this runner's tmux server and every session on it.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").kill_server()
        """
        out = self._run(SessionError, None, "list-sessions", "-F", _FORMAT, missing_ok=True)
        self._run(SessionError, None, "kill-server", missing_ok=True)
        for line in out or []:
            log = _parse(line, self.socket_name).log if line else None
            if log is not None:
                remove_log(log)
        # A server that died (killed, crashed) left its sessions' logs with no
        # session to name them: with the server gone, every log of it is one.
        folder = self._log_folder()
        for path in folder.glob("*.log") if folder.is_dir() else ():
            remove_log(path)
