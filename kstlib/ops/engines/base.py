"""What every container engine adapter shares: the protocol, the data it speaks, endpoints.

An adapter (:mod:`kstlib.ops.engines.docker`, :mod:`kstlib.ops.engines.podman`)
is a thin layer over one SDK. It takes a :class:`ContainerSpec`, returns
:class:`ContainerInfo` records and raw output bytes, and translates every
exception of its SDK into the :mod:`kstlib.ops.exceptions` tree. Session
semantics (lifecycle, states, ownership) live in
:class:`~kstlib.ops.container.ContainerRunner`, not here.

Engine selection: :func:`connect` returns one cached adapter per
``(runtime, endpoint, timeout)`` for the whole process, created on first use
after the engine answered a ping.

Example:
    >>> default_endpoints("docker", env={})
    ['unix:///var/run/docker.sock']
    >>> default_endpoints("podman", env={"CONTAINER_HOST": "tcp://10.0.0.5:8888"})
    ['tcp://10.0.0.5:8888']
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionAttachError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
)
from kstlib.ops.models import SessionConfig
from kstlib.ops.validators import config_error, parse_port, shown

if TYPE_CHECKING:
    from kstlib.ops.engines.pull import PullTracker

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_TIMEOUT",
    "DETACH_KEYS",
    "MANAGED_LABEL",
    "MANAGED_VALUE",
    "AttachHandle",
    "Bind",
    "CallContext",
    "ContainerInfo",
    "ContainerSpec",
    "EngineAdapter",
    "EntrySplitter",
    "Handler",
    "LogStream",
    "Op",
    "PortBinding",
    "Table",
    "cause_chain",
    "connect",
    "default_endpoints",
    "demux",
    "did_not_answer",
    "explanation",
    "forget",
    "image_missing",
    "log_params",
    "memory_bytes",
    "on_api_error",
    "on_connection_error",
    "on_image_missing",
    "on_not_found",
    "on_other",
    "on_permission",
    "on_timeout",
    "on_unreachable",
    "op_error",
    "parse_timestamp",
    "restart_policy",
    "since_param",
    "spec_from_config",
    "split_entries",
    "timed_out",
    "translate_with",
    "translating",
    "unreachable",
    "validate_base_url",
    "validate_timeout",
]

#: The label that marks a container created by kstlib (value :data:`MANAGED_VALUE`).
MANAGED_LABEL = "io.kstlib.managed"
MANAGED_VALUE = "true"
#: Seconds any single engine API call may take (a graceful stop adds its own timeout).
DEFAULT_TIMEOUT = 30.0
#: The order in which ``runtime=None`` tries the engines.
AUTO_ORDER = ("podman", "docker")
#: Detach sequence of :meth:`~kstlib.ops.container.ContainerRunner.attach` (Ctrl-P Ctrl-Q).
DETACH_KEYS = "ctrl-p,ctrl-q"
_URL_SCHEMES = ("unix", "tcp", "ssh", "http", "https")


class Op(str, Enum):
    """The kind of operation an engine call serves; picks the exception an error becomes.

    Example:
        >>> Op.STOP.error_class.__name__
        'SessionStopError'
    """

    START = "start"
    STOP = "stop"
    ATTACH = "attach"
    READ = "read"
    WAIT = "wait"

    @property
    def error_class(self) -> type[SessionError]:
        """The :class:`~kstlib.ops.exceptions.SessionError` subclass for this operation.

        Example:
            >>> Op.READ.error_class.__name__
            'SessionError'
        """
        return _OP_ERRORS[self]


_OP_ERRORS: dict[Op, type[SessionError]] = {
    Op.START: SessionStartError,
    Op.STOP: SessionStopError,
    Op.ATTACH: SessionAttachError,
    Op.READ: SessionError,
    Op.WAIT: SessionError,
}


def op_error(op: Op, name: str | None, runtime: str, endpoint: str, reason: str) -> SessionError:
    """Build the error of operation ``op`` on session ``name`` (``None``: no one session).

    Example:
        >>> err = op_error(Op.STOP, "bot", "podman", "unix:///run/podman/podman.sock", "boom")
        >>> type(err).__name__, err.backend, err.reason
        ('SessionStopError', 'podman', 'boom')
        >>> print(op_error(Op.READ, "bot", "docker", "unix:///var/run/docker.sock", "boom"))
        docker (unix:///var/run/docker.sock) failed for session 'bot': boom
    """
    cls = op.error_class
    if name is not None and cls is not SessionError:
        return cls(name, runtime, reason)  # type: ignore[call-arg]
    subject = f" for session {name!r}" if name is not None else ""
    return SessionError(f"{runtime} ({endpoint}) failed{subject}: {reason}")


# -- what adapters take and return ----------------------------------------------------


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
    # A terminal keeps stdout and stderr in the order written (two pipes do
    # not: the engines read them in separate goroutines) and lets attach work
    # like a terminal, as a tmux pane does.
    tty: bool = True
    stdin_open: bool = True


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
    )


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

    @property
    def managed(self) -> bool:
        """Whether kstlib created this container (it carries :data:`MANAGED_LABEL`).

        Example:
            >>> ContainerInfo(id="abc", name="x", state="exited").managed
            False
        """
        return self.labels.get(MANAGED_LABEL) == MANAGED_VALUE


_TIMESTAMP_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an engine timestamp: RFC 3339 with nanoseconds, or Unix seconds.

    Returns an aware :class:`~datetime.datetime`, or ``None`` for a missing or
    zero time (``0001-01-01T00:00:00Z``).

    Example:
        >>> parse_timestamp("2024-05-01T12:34:56.123456789Z")
        datetime.datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=datetime.timezone.utc)
        >>> parse_timestamp("2024-05-01T14:34:56.5+02:00").isoformat()
        '2024-05-01T14:34:56.500000+02:00'
        >>> parse_timestamp(1714566896).year
        2024
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc) if value > 0 else None
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP_RE.match(value.strip())
    if match is None:
        return None
    date, clock, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    parsed = datetime.fromisoformat(f"{date}T{clock}").replace(microsecond=micros, tzinfo=tz)
    return None if parsed.year <= 1 else parsed


def demux(payload: bytes) -> bytes:
    """Join the frames of an engine's multiplexed stdout/stderr stream, in order.

    Engines frame a stream that has no terminal (``[kind, 0, 0, 0, size(4)]``
    then ``size`` bytes); Docker sends a container with a terminal raw.
    Every header is checked, so raw output is returned unchanged: this tells
    the two apart without asking the engine (one call per ``logs()``).

    Example:
        >>> demux(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x03hi\\n\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x04err\\n")
        b'hi\\nerr\\n'
        >>> demux(b"plain tty output\\r\\n")
        b'plain tty output\\r\\n'
    """
    chunks: list[bytes] = []
    index, size = 0, len(payload)
    while index < size:
        if size - index < 8 or payload[index] > 2 or payload[index + 1 : index + 4] != b"\0\0\0":
            return payload
        end = index + 8 + int.from_bytes(payload[index + 4 : index + 8], "big")
        if end > size:
            return payload
        chunks.append(payload[index + 8 : end])
        index = end
    return b"".join(chunks)


def restart_policy(host_config: Mapping[str, Any] | None) -> tuple[str, int]:
    """The ``(name, maximum retries)`` of an inspect payload's ``HostConfig.RestartPolicy``.

    Both engines use Docker's shape; no policy is ``("", 0)``.

    Example:
        >>> restart_policy({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        ('on-failure', 2)
        >>> restart_policy(None)
        ('', 0)
    """
    policy = (host_config or {}).get("RestartPolicy") or {}
    retries = policy.get("MaximumRetryCount")
    return str(policy.get("Name") or ""), int(retries) if isinstance(retries, int) else 0


# -- logs -------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Bytes asked of a followed log per read: whatever has arrived, up to this much.
_READ_SIZE = 1 << 16


def since_param(moment: datetime) -> str:
    """The engines' ``since`` query value for an aware ``moment``: Unix seconds with nanoseconds.

    Docker and Podman both read ``seconds.nanoseconds`` and keep entries
    written at that instant or later; a moment before 1970 is ``"0"`` (everything).

    Example:
        >>> since_param(datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=timezone.utc))
        '1767225601.250000000'
        >>> since_param(datetime(1960, 1, 1, tzinfo=timezone.utc))
        '0'
    """
    delta = moment - _EPOCH
    if delta <= timedelta(0):
        return "0"
    return f"{delta.days * 86400 + delta.seconds}.{delta.microseconds:06d}000"


def log_params(
    tail: int | None, since: datetime | None, timestamps: bool, follow: bool = False
) -> dict[str, str]:
    """The query of ``GET /containers/{id}/logs``, the same on both engines.

    Example:
        >>> log_params(10, None, True)
        {'stdout': 'true', 'stderr': 'true', 'tail': '10', 'timestamps': 'true'}
        >>> log_params(None, datetime(2026, 1, 1, tzinfo=timezone.utc), False, follow=True)
        {'stdout': 'true', 'stderr': 'true', 'tail': 'all', 'since': '1767225600.000000000', 'follow': 'true'}
    """
    params = {"stdout": "true", "stderr": "true", "tail": "all" if tail is None else str(tail)}
    if since is not None:
        params["since"] = since_param(since)
    if timestamps:
        params["timestamps"] = "true"
    if follow:
        params["follow"] = "true"
    return params


# Docker's log copier cuts a line longer than this into entries of this size,
# each with its own timestamp; a raw stream shows those inside the line.
_DOCKER_PARTIAL = 16 * 1024
_STAMP_PREFIX_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) ")


def _docker_parts(line: bytes) -> list[bytes]:
    """A long timestamped line of a raw Docker stream, cut back into its entries."""
    parts: list[bytes] = []
    start = 0
    stamp = _STAMP_PREFIX_RE.match(line)
    while stamp is not None:
        cut = stamp.end() + _DOCKER_PARTIAL
        stamp = _STAMP_PREFIX_RE.match(line, cut)
        if stamp is not None:
            parts.append(line[start:cut])
            start = cut
    parts.append(line[start:] + b"\n")
    return parts


class EntrySplitter:
    """Cuts an engine's log stream into entries, as the bytes arrive.

    A multiplexed stream (a container without a terminal, and every Podman
    log) is cut at its frames: one entry per frame, which may be a part of a
    line. A raw stream (Docker, a container with a terminal) is cut after
    each newline, and a timestamped line longer than 16 KiB at the
    timestamps Docker put inside it (its log copier stores such a line as
    16 KiB entries). Which kind of stream it is shows in the first bytes (a
    frame header starts with 0, 1 or 2 and three zero bytes), so no inspect
    is needed.

    Example:
        >>> splitter = EntrySplitter()
        >>> splitter.feed(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x03a\\nb")
        [b'a\\nb']
        >>> raw = EntrySplitter()
        >>> raw.feed(b"one\\r\\ntw"), raw.feed(b"o\\r\\n"), raw.flush()
        ([b'one\\r\\n'], [b'two\\r\\n'], [])
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._framed: bool | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the entries it completed.

        Example:
            >>> EntrySplitter().feed(b"a\\nb\\nc")
            [b'a\\n', b'b\\n']
        """
        self._buffer += data
        if self._framed is None:
            self._framed = self._kind()
            if self._framed is None:
                return []
        return self._frames() if self._framed else self._lines()

    def flush(self) -> list[bytes]:
        """The end of the stream: a last line without a newline (a cut frame is dropped).

        Example:
            >>> splitter = EntrySplitter()
            >>> splitter.feed(b"prompt> "), splitter.flush()
            ([], [b'prompt> '])
        """
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [rest] if rest and not self._framed else []

    def _kind(self) -> bool | None:
        buf = self._buffer
        if not buf:
            return None
        if buf[0] > 2:
            return False
        if len(buf) < 4:
            return None
        return bytes(buf[1:4]) == b"\0\0\0"

    def _frames(self) -> list[bytes]:
        buf, out, pos = self._buffer, [], 0
        while len(buf) - pos >= 8:
            end = pos + 8 + int.from_bytes(buf[pos + 4 : pos + 8], "big")
            if end > len(buf):
                break
            if end > pos + 8:
                out.append(bytes(buf[pos + 8 : end]))
            pos = end
        del buf[:pos]
        return out

    def _lines(self) -> list[bytes]:
        end = self._buffer.rfind(b"\n") + 1
        if not end:
            return []
        done = bytes(self._buffer[:end])
        del self._buffer[:end]
        out: list[bytes] = []
        for line in done[:-1].split(b"\n"):
            if len(line) > _DOCKER_PARTIAL:
                out.extend(_docker_parts(line))
            else:
                out.append(line + b"\n")
        return out


def split_entries(payload: bytes) -> list[bytes]:
    """Cut a whole log answer into entries (see :class:`EntrySplitter`).

    Example:
        >>> split_entries(b"a\\r\\nb")
        [b'a\\r\\n', b'b']
    """
    splitter = EntrySplitter()
    return splitter.feed(payload) + splitter.flush()


def _response_socket(response: Any) -> socket.socket | None:
    """The socket under a streamed ``requests`` answer, so that reads can be bounded.

    With ``Connection: close``, :mod:`http.client` hands the socket over to the
    answer and forgets it on the connection (``connection.sock`` is ``None``);
    the answer's file then holds it (``fp.raw._sock``).

    Example:
        >>> _response_socket(object()) is None
        True
    """
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    reader = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class LogStream:
    """A followed log: the engine's open HTTP answer, read as its entries arrive.

    :meth:`read` waits at most its ``timeout`` for the next bytes (the
    socket's own timeout, so a silent container cannot block it longer);
    :meth:`close` releases the answer and its connection. Every error of the
    layers below is translated by ``translate``. Adapters create it.

    Example:
        >>> import io, requests
        >>> answer = requests.Response(); answer.raw = io.BytesIO(b"hi\\n")
        >>> stream = LogStream(answer, contextlib.nullcontext)
        >>> stream.read(None), stream.read(None), stream.read(None)
        ([b'hi\\n'], [], None)
        >>> stream.close()
    """

    def __init__(
        self, response: Any, translate: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._response = response
        self._translate = translate
        self._splitter = EntrySplitter()
        self._ended = False
        self._sock: socket.socket | None = _response_socket(response)

    def read(self, timeout: float | None) -> list[bytes] | None:
        """The entries completed by the next bytes; ``None`` once the stream has ended.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` (through
        ``translate``) when nothing arrives within ``timeout`` seconds
        (``None``: wait as long as it takes).

        Example:
            >>> stream = engine.follow_logs("3f2a...", "bot", tail=0, since=None,
            ...                             timestamps=False, timeout=None)  # doctest: +SKIP
            >>> stream.read(5.0)  # doctest: +SKIP
            [b'tick\\r\\n']
        """
        if self._ended:
            return None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.settimeout(timeout)
        try:
            with self._translate():
                raw = self._response.raw
                data = raw.read1(_READ_SIZE) if hasattr(raw, "read1") else raw.read(_READ_SIZE)
        except BaseException:
            self._ended = True
            self._sock = None
            raise
        if not data:
            # From here the connection may be back in the pool: never touch its socket again.
            self._ended = True
            self._sock = None
            return self._splitter.flush()
        return self._splitter.feed(bytes(data))

    def close(self) -> None:
        """Release the answer (idempotent). A read blocked in another thread returns.

        Example:
            >>> import requests
            >>> stream = LogStream(requests.Response(), contextlib.nullcontext)
            >>> stream.close(); stream.close()
            >>> stream.read(1.0) is None
            True
        """
        self._ended = True
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()


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


# -- the adapter protocol -------------------------------------------------------------


class EngineAdapter(Protocol):
    """One engine behind one SDK client. Every method translates its SDK's errors.

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

    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) the container; return its id."""
        ...

    def start(self, ref: str, name: str) -> None:
        """Start a created container."""
        ...

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """One inspect call."""
        ...

    def list_containers(self) -> list[ContainerInfo]:
        """Every container, in one list call."""
        ...

    def logs(
        self,
        name: str,
        tail: int | None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> list[bytes]:
        """The last ``tail`` log entries (``None``: all) from ``since`` on, in one call.

        Entries as :func:`split_entries` cuts them; with ``timestamps`` each
        starts with the engine's RFC 3339 time and a space.
        """
        ...

    def follow_logs(
        self,
        ref: str,
        name: str,
        *,
        tail: int | None,
        since: datetime | None,
        timestamps: bool,
        timeout: float | None,
    ) -> LogStream:
        """Open the followed log (``follow=true``); it ends when the container stops.

        ``timeout`` bounds the wait for the answer (Podman sends its headers
        with the first entry); :class:`~kstlib.ops.exceptions.SessionTimeoutError` then.
        """
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

    def exec(self, name: str, argv: list[str]) -> tuple[int, bytes]:
        """Run ``argv`` in the running container; return its exit code and output."""
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

    def pull(
        self,
        image: str,
        tracker: PullTracker,
        *,
        auth_config: Mapping[str, str] | None,
        credentials: str,
        insecure: bool,
        timeout: float,
        session: str | None = None,
    ) -> str | None:
        """Pull ``image``, feeding the engine's stream to ``tracker``; the image id if known.

        ``credentials`` names where ``auth_config`` came from (for messages);
        ``insecure`` allows plain HTTP where the engine lets a client choose;
        the engine may stay silent at most ``timeout`` seconds. Raises
        :class:`~kstlib.ops.exceptions.ImagePullError` (its ``kind`` says why).
        """
        ...


# -- endpoints and the client cache -----------------------------------------------


def validate_base_url(base_url: object) -> str | None:
    """Check an engine URL: ``unix://``, ``tcp://``, ``ssh://``, ``http(s)://``.

    Example:
        >>> validate_base_url("ssh://ops@build-01")
        'ssh://ops@build-01'
        >>> validate_base_url("ftp://x")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: base_url: 'ftp://x' must start with unix://, tcp://, ssh://, http:// or https://
    """
    if base_url is None:
        return None
    if (
        not isinstance(base_url, str)
        or "://" not in base_url
        or (base_url.split("://", 1)[0] not in _URL_SCHEMES)
        or not base_url.split("://", 1)[1]
    ):
        raise config_error(
            "base_url",
            f"{shown(base_url)} must start with unix://, tcp://, ssh://, http:// or https://",
        )
    return base_url


def validate_timeout(timeout: object) -> float:
    """Check an engine call timeout: a positive number of seconds.

    Example:
        >>> validate_timeout(5)
        5.0
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise config_error("timeout", f"{shown(timeout)} must be a positive number of seconds")
    return float(timeout)


def default_endpoints(runtime: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The endpoints tried for ``runtime`` when no ``base_url`` is given, in order.

    Docker: ``DOCKER_HOST``, else ``unix:///var/run/docker.sock``. Podman:
    ``CONTAINER_HOST``, else the user socket
    ``$XDG_RUNTIME_DIR/podman/podman.sock``, then the root socket
    ``/run/podman/podman.sock``.

    Example:
        >>> default_endpoints("podman", env={"XDG_RUNTIME_DIR": "/run/user/1000"})
        ['unix:///run/user/1000/podman/podman.sock', 'unix:///run/podman/podman.sock']
    """
    env = os.environ if env is None else env
    if runtime == "docker":
        return [env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"]
    if env.get("CONTAINER_HOST"):
        return [env["CONTAINER_HOST"]]
    found: list[str] = []
    if env.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{env['XDG_RUNTIME_DIR'].rstrip('/')}/podman/podman.sock")
    root = "unix:///run/podman/podman.sock"
    if root not in found:
        found.append(root)
    return found


_CACHE: dict[tuple[str, str, float], EngineAdapter] = {}
_CACHE_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    # A forked child must not share the parent's pooled connections: their
    # sockets are the same file descriptors. The lock was taken before the
    # fork (so no other thread held it then) and is released here.
    _CACHE.clear()
    _CACHE_LOCK.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_CACHE_LOCK.acquire,
        after_in_parent=_CACHE_LOCK.release,
        after_in_child=_reset_after_fork,
    )


def _open(runtime: str, endpoint: str, timeout: float) -> EngineAdapter:
    """Create an adapter; raises ContainerRuntimeNotFoundError if the engine does not answer."""
    if endpoint.startswith("unix://") and not os.path.exists(endpoint[len("unix://") :]):
        # No socket file: nothing to ask, and no SDK error to translate.
        raise unreachable(endpoint, "no socket file", runtime)
    if runtime == "docker":
        from kstlib.ops.engines.docker import DockerEngine

        return DockerEngine.open(endpoint, timeout)
    from kstlib.ops.engines.podman import PodmanEngine

    return PodmanEngine.open(endpoint, timeout)


def connect(
    runtime: str | None = None, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> EngineAdapter:
    """Return the cached adapter of the first engine that answers.

    ``runtime=None`` tries Podman, then Docker. ``base_url`` names one
    endpoint; otherwise :func:`default_endpoints` are tried. An endpoint that
    does not answer is skipped; when none does,
    :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` lists every
    endpoint tried. Only "engine unreachable" is skipped: any other error
    propagates.

    Example:
        >>> connect("docker", "unix:///nonexistent.sock")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
    """
    runtimes = AUTO_ORDER if runtime is None else (runtime,)
    tried: list[str] = []
    last: ContainerRuntimeNotFoundError | None = None
    for rt in runtimes:
        endpoints = [base_url] if base_url is not None else default_endpoints(rt)
        for endpoint in endpoints:
            key = (rt, endpoint, timeout)
            with _CACHE_LOCK:
                cached = _CACHE.get(key)
            if cached is not None:
                return cached
            tried.append(endpoint if len(runtimes) == 1 else f"{rt} at {endpoint}")
            try:
                adapter = _open(rt, endpoint, timeout)
            except ContainerRuntimeNotFoundError as err:
                last = err
                continue
            with _CACHE_LOCK:
                # Another thread may have won the race; keep one client per key.
                return _CACHE.setdefault(key, adapter)
    if last is not None and len(tried) == 1:
        # One endpoint: its own error names the engine and keeps the SDK's as cause.
        raise last
    # Several: list them all; the last one's error (and the SDK's) stays the cause.
    raise _not_found(tried, runtime) from last


def forget(adapter: EngineAdapter) -> None:
    """Drop ``adapter`` from the cache (its engine stopped answering), so the next call re-pings.

    Example:
        >>> forget(object())  # type: ignore[arg-type]
    """
    with _CACHE_LOCK:
        for key in [k for k, v in _CACHE.items() if v is adapter]:
            del _CACHE[key]


def unreachable(
    endpoint: str,
    detail: str | None = None,
    runtime: str | None = None,
    *,
    hung_after: float | None = None,
) -> ContainerRuntimeNotFoundError:
    """The error for an engine that does not answer at ``endpoint``.

    The message names the engine (``runtime``) when known: the install and
    start hints mention both engines, so only this tells which one failed.
    ``hung_after``: something accepted the connection but sent no answer
    within that many seconds; starting or installing an engine is then the
    wrong advice, so the message says what happened instead.

    Example:
        >>> unreachable("unix:///run/podman/podman.sock").endpoints
        ('unix:///run/podman/podman.sock',)
        >>> str(unreachable("unix:///x.sock", runtime="docker"))[:58]
        'No docker engine API answered (tried: unix:///x.sock). Sta'
        >>> print(unreachable("unix:///x.sock", runtime="docker", hung_after=5))
        The docker engine at unix:///x.sock did not answer within 5 s: it accepts connections but is hung or overloaded. Check the engine (its logs, 'docker info'), or allow it more time (KSTLIB_OPS_ENGINE_TIMEOUT for the CLI, timeout= for ContainerRunner).
    """
    if hung_after is not None:
        engine = runtime or "container"
        check = f"its logs, '{runtime} info'" if runtime else "its logs"
        return ContainerRuntimeNotFoundError(
            f"The {engine} engine at {endpoint} did not answer within {hung_after:g} s: it "
            f"accepts connections but is hung or overloaded. Check the engine ({check}), or "
            "allow it more time (KSTLIB_OPS_ENGINE_TIMEOUT for the CLI, timeout= for "
            "ContainerRunner).",
            [endpoint],
        )
    return _not_found([endpoint], runtime, detail)


def did_not_answer(err: BaseException) -> bool:
    """Whether ``err`` comes from an engine that accepted the connection but never answered.

    Looks for a timeout in the cause chain (the SDK's exception is kept as
    ``__cause__``), so callers can tell a hung engine from an absent one.

    Example:
        >>> did_not_answer(unreachable("unix:///x.sock", "no socket file", "docker"))
        False
        >>> try:
        ...     raise unreachable("unix:///x.sock", runtime="docker") from TimeoutError()
        ... except Exception as err:
        ...     did_not_answer(err)
        True
    """
    import requests.exceptions
    import urllib3.exceptions

    timeouts = (
        TimeoutError,
        requests.exceptions.Timeout,
        urllib3.exceptions.TimeoutError,
    )
    for link in cause_chain(err):
        if isinstance(link, timeouts) or any(isinstance(a, timeouts) for a in link.args):
            return True
    return False


def _not_found(
    endpoints: list[str], runtime: str | None, detail: str | None = None
) -> ContainerRuntimeNotFoundError:
    err = ContainerRuntimeNotFoundError(endpoints=endpoints)
    message = err.message
    if runtime is not None:
        message = message.replace("No container engine API", f"No {runtime} engine API", 1)
    if detail:
        message = f"{message} ({detail})"
    return err if message == err.message else ContainerRuntimeNotFoundError(message, endpoints)


def cause_chain(err: BaseException) -> Iterable[BaseException]:
    """``err`` and its ``__cause__``/``__context__`` chain (each once).

    Example:
        >>> [type(e).__name__ for e in cause_chain(ValueError("x"))]
        ['ValueError']
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def timed_out(
    op: Op, name: str | None, runtime: str, endpoint: str, timeout: float
) -> SessionError:
    """The error for an engine call that did not finish within ``timeout`` seconds.

    Example:
        >>> print(timed_out(Op.STOP, "bot", "docker", "unix:///var/run/docker.sock", 10).reason)
        timed out after 10 s waiting for docker at unix:///var/run/docker.sock
    """
    reason = f"timed out after {timeout:g} s waiting for {runtime} at {endpoint}"
    return op_error(op, name, runtime, endpoint, reason)


def image_missing(
    op: Op, name: str | None, runtime: str, endpoint: str, *, image: str | None, detail: str
) -> SessionError:
    """The error for a container whose image the engine does not have.

    Example:
        >>> err = image_missing(Op.START, "bot", "podman", "unix:///x", image="app:1",
        ...                     detail="image not known")
        >>> err.reason
        "image 'app:1' is not available on podman (image not known); build, load or pull it first"
        >>> err.missing_image
        'app:1'
    """
    what = f"image {image!r}" if image else "the image"
    reason = f"{what} is not available on {runtime} ({detail}); build, load or pull it first"
    err = op_error(op, name, runtime, endpoint, reason)
    # A field, so that a start can tell "pull it" from any other failure.
    err.missing_image = image or ""  # type: ignore[attr-defined]
    return err


# -- translation: shared pieces of the per-SDK tables ---------------------------------


@dataclass(frozen=True)
class CallContext:
    """What an error message needs to know about the engine call that failed.

    Example:
        >>> CallContext(Op.START, "bot", "docker", "unix:///var/run/docker.sock", 30.0).op.value
        'start'
    """

    op: Op
    name: str | None
    runtime: str
    endpoint: str
    timeout: float
    image: str | None = None
    connecting: bool = False


Handler = Callable[[Exception, CallContext], OpsError]
#: A translation table: rows of (exception types, handler); the first match wins.
Table = tuple[tuple[tuple[type[BaseException], ...], Handler], ...]
_NAME_IN_USE = ("already in use",)
_IMAGE_MISSING = ("no such image", "image not known")


def explanation(err: BaseException) -> str:
    """The engine's own words for an SDK error (its ``explanation``), else ``str(err)``.

    Example:
        >>> explanation(ValueError("bad"))
        'bad'
    """
    text = getattr(err, "explanation", None) or str(err) or type(err).__name__
    return str(text)


def on_image_missing(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: the image is not in the engine's store -> the op's error naming the image.

    Example:
        >>> ctx = CallContext(Op.START, "bot", "podman", "unix:///x", 5, image="app:1")
        >>> on_image_missing(ValueError("image not known"), ctx).reason[:13]
        "image 'app:1'"
    """
    return image_missing(
        ctx.op, ctx.name, ctx.runtime, ctx.endpoint, image=ctx.image, detail=explanation(err)
    )


def on_not_found(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: HTTP 404 -> :class:`~kstlib.ops.exceptions.SessionNotFoundError`.

    Example:
        >>> on_not_found(ValueError("404"), CallContext(Op.READ, "bot", "docker", "u", 5)).name
        'bot'
    """
    if ctx.name is None:
        return op_error(ctx.op, None, ctx.runtime, ctx.endpoint, explanation(err))
    return SessionNotFoundError(ctx.name, ctx.runtime)


def on_api_error(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: an HTTP error answer, read by its words and status.

    A taken name (Docker 409, Podman 500 "already in use") ->
    :class:`~kstlib.ops.exceptions.SessionExistsError`; a missing image (Podman
    500 "image not known") -> the image error; a 404 -> not found; anything
    else -> the operation's error with the engine's words.

    Example:
        >>> ctx = CallContext(Op.START, "bot", "podman", "u", 5)
        >>> type(on_api_error(ValueError("name bot is already in use by abc"), ctx)).__name__
        'SessionExistsError'
    """
    text = explanation(err)
    lowered = text.lower()
    status = getattr(err, "status_code", None)
    if ctx.name is not None and (
        any(s in lowered for s in _NAME_IN_USE) or (status == 409 and ctx.op is Op.START)
    ):
        return SessionExistsError(ctx.name, ctx.runtime)
    if any(s in lowered for s in _IMAGE_MISSING):
        return on_image_missing(err, ctx)
    if status == 404:
        return on_not_found(err, ctx)
    prefix = f"HTTP {status}: " if status else ""
    return op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, f"{prefix}{text}")


def on_unreachable(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: nothing answers at the endpoint -> ContainerRuntimeNotFoundError.

    Example:
        >>> on_unreachable(FileNotFoundError(2, "gone"), CallContext(Op.READ, None, "docker", "u", 5)).endpoints
        ('u',)
    """
    return unreachable(ctx.endpoint, f"{type(err).__name__}: {err}", ctx.runtime)


def on_timeout(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: no answer in time -> the op's error "timed out" (unreachable while connecting).

    A wait for the container to stop that runs out of time is a
    :class:`~kstlib.ops.exceptions.SessionTimeoutError`.

    Example:
        >>> on_timeout(TimeoutError(), CallContext(Op.STOP, "bot", "docker", "u", 3)).reason
        'timed out after 3 s waiting for docker at u'
        >>> type(on_timeout(TimeoutError(), CallContext(Op.WAIT, "bot", "docker", "u", 3))).__name__
        'SessionTimeoutError'
    """
    if ctx.connecting:
        return unreachable(ctx.endpoint, runtime=ctx.runtime, hung_after=ctx.timeout)
    if ctx.op is Op.WAIT and ctx.name is not None:
        return SessionTimeoutError(ctx.name, ctx.runtime, f"still running after {ctx.timeout:g} s")
    return timed_out(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, ctx.timeout)


def on_connection_error(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: a broken connection -> ContainerRuntimeNotFoundError, unless a read timed out.

    ``requests`` reports a read timeout in a streamed answer (the engine sent
    its headers, then nothing: a wait, a slow body) as a ``ConnectionError``
    around urllib3's ``ReadTimeoutError``; that is the operation timing out.

    Example:
        >>> type(on_connection_error(ConnectionResetError(104, "reset"),
        ...                          CallContext(Op.READ, "bot", "docker", "u", 5))).__name__
        'ContainerRuntimeNotFoundError'
    """
    import urllib3.exceptions

    for link in cause_chain(err):
        if any(isinstance(e, urllib3.exceptions.ReadTimeoutError) for e in (link, *link.args)):
            return on_timeout(err, ctx)
    return on_unreachable(err, ctx)


def on_permission(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: the socket refuses this user -> ContainerRuntimeNotFoundError saying so.

    Example:
        >>> "permission" in str(on_permission(PermissionError(13, "denied"),
        ...                                    CallContext(Op.READ, None, "docker", "u", 5)))
        True
    """
    return unreachable(ctx.endpoint, f"permission denied: {err}", ctx.runtime)


def on_other(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: any other SDK error -> the operation's error with the original text.

    Example:
        >>> type(on_other(ValueError("x"), CallContext(Op.STOP, "bot", "docker", "u", 5))).__name__
        'SessionStopError'
    """
    return op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, f"{type(err).__name__}: {err}")


def translate_with(table: Table, err: Exception, ctx: CallContext) -> OpsError | None:
    """Run ``err`` through ``table``; ``None`` if no row matches (not an SDK error).

    Example:
        >>> rows = (((KeyError,), on_other),)
        >>> translate_with(rows, ZeroDivisionError(), CallContext(Op.READ, None, "d", "u", 1)) is None
        True
    """
    if isinstance(err, OpsError):
        return err
    for types, handler in table:
        if isinstance(err, types):
            return handler(err, ctx)
    return None


@contextmanager
def translating(table: Callable[[], Table], ctx: CallContext) -> Iterator[None]:
    """Raise every exception ``table`` knows as its kstlib error, the original as ``__cause__``.

    Example:
        >>> rows = lambda: (((ValueError,), on_other),)
        >>> with translating(rows, CallContext(Op.STOP, "bot", "docker", "u", 5)):
        ...     raise ValueError("boom")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionStopError: Could not stop session 'bot' on the docker backend: ValueError: boom
    """
    try:
        yield
    except OpsError:
        raise
    except Exception as err:
        translated = translate_with(table(), err, ctx)
        if translated is None:
            raise
        raise translated from err
