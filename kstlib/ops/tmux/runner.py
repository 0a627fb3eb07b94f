"""The tmux backend: sessions on a tmux server, driven through libtmux.

Every operation is a single targeted tmux command (``=name`` exact targets),
never a listing of every session to read one; ``list_sessions`` is one
command however many sessions exist, and every command is bounded by the
runner's timeout.

A session's pane runs ``sh wrapper.sh`` (:mod:`kstlib.ops.tmux`'s
``wrapper.sh``), which runs the command as its only child, records its exit
status and applies the restart policy; the environment reaches it through a
0600 run file, never a command line. The pane's output goes through a
``cat`` into the server's one log collector.

Example:
    >>> runner = TmuxRunner(socket_name="kstlib-doc")
    >>> st = runner.start(SessionConfig(name="doc", command="echo hello; sleep 30"))
    >>> runner.status("doc").state.value
    'running'
    >>> runner.stop("doc")
    True
    >>> runner.exists("doc")
    False
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from dataclasses import replace
from typing import NoReturn

from kstlib.ops.exceptions import (
    SessionAttachError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
)
from kstlib.ops.models import SessionConfig, SessionStatus, SessionTable
from kstlib.ops.settings import max_log_bytes
from kstlib.ops.statedir import existing_private_dir
from kstlib.ops.tmux import files
from kstlib.ops.tmux.call import arg, fmt
from kstlib.ops.tmux.client import BACKEND, exact, exact_pane
from kstlib.ops.tmux.keys import is_key_name
from kstlib.ops.tmux.logs import (
    HEIGHT,
    TmuxLogs,
    collector_alive,
    collector_command,
    pipe_command,
)
from kstlib.ops.tmux.pane import FORMAT, LOG_OPTION, MANAGED_OPTION, parse, status_of
from kstlib.ops.tmux.program import problem
from kstlib.ops.validators import (
    require_str,
    validate_instance,
    validate_lookup_name,
    validate_optional_flag,
    validate_socket_path,
    validate_timeout,
    validate_working_dir,
)

__all__ = ["TmuxRunner", "session_lines"]

_WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrapper.sh")
_POLL_INTERVAL = 0.02
_SERVER_RESTART_WAIT = 2.0
_WIDTH = 200


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or ``None`` where unsupported."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


class TmuxRunner(TmuxLogs):
    """Run sessions on one tmux server.

    Args:
        socket_name: tmux ``-L`` socket name (``None``: the default server).
        socket_path: tmux ``-S`` socket path; wins over ``socket_name``.
        tmux_bin: path of the tmux binary (``None``: ``tmux`` on ``PATH``).
        binary: the upstream spelling of ``tmux_bin``.
        timeout: seconds any one tmux call may take before the server counts as
            not answering (:class:`~kstlib.ops.exceptions.TmuxNotFoundError`);
            ``None``: no bound.

    Example:
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> runner.exists("no-such-session")
        False
    """

    backend = BACKEND

    # -- start --------------------------------------------------------------------------

    def start(self, config: SessionConfig) -> SessionStatus:
        """Start ``config.command`` in a new detached session named ``config.name``.

        A name whose previous session has exited is replaced; a running one raises
        :class:`~kstlib.ops.exceptions.SessionExistsError`. A list command whose
        program is not found or not executable raises
        :class:`~kstlib.ops.exceptions.SessionStartError` before anything is
        created (a string command runs in the shell, which alone can tell). The session keeps its
        pane after the process exits, so its exit code and output stay readable.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> runner.start(SessionConfig(name="doc2", command=["sleep", "30"])).state.value
            'running'
            >>> runner.stop("doc2", graceful=False)
            True
        """
        validate_instance("config", config, SessionConfig)
        name = config.name
        validate_socket_path(self.socket_path)
        validate_working_dir(config.working_dir)
        why = problem(config.command, config.env, config.working_dir)
        if why is not None:  # nothing is created for a program that cannot run
            raise SessionStartError(name, BACKEND, why)
        limit = max_log_bytes()
        for attempt in (1, 2):
            folder = self._folder(create=True)
            run = files.RunFiles(folder, name)
            try:
                run.create(config.env, max_bytes=limit)
                listening = files.wake_collector(folder, run.run)
                break
            except FileNotFoundError as err:  # the folder was just tidied away: again
                if attempt == 2:
                    raise SessionStartError(name, BACKEND, f"cannot create {err.filename}") from err
            except OSError as err:
                run.remove()
                raise SessionStartError(
                    name, BACKEND, f"cannot create its files in {folder}: {err.strerror or err}"
                ) from err

        args = ["new-session", "-d", "-s", name, "-x", str(_WIDTH), "-y", str(HEIGHT)]
        if config.working_dir is not None:
            # tmux resolves a relative folder against its server's, not ours.
            args += ["-c", arg(fmt(os.path.abspath(config.working_dir)))]
        args += ["-P", "-F", FORMAT, *(arg(a) for a in self._pane_argv(config, run.env))]
        # Chained in one tmux call, so everything is set before the server
        # reaps even a process that exits at once.
        pane = exact_pane(name)
        args += [";", "set-option", "-t", pane, MANAGED_OPTION, "1"]
        args += [";", "set-option", "-w", "-t", pane, "remain-on-exit", "on"]
        args += [";", "set-option", "-t", pane, LOG_OPTION, arg(str(run.log))]
        if not listening:
            args += [";", "run-shell", "-b", collector_command(folder)]
        args += [";", "pipe-pane", "-t", pane, "-o", pipe_command(run.fifo)]
        try:
            try:
                out = self._new_session(name, args)
            except SessionExistsError:
                # The name is taken. An exited session of that name is replaced
                # (asked only now, so the usual start costs one tmux call).
                out = self._replace_exited(name, args)
        except SessionStartError:
            # new-session may have succeeded before a later command failed.
            self._run(SessionStartError, name, "kill-session", "-t", exact(name), missing_ok=True)
            run.remove()
            raise
        except BaseException:  # lost a race, interrupts, a hung server: no stray files
            run.remove()
            raise
        if not out:
            raise SessionStartError(name, BACKEND, "tmux printed no session details")
        started = parse(out[0], self.socket_name)
        if listening and not collector_alive(folder):
            # The collector that answered left at that very moment: start one.
            self._run(SessionError, None, "run-shell", "-b", collector_command(folder))
        # The status was printed before the chained set-option marked it.
        return replace(started.status, managed=True)

    def _replace_exited(self, name: str, args: list[str]) -> list[str] | None:
        """Replace an exited session ``name`` atomically; exactly one racer wins.

        The old session is killed by its unique id in the same tmux command
        that creates the new one: a racer that replaced it first makes that
        id unknown, and this caller loses with ``SessionExistsError``.
        """
        previous = self._query(name, SessionStartError)
        if previous is None:  # gone meanwhile
            return self._new_session(name, args)
        if previous.status.is_running:
            raise SessionExistsError(name, BACKEND)
        try:
            out = self._run(
                SessionStartError, name, "kill-session", "-t", previous.session_id, ";", *args
            )
        except SessionNotFoundError:
            raise SessionExistsError(name, BACKEND) from None
        if previous.log is not None:
            files.remove_run(previous.log)
        return out

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
                        name, BACKEND, "the tmux server kept exiting while the session started"
                    ) from err
                time.sleep(_POLL_INTERVAL)

    def _pane_argv(self, config: SessionConfig, run_file: os.PathLike[str]) -> list[str]:
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
            _WRAPPER,
            self._tmux_path(),
            mode,
            most or "0",
            os.fspath(run_file),
            *command,
        ]

    # -- look-ups -----------------------------------------------------------------------

    def status(self, name: str) -> SessionStatus:
        """Return the state, pid, exit code and creation time of session ``name``.

        ``log_degraded`` is true when output of the run is missing from its log.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").status("missing")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'missing' was not found on the tmux backend; check the name with 'kstlib ops list'.
        """
        validate_lookup_name(name)
        pane = self._pane_or_missing(name)
        if self._degraded(pane):
            return replace(pane.status, log_degraded=True)
        return pane.status

    def exists(self, name: str) -> bool:
        """Whether a session named exactly ``name`` exists (running or exited).

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").exists("missing")
            False
        """
        validate_lookup_name(name)
        return (
            self._run(SessionError, name, "has-session", "-t", exact(name), missing_ok=True)
            is not None
        )

    def list_sessions(self) -> SessionTable:
        """Every session on this tmux server, kstlib's own marked ``managed``.

        One tmux call, however many sessions exist.

        Example:
            >>> isinstance(TmuxRunner(socket_name="kstlib-doc").list_sessions(), list)
            True
        """
        return SessionTable(status_of(line, self.socket_name) for line in session_lines(self))

    # -- stop ---------------------------------------------------------------------------

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool:
        """Stop session ``name`` and remove it; ``True`` once it is gone.

        Graceful: SIGTERM to the session's process group, wait up to ``timeout``
        seconds for it to exit (a ``trap`` handler gets to run), then SIGKILL.
        Not graceful: SIGKILL at once.

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc4", command="sleep 30"))
            >>> runner.stop("doc4", timeout=5)
            True
            >>> runner.exists("doc4")
            False
        """
        validate_lookup_name(name)
        validate_timeout(timeout)
        # Two tmux calls: the pane is read first, as the process group must be
        # signalled before the session goes (tmux would only hang it up), and a
        # call that times out on a stuck server must not remove the session
        # later behind our back.
        pane = self._pane_or_missing(name, SessionStopError)
        st = pane.status
        if st.is_running and st.pid is not None:
            if graceful:
                self._signal(name, st.pid, signal.SIGTERM)
                self._await_exit(name, st.pid, timeout)
            else:
                self._signal(name, st.pid, signal.SIGKILL)
        # One call: remove the session (by its id: not a namesake started
        # meanwhile), say so, and see whether the server has any left
        # (has-session without a target fails on a server without sessions).
        out, left = self._chain(
            SessionStopError,
            name,
            *("kill-session", "-t", pane.session_id or exact(name), ";"),
            *("display-message", "-p", "k", ";", "has-session"),
        )
        if not out and st.is_running and st.pid is not None:
            # The session vanished meanwhile (its server was killed, or
            # someone killed it): its processes must not outlive it.
            self._signal(name, st.pid, signal.SIGKILL)
        if pane.log is not None:
            files.remove_run(pane.log)
        if not left:
            self._settle_server()
        elif pane.log is not None and not collector_alive(pane.log.parent):
            files.tidy(pane.log.parent)  # the last run of a server whose collector is gone
        return True

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
                        return  # stop() then sees whether the session is still there
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
        """Wait until a server left without sessions, and its log collector, have exited.

        tmux exits once its last session is gone, but for some milliseconds it
        still accepts clients and drops what they create; waiting here makes
        the next start() meet either a live server or none. The collector
        leaves right after its server, removing its files.
        """
        deadline = time.monotonic() + _SERVER_RESTART_WAIT
        while time.monotonic() < deadline:
            out = self._run(SessionError, None, "list-sessions", "-F", "x", missing_ok=True)
            if out is None or out:
                break
            time.sleep(0.005)
        folder = self._folder()
        while collector_alive(folder) and time.monotonic() < deadline:
            time.sleep(0.005)
        if not collector_alive(folder):
            files.tidy(folder)

    @staticmethod
    def _signal(name: str, pid: int, sig: signal.Signals) -> None:
        # tmux gives each pane its own process group led by the pane's process,
        # so the whole command (a shell and its children) gets the signal.
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except OSError as err:
            raise SessionStopError(name, BACKEND, f"cannot signal pid {pid}: {err}") from err

    # -- interaction --------------------------------------------------------------------

    def send_keys(
        self, name: str, keys: str, enter: bool = True, *, literal: bool | None = None
    ) -> None:
        """Type ``keys`` into the session, then Enter unless ``enter=False``.

        ``literal=None`` (the default): a string that is exactly one tmux key
        name (``C-c``, ``M-x``, ``Escape``, ``Up``, ``F5`` ...) is sent as that
        key, anything else is typed as it is. ``literal=True`` always types the
        characters; ``literal=False`` always reads ``keys`` as a tmux key name
        (tmux types a string it does not know as a key).

        Example:
            >>> runner = TmuxRunner(socket_name="kstlib-doc")
            >>> _ = runner.start(SessionConfig(name="doc5", command="cat"))
            >>> runner.send_keys("doc5", "ping;")
            >>> runner.send_keys("doc5", "C-c", enter=False)  # Ctrl-C: cat ends
            >>> runner.stop("doc5", graceful=False)
            True
        """
        validate_lookup_name(name)
        require_str("keys", keys)
        validate_optional_flag("literal", literal)
        as_key = (not literal) if literal is not None else is_key_name(keys)
        args = ["send-keys", "-t", exact_pane(name), *(() if as_key else ("-l",)), "--", arg(keys)]
        if enter:
            args += [";", "send-keys", "-t", exact_pane(name), "Enter"]
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
        return [*argv, "attach-session", "-t", exact(name)]

    def attach(self, name: str) -> NoReturn:
        """Replace this process with the tmux client attached to session ``name``.

        Detach with the tmux prefix then ``d``; the session keeps running. A
        session whose process has exited is refused (as a stopped container is):
        its output is read with :meth:`logs`.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").attach("missing")  # doctest: +SKIP
        """
        validate_lookup_name(name)
        st = self._pane_or_missing(name, SessionAttachError).status
        if not st.is_running:  # the same rule as for containers
            raise SessionAttachError(
                name,
                BACKEND,
                f"the session has exited (exit code {st.exit_code}), not running; "
                "read its output with logs or start it again",
            )
        if not os.isatty(0):
            raise SessionAttachError(name, BACKEND, "standard input is not a terminal")
        argv = self.attach_argv(name)
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as err:
            raise SessionAttachError(name, BACKEND, f"cannot run {argv[0]}: {err}") from err

    def _remove_socket_file(self) -> None:
        # tmux leaves the socket file of a killed server; the server exits just
        # after answering kill-server, so give it a moment to stop listening.
        path = files.socket_file(self.socket_name, self.socket_path)
        for _ in range(20):
            if files.remove_dead_socket(path) or not path.exists():
                return
            time.sleep(0.01)

    def kill_server(self) -> None:
        """Kill this runner's tmux server and every session on it, and remove their files.

        Example:
            >>> TmuxRunner(socket_name="kstlib-doc").kill_server()
        """
        self._run(SessionError, None, "kill-server", missing_ok=True)
        if self._channels is not None:  # the control channel, if any, goes with its server
            self._channels.close(kill=True)
        self._remove_socket_file()
        # With the server gone, every file of its folder is an orphan. The
        # folder is checked first (0700, ours, not a link), so nothing
        # outside it is ever touched; its collector may remove it meanwhile.
        folder = existing_private_dir("tmux", files.server_id(self.socket_name, self.socket_path))
        if folder is None:
            return
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(folder):
                if entry.endswith(".fifo"):
                    files.release_writer(folder / entry)  # a pipe-pane shell still opening it
                if entry.endswith(files.RUN_SUFFIXES):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(folder / entry)
        files.tidy(folder)


def session_lines(runner: TmuxRunner) -> list[str]:
    """Every session of ``runner``'s server, one :data:`~kstlib.ops.tmux.pane.FORMAT` line each.

    One tmux call (no server: no line); what :meth:`TmuxRunner.list_sessions`
    reads, and the events source's snapshot.

    Example:
        >>> isinstance(session_lines(TmuxRunner(socket_name="kstlib-doc")), list)
        True
    """
    out = runner._run(SessionError, None, "list-sessions", "-F", FORMAT, missing_ok=True)
    return [line for line in out or [] if line]
