"""SessionManager: one named session, whichever backend runs it.

Example:
    >>> from kstlib.ops import SessionManager
    >>> bot = SessionManager("doc-mgr", socket_name="kstlib-doc")
    >>> bot.start("echo ready; sleep 30").state.value
    'running'
    >>> bot.is_running()
    True
    >>> bot.stop()
    True
    >>> bot.exists()
    False
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from kstlib.ops.exceptions import (
    BackendNotFoundError,
    SessionAmbiguousError,
    SessionConfigError,
    SessionError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionState, SessionStatus
from kstlib.ops.runner import Runner
from kstlib.ops.validators import validate_backend, validate_name

__all__ = [
    "SessionConfigError",
    "SessionManager",
    "auto_detect_backend",
    "make_runner",
    "wait_for_log",
]

#: Options that choose where a session runs rather than what it runs.
_RUNNER_OPTIONS = ("tmux_bin", "engine_timeout")


def make_runner(
    config: SessionConfig, tmux_bin: str | None = None, engine_timeout: float | None = None
) -> Runner:
    """Build the runner that serves ``config`` (tmux server or container engine).

    Example:
        >>> make_runner(SessionConfig(name="a", socket_name="kstlib-doc"))
        TmuxRunner(socket='kstlib-doc')
    """
    if config.backend is BackendType.TMUX:
        from kstlib.ops.tmux import TmuxRunner

        return TmuxRunner(
            socket_name=config.socket_name, socket_path=config.socket_path, tmux_bin=tmux_bin
        )
    from kstlib.ops.container import ContainerRunner

    if engine_timeout is None:
        return ContainerRunner(runtime=config.runtime, base_url=config.base_url)
    return ContainerRunner(runtime=config.runtime, base_url=config.base_url, timeout=engine_timeout)


def _locate(
    name: str,
    *,
    socket_name: str | None = None,
    socket_path: str | None = None,
    runtime: str | None = None,
    base_url: str | None = None,
    containers: bool = True,
) -> list[tuple[BackendType, str | None]]:
    """Every ``(backend, runtime)`` where a session called ``name`` exists."""
    from kstlib.ops.tmux import TmuxRunner

    found: list[tuple[BackendType, str | None]] = []
    try:
        if TmuxRunner(socket_name=socket_name, socket_path=socket_path).exists(name):
            found.append((BackendType.TMUX, None))
    except BackendNotFoundError:
        pass
    if containers:
        from kstlib.ops.container import locate_container

        found.extend(
            (BackendType.CONTAINER, rt) for rt in locate_container(name, runtime, base_url)
        )
    return found


def auto_detect_backend(
    name: str,
    *,
    socket_name: str | None = None,
    socket_path: str | None = None,
    runtime: str | None = None,
    base_url: str | None = None,
) -> BackendType | None:
    """Return the backend where session ``name`` lives, ``None`` if nowhere.

    Searches tmux, then every reachable container engine (Podman, Docker).
    A name found on more than one raises
    :class:`~kstlib.ops.exceptions.SessionAmbiguousError` listing them
    (e.g. ``["tmux", "podman"]``).

    Example:
        >>> auto_detect_backend("no-such-session", socket_name="kstlib-doc") is None
        True
    """
    validate_name(name)
    found = _locate(
        name, socket_name=socket_name, socket_path=socket_path, runtime=runtime, base_url=base_url
    )
    if len(found) > 1:
        raise SessionAmbiguousError(name, [rt or backend.value for backend, rt in found])
    return found[0][0] if found else None


def _pattern(pattern: object) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise SessionConfigError(
            f"pattern: expected a regular expression string, got {type(pattern).__name__}",
            "pattern",
        )
    try:
        return re.compile(pattern)
    except re.error as err:
        raise SessionConfigError(
            f"pattern: {pattern!r} is not a regular expression: {err}", "pattern"
        ) from None


def _check_timeout(timeout: object) -> float:
    ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not ok or not 0 <= timeout < float("inf"):  # type: ignore[operator]
        raise SessionConfigError(
            f"timeout: {timeout!r} must be a non-negative number of seconds", "timeout"
        )
    return float(timeout)  # type: ignore[arg-type]


def wait_for_log(
    runner: Runner, name: str, pattern: str | re.Pattern[str], timeout: float = 30
) -> str:
    """Return the first output line of session ``name`` that matches ``pattern``.

    See :meth:`SessionManager.wait_for_log`.

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-wfl", command="echo up; sleep 30"))
        >>> wait_for_log(runner, "doc-wfl", "^up$", timeout=10)
        'up'
        >>> runner.stop("doc-wfl", graceful=False)
        True
    """
    regex = _pattern(pattern)
    _check_timeout(timeout)
    lines = runner.follow_logs(name, since=0, ansi=False, timeout=timeout)
    try:
        for line in lines:
            if regex.search(line):
                return line
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    try:
        code: int | None = runner.status(name).exit_code
    except SessionNotFoundError:
        code = None
    raise SessionError(
        f"session {name!r} on {runner.backend.value} ended (exit code {code}) before "
        f"printing a line that matches {regex.pattern!r}"
    )


class SessionManager:
    """Manage one named session on tmux (default) or in a container.

    Args:
        name: the session name (``^[A-Za-z][A-Za-z0-9_-]*$``, 1-64 chars).
        backend: ``"tmux"``, ``"container"``, or ``None`` to find where an
            existing session lives (tmux when it exists nowhere yet).
        **options: the :class:`~kstlib.ops.models.SessionConfig` fields
            (``command``, ``working_dir``, ``env``, ``socket_name``,
            ``socket_path``, ``image``, ``volumes``, ``ports``, ``runtime``,
            ``base_url``, ...), ``tmux_bin`` and ``engine_timeout`` (seconds
            each container engine call may take; default 30).

    Raises:
        SessionConfigError: an option is unknown or invalid.

    Example:
        >>> SessionManager("worker", env={"MODE": "fast"}).config.env
        {'MODE': 'fast'}
        >>> SessionManager("worker", colour="blue")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: colour: is not a session option
    """

    def __init__(
        self, name: str, *, backend: str | BackendType | None = "tmux", **options: Any
    ) -> None:
        validate_name(name)
        runner_options = {k: options.pop(k) for k in _RUNNER_OPTIONS if k in options}
        # upstream spellings: tmux_binary is libtmux's tmux_bin; log_volume is one more volume
        if "tmux_binary" in options:
            runner_options.setdefault("tmux_bin", options.pop("tmux_binary"))
        if "log_volume" in options:
            log_volume = options.pop("log_volume")
            if log_volume is not None:
                options["volumes"] = [*(options.get("volumes") or ()), log_volume]
        self._tmux_bin: str | None = runner_options.get("tmux_bin")
        self._engine_timeout: float | None = runner_options.get("engine_timeout")
        if backend is None:
            backend = self._detect(name, options)
        base = SessionConfig(name=name, backend=validate_backend(backend))
        self._config = base.with_overrides(**options)
        self._runner: Runner | None = None

    def _detect(self, name: str, options: dict[str, Any]) -> BackendType:
        found = _locate(
            name,
            socket_name=options.get("socket_name"),
            socket_path=options.get("socket_path"),
            runtime=options.get("runtime"),
            base_url=options.get("base_url"),
        )
        if len(found) > 1:
            raise SessionAmbiguousError(name, [rt or b.value for b, rt in found])
        if not found:
            return BackendType.CONTAINER if options.get("image") else BackendType.TMUX
        backend, runtime = found[0]
        if runtime is not None and options.get("runtime") is None:
            options["runtime"] = runtime
        return backend

    def __repr__(self) -> str:
        return f"SessionManager({self.name!r}, backend={self.backend.value!r})"

    @property
    def name(self) -> str:
        """The session name.

        Example:
            >>> SessionManager("bot").name
            'bot'
        """
        return self._config.name

    @property
    def backend(self) -> BackendType:
        """The backend that runs this session.

        Example:
            >>> SessionManager("bot").backend.value
            'tmux'
        """
        return self._config.backend

    @property
    def config(self) -> SessionConfig:
        """The validated configuration used by :meth:`start`.

        Example:
            >>> SessionManager("bot", command=["sleep", "5"]).config.command
            ('sleep', '5')
        """
        return self._config

    @property
    def runner(self) -> Runner:
        """The backend runner (created on first use).

        Example:
            >>> SessionManager("bot", socket_name="kstlib-doc").runner
            TmuxRunner(socket='kstlib-doc')
        """
        if self._runner is None:
            self._runner = make_runner(
                self._config, tmux_bin=self._tmux_bin, engine_timeout=self._engine_timeout
            )
        return self._runner

    def start(self, command: Command | None = None, **overrides: Any) -> SessionStatus:
        """Start the session, optionally with another command or options.

        ``overrides`` replace config fields for this start and are kept, so a
        later :meth:`status` or :meth:`stop` uses the same place.

        Example:
            >>> bot = SessionManager("doc-start", socket_name="kstlib-doc")
            >>> bot.start(["sleep", "30"], working_dir="/tmp").pid > 0
            True
            >>> bot.stop(graceful=False)
            True
        """
        if command is not None:
            overrides["command"] = command
        if overrides:
            location_changed = any(
                k in overrides
                for k in ("backend", "socket_name", "socket_path", "runtime", "base_url")
            )
            self._config = self._config.with_overrides(**overrides)
            if location_changed:
                self._runner = None
        return self.runner.start(self._config)

    def stop(self, *, graceful: bool = True, timeout: float = 10) -> bool:
        """Stop the session and remove it (SIGTERM, wait ``timeout`` s, then kill).

        Returns ``True`` once the session is gone (as upstream kstlib did, so
        ``if session.stop():`` keeps working); failures raise.

        Example:
            >>> SessionManager("never-started", socket_name="kstlib-doc").stop()
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'never-started' was not found on the tmux backend; check the name with 'kstlib ops list'.
        """
        self.runner.stop(self.name, graceful=graceful, timeout=timeout)
        return True

    def status(self) -> SessionStatus:
        """The session's state, pid, exit code and creation time.

        Example:
            >>> bot = SessionManager("doc-status", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 4")
            >>> import time; time.sleep(0.3)
            >>> bot.status().exit_code
            4
            >>> bot.stop()
            True
        """
        return self.runner.status(self.name)

    def logs(
        self,
        lines: int | None = 100,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
    ) -> str:
        """The last ``lines`` lines of output (``None``: everything kept).

        ``since`` (an aware datetime or a Unix time) keeps what was written
        from then on; ``timestamps`` prefixes each line with its UTC time;
        ``ansi=False`` strips colours and other escape sequences.

        Example:
            >>> bot = SessionManager("doc-logs", socket_name="kstlib-doc")
            >>> _ = bot.start("echo one; echo two")
            >>> bot.wait(timeout=5)
            0
            >>> bot.logs(lines=1)
            'two'
            >>> bot.stop()
            True
        """
        return self.runner.logs(
            self.name, lines=lines, since=since, timestamps=timestamps, ansi=ansi
        )

    def follow_logs(
        self,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield output lines as they are written; the iteration ends with the session.

        Only lines written after the call, unless ``since`` is given. With
        ``timeout``, raise :class:`~kstlib.ops.exceptions.SessionTimeoutError`
        if the session still runs then.

        Example:
            >>> bot = SessionManager("doc-follow", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.3; echo a; echo b")
            >>> list(bot.follow_logs())
            ['a', 'b']
            >>> bot.stop()
            True
        """
        return self.runner.follow_logs(
            self.name, since=since, timestamps=timestamps, ansi=ansi, timeout=timeout
        )

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the process exits (after any restarts) and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds.

        Example:
            >>> bot = SessionManager("doc-wait", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 7")
            >>> bot.wait(timeout=5)
            7
            >>> bot.stop()
            True
        """
        return self.runner.wait(self.name, timeout=timeout)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30) -> str:
        """Return the first output line that matches the regex ``pattern``.

        Lines already written count too, so it is the way to wait for
        readiness. Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError`
        after ``timeout`` seconds, and :class:`~kstlib.ops.exceptions.SessionError`
        if the session ends first.

        Example:
            >>> bot = SessionManager("doc-ready", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.2; echo 'listening on :8080'; sleep 30")
            >>> bot.wait_for_log(r"listening on :\\d+", timeout=10)
            'listening on :8080'
            >>> bot.stop(graceful=False)
            True
        """
        return wait_for_log(self.runner, self.name, pattern, timeout)

    def _where(self) -> str:
        runtime = self._config.runtime
        return f"{self.backend.value}" + (f" ({runtime})" if runtime else "")

    def wait_until_running(self, timeout: float = 30) -> SessionStatus:
        """Wait until the session exists and runs; return its status.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds and :class:`~kstlib.ops.exceptions.SessionError`
        if it exits instead.

        Example:
            >>> bot = SessionManager("doc-up", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_until_running(timeout=5).state.value
            'running'
            >>> bot.stop(graceful=False)
            True
        """
        deadline = time.monotonic() + _check_timeout(timeout)
        while True:
            try:
                st = self.status()
            except SessionNotFoundError:
                st = None
            if st is not None and st.is_running:
                return st
            if st is not None and st.state is SessionState.EXITED:
                raise SessionError(
                    f"session {self.name!r} on {self._where()} exited with code "
                    f"{st.exit_code} instead of running"
                )
            if time.monotonic() >= deadline:
                raise SessionTimeoutError(self.name, self.backend, f"not running after {timeout} s")
            time.sleep(0.05)

    @contextmanager
    def running(
        self, command: Command | None = None, *, stop_timeout: float = 10, **overrides: Any
    ) -> Iterator[SessionManager]:
        """Start the session for a ``with`` block; stop and remove it afterwards.

        The session is stopped (gracefully, then killed after ``stop_timeout``)
        even when the block raises.

        Example:
            >>> with SessionManager("doc-with", socket_name="kstlib-doc").running("sleep 30") as s:
            ...     s.is_running()
            True
            >>> s.exists()
            False
        """
        self.start(command, **overrides)
        try:
            yield self
        finally:
            with suppress(SessionNotFoundError):
                self.stop(graceful=True, timeout=stop_timeout)

    def restart(self, *, timeout: float = 10, **overrides: Any) -> SessionStatus:
        """Stop the session if it exists (gracefully) and start it again.

        Example:
            >>> bot = SessionManager("doc-restart", socket_name="kstlib-doc", command="sleep 30")
            >>> first = bot.start().pid
            >>> bot.restart().pid != first
            True
            >>> bot.stop(graceful=False)
            True
        """
        with suppress(SessionNotFoundError):
            self.stop(graceful=True, timeout=timeout)
        return self.start(**overrides)

    def exists(self) -> bool:
        """Whether the session exists (running or exited).

        Example:
            >>> SessionManager("ghost", socket_name="kstlib-doc").exists()
            False
        """
        return self.runner.exists(self.name)

    def is_running(self) -> bool:
        """Whether the session exists and its process is alive.

        Example:
            >>> SessionManager("ghost", socket_name="kstlib-doc").is_running()
            False
        """
        try:
            return self.status().is_running
        except SessionNotFoundError:
            return False

    def attach(self) -> None:
        """Connect this terminal to the session (tmux: replaces this process).

        Example:
            >>> SessionManager("bot").attach()  # doctest: +SKIP
        """
        return self.runner.attach(self.name)

    @classmethod
    def from_config(
        cls, name: str, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> SessionManager:
        """Build the manager of session ``name`` as defined in ``kstlib.conf.yml``.

        ``path`` is the config file (default: ``$KSTLIB_CONFIG``, then
        ``./kstlib.conf.yml``, then ``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml``);
        ``overrides`` replace options of the definition (``backend=`` too).

        Raises:
            SessionConfigError: the file is invalid or does not define ``name``.

        Example:
            >>> import os, tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = os.path.join(tmp, "kstlib.conf.yml")
            ...     _ = open(path, "w").write("ops: {sessions: {bot: {command: 'sleep 30'}}}")
            ...     bot = SessionManager.from_config("bot", path=path, socket_name="kstlib-doc")
            >>> bot.config.command, bot.config.socket_name
            ('sleep 30', 'kstlib-doc')
        """
        from kstlib.ops.config import load_config

        options = load_config(path).manager_options(name)
        options.update(overrides)
        backend = options.pop("backend")
        return cls(name, backend=backend, **options)
