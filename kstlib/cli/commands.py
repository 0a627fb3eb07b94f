"""The ``kstlib ops`` commands: where a session is, then one runner call.

Each command finds where its session runs (the ``-b``/``--runtime``/``-L``
options, else the config file's place for it, then the tmux server, then the
container engines), calls the runner, and prints a table, a panel or JSON.
Errors propagate as :class:`~kstlib.ops.exceptions.OpsError` or
:class:`~kstlib.cli.parser.UsageError`; :func:`kstlib.cli.main` turns them into
one line on stderr and an exit code.

Container SDKs are imported only when a command reaches a container engine,
so a tmux-only command never loads docker or podman.

Example:
    >>> Place(BackendType.TMUX, socket_name="work").label
    'tmux (socket work)'
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from kstlib.cli import EXIT_FAILED, output, state
from kstlib.cli.parser import UsageError
from kstlib.ops import validators
from kstlib.ops.config import OpsConfig, load_config
from kstlib.ops.exceptions import (
    BackendNotFoundError,
    OpsError,
    SessionAmbiguousError,
    SessionConfigError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.manager import wait_for_log
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.runner import CommandRunner, Runner, TerminalAttacher

if TYPE_CHECKING:
    from kstlib.ops.tmux import TmuxRunner

__all__ = ["COMMANDS", "Context", "Place", "collect_sessions", "defined_status", "parse_env", "run"]

TMUX = BackendType.TMUX
CONTAINER = BackendType.CONTAINER
#: Seconds any single container engine call of the CLI may take (default 30).
ENGINE_TIMEOUT_ENV = "KSTLIB_OPS_ENGINE_TIMEOUT"
#: The commands that start what the config file defines: they run its programs by design.
#: Every other command runs no program a project-local config file names.
RUNS_CONFIG_PROGRAMS = ("start", "restart")
#: CLI spellings of SessionConfig fields, for error messages about CLI values.
OPTION_OF = {
    "name": "session name",
    "command": "--command",
    "working_dir": "--workdir",
    "env": "--env",
    "image": "--image",
    "volumes": "--volume",
    "ports": "--port",
    "runtime": "--runtime",
    "socket_name": "--socket",
}


# What a session name can be on each backend (beyond validate_lookup_name's rule).
_NOT_TMUX_NAME = re.compile(r"[.:]")
_TMUX_NAME_RULE = "tmux names cannot contain '.' or ':'"
_CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTAINER_NAME_RULE = (
    "container names are letters, digits, '_', '.' and '-', starting with a letter or digit"
)


@dataclass(frozen=True)
class Place:
    """Where a session runs: a tmux server or a container engine.

    ``runtime=None`` on a container place means "whichever engine has it".

    Example:
        >>> Place(BackendType.CONTAINER, runtime="podman").label
        'podman'
    """

    backend: BackendType
    runtime: str | None = None
    base_url: str | None = None
    socket_name: str | None = None
    socket_path: str | None = None

    @property
    def label(self) -> str:
        """A short human name for this place, used in messages.

        Example:
            >>> Place(BackendType.TMUX).label
            'tmux'
        """
        if self.backend is TMUX:
            where = self.socket_path or self.socket_name
            return f"tmux (socket {where})" if where else "tmux"
        name = self.runtime or "container"
        return f"{name} at {self.base_url}" if self.base_url else name

    @classmethod
    def of(cls, config: SessionConfig) -> Place:
        """The place a session configuration starts in.

        Example:
            >>> Place.of(SessionConfig(name="a", socket_name="w")).socket_name
            'w'
        """
        if config.backend is TMUX:
            return cls(TMUX, socket_name=config.socket_name, socket_path=config.socket_path)
        return cls(CONTAINER, runtime=config.runtime, base_url=config.base_url)


def _unique(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _option_error(err: SessionConfigError, option: str | None = None) -> SessionConfigError:
    """Re-word a validator's ``field: problem`` as ``--option: problem``."""
    field = err.field or ""
    top = field.split("[", 1)[0]
    option = option or OPTION_OF.get(top)
    if option is None:
        return err
    problem = err.problem
    if top == "env":  # which variable is wrong: its key (never its value)
        option += field[len(top) :]
    return SessionConfigError(f"{option}: {problem}", field=err.field, problem=problem)


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """Parse repeated ``--env KEY=VALUE`` options.

    Example:
        >>> parse_env(["MODE=fast", "EMPTY=", "URL=a=b"])
        {'MODE': 'fast', 'EMPTY': '', 'URL': 'a=b'}
        >>> parse_env(["MODE"])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: --env: item 1 has no '=': give KEY=VALUE (e.g. -e MODE=fast)
    """
    env: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        # An item may be a secret pasted in the wrong place: never echo it.
        key, sep, value = item.partition("=")
        if not sep:
            raise SessionConfigError(
                f"--env: item {number} has no '=': give KEY=VALUE (e.g. -e MODE=fast)",
                field="env",
            )
        if not validators.ENV_KEY_RE.fullmatch(key):
            raise SessionConfigError(
                f"--env: item {number}: the name before '=' must match "
                "^[A-Za-z_][A-Za-z0-9_]*$ (e.g. -e MODE=fast)",
                field="env",
            )
        env[key] = value
    try:
        return validators.validate_env(env)
    except SessionConfigError as err:
        raise _option_error(err, "--env") from None


