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

import http.client
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypedDict

from kstlib.ops.exceptions import (
    SessionAmbiguousError,
    SessionConfigError,
    SessionError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.logfile import Since
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionState, SessionStatus
from kstlib.ops.runner import CommandRunner, KeySender, Runner
from kstlib.ops.validators import validate_name, validate_timeout

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from kstlib.ops.registry import PullProgress, RegistryAuth

__all__ = [
    "SessionConfigError",
    "SessionManager",
    "SessionOptions",
    "auto_detect_backend",
    "make_runner",
    "wait_for_log",
]

#: Options that choose where a session runs rather than what it runs.
_RUNNER_OPTIONS = ("tmux_bin", "engine_timeout")


class SessionOptions(TypedDict, total=False):
    """The keyword options of :class:`SessionManager`, typed so that mypy catches a typo.

    Every :class:`~kstlib.ops.models.SessionConfig` field but ``name`` and
    ``backend`` (a test keeps the two lists equal), plus the runner's own:
    ``tmux_bin`` (upstream spelling ``tmux_binary``) and ``engine_timeout``.
    An unknown key is also refused at run time (SessionConfigError).

    Example:
        >>> options: SessionOptions = {"command": "top", "env": {"TERM": "xterm"}}
        >>> sorted(options)
        ['command', 'env']
    """

    command: str | Sequence[str] | None
    working_dir: str | None
    env: Mapping[str, str]
    socket_name: str | None
    socket_path: str | None
    image: str | None
    volumes: Sequence[str]
    log_volume: str | None
    ports: Sequence[str]
    runtime: str | None
    base_url: str | None
    labels: Mapping[str, str]
    restart: str | None
    memory: str | None
    cpus: float | None
    init: bool
    pull: str
    registry_auth: RegistryAuth | None
    insecure_registries: Sequence[str]
    on_progress: Callable[[PullProgress], None] | None
    tmux_bin: str | None
    tmux_binary: str | None
    engine_timeout: float | None


#: Options that mean a container when no backend is named.
_IMPLY_CONTAINER = ("image", "runtime", "base_url")


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
    from kstlib.ops.locate import search

    validate_name(name)
    found = search(
        name, socket_name=socket_name, socket_path=socket_path, runtime=runtime, base_url=base_url
    ).found
    if len(found) > 1:
        raise SessionAmbiguousError(name, [loc.label for loc in found])
    return found[0].backend if found else None


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


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SessionConfigError(f"port: {port!r} is not a port number (1-65535)", "port")
    return port


#: Pause between readiness attempts (a refused connection answers at once).
_READY_POLL = 0.1


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
    limit = validate_timeout(timeout)
    lines = runner.follow_logs(name, since=0, ansi=False, timeout=timeout)
    try:
        for line in lines:
            if regex.search(line):
                return line
    except SessionTimeoutError as err:
        raise SessionTimeoutError(
            name, err.backend, f"no line matched {regex.pattern!r} within {limit:g} s"
        ) from err
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
    """Manage one named session on tmux or in a container.

    Args:
        name: the session name (``^[A-Za-z][A-Za-z0-9_-]*$``, 1-64 chars).
        backend: ``"tmux"``, ``"container"``, ``"docker"`` or ``"podman"``
            (a container on that engine, as in the CLI and the config file);
            ``"auto"`` (the default): a container when ``image``, ``runtime``
            or ``base_url`` is given, tmux otherwise; ``None``: find where an
            existing session lives, as :meth:`find` does (tmux when it
            exists nowhere yet).
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
        **given: Unpack[SessionOptions],
    ) -> None:
        validate_name(name)
        options: dict[str, Any] = dict(given)
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
        from kstlib.ops.locate import search

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
        **options: Any,
    ) -> SessionManager:
        """The manager of an existing session, wherever it runs.

        Searches tmux (the default server, or ``socket_name``/``socket_path``)
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
        from kstlib.ops.locate import search

        validate_name(name)
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
            return cls(
                name, backend="tmux", socket_name=socket_name, socket_path=socket_path, **options
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
    ) -> Iterator[str]:
        """Yield output lines as they are written; the iteration ends with the session.

        Only lines written after the call, unless ``since`` is given. With
        ``timeout``, the follow ends at that deadline with
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` if the session
        still runs then (the session goes on; no line written after the
        deadline is yielded).

        Example:
            >>> bot = SessionManager("doc-follow", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.3; echo a; echo b")
            >>> list(bot.follow_logs())
            ['a', 'b']
            >>> bot.stop()
            True
        """
        return self._lookup().follow_logs(
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
        return self._lookup().wait(self.name, timeout=timeout)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30) -> str:
        """Return the first output line that matches the regex ``pattern``.

        Lines already written count too, so it is the way to wait for
        readiness. Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError`
        after ``timeout`` seconds (its message names the pattern), and
        :class:`~kstlib.ops.exceptions.SessionError` if the session ends first.
        See also :meth:`wait_for_port` and :meth:`wait_for_http`.

        Example:
            >>> bot = SessionManager("doc-ready", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.2; echo 'listening on :8080'; sleep 30")
            >>> bot.wait_for_log(r"listening on :\\d+", timeout=10)
            'listening on :8080'
            >>> bot.stop(graceful=False)
            True
        """
        return wait_for_log(self._lookup(), self.name, pattern, timeout)

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

    def _ready_wait(
        self, what: str, timeout: object, attempt: Callable[[float], str | None]
    ) -> None:
        """Call ``attempt(seconds left)`` until it returns ``None`` (ready) or time runs out.

        ``attempt`` returns why it is not ready yet. Between attempts the
        session is checked: one that has exited (or vanished) ends the wait.
        """
        limit = validate_timeout(timeout)
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            why = attempt(max(min(left, 5.0), 0.05))
            if why is None:
                return
            st = self.status()  # SessionNotFoundError if it is gone
            if not st.is_running:
                raise SessionError(
                    f"session {self.name!r} on {self._where()} ended (exit code "
                    f"{st.exit_code}) before {what} ({why})"
                )
            if time.monotonic() >= deadline:
                raise SessionTimeoutError(
                    self.name,
                    self._config.runtime or self.backend,
                    f"{what} did not happen within {limit:g} s ({why})",
                )
            time.sleep(min(_READY_POLL, max(deadline - time.monotonic(), 0)))

    def wait_for_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30) -> None:
        """Wait until a TCP connection to ``host:port`` succeeds (the session listens).

        The same rules as :meth:`wait_for_log`: raises
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` after ``timeout``
        seconds (the message has the last connection error), and
        :class:`~kstlib.ops.exceptions.SessionError` if the session exits
        first. A container's published port is reached on the host side
        (``ports=["8080:80"]``: ``wait_for_port(8080)``).

        Example:
            >>> bot = SessionManager("doc-port", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_for_port(1, timeout=0.2)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionTimeoutError: Could not wait for session 'doc-port' on the tmux backend: port 127.0.0.1:1 accepting connections did not happen within 0.2 s (...)
            >>> bot.stop(graceful=False)
            True
        """
        number = _check_port(port)
        if not isinstance(host, str) or not host:
            raise SessionConfigError(f"host: {host!r} must be a host name or address", "host")

        def attempt(seconds: float) -> str | None:
            try:
                with socket.create_connection((host, number), timeout=seconds):
                    return None
            except OSError as err:
                return f"{type(err).__name__}: {err}"

        self._ready_wait(f"port {host}:{number} accepting connections", timeout, attempt)

    def wait_for_http(self, url: str, status: int = 200, timeout: float = 30) -> int:
        """Wait until ``GET url`` answers with HTTP ``status``; return that status.

        The same rules as :meth:`wait_for_log` and :meth:`wait_for_port`.
        Redirects are followed; proxies from the environment are not used
        (readiness is about this machine). Only ``http://`` and ``https://``.

        Example:
            >>> bot = SessionManager("doc-http", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_for_http("http://127.0.0.1:1/health", timeout=0.2)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionTimeoutError: Could not wait for session 'doc-http' on the tmux backend: HTTP 200 from http://127.0.0.1:1/health did not happen within 0.2 s (...)
            >>> bot.stop(graceful=False)
            True
        """
        import urllib.error
        import urllib.request

        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SessionConfigError(f"url: {url!r} must start with http:// or https://", "url")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise SessionConfigError(f"status: {status!r} is not an HTTP status", "status")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def attempt(seconds: float) -> str | None:
            try:
                with opener.open(url, timeout=seconds) as answer:
                    code = int(answer.status)
            except urllib.error.HTTPError as err:
                code = int(err.code)
                err.close()
            except (OSError, ValueError, http.client.HTTPException) as err:
                return f"{type(err).__name__}: {err}"
            return None if code == status else f"HTTP {code}"

        self._ready_wait(f"HTTP {status} from {url}", timeout, attempt)
        return status

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
        deadline = time.monotonic() + validate_timeout(timeout)
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
