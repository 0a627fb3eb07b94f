"""One command's context: its arguments, config file, runners and session search.

Example:
    >>> import argparse
    >>> Context(argparse.Namespace(config=None, backend="tmux", runtime=None)).explicit_backend()
    (<BackendType.TMUX: 'tmux'>, None, None)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kstlib.cli import engines, output
from kstlib.cli.parser import UsageError
from kstlib.cli.places import (
    CONTAINER,
    CONTAINER_NAME,
    CONTAINER_NAME_RULE,
    ENGINE_TIMEOUT_ENV,
    NOT_TMUX_NAME,
    RUNS_CONFIG_PROGRAMS,
    SWARM,
    TMUX,
    TMUX_NAME_RULE,
    discover,
    label,
    of_config,
    of_engine,
    option_error,
    tmux_timeout,
    unique,
)
from kstlib.ops import validators
from kstlib.ops.config import OpsConfig, load_config
from kstlib.ops.exceptions import (
    SessionAmbiguousError,
    SessionConfigError,
    SessionNotFoundError,
)
from kstlib.ops.locations import ENGINE_TIMEOUT, Location, Search, did_not_answer
from kstlib.ops.models import BackendType, SessionConfig, SessionStatus
from kstlib.ops.runner import Runner
from kstlib.ops.runners import RunnerFactory, make_runner

__all__ = ["Context"]


class Context:
    """One command's arguments, its config file (read on first use) and its runners.

    Example:
        >>> import argparse
        >>> ctx = Context(argparse.Namespace(config=None, backend="docker", runtime=None))
        >>> ctx.explicit_place("bot")
        Location(backend=<BackendType.CONTAINER: 'container'>, runtime='docker', endpoint=None, socket_name=None, socket_path=None, discovered=False)
    """

    def __init__(
        self, args: argparse.Namespace, *, runner_factory: RunnerFactory | None = None
    ) -> None:
        self.args = args
        #: What builds each runner (:func:`kstlib.ops.runners.make_runner`; a test's own).
        self.runner_factory: RunnerFactory = runner_factory or make_runner
        self._config: OpsConfig | None = None
        self._noted_binary = False
        self._invalid: dict[str, SessionConfigError] = {}
        self._sockets: list[str] | None = None
        self._discovered: set[str] = set()  # found in tmux's folder, named by nobody

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
            for line in self._config.notes:  # what a project-local file may not set
                output.note(line)
        name = self.option("name")
        if isinstance(name, str) and (name in self._invalid or "" in self._invalid):
            raise self._invalid.get(name) or self._invalid[""]
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
        from kstlib.ops.settings import env_int

        return float(env_int(ENGINE_TIMEOUT_ENV, int(ENGINE_TIMEOUT), minimum=1, unit="seconds"))

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
            output.note(
                f"not running ops.tmux_binary {validators.shown(binary)} of the project-local "
                f"{self.config.source} for '{self.option('command_name')}' (tmux from PATH "
                f"instead); pass --config {self.config.source} to trust it"
            )
        return None

    def _check_endpoint(self, place: Location) -> None:
        """Refuse a remote engine (ssh://, tcp://) only an untrusted project-local file names.

        Data sent there (env values, keys, a registry password) would leave
        for a host the folder chose, and ssh would run for it: no command
        reaches it until the user trusts the file (:mod:`kstlib.ops.config`).
        """
        url = place.endpoint
        if not self.config.untrusted_endpoint(url):
            return
        from kstlib.ops.config import how_to_trust

        raise SessionConfigError(
            f"{self.config.source}: base_url {validators.shown(url)}: "
            f"'{self.option('command_name')}' reaches no remote engine that only a "
            "project-local config file names (env values and keys would go to a host the "
            f"folder chose); {how_to_trust(self.config)}",
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

    def tmux_runner(self, place: Location) -> Runner:
        """The tmux runner for a tmux place (``ops.tmux_binary`` applied).

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None))
            >>> ctx.tmux_runner(Location(BackendType.TMUX, socket_name="x"))
            TmuxRunner(socket='x')
        """
        return self.runner_factory(
            TMUX,
            socket_name=place.socket_name,
            socket_path=place.socket_path,
            tmux_bin=self.tmux_binary(),
            tmux_timeout=tmux_timeout(place, self._discovered),
        )

    def discovered_sockets(self) -> list[str]:
        """The user's live tmux servers, searched when no ``-L`` is given (:func:`discover`)."""
        if self._sockets is None:
            self._sockets, self._discovered = discover(self.config, self.option("socket"))
        return self._sockets

    def runner(self, place: Location) -> Runner:
        """The runner serving ``place`` (container SDKs load here, not before).

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(config=None)).runner(Location(BackendType.TMUX))
            TmuxRunner(socket='default')
        """
        if place.backend is TMUX:
            return self.tmux_runner(place)
        self._check_endpoint(place)
        timeout = self.engine_timeout if place.backend is SWARM else engines.timeout_of(self, place)
        nodes = self.config.swarm_nodes(place.endpoint) if place.backend is SWARM else ()
        return self.runner_factory(
            place.backend,
            runtime=place.runtime,
            base_url=place.endpoint,
            engine_timeout=timeout,
            node_urls=nodes,
        )

    # -- where is the session ---------------------------------------------------------------

    def explicit_backend(self) -> tuple[BackendType | None, str | None, str | None]:
        """``(backend, runtime, socket)`` from ``-b``, ``--runtime`` and ``-L``, checked.

        Example:
            >>> import argparse
            >>> Context(argparse.Namespace(backend=None, runtime="podman")).explicit_backend()
            (<BackendType.CONTAINER: 'container'>, 'podman', None)
        """
        given: str | None = self.option("backend")
        runtime: str | None = self.option("runtime")
        socket: str | None = self.option("socket")
        chosen, implied = BackendType.parse(given) if given is not None else (None, None)
        if implied is not None:  # -b docker / -b podman: a container there
            if runtime and runtime != implied:
                raise UsageError(f"--runtime {runtime} contradicts --backend {implied}")
            runtime = implied
        if chosen in (TMUX, SWARM) and runtime:
            raise UsageError(f"--runtime {runtime} is for containers, not for --backend {given}")
        backend = chosen.value if chosen is not None else None
        if socket is not None:
            try:
                validators.validate_socket_name(socket)
            except SessionConfigError as err:
                raise option_error(err, "--socket") from None
            if backend in ("container", "swarm"):
                raise UsageError(f"--socket/-L names a tmux server; it does not apply to {backend}")
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
        tmux_ok = not NOT_TMUX_NAME.search(name)
        container_ok = CONTAINER_NAME.fullmatch(name) is not None
        if backend is TMUX and not tmux_ok:
            problem = f"cannot be a tmux session name ({TMUX_NAME_RULE})"
        elif backend is CONTAINER and not container_ok:
            problem = f"cannot be a container name ({CONTAINER_NAME_RULE})"
        elif not (tmux_ok or container_ok):
            problem = (
                f"cannot be a session name on any backend ({TMUX_NAME_RULE}; {CONTAINER_NAME_RULE})"
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

    def explicit_place(self, name: str) -> Location | None:
        """The place the options name, ``None`` when they name none.

        Example:
            >>> import argparse
            >>> label(Context(argparse.Namespace(config=None, socket="w")).explicit_place("a"))
            'tmux (socket w)'
        """
        if (engine := engines.named_engine(self)) is not None:
            return of_engine(engine)
        backend, runtime, socket = self.explicit_backend()
        if backend is None:
            return None
        definition = self._definition(name)
        if backend is TMUX:
            if socket is not None:
                return Location(TMUX, socket_name=socket)
            if definition is not None and definition.backend is TMUX:
                return of_config(definition)
            return Location(TMUX, socket_name=self.config.tmux_socket)
        if backend is SWARM:
            if definition is not None and definition.backend is SWARM:
                return of_config(definition)
            return Location(SWARM)
        base_url = None
        if (
            definition is not None
            and definition.backend is CONTAINER
            and runtime in (None, definition.runtime)
        ):
            base_url = definition.base_url
        return Location(CONTAINER, runtime=runtime, endpoint=base_url)

    def search(
        self, name: str, places: list[Location], *, first: bool = False, strict: Any = ()
    ) -> Search:
        """Ask ``places`` in order for ``name`` (:func:`kstlib.ops.discovery.search_at`).

        ``strict``: the places the user chose (``-b``, ``--runtime``, a
        definition): one that does not answer is an error, never "not there".
        Another absent backend is skipped, but an engine that accepts
        connections and does not answer still raises: nobody can tell whether
        the session runs there. A remote engine only an untrusted project-local
        config file names is refused before it is reached.

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None))
            >>> ctx.search("no-such-session", [Location(TMUX, socket_name="kstlib-doc")]).found
            []
        """
        from kstlib.ops.discovery import search_at

        engine_places = [p for p in places if p.backend is not TMUX]
        for place in engine_places:
            self._check_endpoint(place)
        result = search_at(
            name,
            places,
            strict=strict,
            first=first,
            runner_factory=self.runner_factory,
            tmux_bin=self.tmux_binary() if len(engine_places) < len(places) else None,
            timeout=max((engines.timeout_of(self, p) for p in engine_places), default=None),
        )
        for place, err in result.failed:
            if place.backend is not TMUX and did_not_answer(err):
                raise err
        return result

    def search_places(self, name: str, *, tmux_only: bool = False) -> list[Location]:
        """The places to look for ``name``, in order.

        Example:
            >>> import argparse
            >>> ctx = Context(argparse.Namespace(config=None, backend="tmux", socket="w"))
            >>> [label(p) for p in ctx.search_places("a")]
            ['tmux (socket w)']
        """
        explicit = self.explicit_place(name)
        if explicit is not None and explicit.backend is TMUX and self.option("socket") is None:
            # -b tmux without -L: that server first, then the user's other ones
            return unique(
                [explicit, *(Location(TMUX, socket_name=s) for s in self.discovered_sockets())]
            )
        if explicit is not None:
            return [explicit]
        definition = self._definition(name)
        places: list[Location] = []
        if definition is not None and not (tmux_only and definition.backend is CONTAINER):
            places.append(of_config(definition))
        # Then every other server of the user: a session started with tmux -L is found.
        sockets = [self.default_socket(name), self.config.tmux_socket, None]
        for socket in unique([*sockets, *self.discovered_sockets()]):
            places.append(Location(TMUX, socket_name=socket, discovered=socket in self._discovered))
        if not tmux_only:
            # The local engines only: a remote engine is searched when a session's
            # definition names it, not for every lookup.
            places.append(Location(CONTAINER))
        return unique(places)

    def find(self, name: str, *, first: bool, tmux_only: bool = False) -> Location | None:
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
        explicit = self.explicit_place(name)
        definition = self._definition(name)
        chosen = [p for p in (explicit, definition and of_config(definition)) if p is not None]
        places = self.search_places(name, tmux_only=tmux_only)
        found = unique(self.search(name, places, first=first, strict=chosen).found)
        if not found and not tmux_only and explicit is None:
            found = engines.probe_engines(self, name)
        if len(found) > 1:
            raise SessionAmbiguousError(
                name, [p.backend for p in found], places=[label(p) for p in found]
            )
        return found[0] if found else None

    def not_found(self, name: str) -> SessionNotFoundError:
        """The error for a session found nowhere, naming where kstlib looked.

        Example:
            >>> import argparse
            >>> print(Context(argparse.Namespace(config=None, backend="podman")).not_found("x"))
            Session 'x' was not found on the podman backend; check the name with 'kstlib ops list'.
        """
        explicit = self.explicit_place(name)
        where = label(explicit) if explicit is not None else "tmux or container"
        return SessionNotFoundError(name, where)

    def require(self, name: str, *, first: bool, tmux_only: bool = False) -> Location:
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
            status = self.runner(of_config(config)).start(started)
        finally:
            if bar is not None:
                bar.close()
        from kstlib.cli import state

        state.save(config)
        return status