def _resolve_cli_volume(volume: str) -> str:
    """``./data:/data`` on the command line means the current directory's ``data``."""
    host, sep, rest = volume.partition(":")
    if sep and (host.startswith((".", "~"))):
        host = os.path.abspath(os.path.expanduser(host))
    return host + sep + rest


def defined_status(config: SessionConfig) -> SessionStatus:
    """The status shown for a session that is only in the config file.

    Example:
        >>> defined_status(SessionConfig(name="web", backend="container", image="nginx")).state
        <SessionState.DEFINED: 'defined'>
    """
    return SessionStatus(
        name=config.name,
        state=SessionState.DEFINED,
        backend=config.backend,
        socket_name=config.socket_name if config.backend is TMUX else None,
        image=config.image if config.backend is CONTAINER else None,
        runtime=config.runtime if config.backend is CONTAINER else None,
        managed=True,
    )


class Context:
    """One command's arguments, its config file (read on first use) and its runners.

    Example:
        >>> import argparse
        >>> ctx = Context(argparse.Namespace(config=None, backend="docker", runtime=None))
        >>> ctx.explicit_place("bot")
        Place(backend=<BackendType.CONTAINER: 'container'>, runtime='docker', base_url=None, socket_name=None, socket_path=None)
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._config: OpsConfig | None = None
        self._noted_binary = False
        self._invalid: dict[str, SessionConfigError] = {}

    @property
    def config(self) -> OpsConfig:
        """The configuration (``--config``, else the lookup order of :mod:`kstlib.ops.config`).

        An invalid entry under ``ops.sessions`` is left out (see
        :attr:`invalid_sessions`), unless it is the one this command names:
        then its error is raised.

        Example:
            >>> import argparse, os, tempfile
            >>> path = os.path.join(tempfile.mkdtemp(), "ops.yml")
            >>> _ = open(path, "w").write("ops: {tmux_socket: work}")
            >>> Context(argparse.Namespace(config=path)).config.tmux_socket
            'work'
        """
        if self._config is None:
            invalid: dict[str, SessionConfigError] = {}
            self._config = load_config(getattr(self.args, "config", None), invalid=invalid)
            self._invalid = invalid
        name = self.option("name")
        if isinstance(name, str) and name in self._invalid:
            raise self._invalid[name]
        return self._config

    @property
    def engine_timeout(self) -> float:
        """Seconds an engine call may take: ``$KSTLIB_OPS_ENGINE_TIMEOUT``, default 30.

        Raises:
            SessionConfigError: the variable is not a whole number of seconds (1 or more).

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace()).engine_timeout
            30.0
        """
        from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT
        from kstlib.ops.settings import env_int

        return float(env_int(ENGINE_TIMEOUT_ENV, int(DEFAULT_TIMEOUT), minimum=1, unit="seconds"))

    def may_run_config_programs(self) -> bool:
        """Whether this command may run a program the config file names.

        A project-local file (``./kstlib.conf.yml``, see :mod:`kstlib.ops.config`)
        came with the folder, not from the user: only ``start`` and ``restart``,
        which run what it defines anyway, may run its programs.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None, command_name="list")).may_run_config_programs()
            True
        """
        return not self.config.project_local or self.option("command_name") in RUNS_CONFIG_PROGRAMS

    def tmux_binary(self) -> str | None:
        """The tmux program to run: the config's ``tmux_binary`` unless this command may not.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None)).tmux_binary() is None
            True
        """
        binary = self.config.tmux_binary
        if binary is None or self.may_run_config_programs():
            return binary
        if not self._noted_binary:
            self._noted_binary = True
            _note(
                f"not running ops.tmux_binary {validators.shown(binary)} of the project-local "
                f"{self.config.source} for '{self.option('command_name')}' (tmux from PATH "
                f"instead); pass --config {self.config.source} to trust it"
            )
        return None

    def _check_endpoint(self, place: Place) -> None:
        """Refuse an ssh:// engine named by a project-local config in a read-only command.

        Both SDKs reach an ssh:// endpoint by running the ``ssh`` program with
        the host the file names.
        """
        url = place.base_url
        if url is None or not url.startswith("ssh://") or self.may_run_config_programs():
            return
        named = {e.base_url for e in self.config.engines.values()}
        named.update(s.base_url for s in self.config.sessions.values() if s.base_url)
        if url in named:
            raise SessionConfigError(
                f"{self.config.source}: base_url {validators.shown(url)}: an ssh:// engine of a "
                f"project-local config file is reached only by start and restart (ssh would "
                f"run for '{self.option('command_name')}'); pass --config "
                f"{self.config.source} to trust the file",
                field="base_url",
            )

    @property
    def invalid_sessions(self) -> dict[str, SessionConfigError]:
        """The config file's session entries that are not valid, by name, with their error.

        Example:
            >>> import argparse, os, tempfile
            >>> path = os.path.join(tempfile.mkdtemp(), "ops.yml")
            >>> _ = open(path, "w").write("ops: {sessions: {ok: {}, bad: {colour: x}}}")
            >>> ctx = Context(argparse.Namespace(config=path))
            >>> list(ctx.config.sessions), list(ctx.invalid_sessions)
            (['ok'], ['bad'])
        """
        _ = self.config
        return dict(self._invalid)

    def option(self, name: str) -> Any:
        """An option's value, ``None`` when this command has no such option.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace()).option("socket") is None
            True
        """
        return getattr(self.args, name, None)

    # -- runners -------------------------------------------------------------------------

    def tmux_runner(self, place: Place) -> TmuxRunner:
        """The tmux runner for a tmux place (``ops.tmux_binary`` applied).

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None))
            >>> ctx.tmux_runner(Place(BackendType.TMUX, socket_name="x"))
            TmuxRunner(socket='x')
        """
        from kstlib.ops.tmux import TmuxRunner

        return TmuxRunner(
            socket_name=place.socket_name,
            socket_path=place.socket_path,
            tmux_bin=self.tmux_binary(),
        )

    def runner(self, place: Place) -> Runner:
        """The runner serving ``place`` (container SDKs load here, not before).

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None)).runner(Place(BackendType.TMUX))
            TmuxRunner(socket='default')
        """
        if place.backend is TMUX:
            return self.tmux_runner(place)
        self._check_endpoint(place)
        from kstlib.ops.container import ContainerRunner

        return ContainerRunner(
            runtime=place.runtime, base_url=place.base_url, timeout=self.engine_timeout
        )

    # -- where is the session ---------------------------------------------------------------

    def explicit_backend(self) -> tuple[BackendType | None, str | None, str | None]:
        """``(backend, runtime, socket)`` from ``-b``, ``--runtime`` and ``-L``, checked.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(backend=None, runtime="podman")).explicit_backend()
            (<BackendType.CONTAINER: 'container'>, 'podman', None)
        """
        backend: str | None = self.option("backend")
        runtime: str | None = self.option("runtime")
        socket: str | None = self.option("socket")
        if backend in ("docker", "podman"):
            if runtime and runtime != backend:
                raise UsageError(f"--runtime {runtime} contradicts --backend {backend}")
            backend, runtime = "container", backend
        if backend == "tmux" and runtime:
            raise UsageError(f"--runtime {runtime} is for containers, not for --backend tmux")
        if socket is not None:
            try:
                validators.validate_socket_name(socket)
            except SessionConfigError as err:
                raise _option_error(err, "--socket") from None
            if backend == "container":
                raise UsageError("--socket/-L names a tmux server; it does not apply to containers")
            backend = backend or "tmux"
        if runtime and backend is None:
            backend = "container"
        return (BackendType(backend) if backend else None), runtime, socket

    def lookup_name(self, *, backend: BackendType | None = None) -> str:
        """The ``NAME`` argument of a look-up command, checked against the backends in scope.

        A name that no backend in scope can hold is a usage error (exit 2), not
        a session that was not found: tmux turns ``.`` and ``:`` in session names
        into ``_``, and Docker and Podman names are ``[A-Za-z0-9][A-Za-z0-9_.-]*``.
        ``backend`` is the only backend the command works on (``exec``: containers,
        ``send-keys``: tmux); else ``-b``/``--runtime``/``-L`` decide, else both.

        Raises:
            SessionConfigError: no session of that name can exist there.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(name="my.bot", backend="tmux")).lookup_name()
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: name: 'my.bot' cannot be a tmux session name (tmux names cannot contain '.' or ':')
            >>> Context(argparse.Namespace(name="my.bot", backend=None)).lookup_name()
            'my.bot'
        """
        name: str = validators.validate_lookup_name(self.args.name)
        if backend is None:
            backend = self.explicit_backend()[0]
        tmux_ok = not _NOT_TMUX_NAME.search(name)
        container_ok = _CONTAINER_NAME.fullmatch(name) is not None
        if backend is TMUX and not tmux_ok:
            problem = f"cannot be a tmux session name ({_TMUX_NAME_RULE})"
        elif backend is CONTAINER and not container_ok:
            problem = f"cannot be a container name ({_CONTAINER_NAME_RULE})"
        elif not (tmux_ok or container_ok):
            problem = (
                f"cannot be a session name on any backend ({_TMUX_NAME_RULE}; "
                f"{_CONTAINER_NAME_RULE})"
            )
        else:
            return name
        raise SessionConfigError(f"name: {name!r} {problem}", field="name")

    def _definition(self, name: str) -> SessionConfig | None:
        return self.config.sessions.get(name)

    def default_socket(self, name: str) -> str | None:
        """The tmux socket for ``name`` when ``-L`` is not given.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None, socket="w")).default_socket("a") is None
            True
        """
        definition = self._definition(name)
        if definition is not None and definition.backend is TMUX:
            return definition.socket_name
        return self.config.tmux_socket

    def explicit_place(self, name: str) -> Place | None:
        """The place the options name, ``None`` when they name none.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None, socket="w")).explicit_place("a").label
            'tmux (socket w)'
        """
        backend, runtime, socket = self.explicit_backend()
        if backend is None:
            return None
        definition = self._definition(name)
        if backend is TMUX:
            if socket is not None:
                return Place(TMUX, socket_name=socket)
            if definition is not None and definition.backend is TMUX:
                return Place.of(definition)
            return Place(TMUX, socket_name=self.config.tmux_socket)
        base_url = None
        if (
            definition is not None
            and definition.backend is CONTAINER
            and runtime in (None, definition.runtime)
        ):
            base_url = definition.base_url
        return Place(CONTAINER, runtime=runtime, base_url=base_url)

    def _probe(self, name: str, place: Place, *, strict: bool = False) -> list[Place]:
        """The places matching ``place`` that hold a session called ``name``.

        ``strict``: the user chose this place (``-b``, ``--runtime``, a
        definition): a backend that does not answer is an error, never "not
        there". Otherwise an absent backend is skipped, but an engine that
        accepts connections and does not answer still raises: nobody can tell
        whether the session runs there.
        """
        if place.backend is TMUX:
            try:
                return [place] if self.tmux_runner(place).exists(name) else []
            except BackendNotFoundError:
                if strict:
                    raise
                return []
        from kstlib.ops.container import locate_container
        from kstlib.ops.engines.endpoints import connect
        from kstlib.ops.engines.errors import did_not_answer
        from kstlib.ops.validators import validate_base_url

        self._check_endpoint(place)
        timeout = self.engine_timeout
        base_url = validate_base_url(place.base_url)
        for runtime in [place.runtime] if place.runtime else ["podman", "docker"]:
            try:
                connect(runtime, base_url, timeout)  # raises what locate would skip
            except BackendNotFoundError as err:
                if strict or did_not_answer(err):
                    raise
        # One search (it asks an endpoint reached through both SDKs once); the
        # engines it needs are connected and cached above.
        runtimes = locate_container(name, place.runtime, place.base_url, timeout)
        return [Place(CONTAINER, runtime=rt, base_url=place.base_url) for rt in runtimes]

    def search_places(self, name: str, *, tmux_only: bool = False) -> list[Place]:
        """The places to look for ``name``, in order.

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None, backend="tmux"))
            >>> [p.label for p in ctx.search_places("a")] == [ctx.explicit_place("a").label]
            True
        """
        explicit = self.explicit_place(name)
        if explicit is not None:
            return [explicit]
        definition = self._definition(name)
        places: list[Place] = []
        if definition is not None and not (tmux_only and definition.backend is CONTAINER):
            places.append(Place.of(definition))
        for socket in _unique([self.default_socket(name), self.config.tmux_socket, None]):
            places.append(Place(TMUX, socket_name=socket))
        if not tmux_only:
            # The local engines only: a remote engine is searched when a session's
            # definition names it, not for every lookup.
            places.append(Place(CONTAINER))
        return _unique(places)

    def find(self, name: str, *, first: bool, tmux_only: bool = False) -> Place | None:
        """Where session ``name`` runs, ``None`` if nowhere.

        ``first=True`` answers from the first place that has it (tmux is asked
        before any container engine, so no container SDK is loaded for a tmux
        session); ``first=False`` asks every place and raises
        :class:`~kstlib.ops.exceptions.SessionAmbiguousError` when several have it.

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None, socket="kstlib-doc"))
            >>> ctx.find("no-such-session", first=True) is None
            True
        """
        found: list[Place] = []
        chosen = {self.explicit_place(name)}
        definition = self._definition(name)
        if definition is not None:
            chosen.add(Place.of(definition))
        for place in self.search_places(name, tmux_only=tmux_only):
            hits = [p for p in self._probe(name, place, strict=place in chosen) if p not in found]
            found.extend(hits)
            if first and found:
                break
        if len(found) > 1:
            raise SessionAmbiguousError(name, [p.label for p in found])
        return found[0] if found else None

    def not_found(self, name: str) -> SessionNotFoundError:
        """The error for a session found nowhere, naming where kstlib looked.

        Example:
            >>> import argparse
            >>> print(Context(argparse.Namespace(config=None, backend="podman")).not_found("x"))
            Session 'x' was not found on the podman backend; check the name with 'kstlib ops list'.
        """
        explicit = self.explicit_place(name)
        where = explicit.label if explicit is not None else "tmux or container"
        return SessionNotFoundError(name, where)

    def require(self, name: str, *, first: bool, tmux_only: bool = False) -> Place:
        """Like :meth:`find`, but a missing session raises ``SessionNotFoundError``.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None, socket="kstlib-doc")).require(
            ...     "no-such-session", first=True)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionNotFoundError: Session 'no-such-session' was not found on the tmux (socket kstlib-doc) backend; check the name with 'kstlib ops list'.
        """
        place = self.find(name, first=first, tmux_only=tmux_only)
        if place is None:
            raise self.not_found(name)
        return place

    # -- what to start -------------------------------------------------------------------------

    def start_config(self, *, restart: bool = False) -> SessionConfig:
        """The configuration to start: the options over the definition (or the defaults).

        ``restart=True`` falls back on the last configuration ``kstlib ops start``
        used when the config file does not define the session.

        Example:
            >>> import argparse
            >>> ns = argparse.Namespace(name="bot", config=None, backend="tmux", runtime=None,
            ...     socket="w", image=None, shell_command="sleep 9", argv=None, env=["A=1"],
            ...     volume=[], port=[], workdir=None)
            >>> cfg = Context(ns).start_config()
            >>> cfg.command, cfg.env, cfg.socket_name
            ('sleep 9', {'A': '1'}, 'w')
        """
        args = self.args
        try:
            name = validators.validate_name(args.name)
        except SessionConfigError as err:
            raise _option_error(err) from None
        config = self.config
        last = state.load(name) if restart and not config.is_defined(name) else None
        if config.is_defined(name):
            values = config.session_fields(name)
        elif last is not None:
            values = {f.name: getattr(last.config, f.name) for f in fields(last.config)}
        else:
            values = config.defaults_for(name)
        backend, runtime, socket = self.explicit_backend()
        if backend is None and args.image and values["backend"] is TMUX:
            backend = CONTAINER
        if backend is not None and backend is not values["backend"]:
            values["backend"] = backend
            if backend is TMUX and values.get("socket_name") is None:
                values["socket_name"] = config.tmux_socket
            if backend is CONTAINER and values.get("runtime") is None:
                values["runtime"] = config.container_runtime
        if runtime:
            values["runtime"] = runtime
        if socket:
            values["socket_name"] = socket

        if args.shell_command is not None and args.argv is not None:
            raise UsageError("give the command either with -c/--command or after '--', not both")
        given_command = args.shell_command is not None or args.argv is not None
        if args.argv is not None:
            if not args.argv:
                raise UsageError("no command after '--'")
            values["command"] = list(args.argv)
        elif args.shell_command is not None:
            values["command"] = args.shell_command
        if (
            restart
            and not config.is_defined(name)
            and last is None
            and not (given_command or args.image)
        ):
            raise UsageError(
                f"cannot restart {name!r}: it is not defined in {config.source} and was not "
                "started with 'kstlib ops start' here; give its command with -c or after '--'"
            )
        if args.image is not None:
            values["image"] = args.image
        cli_env = parse_env(args.env)
        if cli_env:
            values["env"] = {**values.get("env", {}), **cli_env}
        if last is not None and not (given_command or args.image):
            # The record keeps env names, never values: they must be given again.
            missing = [k for k in last.env_keys if k not in cli_env]
            if missing:
                raise UsageError(
                    f"cannot restart {name!r} from its last start: kstlib does not keep env "
                    f"values, give them again with -e ({', '.join(f'{k}=...' for k in missing)})"
                )
        if args.volume:
            values["volumes"] = [
                *values.get("volumes", ()),
                *(_resolve_cli_volume(v) for v in args.volume),
            ]
        if args.port:
            values["ports"] = [*values.get("ports", ()), *args.port]
        if getattr(args, "restart", None) is not None:
            values["restart"] = args.restart
        if getattr(args, "pull", None) is not None:
            values["pull"] = args.pull
        if args.workdir is not None:
            workdir = args.workdir
            if values["backend"] is TMUX:
                workdir = os.path.abspath(os.path.expanduser(workdir))
            values["working_dir"] = workdir
        try:
            result = SessionConfig(**values)
        except SessionConfigError as err:
            raise _option_error(err) from None
        if result.backend is CONTAINER and not result.image:
            raise SessionConfigError(
                f"--image: an image is required to start {name!r} in a container "
                "(give -i IMAGE, or 'image:' for it in the config file)",
                field="image",
            )
        return result

    def start(self, config: SessionConfig) -> SessionStatus:
        """Start ``config`` where it says and remember it for ``restart``.

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None))
            >>> ctx.start(SessionConfig(name="bot", command="sleep 9")).state.value
            ... # doctest: +SKIP
            'running'
        """
        bar = None
        if config.backend is CONTAINER and config.on_progress is None:
            from kstlib.cli.progress import terminal_progress

            bar = terminal_progress(sys.stderr)
        try:
            started = config if bar is None else config.with_overrides(on_progress=bar)
            status = self.runner(Place.of(config)).start(started)
        finally:
            if bar is not None:
                bar.close()
        state.save(config)
        return status


# -- output helpers ----------------------------------------------------------------------


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _emit_status(ctx: Context, status: SessionStatus, quiet_text: str | None) -> None:
    if ctx.option("json"):
        _print(output.dumps_json(status.to_dict()))
    elif ctx.option("quiet"):
        if quiet_text is not None:
            _print(quiet_text)
    else:
        _print(output.render_status(status))


def _note(message: str) -> None:
    sys.stderr.write(f"kstlib: note: {message}\n")


def _warn(message: str) -> None:
    line = " ".join(message.split())
    sys.stderr.write(f"kstlib: warning: {line}\n")


# -- commands --------------------------------------------------------------------------


def cmd_start(ctx: Context) -> int:
    """``kstlib ops start NAME``: start a session, print its status.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "start", "bot", "-q", "-c", "python bot.py"])  # doctest: +SKIP
        0
        >>> main(["ops", "start", "bot", "-c", "x", "--", "y"])  # both forms of a command
        2
    """
    status = ctx.start(ctx.start_config())
    _emit_status(ctx, status, None)
    return 0


def cmd_stop(ctx: Context) -> int:
    """``kstlib ops stop NAME``: stop (SIGTERM, wait, kill) and remove a session.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "stop", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.require(name, first=False)
    ctx.runner(place).stop(name, graceful=not ctx.args.force, timeout=ctx.args.timeout)
    state.forget(name)
    if not ctx.args.quiet:
        _print(f"Stopped session {name!r} on {place.label}.")
    return 0


