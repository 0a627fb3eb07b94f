"""Typed models shared by every backend: backends, states, configs, statuses.

Example:
    >>> cfg = SessionConfig(name="bot", command=["python", "bot.py"])
    >>> cfg.backend, cfg.command
    (<BackendType.TMUX: 'tmux'>, ('python', 'bot.py'))
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum
from typing import Any

from kstlib.ops import validators

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

    def __str__(self) -> str:
        return self.value


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


@dataclass(frozen=True)
class SessionConfig:
    """Everything needed to start a session; validated on construction.

    Invalid values raise :class:`~kstlib.ops.exceptions.SessionConfigError`
    naming the field. A ``command`` given as a list is an argv and is never
    given to a shell; it is stored as a tuple.

    Example:
        >>> SessionConfig(name="worker", env={"MODE": "fast"}).env
        {'MODE': 'fast'}
        >>> SessionConfig(name="9lives")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: name: '9lives' must start with a letter ...
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
    ports: tuple[str, ...] = ()
    runtime: str | None = None
    base_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    restart: str | None = None
    memory: str | None = None
    cpus: float | None = None
    init: bool = True

    def __post_init__(self) -> None:
        validators.validate_name(self.name)
        object.__setattr__(self, "backend", validators.validate_backend(self.backend))
        object.__setattr__(self, "command", validators.validate_command(self.command))
        object.__setattr__(self, "env", validators.validate_env(self.env))
        object.__setattr__(self, "volumes", validators.validate_volumes(self.volumes))
        object.__setattr__(self, "ports", validators.validate_ports(self.ports))
        object.__setattr__(self, "labels", validators.validate_labels(self.labels))
        validators.validate_optional_str("working_dir", self.working_dir)
        validators.validate_optional_str("socket_path", self.socket_path)
        validators.validate_optional_str("base_url", self.base_url)
        if self.socket_name is not None:
            validators.validate_socket_name(self.socket_name)
        if self.image is not None:
            validators.validate_image(self.image)
        if self.runtime is not None:
            object.__setattr__(self, "runtime", validators.validate_runtime(self.runtime))
        if self.restart is not None:
            validators.validate_restart(self.restart)
        if self.memory is not None:
            validators.validate_memory(self.memory)
        if self.cpus is not None:
            object.__setattr__(self, "cpus", validators.validate_cpus(self.cpus))

    def __repr__(self) -> str:
        """The dataclass repr with every env value masked (keys stay visible).

        Example:
            >>> SessionConfig(name="bot", env={"API_TOKEN": "s3cr3t"})
            SessionConfig(name='bot', ..., env={'API_TOKEN': '***'}, ...)
        """
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "env":
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
        restart_count.

        Example:
            >>> import json
            >>> json.dumps(SessionStatus("a", SessionState.DEFINED, BackendType.TMUX).to_dict())[:40]
            '{"name": "a", "state": "defined", "backe'
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
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
    "backend",
    "runtime",
    "state",
    "pid",
    "exit_code",
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
        return value.strftime("%Y-%m-%d %H:%M:%S %Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _html_table(rows: Sequence[SessionStatus]) -> str:
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

    Example:
        >>> rows = SessionTable([SessionStatus("a", SessionState.RUNNING, BackendType.TMUX)])
        >>> "<td>a</td>" in rows._repr_html_()
        True
    """

    def _repr_html_(self) -> str:
        return _html_table(self)

    def __rich__(self) -> Any:
        return _rich_table(self)
