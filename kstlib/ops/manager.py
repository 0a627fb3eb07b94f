"""SessionManager: one named session, whichever backend runs it.

Example:
    >>> from kstlib.ops import SessionManager
    >>> bot = SessionManager("doc-mgr", socket_name="kstlib-doc")
    >>> bot.start("echo ready; sleep 30").state.value
    'running'
    >>> bot.is_running()
    True
    >>> bot.stop()
    >>> bot.exists()
    False
"""

from __future__ import annotations

import os
from typing import Any

from kstlib.ops.exceptions import (
    BackendNotFoundError,
    SessionAmbiguousError,
    SessionConfigError,
    SessionNotFoundError,
)
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionStatus
from kstlib.ops.runner import Runner
from kstlib.ops.validators import validate_backend, validate_name

__all__ = ["SessionConfigError", "SessionManager", "auto_detect_backend", "make_runner"]

#: Options that choose where a session runs rather than what it runs.
_RUNNER_OPTIONS = ("tmux_bin",)


def make_runner(config: SessionConfig, tmux_bin: str | None = None) -> Runner:
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

    return ContainerRunner(runtime=config.runtime, base_url=config.base_url)


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


class SessionManager:
    """Manage one named session on tmux (default) or in a container.

    Args:
        name: the session name (``^[A-Za-z][A-Za-z0-9_-]*$``, 1-64 chars).
        backend: ``"tmux"``, ``"container"``, or ``None`` to find where an
            existing session lives (tmux when it exists nowhere yet).
        **options: the :class:`~kstlib.ops.models.SessionConfig` fields
            (``command``, ``working_dir``, ``env``, ``socket_name``,
            ``socket_path``, ``image``, ``volumes``, ``ports``, ``runtime``,
            ``base_url``, ...) and ``tmux_bin``.

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
        self._tmux_bin: str | None = runner_options.get("tmux_bin")
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
            self._runner = make_runner(self._config, tmux_bin=self._tmux_bin)
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

    def stop(self, *, graceful: bool = True, timeout: float = 10) -> None:
        """Stop the session and remove it (SIGTERM, wait ``timeout`` s, then kill).

        Example:
            >>> SessionManager("never-started", socket_name="kstlib-doc").stop()
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'never-started' was not found on the tmux backend; check the name with 'kstlib ops list'.
        """
        self.runner.stop(self.name, graceful=graceful, timeout=timeout)

    def status(self) -> SessionStatus:
        """The session's state, pid, exit code and creation time.

        Example:
            >>> bot = SessionManager("doc-status", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 4")
            >>> import time; time.sleep(0.3)
            >>> bot.status().exit_code
            4
            >>> bot.stop()
        """
        return self.runner.status(self.name)

    def logs(self, lines: int | None = 100) -> str:
        """The last ``lines`` lines of output (``None``: everything kept).

        Example:
            >>> bot = SessionManager("doc-logs", socket_name="kstlib-doc")
            >>> _ = bot.start("echo one; echo two")
            >>> import time; time.sleep(0.3)
            >>> bot.logs(lines=1)
            'two'
            >>> bot.stop()
        """
        return self.runner.logs(self.name, lines=lines)

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