def cmd_restart(ctx: Context) -> int:
    """``kstlib ops restart NAME``: stop it gracefully if it runs, then start it again.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "restart", "bot", "-q"])  # doctest: +SKIP
        0
        >>> main(["ops", "restart", "9lives"])
        2
    """
    config = ctx.start_config(restart=True)
    # Where it will start is the likeliest place it runs now (a last-start socket
    # that no default search covers, for one).
    hits = ctx._probe(config.name, Place.of(config))
    place = hits[0] if len(hits) == 1 else ctx.find(config.name, first=False)
    if place is not None:
        ctx.runner(place).stop(config.name, graceful=True, timeout=ctx.args.timeout)
    _emit_status(ctx, ctx.start(config), None)
    return 0


def cmd_status(ctx: Context) -> int:
    """``kstlib ops status NAME``: state, pid, exit code, creation time.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "status", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.find(name, first=True)
    status: SessionStatus | None = None
    if place is not None:
        try:
            status = ctx.runner(place).status(name)
        except SessionNotFoundError:
            status = None  # it ended between the lookup and the query
    if status is None:
        definition = ctx.config.sessions.get(name)
        if definition is None:
            raise ctx.not_found(name)
        status = defined_status(definition)
    _emit_status(ctx, status, status.state.value)
    return 0


def cmd_logs(ctx: Context) -> int:
    """``kstlib ops logs NAME [-n N] [-f]``: the session's recent output.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "logs", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    runner = ctx.runner(ctx.require(name, first=True))
    # On a terminal, only colours pass: any other sequence in a session's output
    # could make the terminal answer (typed into the user's shell) or retitle it.
    show = output.terminal_safe if _is_terminal(sys.stdout) else _unchanged
    if ctx.args.follow:
        lines = runner.follow_logs(
            name, since=ctx.args.since, timestamps=ctx.args.timestamps, ansi=not ctx.args.no_color
        )
        for line in lines:
            sys.stdout.write(show(line) + "\n")
            sys.stdout.flush()
        return 0
    text = runner.logs(
        name,
        lines=ctx.args.lines,
        since=ctx.args.since,
        timestamps=ctx.args.timestamps,
        ansi=not ctx.args.no_color,
    )
    if text:
        _print(show(text))
    return 0


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _unchanged(text: str) -> str:
    return text


