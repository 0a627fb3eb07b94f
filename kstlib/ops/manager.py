"""SessionManager: one named session, whichever backend runs it (internal module: import it from :mod:`kstlib.ops`).

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from kstlib.ops import waits
from kstlib.ops._manager import (
    command_runner,
    configure,
    container_runtime,
    defined_options,
    found_engine,
    found_options,
    key_sender,
    start_config,
    swarm_runner,
)
from kstlib.ops.discovery import auto_detect_backend, search
from kstlib.ops.display import LogText
from kstlib.ops.exceptions import SessionConfigError, SessionNotFoundError
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionStatus
from kstlib.ops.options import SessionOptions
from kstlib.ops.runner import Runner
from kstlib.ops.runners import RunnerFactory, runner_of
from kstlib.ops.validators import validate_name, validate_replicas

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.config import EngineConfig
    from kstlib.ops.eventstream import EventStream
    from kstlib.ops.execresult import ExecResult
    from kstlib.ops.swarm.runner import SwarmRunner


__all__ = [
    "SessionConfigError",
    "SessionManager",
    "SessionOptions",
    "auto_detect_backend",
    "wait_for_log",
]

wait_for_log = waits.wait_for_log


class SessionManager:
    """Manage one named session on tmux or in a container.

    Args:
        name: the session name (``^[A-Za-z][A-Za-z0-9_-]*$``, 1-64 chars).
        backend: ``"tmux"``, ``"container"``, ``"docker"``, ``"podman"``
            (a container on that engine, as in the CLI and the config file)
            or ``"swarm"`` (a Docker Swarm service; ``base_url`` names a manager);
            ``"auto"`` (the default): a container when ``image``, ``runtime``
            or ``base_url`` is given, tmux otherwise; ``None``: find where an
            existing session lives, as :meth:`find` does (tmux when it
            exists nowhere yet).
        engine: a named engine (``ops.engines``) or its ``EngineConfig``: where it runs.
        runner_factory: what builds the runner
            (:class:`~kstlib.ops.runners.RunnerFactory`; default
            :func:`~kstlib.ops.runners.make_runner`): a test hands in its own.
        **options: the :class:`~kstlib.ops.models.SessionConfig` fields
            (``command``, ``working_dir``, ``env``, ``socket_name``,
            ``socket_path``, ``image``, ``volumes``, ``log_volume``, ``ports``,
            ``runtime``, ``base_url``, ...), ``tmux_bin`` (or upstream's
            ``tmux_binary``) and ``engine_timeout`` (seconds each container
            engine call may take; default 30).

    With ``backend="container"`` and no ``runtime``, :meth:`start` uses the
    first engine that answers (Podman, then Docker); every look-up
    (:meth:`status`, :meth:`logs`, :meth:`stop`, :meth:`exists`, ...) searches
    every reachable engine for the name, and a
    :class:`~kstlib.ops.exceptions.SessionNotFoundError` names the engines it
    searched.

    Raises:
        SessionConfigError: an option is unknown or invalid, or the backend
            cannot honour it (``image=`` on tmux, say).

    Example:
        >>> SessionManager("worker", env={"MODE": "fast"}).config.env
        {'MODE': 'fast'}
        >>> SessionManager("web", image="localhost/app:1").backend.value
        'container'
        >>> SessionManager("web", backend="docker").config.runtime
        'docker'
        >>> SessionManager("worker", colour="blue")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: colour: is not a session option
    """

    def __init__(
        self,
        name: str,
        *,
        backend: str | BackendType | None = "auto",
        engine: str | EngineConfig | None = None,
        runner_factory: RunnerFactory | None = None,
        **given: Unpack[SessionOptions],
    ) -> None:
        validate_name(name)
        self._factory = runner_factory
        self._config, self._options = configure(name, backend, engine, dict(given), runner_factory)
        self._engine_timeout = self._options.get("engine_timeout")
        self._runner: Runner | None = None

    @classmethod
    def find(
        cls,
        name: str,
        *,
        socket_name: str | None = None,
        socket_path: str | None = None,
        runtime: str | None = None,
        base_url: str | None = None,
        engines: Iterable[str | EngineConfig] | None = None,
        swarms: Iterable[str | None] = (),
        **options: Any,
    ) -> SessionManager:
        """The manager of an existing session, wherever it runs.

        ``engines`` (names in the config file's ``ops.engines``, or
        :class:`~kstlib.ops.config.EngineConfig`): search those named engines instead, all at
        once, each within its timeout (:func:`kstlib.ops.fleet.find_on_engines`).

        Otherwise :func:`kstlib.ops.discovery.search`'s places: tmux (``socket_name``/
        ``socket_path``, else every server of the user), every reachable engine (or
        ``runtime``/``base_url``) and the ``swarms`` managers. ``options``: as for the constructor.

        Raises:
            SessionNotFoundError: found nowhere (``.searched`` names every place searched).
            SessionAmbiguousError: found in several places (``.places``, e.g. ``["tmux", "docker"]``;
                ``.backends``, their types); pick one with ``SessionManager(name, backend=...)``.

        Example:
            >>> bot = SessionManager("doc-find", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> SessionManager.find("doc-find", socket_name="kstlib-doc", runtime="docker",
            ...                     base_url="unix:///nonexistent.sock")
            SessionManager('doc-find', backend='tmux')
            >>> bot.stop(graceful=False)
            True
        """
        validate_name(name)
        if engines is not None:
            return cls(name, engine=found_engine(name, engines, options), **options)
        where = search(
            name,
            socket_name=socket_name,
            socket_path=socket_path,
            runtime=runtime,
            base_url=base_url,
            tmux_bin=options.get("tmux_bin", options.get("tmux_binary")),
            timeout=options.get("engine_timeout"),
            swarms=swarms,
            runner_factory=options.get("runner_factory"),
        ).one(name)
        return cls(name, **found_options(where, base_url), **options)

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
            self._runner = runner_of(self._config, self._factory, **self._options)
        return self._runner

    def _lookup(self) -> Runner:
        """The runner of the place where the session is (containers: searched when unsaid)."""
        runtime = container_runtime(self._config, self._engine_timeout)
        if runtime is not None:
            self._config, self._runner = self._config.with_overrides(runtime=runtime), None
        return self.runner

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
        self._config, moved = start_config(self._config, command, overrides)
        if moved:
            self._runner = None  # another place: another runner
        status = self.runner.start(self._config)
        if self._config.runtime is None and status.runtime is not None:
            # Started on the first engine that answered: look it up there from now on.
            self._config = self._config.with_overrides(runtime=status.runtime)
        return status

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
        self._lookup().stop(self.name, graceful=graceful, timeout=timeout)
        return True

    def status(self) -> SessionStatus:
        """The session's state, pid, exit code and creation time.

        Example:
            >>> bot = SessionManager("doc-status", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 4")
            >>> bot.wait(timeout=5), bot.status().exit_code, bot.stop()
            (4, 4, True)
        """
        return self._lookup().status(self.name)

    def logs(
        self,
        lines: int | None = 100,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
    ) -> LogText:
        """The last ``lines`` lines of output (``None``: everything kept); the rest as :meth:`~kstlib.ops.Runner.logs`.

        Example:
            >>> bot = SessionManager("doc-logs", socket_name="kstlib-doc")
            >>> _ = bot.start("echo one; echo two")
            >>> bot.wait(timeout=5), bot.logs(lines=1), bot.stop()
            (0, 'two', True)
        """
        runner = self._lookup()  # the text's notebook view renders its colours (LogText)
        return LogText(runner.logs(self.name, lines, since=since, timestamps=timestamps, ansi=ansi))

    def follow_logs(
        self,
        *,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
        lines: int | None = None,
    ) -> Iterator[str]:
        """Yield output lines as they are written; the iteration ends with the session.

        The arguments are those of :meth:`~kstlib.ops.Runner.follow_logs` (``lines=N``: the
        last N lines first, as ``tail -n N -f``; ``timeout``: a deadline, after which the session
        goes on). Without ``lines`` or ``since``, only lines written after the call.

        Example:
            >>> bot = SessionManager("doc-follow", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.3; echo a; echo b")
            >>> list(bot.follow_logs())
            ['a', 'b']
            >>> list(bot.follow_logs(lines=1))
            ['b']
            >>> bot.stop()
            True
        """
        return self._lookup().follow_logs(
            self.name, since=since, timestamps=timestamps, ansi=ansi, timeout=timeout, lines=lines
        )

    def exec(self, command: Command) -> ExecResult:
        """Run ``command`` beside the session's process; return ``(exit_code, output)``.

        The pair is an :class:`~kstlib.ops.ExecResult`, which also has ``.returncode``,
        ``.stdout`` and ``.stderr`` (as upstream's result). Containers only (a list is
        the argv; a string is split with :mod:`shlex`, no shell); a tmux session has
        no way to run a second process inside it: type into it with :meth:`send_keys`.

        Raises:
            SessionError: the backend cannot exec (tmux).

        Example:
            >>> SessionManager("doc-exec", socket_name="kstlib-doc").exec(["echo", "hi"])
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: session 'doc-exec' runs on tmux, which cannot run a command beside it; use send_keys() to type into it
        """
        runner = command_runner(self._lookup(), self.name, self._where())
        return runner.exec(self.name, command if isinstance(command, str) else list(command))

    def send_keys(self, keys: str, *, enter: bool = True, literal: bool | None = None) -> None:
        """Type ``keys`` into the session's terminal, then Enter unless ``enter=False``.

        One tmux key name (``C-c``, ``Escape`` ...) is sent as that key unless
        ``literal=True``; ``literal=False`` always sends key names. tmux only; a
        container's process reads no keys from kstlib: run a command in it with :meth:`exec`.

        Raises:
            SessionError: the backend cannot type keys (containers).

        Example:
            >>> bot = SessionManager("doc-keys", socket_name="kstlib-doc")
            >>> _ = bot.start("cat")
            >>> bot.send_keys("hello")
            >>> bot.wait_for_log("^hello$", timeout=10)
            'hello'
            >>> bot.stop(graceful=False)
            True
        """
        key_sender(self._lookup(), self.name, self._where()).send_keys(
            self.name, keys, enter=enter, literal=literal
        )

    def _where(self) -> str:
        runtime = self._config.runtime
        return f"{self.backend.value}" + (f" ({runtime})" if runtime else "")

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

    def restart(self, /, *, timeout: float = 10, **overrides: Any) -> SessionStatus:
        """Stop the session if it exists (gracefully) and start it again (swarm: a rolling restart).

        Example:
            >>> bot = SessionManager("doc-restart", socket_name="kstlib-doc", command="sleep 30")
            >>> first = bot.start().pid
            >>> bot.restart().pid != first
            True
            >>> bot.stop(graceful=False)
            True
        """
        if self.backend is BackendType.SWARM and not overrides:
            # every task replaced one at a time (the service stays); started if it is not there
            with suppress(SessionNotFoundError):
                return self._swarm("rolling restart").restart(self.name)
            return self.start()
        with suppress(SessionNotFoundError):
            self.stop(graceful=True, timeout=timeout)
        return self.start(**overrides)

    # -- waits (the rules: kstlib.ops.waits) --------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the process exits (after any restarts) and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after ``timeout`` seconds.

        Example:
            >>> bot = SessionManager("doc-wait", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 7")
            >>> bot.wait(timeout=5), bot.stop()
            (7, True)
        """
        return self._lookup().wait(self.name, timeout=timeout)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30) -> str:
        """Return the first output line that matches the regex ``pattern`` (lines already written too).

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds (its message names the pattern), and
        :class:`~kstlib.ops.exceptions.SessionError` if the session ends first.

        Example:
            >>> bot = SessionManager("doc-ready", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.2; echo 'listening on :8080'; sleep 30")
            >>> bot.wait_for_log(r"listening on :\\d+", timeout=10), bot.stop(graceful=False)
            ('listening on :8080', True)
        """
        return waits.wait_for_log(self._lookup(), self.name, pattern, timeout)

    def wait_for_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30) -> None:
        """Wait until a TCP connection to ``host:port`` succeeds (the session listens).

        As :meth:`wait_for_log` (the timeout's message has the last connection
        error). A container's published port is reached on the host side
        (``ports=["8080:80"]``: ``wait_for_port(8080)``).

        Example:
            >>> SessionManager("doc-port", socket_name="kstlib-doc").wait_for_port(0)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: port: 0 is not a port number (1-65535)
        """
        self._ready(*waits.port_probe(host, port), timeout)

    def wait_for_http(self, url: str, status: int = 200, timeout: float = 30) -> int:
        """Wait until ``GET url`` answers with HTTP ``status``; return that status.

        As :meth:`wait_for_port`; redirects are followed, proxies from the
        environment are not used. Only ``http://`` and ``https://``.

        Example:
            >>> SessionManager("doc-http", socket_name="kstlib-doc").wait_for_http("ftp://x/")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: url: ...
        """
        self._ready(*waits.http_probe(url, status), timeout)
        return status

    def _ready(self, what: str, attempt: waits.Attempt, timeout: object) -> None:
        backend = self._config.runtime or self.backend
        waits.ready_wait(
            self.name, self.status, what, attempt, where=self._where(), backend=backend,
            timeout=timeout,
        )  # fmt: skip

    def wait_until_running(self, timeout: float = 30) -> SessionStatus:
        """Wait until the session exists and runs; return its status (an exit instead raises).

        Example:
            >>> bot = SessionManager("doc-up", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_until_running(timeout=5).state.value, bot.stop(graceful=False)
            ('running', True)
        """
        return waits.until_running(self.name, self.status, self._where(), self.backend, timeout)

    def scale(self, replicas: int, *, timeout: float | None = None) -> SessionStatus:
        """Run ``replicas`` tasks of the service; return once that many run (swarm only).

        Raises:
            SessionError: the session is not a swarm service.

        Example:
            >>> SessionManager("doc-scale", socket_name="kstlib-doc").scale(2)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: session 'doc-scale' runs on tmux, which has no replicas to scale; use backend='swarm'
        """
        validate_replicas(replicas)  # bad input first, whatever the backend
        return self._swarm("replicas to scale").scale(self.name, replicas, timeout=timeout)

    def _swarm(self, what: str) -> SwarmRunner:
        return swarm_runner(self._lookup(), self.name, self._where(), what)

    def exists(self) -> bool:
        """Whether the session exists (running or exited).

        Example:
            >>> SessionManager("ghost", socket_name="kstlib-doc").exists()
            False
        """
        try:
            return self._lookup().exists(self.name)
        except SessionNotFoundError:
            return False  # searched every engine: nowhere

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
        return self._lookup().attach(self.name)

    def events(self, name: str | None = None) -> EventStream:
        """Live events of ``name`` (default: this session) on this manager's backend and engine.

        Example:
            >>> next(SessionManager("bot", backend="container").events()).kind  # doctest: +SKIP
            'started'
        """
        from kstlib.ops.watch import config_events  # the events machinery loads on first use

        nodes = getattr(self.runner, "node_urls", ()) if self.backend is BackendType.SWARM else ()
        where = (self.backend, self.config, self._engine_timeout, nodes)  # a swarm's nodes too
        return config_events([name or self.name], *where)

    @classmethod
    def from_config(
        cls, name: str, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> SessionManager:
        """Build the manager of session ``name`` as defined in ``kstlib.conf.yml``.

        ``path`` is the config file (default: ``$KSTLIB_CONFIG``, then ``./kstlib.conf.yml``,
        then ``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml``); ``overrides`` replace options of the
        definition (``backend=`` too), except ``env``, which is merged into the definition's
        env (a key given here wins), as the CLI's ``-e KEY=VALUE`` does.

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
        options = defined_options(name, path, overrides)
        backend = options.pop("backend")
        return cls(name, backend=backend, **options)
