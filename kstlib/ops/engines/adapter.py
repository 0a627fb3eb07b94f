"""The engine adapter protocol and the data adapters take and return.

An adapter (:mod:`kstlib.ops.engines.docker`, :mod:`kstlib.ops.engines.podman`)
is a thin layer over one SDK. It takes a :class:`ContainerSpec`, returns
:class:`ContainerInfo` records and raw output bytes, and translates every
exception of its SDK into the :mod:`kstlib.ops.exceptions` tree. Session
semantics (lifecycle, states, ownership) live in
:class:`~kstlib.ops.container.ContainerRunner`, not here.

Example:
    >>> ContainerInfo(id="abc", name="bot", state="running", labels={MANAGED_LABEL: MANAGED_VALUE}).managed
    True
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from kstlib.ops.enginetimeout import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT  # noqa: PLC0414 (re-export)
from kstlib.ops.exceptions import SessionStartError
from kstlib.ops.models import SessionConfig
from kstlib.ops.translate import Op
from kstlib.ops.validators import NETWORK_MODES, config_error, parse_port

if TYPE_CHECKING:
    from kstlib.ops.engines.pull import PullTracker
    from kstlib.ops.engines.streams import LogQuery, LogStream


#: The label that marks a container created by kstlib (value :data:`MANAGED_VALUE`).
MANAGED_LABEL = "io.kstlib.managed"
MANAGED_VALUE = "true"
#: Detach sequence of :meth:`~kstlib.ops.container.ContainerRunner.attach` (Ctrl-P Ctrl-Q).
DETACH_KEYS = "ctrl-p,ctrl-q"


@dataclass(frozen=True)
class Bind:
    """One volume: a host path or named volume mounted at ``target``.

    Example:
        >>> Bind.parse("/srv/data:/data:ro")
        Bind(source='/srv/data', target='/data', options=('ro',))
        >>> Bind.parse("cache:/cache").is_named_volume
        True
    """

    source: str
    target: str
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, item: str) -> Bind:
        """Split a checked ``host:container[:mode]`` volume string.

        Example:
            >>> Bind.parse("/a:/b:ro,z").options
            ('ro', 'z')
        """
        parts = item.split(":")
        options = tuple(parts[2].split(",")) if len(parts) == 3 else ()
        return cls(parts[0], parts[1], options)

    @property
    def is_named_volume(self) -> bool:
        """Whether the source is a named volume rather than a host path.

        Example:
            >>> Bind("/srv", "/data").is_named_volume
            False
        """
        return not self.source.startswith("/")

    @property
    def read_only(self) -> bool:
        """Whether the mount is read-only.

        Example:
            >>> Bind("/srv", "/data", ("ro",)).read_only
            True
        """
        return "ro" in self.options


@dataclass(frozen=True)
class PortBinding:
    """One published port: ``[ip:]host:container[/proto]``.

    Example:
        >>> PortBinding.parse("127.0.0.1:8080:80")
        PortBinding(host_ip='127.0.0.1', host_port=8080, container_port=80, protocol='tcp')
    """

    host_ip: str | None
    host_port: int | None  # None: the engine picks a free port
    container_port: int
    protocol: str = "tcp"

    @classmethod
    def parse(cls, item: str) -> PortBinding:
        """Parse a port mapping with :func:`kstlib.ops.validators.parse_port`.

        Example:
            >>> PortBinding.parse("5353:53/udp").key
            '53/udp'
        """
        ip, host, ctr, proto = parse_port(item)
        return cls(ip, host, ctr, proto)

    @property
    def key(self) -> str:
        """The engines' key for the container side, e.g. ``"80/tcp"``.

        Example:
            >>> PortBinding(None, 8080, 80).key
            '80/tcp'
        """
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything an adapter needs to create one container, already checked.

    Build it with :func:`spec_from_config`.

    Example:
        >>> spec = spec_from_config(SessionConfig(name="w", backend="container",
        ...                                       image="alpine:3.20", command="sleep 5"))
        >>> spec.command, spec.labels[MANAGED_LABEL], spec.init, spec.tty
        (['sleep', '5'], 'true', True, True)
    """

    name: str
    image: str
    command: list[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # values are secrets
    binds: tuple[Bind, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    working_dir: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    init: bool = True
    restart: tuple[str, int] | None = None
    memory: int | None = None
    cpus: float | None = None
    #: ``None``: the engine's default network; ``"host"``, ``"none"`` or a network's name.
    network: str | None = None
    # A terminal keeps stdout and stderr in the order written (two pipes do
    # not: the engines read them in separate goroutines) and lets attach work
    # like a terminal, as a tmux pane does.
    tty: bool = True
    stdin_open: bool = True


def missing_network(engine: EngineAdapter, spec: ContainerSpec) -> SessionStartError | None:
    """The error for a ``spec.network`` that names a network the engine lacks, else ``None``.

    Asked before the container is created, so that nothing is left behind.

    Example:
        >>> class Engine:
        ...     runtime = "docker"
        ...     def has_network(self, network): return network == "backend"
        >>> missing_network(Engine(), ContainerSpec("web", "app:1", network="host")) is None
        True
        >>> print(missing_network(Engine(), ContainerSpec("web", "app:1", network="front")))
        Could not start session 'web' on the docker backend: network 'front' does not exist on docker; create it first (docker network create front) or use network 'host' or 'none'
    """
    network = spec.network
    if network is None or network in NETWORK_MODES or engine.has_network(network):
        return None
    return SessionStartError(
        spec.name,
        engine.runtime,
        f"network {network!r} does not exist on {engine.runtime}; create it first "
        f"({engine.runtime} network create {network}) or use network 'host' or 'none'",
    )


def memory_bytes(memory: str) -> int:
    """Convert a checked memory limit (``512m``, ``1g``, ``1048576``) to bytes.

    Example:
        >>> memory_bytes("256m"), memory_bytes("1G"), memory_bytes("4096")
        (268435456, 1073741824, 4096)
    """
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    suffix = memory[-1].lower()
    if suffix in units:
        return int(memory[:-1]) * units[suffix]
    return int(memory)


def spec_from_config(config: SessionConfig) -> ContainerSpec:
    """Turn a validated :class:`~kstlib.ops.models.SessionConfig` into a :class:`ContainerSpec`.

    The ownership label :data:`MANAGED_LABEL` is always added (a user label of
    the same key is overridden). A string command is split with :mod:`shlex`;
    a list is used as the argv.

    Example:
        >>> cfg = SessionConfig(name="w", backend="container", image="app:1",
        ...                     command=["sh", "-c", "echo $A; exit 2"], restart="on-failure:3",
        ...                     memory="64m", cpus=0.5)
        >>> spec = spec_from_config(cfg)
        >>> spec.command, spec.restart, spec.memory, spec.cpus
        (['sh', '-c', 'echo $A; exit 2'], ('on-failure', 3), 67108864, 0.5)
    """
    if config.image is None:
        raise config_error("image", "is required for the container backend")
    restart: tuple[str, int] | None = None
    if config.restart is not None:
        policy, _, retries = config.restart.partition(":")
        restart = (policy, int(retries) if retries else 0)
    return ContainerSpec(
        name=config.name,
        image=config.image,
        command=config.argv(),
        env=dict(config.env),
        binds=tuple(Bind.parse(v) for v in config.all_volumes),
        ports=tuple(PortBinding.parse(p) for p in config.ports),
        working_dir=config.working_dir,
        labels={**config.labels, MANAGED_LABEL: MANAGED_VALUE},
        init=config.init,
        restart=restart,
        memory=memory_bytes(config.memory) if config.memory is not None else None,
        cpus=config.cpus,
        network=config.network,
    )


@dataclass(frozen=True)
class PullOptions:
    """How to pull an image: the login, where it came from, plain HTTP, the silence allowed.

    ``credentials`` names where ``auth_config`` came from (for messages; the
    login itself never shows in a repr); ``insecure`` allows plain HTTP where
    the engine lets a client choose; the engine may stay silent at most
    ``timeout`` seconds; ``session`` is the session the pull is for, if any.

    Example:
        >>> PullOptions({"password": "s3cret"}, "config file", insecure=False, timeout=60)
        PullOptions(credentials='config file', insecure=False, timeout=60, session=None)
    """

    auth_config: Mapping[str, str] | None = field(repr=False)
    credentials: str
    insecure: bool
    timeout: float
    session: str | None = None


@dataclass(frozen=True)
class ContainerInfo:
    """What an engine reports about one container, normalised across engines.

    ``state`` is the engine's own word (``running``, ``exited``, ``created``,
    ...); :class:`~kstlib.ops.container.ContainerRunner` maps it to a
    :class:`~kstlib.ops.models.SessionState`. ``pid`` is ``None`` when the
    engine does not say (Docker's list payload) or when nothing runs.
    ``restart_policy`` is the engine's policy name (``""`` or ``"no"``: none)
    with its ``restart_retries`` (``0``: unlimited); ``started_at`` and
    ``finished_at`` are the last run's times; ``oom_killed`` is what the engine
    says of the out-of-memory killer (``None``: it does not say) and ``error``
    its own words on why the container failed. A listing leaves them unset.

    Example:
        >>> ContainerInfo(id="abc", name="bot", state="running", labels={MANAGED_LABEL: "true"}).managed
        True
    """

    id: str
    name: str
    state: str
    pid: int | None = None
    exit_code: int | None = None
    created_at: datetime | None = None
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tty: bool | None = None
    restart_count: int = 0
    restart_policy: str = ""
    restart_retries: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    oom_killed: bool | None = None
    error: str | None = None
    #: ``HostConfig.NetworkMode`` of an inspect (``host``, ``none``, a network...); lists lack it
    network_mode: str | None = None

    @property
    def managed(self) -> bool:
        """Whether kstlib created this container (it carries :data:`MANAGED_LABEL`).

        Example:
            >>> ContainerInfo(id="abc", name="x", state="exited").managed
            False
        """
        return self.labels.get(MANAGED_LABEL) == MANAGED_VALUE


@dataclass(frozen=True)
class AttachHandle:
    """An attached connection: the raw socket, and the SDK objects that must stay alive.

    Example:
        >>> a, b = socket.socketpair()
        >>> AttachHandle(a).sock is a
        True
        >>> a.close(); b.close()
    """

    sock: socket.socket
    keepalive: object = None


class LogReader(Protocol):
    """How an engine's logs are read: a container's (Docker, Podman) or a service's (swarm).

    Both engine protocols offer it (:class:`EngineAdapter`,
    :class:`~kstlib.ops.engines.services.ServiceEngine`), one HTTP base
    implements it (:class:`~kstlib.ops.engines.http.HttpBase`). ``name`` is
    the session name used in error messages.
    """

    def logs(self, name: str, query: LogQuery, *, keep: int | None = None) -> list[bytes]:
        """The log entries ``query`` asks for (its last ``tail``, from ``since`` on), in one call.

        A service's are those of every task on every node.

        Entries as :func:`split_entries` cuts them; with ``query.timestamps``
        each starts with the engine's RFC 3339 time and a space. ``keep``: the
        caller uses only the last ``keep`` lines (an engine's check of its
        answer need only look at those).
        """
        ...

    def follow_logs(
        self, ref: str, name: str, query: LogQuery, *, timeout: float | None
    ) -> LogStream:
        """Open the followed log of ``query`` (``follow=true``); it ends when the container stops.

        A service's never ends by itself: the caller closes it.

        ``timeout`` bounds the wait for the answer (Podman sends its headers
        with the first entry); :class:`~kstlib.ops.exceptions.SessionTimeoutError` then.
        """
        ...


class EngineAdapter(LogReader, Protocol):
    """One container engine behind one SDK client. Every method translates its SDK's errors.

    The containers protocol (Docker, Podman); a swarm manager offers services
    instead (:class:`~kstlib.ops.engines.services.ServiceEngine`).

    ``ref`` arguments are a container id or name; ``name`` is the session name
    used in error messages. Not-found raises
    :class:`~kstlib.ops.exceptions.SessionNotFoundError`.
    """

    runtime: str
    endpoint: str
    timeout: float
    #: Whether a chunk of a followed log is trustworthy only while the container
    #: still runs (the caller then inspects before using it).
    follow_needs_check: bool

    def version(self) -> str:
        """The engine and API version, e.g. ``"Docker 20.10.24 (API 1.41)"``."""
        ...

    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the container; return its id."""
        ...

    def start(self, ref: str, name: str) -> None:
        """Start a created container."""
        ...

    def has_network(self, network: str) -> bool:
        """Whether the engine has a network of that exact name (one call)."""
        ...

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """One inspect call."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a container named exactly ``name`` exists (never an id prefix)."""
        ...

    def list_containers(self) -> list[ContainerInfo]:
        """Every container, in one list call."""
        ...

    def stop(self, ref: str, name: str, timeout: float) -> None:
        """Stop signal, wait up to ``timeout`` s, then SIGKILL; a stopped container is fine."""
        ...

    def kill(self, ref: str, name: str) -> None:
        """SIGKILL the container's process at once."""
        ...

    def wait(self, name: str, timeout: float) -> int:
        """Wait up to ``timeout`` s for the container to stop; its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` when it still runs.
        """
        ...

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the container (it must not run, or it is killed first)."""
        ...

    def exec(self, name: str, argv: list[str]) -> tuple[int, bytes, bytes, bytes]:
        """Run ``argv`` in the running container: exit code, output (both streams), stdout, stderr."""
        ...

    def processes(self, ref: str) -> list[tuple[int, int, str]]:
        """The container's processes: ``(pid, ppid, command line)`` each."""
        ...

    def attach_socket(self, name: str) -> AttachHandle:
        """A socket attached to the container's stdin/stdout/stderr (detach: Ctrl-P Ctrl-Q)."""
        ...

    def resize(self, name: str, height: int, width: int) -> None:
        """Resize the container's terminal."""
        ...

    def image_exists(self, image: str) -> bool:
        """Whether the engine has ``image`` (one call)."""
        ...

    def pull(self, image: str, tracker: PullTracker, options: PullOptions) -> str | None:
        """Pull ``image``, feeding the engine's stream to ``tracker``; the image id if known.

        Raises :class:`~kstlib.ops.exceptions.ImagePullError` (its ``kind`` says why).
        """
        ...