_FOREVER = 10.0 * 365 * 86400  # wait_for_log needs a bound; --for without -t has none


def cmd_wait(ctx: Context) -> int:
    """``kstlib ops wait NAME [--for REGEX] [-t S]``: exit code, or a matching line.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "wait", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    runner = ctx.runner(ctx.require(name, first=True))
    if ctx.args.pattern is not None:
        try:
            regex = re.compile(ctx.args.pattern)
        except re.error as err:
            raise UsageError(
                f"--for: {validators.shown(ctx.args.pattern)} is not a regular expression: {err}"
            ) from None
        timeout = ctx.args.timeout if ctx.args.timeout is not None else _FOREVER
        try:
            line = wait_for_log(runner, name, regex, timeout)
        except SessionTimeoutError as err:
            raise SessionTimeoutError(
                name,
                err.backend,
                f"no output line matched {regex.pattern!r} within {timeout:g} s",
            ) from err
        if ctx.args.json:
            _print(output.dumps_json({"name": name, "line": line}))
        elif not ctx.args.quiet and not ctx.args.print_code:
            _print(output.terminal_safe(line) if _is_terminal(sys.stdout) else line)
        return 0
    code = runner.wait(name, timeout=ctx.args.timeout)
    if ctx.args.json:
        _print(output.dumps_json({"name": name, "exit_code": code}))
        return 0
    if ctx.args.print_code:
        _print(str(code))
        return 0
    return code if 0 <= code <= 255 else 1


def _list_filter(ctx: Context) -> tuple[BackendType | None, str | None, str | None]:
    """``list``'s backend filter: ``-L`` picks the tmux server, it does not hide containers."""
    backend, runtime, socket = ctx.explicit_backend()
    if ctx.option("backend") is None and ctx.option("runtime") is None:
        backend = None
    return backend, runtime, socket


