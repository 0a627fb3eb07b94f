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

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NoReturn

from kstlib.ops.exceptions import (
    OpsError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    TmuxNotFoundError,
)
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.validators import validate_lookup_name

if TYPE_CHECKING:
    import libtmux

__all__ = ["MANAGED_OPTION", "TmuxRunner"]

#: Session user option that marks a session started by kstlib.
MANAGED_OPTION = "@kstlib-managed"
#: Pane user option where the session's wrapper records the exit code.
EXIT_OPTION = "@kstlib-exit"
_SEP = "\x1f"
# tmux 3.3 loses the exit status of a process that exits within milliseconds
# of starting in about 1 start of 100 (pane dead, no status). A tiny sh
# wrapper runs the command as its only child and stores the code in a pane
# option before it exits, so the status is never lost. It handles TERM, INT
# and HUP with a no-op so it outlives the command: the command itself keeps
# the default dispositions and its own traps.
_WRAPPER = (
    't=$1; shift; trap : TERM INT HUP; "$@"; s=$?; '
    '"$t" set-option -p -t "$TMUX_PANE" ' + EXIT_OPTION + ' "$s" 2>/dev/null; exit "$s"'
)
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
    "#{session_name}",
)
_FORMAT = _SEP.join(_FIELDS)
_POLL_INTERVAL = 0.02
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
_NO_SERVER = ("no server running", "error connecting to", "server exited unexpectedly")
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


def _to_status(line: str, socket_name: str | None) -> SessionStatus:
    pid, dead, dead_status, dead_signal, created, windows, managed, recorded, name = line.split(
        _SEP, 8
    )
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
    return SessionStatus(
        name=name,
        state=state,
        backend=_BACKEND,
        pid=int(pid) if pid else None,
        created_at=datetime.fromtimestamp(int(created), tz=timezone.utc) if created else None,
        window_count=int(windows) if windows else None,
        exit_code=exit_code,
        socket_name=socket_name,
        managed=managed == "1",
    )


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
            self._server = libtmux.Server(
                socket_name=self.socket_name,
                socket_path=self.socket_path,
                tmux_bin=self.tmux_bin,
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

    def _query(
        self, name: str, op_error: type[SessionError] = SessionError
    ) -> SessionStatus | None:
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
        return _to_status(out[0], self.socket_name)

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
        name = config.name
        if config.working_dir is not None and not os.path.isdir(config.working_dir):
            raise SessionConfigError(
                f"working_dir: {config.working_dir!r} is not an existing directory",
                field="working_dir",
            )
        previous = self._query(name, SessionStartError)
        if previous is not None:
            if previous.is_running:
                raise SessionExistsError(name, _BACKEND)
            self._run(SessionStartError, name, "kill-session", "-t", _exact(name), missing_ok=True)

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
        try:
            out = self._run(SessionStartError, name, *args)
        except SessionStartError:
            # new-session may have succeeded before a later command failed.
            self._run(SessionStartError, name, "kill-session", "-t", _exact(name), missing_ok=True)
            raise
        except SessionNotFoundError as err:
            raise SessionStartError(name, _BACKEND, "the session vanished while starting") from err
        if not out:
            raise SessionStartError(name, _BACKEND, "tmux printed no session details")
        return _to_status(out[0], self.socket_name)

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
        return ["/bin/sh", "-c", _WRAPPER, "kstlib-session", self._tmux_path(), *command]

    def status(self, name: str) -> SessionStatus:
        """Return the state, pid, exit code and creation time of session ``name``.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").status("missing")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'missing' was not found on the tmux backend; check the name with 'kstlib ops list'.
        """
        validate_lookup_name(name)
        st = self._query(name)
        if st is None:
            raise SessionNotFoundError(name, _BACKEND)
        return st

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
        return [_to_status(line, self.socket_name) for line in out or [] if line]

    def logs(self, name: str, lines: int | None = 100) -> str:
        """The last ``lines`` lines of the session's output (``None``: all scrollback).

        Output stays readable after the process has exited.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc3", command="echo hi"))
            >>> import time; time.sleep(0.2)
            >>> runner.logs("doc3")
            'hi'
            >>> runner.stop("doc3")
        """
        validate_lookup_name(name)
        if lines is not None and (
            isinstance(lines, bool) or not isinstance(lines, int) or lines < 0
        ):
            raise SessionConfigError(f"lines: {lines!r} must be a non-negative integer", "lines")
        start = "-" if lines is None else f"-{max(lines, 1) + int(_HEIGHT)}"
        out = (
            self._run(
                SessionError, name, "capture-pane", "-p", "-J", "-t", _exact_pane(name), "-S", start
            )
            or []
        )
        text = [line.rstrip() for line in out]
        while text and not text[-1]:
            text.pop()
        if text and text[-1].startswith("Pane is dead ("):
            text.pop()
            while text and not text[-1]:
                text.pop()
        if lines is not None:
            text = text[-lines:] if lines else []
        return "\n".join(text)

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
        if timeout < 0:
            raise SessionConfigError(f"timeout: {timeout!r} must not be negative", "timeout")
        st = self._query(name, SessionStopError)
        if st is None:
            raise SessionNotFoundError(name, _BACKEND)
        if st.is_running and st.pid is not None:
            if graceful:
                self._signal(name, st.pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    current = self._query(name, SessionStopError)
                    if current is None or not current.is_running:
                        break
                    time.sleep(_POLL_INTERVAL)
                else:
                    self._signal(name, st.pid, signal.SIGKILL)
            else:
                self._signal(name, st.pid, signal.SIGKILL)
        self._run(SessionStopError, name, "kill-session", "-t", _exact(name), missing_ok=True)

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
        args = ["send-keys", "-t", _exact_pane(name), "-l", keys]
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
        self._run(SessionError, None, "kill-server", missing_ok=True)
