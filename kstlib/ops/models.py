"""Typed models shared by every backend: backends, states, configs, statuses.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Example:
    >>> cfg = SessionConfig(name="bot", command=["python", "bot.py"])
    >>> cfg.backend, cfg.command
    (<BackendType.TMUX: 'tmux'>, ('python', 'bot.py'))
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

from kstlib.ops import validators

if TYPE_CHECKING:
    from kstlib.ops.images._types import PullProgress, RegistryAuth

__all__ = [
    "BackendType",
    "Command",
    "SessionConfig",
    "SessionState",
    "SessionStatus",
    "SessionTable",
]

Command = str | Sequence[str]
"""A command: a string run by a shell (tmux) or shlex-split (containers), or an argv list."""


class BackendType(str, Enum):
    """Where a session runs.

    Example:
        >>> BackendType("container")
        <BackendType.CONTAINER: 'container'>
    """

    TMUX = "tmux"
    CONTAINER = "container"
    SWARM = "swarm"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def coerce(cls, value: object) -> BackendType:
        """The backend named ``value`` (``tmux``, ``container`` or ``swarm``, any case).

        Raises:
            SessionConfigError: ``value`` is not a backend.

        Example:
            >>> BackendType.coerce("Container")
            <BackendType.CONTAINER: 'container'>
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        choices = ", ".join(b.value for b in cls)
        raise validators.config_error(
            "backend", f"{validators.shown(value)} is not a backend (choose from {choices})"
        )

    @classmethod
    def spellings(cls) -> tuple[str, ...]:
        """Every spelling :meth:`parse` takes (CLI ``--backend``, config file, pytest plugin).

        Example:
            >>> BackendType.spellings()
            ('tmux', 'container', 'docker', 'podman', 'swarm')
        """
        return tuple(s for b in cls for s in [b.value, *validators.RUNTIMES * (b is cls.CONTAINER)])

    @classmethod
    def parse(cls, value: object) -> tuple[BackendType, str | None]:
        """A backend and the runtime it implies: ``docker``/``podman`` mean a container there.

        Raises:
            SessionConfigError: ``value`` is not a backend.

        Example:
            >>> BackendType.parse("podman")
            (<BackendType.CONTAINER: 'container'>, 'podman')
            >>> BackendType.parse("tmux")
            (<BackendType.TMUX: 'tmux'>, None)
        """
        if isinstance(value, str) and value.lower() in validators.RUNTIMES:
            return cls.CONTAINER, value.lower()
        try:
            return cls.coerce(value), None
        except ValueError:  # coerce's SessionConfigError: name the runtimes too
            choices = ", ".join(cls.spellings())
            raise validators.config_error(
                "backend", f"{validators.shown(value)} is not a backend (choose from {choices})"
            ) from None


class SessionState(str, Enum):
    """The lifecycle state of a session, identical on every backend.

    ``RUNNING``: the process is alive. ``EXITED``: it ended by itself, its
    record and output are kept. ``STOPPED``: the engine stopped it but kept the
    record (containers stopped from outside). ``DEFINED``: only in the config
    file. ``UNKNOWN``: the engine reports a state kstlib does not model.

    Example:
        >>> SessionState.RUNNING.value
        'running'
    """

    RUNNING = "running"
    STOPPED = "stopped"
    EXITED = "exited"
    DEFINED = "defined"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


#: SessionConfig fields a tmux session cannot honour (``init`` is on by default).
_CONTAINER_ONLY = (
    "image",
    "volumes",
    "log_volume",
    "ports",
    "runtime",
    "base_url",
    "labels",
    "memory",
    "cpus",
    "network",
)
#: SessionConfig fields a Swarm service cannot honour: the swarm's engine is Docker,
#: and a tmux socket means nothing there.
_NOT_SWARM = ("socket_name", "socket_path")