def _list_places(ctx: Context) -> list[Place]:
    backend, runtime, socket = _list_filter(ctx)
    config = ctx.config
    places: list[Place] = []
    if backend in (None, TMUX):
        if socket is not None:
            sockets: list[str | None] = [socket]
        else:
            sockets = _unique(
                [
                    None,
                    config.tmux_socket,
                    *(s.socket_name for s in config.sessions.values() if s.backend is TMUX),
                ]
            )
        places.extend(Place(TMUX, socket_name=s) for s in sockets)
    if backend in (None, CONTAINER):
        runtimes = [runtime] if runtime else ["podman", "docker"]
        places.extend(Place(CONTAINER, runtime=rt) for rt in runtimes)
        places.extend(
            Place(CONTAINER, runtime=e.runtime, base_url=e.base_url)
            for e in config.engines.values()
            if runtime is None or e.runtime in (None, runtime)
        )
    return _unique(places)


def collect_sessions(ctx: Context) -> tuple[list[SessionStatus], list[str]]:
    """Every session of every reachable place, plus config definitions not running.

    Returns the statuses and the labels of the places that did not answer.

    Example:
        >>> import argparse
        >>> ns = argparse.Namespace(config=None, backend="tmux", runtime=None,
        ...                         socket="kstlib-doc-empty")
        >>> collect_sessions(Context(ns))[0]
        []
    """
    backend, _, _ = _list_filter(ctx)
    statuses: list[SessionStatus] = []
    unreachable: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for place in _list_places(ctx):
        try:
            found = ctx.runner(place).list_sessions()
        except BackendNotFoundError as err:
            where = getattr(err, "endpoints", ())  # which endpoint did not answer
            unreachable.append(f"{place.label} at {', '.join(where)}" if where else place.label)
            continue
        except OpsError as err:
            # One engine failing must not hide the sessions of the others.
            unreachable.append(f"{place.label} ({err})")
            continue
        for st in found:
            key = (st.backend, st.runtime, st.socket_name, st.name, st.created_at)
            if key not in seen:
                seen.add(key)
                statuses.append(st)
    running = {s.name for s in statuses}
    for definition in ctx.config.sessions.values():
        if definition.name in running:
            continue
        if backend is not None and definition.backend is not backend:
            continue
        statuses.append(defined_status(definition))
    return statuses, unreachable


