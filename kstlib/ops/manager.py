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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from kstlib.ops import waits
from kstlib.ops.backends import make_runner
from kstlib.ops.events import EventStream, events
from kstlib.ops.exceptions import (
    SessionAmbiguousError,
    SessionConfigError,
    SessionError,
    SessionNotFoundError,
)
from kstlib.ops.fleet import find_on_engines, named_engines
from kstlib.ops.locate import auto_detect_backend, engine_options, not_found, search
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionStatus
from kstlib.ops.options import SessionOptions
from kstlib.ops.runner import CommandRunner, KeySender, Runner
from kstlib.ops.swarm.session import SwarmSessionOps
from kstlib.ops.validators import validate_name

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.config_engines import EngineConfig


__all__ = [
    "SessionConfigError",
    "SessionManager",
    "SessionOptions",
    "auto_detect_backend",
    "make_runner",
    "wait_for_log",
]

wait_for_log = waits.wait_for_log

#: Options that choose where a session runs rather than what it runs.
_RUNNER_OPTIONS = ("tmux_bin", "engine_timeout")


#: Options that mean a container when no backend is named.
_IMPLY_CONTAINER = ("image", "runtime", "base_url")


class SessionManager(waits.SessionWaits, SwarmSessionOps):
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
        **given: Unpack[SessionOptions],
    ) -> None:
        validate_name(name)
        backend, options = engine_options(engine, backend, dict(given))  # a named engine
        runner_options = {k: options.pop(k) for k in _RUNNER_OPTIONS if k in options}
        # upstream spelling: tmux_binary is libtmux's tmux_bin
        if "tmux_binary" in options:
            runner_options.setdefault("tmux_bin", options.pop("tmux_binary"))
        self._tmux_bin: str | None = runner_options.get("tmux_bin")
        self._engine_timeout: float | None = runner_options.get("engine_timeout")
        if backend is None:
            chosen = self._detect(name, options)
        elif isinstance(backend, str) and backend.lower() == "auto":
            wants_container = any(options.get(k) is not None for k in _IMPLY_CONTAINER)
            chosen = BackendType.CONTAINER if wants_container else BackendType.TMUX
        else:
            chosen, implied = BackendType.parse(backend)
            if implied is not None:
                runtime = options.get("runtime")
                if runtime is not None and str(runtime).lower() != implied:
                    raise SessionConfigError(
                        f"runtime: {runtime!r} contradicts backend {implied!r}", "runtime"
                    )
                options["runtime"] = implied
        base = SessionConfig(name=name, backend=chosen)
        self._config = base.with_overrides(**options)
        self._runner: Runner | None = None

    def _detect(self, name: str, options: dict[str, Any]) -> BackendType:

        found = search(
            name,
            socket_name=options.get("socket_name"),
            socket_path=options.get("socket_path"),
            runtime=options.get("runtime"),
            base_url=options.get("base_url"),
            tmux_bin=self._tmux_bin,
            timeout=self._engine_timeout,
        ).found
        if len(found) > 1:
            raise SessionAmbiguousError(name, [loc.label for loc in found])
        if not found:
            wants_container = any(options.get(k) is not None for k in _IMPLY_CONTAINER)
            return BackendType.CONTAINER if wants_container else BackendType.TMUX
        where = found[0]
        if where.runtime is not None and options.get("runtime") is None:
            options["runtime"] = where.runtime
        if where.socket_name is not None and options.get("socket_name") is None:
            options["socket_name"] = where.socket_name  # found on another tmux server
        return where.backend

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
        **options: Any,
    ) -> SessionManager:
        """The manager of an existing session, wherever it runs.

        ``engines`` (names in the config file's ``ops.engines``, or
        :class:`~kstlib.ops.config_engines.EngineConfig`): search those named
        engines instead, all at once, each within its timeout
        (:func:`kstlib.ops.fleet.find_on_engines`).

        Searches tmux (``socket_name``/``socket_path``; else the default server and
        every other live server of the user, as ``tmux -L NAME`` makes them)
        and every reachable container engine (Podman, then Docker, or only
        ``runtime``/``base_url``). ``options`` are as for the constructor
        (``engine_timeout``, ``tmux_bin``, ...).

        Raises:
            SessionNotFoundError: the name exists nowhere; the message (and
                ``.searched``) names every place searched.
            SessionAmbiguousError: it exists in several places (``.backends``
                lists them, e.g. ``["tmux", "docker"]``); pick one with
                ``SessionManager(name, backend=...)``.

        Example:
            >>> bot = SessionManager("doc-find", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> SessionManager.find("doc-find", socket_name="kstlib-doc", runtime="docker",
            ...                     base_url="unix:///nonexistent.sock")
            SessionManager('doc-find', backend='tmux')
            >>> bot.stop(graceful=False)
            True
            >>> SessionManager.find("doc-find", socket_name="kstlib-doc", runtime="docker",
            ...                     base_url="unix:///nonexistent.sock")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'doc-find' was not found (searched: tmux (socket kstlib-doc), docker at unix:///nonexistent.sock (not reachable)); ...
        """
        validate_name(name)
        if engines is not None:
            holding, searched = find_on_engines(
                name, named_engines(engines), options.get("engine_timeout")
            )
            if len(holding) > 1:
                raise SessionAmbiguousError(name, [f"engine {e.name}" for e in holding])
            if not holding:
                raise not_found(name, "any", searched)
            return cls(name, engine=holding[0], **options)
        where = search(
            name,
            socket_name=socket_name,
            socket_path=socket_path,
            runtime=runtime,
            base_url=base_url,
            tmux_bin=options.get("tmux_bin", options.get("tmux_binary")),
            timeout=options.get("engine_timeout"),
        ).one(name)
        if where.backend is BackendType.TMUX:
            # The server it was found on (another of the user's when none was named).
            return cls(
                name,
                backend="tmux",
                socket_name=where.socket_name,
                socket_path=where.socket_path,
                **options,
            )
        return cls(name, backend="container", runtime=where.runtime, base_url=base_url, **options)

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

    def _lookup(self) -> Runner:
        """The runner of the place where the session is (containers: searched when unsaid)."""
        config = self._config
        if config.backend is BackendType.CONTAINER and config.runtime is None:
            from kstlib.ops.locate import search_containers

            found = search_containers(self.name, None, config.base_url, self._engine_timeout)
            if not found.found and not found.searched:
                return self.runner  # no engine answers: its error says which were tried
            where = found.one(self.name, BackendType.CONTAINER.value)
            self._config = config.with_overrides(runtime=where.runtime)
            self._runner = None
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
            >>> import time; time.sleep(0.3)
            >>> bot.status().exit_code
            4
            >>> bot.stop()
            True
        """
        return self._lookup().status(self.name)

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
        return self._lookup().logs(
            self.name, lines=lines, since=since, timestamps=timestamps, ansi=ansi
        )

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

        ``lines=N`` first yields the last N lines written before the call (as
        ``tail -n N -f`` and ``docker logs -f --tail N`` do; of those from
        ``since`` on, with ``since``); without it, only lines written after
        the call, unless ``since`` is given. With ``timeout``, the follow
        ends at that deadline with
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` if the session
        still runs then (the session goes on; no line written after the
        deadline is yielded).

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

    def exec(self, command: Command) -> tuple[int, str]:
        """Run ``command`` beside the session's process; return ``(exit_code, output)``.

        Containers only (a list is the argv; a string is split with
        :mod:`shlex`, no shell); a tmux session has no way to run a second
        process inside it: type into it with :meth:`send_keys`.

        Raises:
            SessionError: the backend cannot exec (tmux).

        Example:
            >>> SessionManager("doc-exec", socket_name="kstlib-doc").exec(["echo", "hi"])
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: session 'doc-exec' runs on tmux, which cannot run a command beside it; use send_keys() to type into it
        """
        runner = self._lookup()
        if not isinstance(runner, CommandRunner):
            raise SessionError(
                f"session {self.name!r} runs on {self._where()}, which cannot run a command "
                "beside it; use send_keys() to type into it"
            )
        return runner.exec(self.name, command if isinstance(command, str) else list(command))

    def send_keys(self, keys: str, *, enter: bool = True) -> None:
        """Type ``keys`` literally into the session's terminal, then Enter unless ``enter=False``.

        tmux only; a container's process reads no keys from kstlib: run a
        command in it with :meth:`exec`.

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
        runner = self._lookup()
        if not isinstance(runner, KeySender):
            raise SessionError(
                f"session {self.name!r} runs on {self._where()}, which cannot type keys "
                "into it; use exec() to run a command in it"
            )
        runner.send_keys(self.name, keys, enter=enter)

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

    def restart(self, *, timeout: float = 10, **overrides: Any) -> SessionStatus:
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
            return self._rolling_restart()
        with suppress(SessionNotFoundError):
            self.stop(graceful=True, timeout=timeout)
        return self.start(**overrides)

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
        cfg = self.config
        return events([name or self.name], self.backend, cfg.runtime, base_url=cfg.base_url)

    @classmethod
    def from_config(
        cls, name: str, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> SessionManager:
        """Build the manager of session ``name`` as defined in ``kstlib.conf.yml``.

        ``path`` is the config file (default: ``$KSTLIB_CONFIG``, then
        ``./kstlib.conf.yml``, then ``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml``);
        ``overrides`` replace options of the definition (``backend=`` too),
        except ``env``, which is merged into the definition's env (a key
        given here wins), as the CLI's ``-e KEY=VALUE`` does.

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
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = os.path.join(tmp, "kstlib.conf.yml")
            ...     _ = open(path, "w").write("ops: {sessions: {bot: {env: {A: '1', B: '2'}}}}")
            ...     SessionManager.from_config("bot", path=path, env={"B": "3"}).config.env
            {'A': '1', 'B': '3'}
        """
        from kstlib.ops.config import load_config

        options = load_config(path).manager_options(name)
        if overrides.get("env") is not None:
            overrides["env"] = {**(options.get("env") or {}), **overrides["env"]}
        if "backend" in overrides and "runtime" not in overrides:
            # backend="docker" on a definition that named podman: the override decides.
            options.pop("runtime", None)
        options.update(overrides)
        backend = options.pop("backend")
        return cls(name, backend=backend, **options)