@dataclass(frozen=True)
class SessionConfig:
    """Everything needed to start a session; validated on construction.

    Invalid values raise :class:`~kstlib.ops.exceptions.SessionConfigError`
    naming the field. A ``command`` given as a list is an argv and is never
    given to a shell; it is stored as a tuple. An option that only a
    container honours (``image``, ``volumes``, ``ports``, ``runtime``, ...)
    on the tmux backend is an error, never silently dropped. A relative host
    path in ``volumes`` (``./data:/app/data``) is resolved against the
    current directory, as the config file resolves it against its own folder.
    ``network`` is ``"host"``, ``"none"`` or the name of a network of the
    engine (``None``: its default network); published ``ports`` on
    ``"host"`` or ``"none"`` are an error (the engines would ignore them).
    ``pull`` (``missing``,
    ``always``, ``never``), ``registry_auth``, ``insecure_registries`` and
    ``on_progress`` say how a container's image comes from its registry
    (:mod:`kstlib.ops.images`).

    Example:
        >>> SessionConfig(name="worker", env={"MODE": "fast"}).env
        {'MODE': 'fast'}
        >>> SessionConfig(name="9lives")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: name: '9lives' must start with a letter ...
        >>> SessionConfig(name="web", image="busybox")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: image: 'busybox' needs a container, but the backend is tmux ...
    """

    name: str
    backend: BackendType = BackendType.TMUX
    command: str | tuple[str, ...] | None = None
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # tmux
    socket_name: str | None = None
    socket_path: str | None = None
    # containers
    image: str | None = None
    volumes: tuple[str, ...] = ()
    #: upstream's spelling of one more volume (for the session's logs); kept readable
    log_volume: str | None = None
    ports: tuple[str, ...] = ()
    runtime: str | None = None
    base_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    restart: str | None = None
    memory: str | None = None
    cpus: float | None = None
    init: bool = True
    #: ``None``: the engine's default network; ``"host"``, ``"none"`` or a network's name
    network: str | None = None
    # images from registries (kstlib.ops.images)
    pull: str = "missing"
    registry_auth: RegistryAuth | None = None
    # swarm services (kstlib.ops.swarm)
    replicas: int | None = None
    placement: tuple[str, ...] = ()
    mode: str | None = None
    stop_timeout: float | None = None
    insecure_registries: tuple[str, ...] = ()
    on_progress: Callable[[PullProgress], None] | None = field(
        default=None, compare=False, repr=False, metadata={"persist": False}
    )
    #: swarm: secrets by value (never stored nor shown) or name; config files' registry logins
    secrets: Mapping[str, str] = field(default_factory=dict, metadata={"persist": False})
    secret_refs: tuple[str, ...] = ()
    with_registry_auth: bool = False

    def __post_init__(self) -> None:
        validators.validate_name(self.name)
        object.__setattr__(self, "backend", BackendType.coerce(self.backend))
        object.__setattr__(self, "command", validators.validate_command(self.command))
        object.__setattr__(self, "env", validators.validate_env(self.env))
        object.__setattr__(self, "volumes", validators.validate_volumes(self.volumes))
        if self.log_volume is not None:
            checked = validators.validate_volumes([self.log_volume], field="log_volume")
            object.__setattr__(self, "log_volume", checked[0])
        object.__setattr__(self, "ports", validators.validate_ports(self.ports))
        object.__setattr__(self, "labels", validators.validate_labels(self.labels))
        for name in ("working_dir", "socket_path", "base_url"):
            validators.validate_optional_str(name, getattr(self, name))
        optional: tuple[tuple[str, Callable[[object], object]], ...] = (
            ("socket_name", validators.validate_socket_name),
            ("image", validators.validate_image),
            ("runtime", validators.validate_runtime),
            ("restart", validators.validate_restart),
            ("memory", validators.validate_memory),
            ("cpus", validators.validate_cpus),
        )
        for name, check in optional:  # set: each gives back its value, normalised
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check(getattr(self, name)))
        if self.network is not None:
            validators.validate_network(self.network)
            validators.validate_network_ports(self.network, self.ports)
        object.__setattr__(self, "pull", validators.validate_pull(self.pull))
        object.__setattr__(
            self,
            "insecure_registries",
            validators.validate_insecure_registries(self.insecure_registries),
        )
        if self.registry_auth is not None:
            from kstlib.ops.images._types import validate_registry_auth

            object.__setattr__(self, "registry_auth", validate_registry_auth(self.registry_auth))
        if self.on_progress is not None and not callable(self.on_progress):
            raise validators.config_error("on_progress", "expected a callable")
        self._check_swarm_options()
        if self.backend is BackendType.TMUX:
            self._refuse_container_options()

    def _check_swarm_options(self) -> None:
        """Swarm-only options are checked, and refused on the other backends."""
        from kstlib.ops.validators import swarm as options

        if self.replicas is not None:
            object.__setattr__(self, "replicas", options.validate_replicas(self.replicas))
        object.__setattr__(self, "placement", options.validate_placement(self.placement))
        if self.mode is not None:
            object.__setattr__(self, "mode", options.validate_mode(self.mode))
        if self.stop_timeout is not None:
            object.__setattr__(
                self, "stop_timeout", options.validate_stop_timeout(self.stop_timeout)
            )
        object.__setattr__(self, "secrets", options.validate_secrets(self.secrets))
        object.__setattr__(self, "secret_refs", options.validate_secret_refs(self.secret_refs))
        options.validate_flag("with_registry_auth", self.with_registry_auth)
        if self.backend is BackendType.SWARM:
            options.validate_service_name(self.name)
            for name in _NOT_SWARM:
                if getattr(self, name) is not None:
                    raise validators.config_error(
                        name, "is a tmux option; a swarm service runs on the swarm's nodes"
                    )
            if self.runtime not in (None, "docker"):
                raise validators.config_error(
                    "runtime", f"{self.runtime!r}: a swarm runs on Docker engines only"
                )
            if self.mode == "global" and self.replicas is not None:
                raise validators.config_error(
                    "replicas", "a global service runs one task per node; leave replicas out"
                )
            return
        options.refuse_swarm_only(self, self.backend.value)

    def _refuse_container_options(self) -> None:
        """A tmux session runs on the host: an option only a container honours is an error."""
        for name in _CONTAINER_ONLY:
            value = getattr(self, name)
            if value is not None and value not in ((), {}):
                shown = validators.short(value)
                if isinstance(value, (tuple, list, dict)):  # the values, not a Python repr
                    shown = ", ".join(validators.short(str(v)).strip("'\"") for v in value)
                raise validators.config_error(
                    name,
                    f"{shown} needs a container, but the backend is tmux "
                    "(a tmux session runs on the host); give backend='container' "
                    "(or 'docker'/'podman')",
                )

    @property
    def all_volumes(self) -> tuple[str, ...]:
        """``volumes`` and then ``log_volume``: every mount a container gets.

        Example:
            >>> SessionConfig(name="a", backend="container", image="app:1", volumes=["/srv:/srv"],
            ...               log_volume="/var/log/a:/logs").all_volumes
            ('/srv:/srv', '/var/log/a:/logs')
        """
        if self.log_volume is None:
            return self.volumes
        return (*self.volumes, self.log_volume)

    def __repr__(self) -> str:
        """The dataclass repr with every env value masked (keys stay visible).

        Example:
            >>> SessionConfig(name="bot", env={"API_TOKEN": "s3cr3t"})
            SessionConfig(name='bot', ..., env={'API_TOKEN': '***'}, ...)
        """
        parts = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name in ("env", "secrets"):
                value = dict.fromkeys(value, "***")
            parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def with_overrides(self, **overrides: Any) -> SessionConfig:
        """Return a copy with some fields replaced (and validated again).

        Example:
            >>> SessionConfig(name="bot").with_overrides(command="top").command
            'top'
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise validators.config_error(unknown[0], "is not a session option")
        return replace(self, **overrides)

    def argv(self) -> list[str] | None:
        """The command as an argv list (a string is split with :mod:`shlex`).

        Example:
            >>> SessionConfig(name="a", command="echo 'hello world'").argv()
            ['echo', 'hello world']
        """
        if self.command is None:
            return None
        if isinstance(self.command, str):
            return shlex.split(self.command)
        return list(self.command)

    def shell_command(self) -> str | None:
        """The command as one shell string (an argv is quoted with :func:`shlex.join`).

        Example:
            >>> SessionConfig(name="a", command=["echo", "$(date)"]).shell_command()
            "echo '$(date)'"
        """
        if self.command is None or isinstance(self.command, str):
            return self.command
        return shlex.join(self.command)


@dataclass(frozen=True)
class SessionStatus:
    """What a backend reports about one session.

    ``pid`` is the session's own process (``None`` when nothing runs, and in
    Docker's listing, whose payload has no pid; Podman's has it).
    ``oom_killed`` is whether the kernel's out-of-memory killer struck a
    process of the session, as far as the engine tells: Docker reports it
    (``True``/``False``, in ``status()``); Podman 4.3 never reports it (its
    OOMKilled stays false), so there it is ``None`` unless the engine says
    ``True``; tmux and listings: ``None``. ``reason`` says why the process
    ended when that is known: ``"oom-killed"``, the engine's own error text,
    or ``"killed by SIGKILL"`` for an exit code above 128 (a process killed by
    a signal: what Podman's OOM kills look like); ``None`` otherwise.

    Example:
        >>> from datetime import datetime, timezone
        >>> st = SessionStatus(name="bot", state=SessionState.EXITED, backend=BackendType.TMUX,
        ...                    exit_code=3, created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        >>> st.to_dict()["created_at"], st.to_dict()["state"]
        ('2026-01-01T00:00:00+00:00', 'exited')
    """

    name: str
    state: SessionState
    backend: BackendType
    pid: int | None = None
    created_at: datetime | None = None
    window_count: int | None = None
    socket_name: str | None = None
    image: str | None = None
    exit_code: int | None = None
    runtime: str | None = None
    managed: bool = False
    restart_count: int = 0
    oom_killed: bool | None = None
    reason: str | None = None
    log_degraded: bool = False
    #: swarm: the ids of the nodes the service's current tasks are on (empty elsewhere)
    nodes: tuple[str, ...] = ()
    #: The named engine (``ops.engines``) it was listed from; ``None``: a local default.
    engine: str | None = None
    #: A restarting session: the exit code of its last run (``None``: no run ended yet).
    last_exit_code: int | None = None
    #: A restarting session: when its last run ended (timezone-aware; ``None``: unknown).
    last_exited_at: datetime | None = None

    @property
    def is_running(self) -> bool:
        """Whether the session's process is alive.

        Example:
            >>> SessionStatus("a", SessionState.RUNNING, BackendType.TMUX).is_running
            True
        """
        return self.state is SessionState.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as their values, datetimes in ISO 8601.

        The keys are stable: name, state, backend, pid, created_at,
        window_count, socket_name, image, exit_code, runtime, managed,
        restart_count, oom_killed, reason, log_degraded (output is missing from the
        session's log), engine (the named engine it was listed from), last_exit_code
        and last_exited_at (the last run of a restarting session); a swarm
        service's status adds nodes (the ids of the nodes its tasks are on, a list),
        and only a swarm service's.

        Example:
            >>> import json
            >>> json.dumps(SessionStatus("a", SessionState.DEFINED, BackendType.TMUX).to_dict())[:40]
            '{"name": "a", "state": "defined", "backe'
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "nodes":
                if self.backend is BackendType.SWARM:
                    out["nodes"] = list(value)
                continue
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            out[f.name] = value
        return out

    def _repr_html_(self) -> str:
        """An HTML table row, for Jupyter."""
        return _html_table([self])

    def __rich__(self) -> Any:
        """A rich table, for terminals that use rich."""
        return _rich_table([self])


_COLUMNS = (
    "name",
    "engine",
    "backend",
    "runtime",
    "state",
    "pid",
    "exit_code",
    "restart_count",
    "image",
    "created_at",
    "managed",
)


def _cell(status: SessionStatus, column: str) -> str:
    value = getattr(status, column)
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        # Always with its UTC offset: rows from several backends must compare.
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _html_table(rows: Sequence[SessionStatus]) -> str:
    import html  # only a notebook's table needs it

    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r, c))}</td>" for c in _COLUMNS) + "</tr>"
        for r in rows
    )
    return f'<table class="kstlib-sessions"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _rich_table(rows: Sequence[SessionStatus]) -> Any:
    from rich.table import Table

    table = Table(*_COLUMNS, title="kstlib.ops sessions")
    for row in rows:
        table.add_row(*(_cell(row, c) for c in _COLUMNS))
    return table


class SessionTable(list[SessionStatus]):
    """A list of statuses that shows as a table in Jupyter (HTML) and in rich.

    Every runner's ``list_sessions()`` and :func:`kstlib.ops.list_sessions`
    return one. Filtering (:meth:`filter`), slicing, ``+`` and :meth:`copy`
    keep the table type; a list comprehension makes a plain list (wrap it in
    ``SessionTable(...)`` to get the table back).

    Example:
        >>> rows = SessionTable([SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)])
        >>> "<td>a</td>" in rows._repr_html_()
        True
        >>> type(rows[:1]).__name__, type(rows.filter(state="running")).__name__
        ('SessionTable', 'SessionTable')
    """

    def filter(
        self, predicate: Callable[[SessionStatus], bool] | None = None, **criteria: object
    ) -> SessionTable:
        """The rows that satisfy ``predicate`` and whose fields equal ``criteria``, as a table.

        Enum fields compare equal to their values (``state="running"``).

        Example:
            >>> rows = SessionTable([
            ...     SessionStatus("a", SessionState.RUNNING, BackendType.TMUX, managed=True),
            ...     SessionStatus("b", SessionState.EXITED, BackendType.CONTAINER, runtime="docker"),
            ... ])
            >>> [s.name for s in rows.filter(backend="container")]
            ['b']
            >>> [s.name for s in rows.filter(lambda s: s.managed)]
            ['a']
        """
        known = {f.name for f in fields(SessionStatus)} | {"is_running"}
        unknown = sorted(set(criteria) - known)
        if unknown:
            raise validators.config_error(unknown[0], "is not a SessionStatus field")
        return SessionTable(
            row
            for row in self
            if (predicate is None or predicate(row))
            and all(getattr(row, key) == value for key, value in criteria.items())
        )

    @overload
    def __getitem__(self, index: SupportsIndex) -> SessionStatus: ...

    @overload
    def __getitem__(self, index: slice) -> SessionTable: ...

    def __getitem__(self, index: SupportsIndex | slice) -> SessionStatus | SessionTable:
        if isinstance(index, slice):
            return SessionTable(super().__getitem__(index))
        return super().__getitem__(index)

    def __add__(self, other: list[SessionStatus]) -> SessionTable:  # type: ignore[override]
        return SessionTable([*self, *other])

    def copy(self) -> SessionTable:
        """A shallow copy, still a table.

        Example:
            >>> type(SessionTable().copy()).__name__
            'SessionTable'
        """
        return SessionTable(self)

    def _repr_html_(self) -> str:
        return _html_table(self)

    def __rich__(self) -> Any:
        return _rich_table(self)