def cmd_list(ctx: Context) -> int:
    """``kstlib ops list``: sessions of every reachable backend and the config's.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"])
        0
    """
    statuses, unreachable = collect_sessions(ctx)
    for err in ctx.invalid_sessions.values():
        _warn(f"{err}; this entry is not listed")
    explicit, _, _ = _list_filter(ctx)
    if explicit is not None and unreachable and len(unreachable) == len(_list_places(ctx)):
        raise BackendNotFoundError(
            f"{', '.join(unreachable)} did not answer; run 'kstlib ops doctor' to see why"
        )
    if unreachable and not ctx.args.quiet:
        _note(f"not reachable: {', '.join(unreachable)} (run 'kstlib ops doctor')")
    if ctx.args.managed:
        statuses = [s for s in statuses if s.managed]
    if ctx.args.json:
        _print(output.dumps_json([s.to_dict() for s in statuses]))
        return 0
    if ctx.args.quiet:
        for s in statuses:
            _print(s.name)
        return 0
    _print(output.render_status_table(statuses) if statuses else "No sessions.")
    return 0


def cmd_exec(ctx: Context) -> int:
    """``kstlib ops exec NAME -- CMD ...``: run a command in a container session.

    Prints the command's output and exits with its exit code.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "exec", "bot", "-b", "tmux", "--", "ls"])
        2
    """
    argv = ctx.args.argv
    if not argv:
        raise UsageError("give the command after '--', e.g. kstlib ops exec NAME -- ls -l")
    backend, _, _ = ctx.explicit_backend()
    if backend is TMUX:
        raise UsageError(
            "exec runs a command in a container session; for tmux sessions "
            "use 'kstlib ops send-keys'"
        )
    name = ctx.lookup_name(backend=CONTAINER)
    place = ctx.require(name, first=False)
    if place.backend is TMUX:
        raise UsageError(
            f"{name!r} is a tmux session; exec runs a command in a container "
            "session (use 'kstlib ops send-keys' to type into tmux)"
        )
    runner = ctx.runner(place)
    if not isinstance(runner, CommandRunner):
        raise UsageError(f"exec is not available for {runner!r}")
    code, out = runner.exec(name, list(argv))
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out or "")
    sys.stdout.write(text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    return code if 0 <= code <= 255 else 1


def cmd_send_keys(ctx: Context) -> int:
    """``kstlib ops send-keys NAME KEYS``: type text into a tmux session, then Enter.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "send-keys", "no-such-session", "ls", "-L", "kstlib-doc"])
        3
    """
    args = ctx.args
    keys = args.keys
    if not keys and args.no_enter:
        raise UsageError("nothing to send: give KEYS (or drop --no-enter to press Enter)")
    name = ctx.lookup_name(backend=TMUX)
    place = ctx.require(name, first=True, tmux_only=True)
    ctx.tmux_runner(place).send_keys(name, keys, enter=not args.no_enter)
    return 0


def cmd_attach(ctx: Context) -> int:
    """``kstlib ops attach NAME``: this terminal joins the session (tmux: replaces kstlib).

    A container attach ends with one line on stderr: after a detach (Ctrl-P
    Ctrl-Q; Ctrl-C or Ctrl-D for a container without a TTY), exit 0; when the
    container ended, its exit code (1 when it was removed at once and the code
    is unknown).

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "attach", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.require(name, first=False)
    sys.stdout.flush()
    runner = ctx.runner(place)
    if place.backend is TMUX:
        runner.attach(name)  # the tmux client takes over this process
        return 0
    if not isinstance(runner, TerminalAttacher):
        raise UsageError(f"attach is not available for {runner!r}")
    where = getattr(runner, "runtime", None) or place.label
    code = runner.attach_terminal(name)
    if code is None:
        # the relay left the cursor at the start of a line (a newline if needed)
        sys.stderr.write(f"kstlib: detached from session {name!r} ({where}); it runs on.\n")
        return 0
    if code < 0:
        sys.stderr.write(
            f"kstlib: session {name!r} ({where}) ended and was removed; its exit code is unknown.\n"
        )
        return EXIT_FAILED
    sys.stderr.write(f"kstlib: session {name!r} ({where}) ended with exit code {code}.\n")
    return code if code <= 255 else EXIT_FAILED


def cmd_doctor(ctx: Context) -> int:
    """``kstlib ops doctor``: each backend, usable or not, and what to do about it.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "doctor", "-q"]) in (0, 1)
        True
    """
    from kstlib.cli import doctor

    config_info: dict[str, Any] = {"path": None, "valid": True, "error": None, "sessions": 0}
    try:
        config = ctx.config
        config_info.update(
            path=str(config.path) if config.path else None, sessions=len(config.sessions)
        )
        if ctx.invalid_sessions:
            config_info.update(
                valid=False, error="; ".join(str(e) for e in ctx.invalid_sessions.values())
            )
    except SessionConfigError as err:
        config = OpsConfig()
        config_info.update(valid=False, error=str(err))
    timeout = min(float(doctor.TIMEOUT), ctx.engine_timeout)  # doctor never waits long
    checks = [
        doctor.probe_tmux(
            ctx.tmux_binary() if config_info["valid"] else None,
            ctx.option("socket") or config.tmux_socket,
        ),
        doctor.probe_docker(timeout=timeout),
        doctor.probe_podman(timeout=timeout),
    ]
    for engine in config.engines.values():
        if engine.base_url.startswith("ssh://") and not ctx.may_run_config_programs():
            # reaching it runs ssh with the host a file from the current folder names
            checks.append(
                doctor.Check(
                    f"engine {engine.name}",
                    False,
                    None,
                    engine.base_url,
                    "not probed: an ssh:// engine of a project-local config file",
                    f"pass --config {config.source} to trust the file",
                )
            )
            continue
        probe = doctor.probe_podman if engine.runtime == "podman" else doctor.probe_docker
        checks.append(probe(engine.base_url, name=f"engine {engine.name}", timeout=timeout))
    public = _public_ports(config)
    config_info["public_ports"] = public
    usable = any(c.available for c in checks)
    if ctx.args.json:
        _print(
            output.dumps_json({"config": config_info, "backends": [c.to_dict() for c in checks]})
        )
    elif not ctx.args.quiet:
        rows = [
            [
                c.backend,
                "ok" if c.available else "unavailable",
                c.version or "-",
                c.endpoint,
                c.detail or "-",
            ]
            for c in checks
        ]
        _print(output.render_table(["BACKEND", "STATUS", "VERSION", "ENDPOINT", "DETAIL"], rows))
        for c in checks:
            if not c.available and c.hint:
                _print(f"\nTo use {c.backend}: {c.hint}")
        if config_info["valid"]:
            where = config_info["path"] or "none found (optional)"
            _print(f"\nConfig file: {where}")
        else:
            _print(f"\nConfig file: invalid: {config_info['error']}")
        for name, ports in public.items():
            _, host, ctr, proto = validators.parse_port(ports[0])
            local = f"127.0.0.1:{host}:{ctr}" + ("" if proto == "tcp" else f"/{proto}")
            _print(
                f"\nSession {name!r} publishes {', '.join(ports)} on every network interface: "
                f"any host that can reach this machine can connect. Write {local} to keep "
                "it on this machine."
            )
        count = sum(c.available for c in checks)
        _print(
            f"{count} of {len(checks)} backends usable."
            + ("" if usable else " Install or start one of them (see above).")
        )
    return 0 if usable else 1


def cmd_pull(ctx: Context) -> int:
    """``kstlib ops pull IMAGE``: pull an image, with a progress bar on a terminal.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "pull", "127.0.0.1:5000/kstlib/pulltest:1", "-q"])  # doctest: +SKIP
        0
        >>> main(["ops", "pull", "Not An Image"])
        2
    """
    from kstlib.cli.progress import terminal_progress
    from kstlib.ops.registry import DEFAULT_PULL_TIMEOUT, pull_image

    args = ctx.args
    try:
        image = validators.validate_image(args.image)
    except SessionConfigError as err:
        raise _option_error(err, "IMAGE") from None
    config = ctx.config
    quiet = bool(args.quiet or args.json)
    bar = None if quiet else terminal_progress(sys.stderr)
    try:
        result = pull_image(
            image,
            runtime=args.runtime or config.container_runtime,
            on_progress=bar,
            insecure_registries=config.insecure_registries,
            insecure=True if args.insecure else None,
            timeout=args.timeout if args.timeout else DEFAULT_PULL_TIMEOUT,
        )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        _print(output.dumps_json(result.to_dict()))
    elif not args.quiet:
        short = (result.image_id or "").removeprefix("sha256:")[:12]
        _print(f"Pulled {result.image} on {result.runtime}" + (f" ({short})." if short else "."))
    return 0


def _public_ports(config: OpsConfig) -> dict[str, list[str]]:
    """The config's container sessions' port mappings that bind every interface.

    ``"8080:80"`` binds 0.0.0.0 (and ::), as ``docker run -p`` does.

    Example:
        >>> from kstlib.ops.config import parse_config
        >>> _public_ports(parse_config(
        ...     "ops: {sessions: {web: {backend: docker, image: nginx, "
        ...     "ports: ['8080:80', '127.0.0.1:8443:443']}}}", source="x.yml"))
        {'web': ['8080:80']}
    """
    out: dict[str, list[str]] = {}
    for name, session in config.sessions.items():
        if session.backend is not CONTAINER:
            continue
        wide = [p for p in session.ports if validators.parse_port(p)[0] in (None, "0.0.0.0", "::")]
        if wide:
            out[name] = wide
    return out


COMMANDS: dict[str, Callable[[Context], int]] = {
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "attach": cmd_attach,
    "status": cmd_status,
    "logs": cmd_logs,
    "list": cmd_list,
    "exec": cmd_exec,
    "send-keys": cmd_send_keys,
    "doctor": cmd_doctor,
    "wait": cmd_wait,
    "pull": cmd_pull,
}


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``kstlib ops`` command; return its exit code.

    Example:
        >>> from kstlib.cli.parser import parse_args
        >>> run(parse_args(["ops", "status", "no-such-session", "-L", "kstlib-doc"]))
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: Session 'no-such-session' was not found on the tmux (socket kstlib-doc) backend; check the name with 'kstlib ops list'.
    """
    return COMMANDS[args.command_name](Context(args))
