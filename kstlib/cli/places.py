"""How the CLI names a place (:func:`label`) and the CLI's own input rules.

The CLI's spellings of config fields, the session-name rules per backend,
``--env`` parsing and the status shown for a session only defined in the
config file.

Example:
    >>> label(Location(BackendType.TMUX, socket_name="work"))
    'tmux (socket work)'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kstlib.ops import validators
from kstlib.ops.exceptions import (
    SessionConfigError,
)
from kstlib.ops.locations import Location, other_tmux_servers
from kstlib.ops.locations import tmux_timeout as discovery_timeout
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig

__all__ = ["defined_status", "label", "of_config", "of_engine", "parse_env"]


TMUX = BackendType.TMUX
CONTAINER = BackendType.CONTAINER
SWARM = BackendType.SWARM
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
    "network": "--network",
    "runtime": "--runtime",
    "socket_name": "--socket",
}


# What a session name can be on each backend (beyond validate_lookup_name's rule).
NOT_TMUX_NAME = re.compile(r"[.:]")
TMUX_NAME_RULE = "tmux names cannot contain '.' or ':'"
CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CONTAINER_NAME_RULE = (
    "container names are letters, digits, '_', '.' and '-', starting with a letter or digit"
)


def label(place: Location) -> str:
    """How the CLI names a place in its messages (the server, engine or endpoint).

    Example:
        >>> label(Location(BackendType.TMUX, socket_name="work"))
        'tmux (socket work)'
        >>> label(Location(BackendType.CONTAINER, runtime="podman"))
        'podman'
    """
    if place.engine is not None:
        return f"engine {place.engine}"
    if place.backend is TMUX:
        where = place.socket_path or place.socket_name
        return f"tmux (socket {where})" if where else "tmux"
    name = "swarm" if place.backend is SWARM else place.runtime or "container"
    return f"{name} at {place.endpoint}" if place.endpoint else name


def of_engine(engine: EngineConfig) -> Location:
    """The place of a named engine (``ops.engines``).

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> label(of_engine(EngineConfig("edge", "ssh://h", "docker")))
        'engine edge'
    """
    if engine.backend == "tmux":
        return Location(TMUX, socket_name=engine.socket_name, engine=engine.name)
    if engine.backend == "swarm":
        return Location(SWARM, endpoint=engine.base_url, engine=engine.name)
    return Location(CONTAINER, runtime=engine.runtime, endpoint=engine.endpoint, engine=engine.name)


def of_config(config: SessionConfig) -> Location:
    """The place a session configuration starts in.

    Example:
        >>> of_config(SessionConfig(name="a", socket_name="w")).socket_name
        'w'
    """
    if config.backend is TMUX:
        return Location(TMUX, socket_name=config.socket_name, socket_path=config.socket_path)
    if config.backend is SWARM:
        return Location(SWARM, endpoint=config.base_url)
    return Location(CONTAINER, runtime=config.runtime, endpoint=config.base_url)


def unique(items: Iterable[Any]) -> list[Any]:
    """The items in order, each once (items need not be hashable).

    Example:
        >>> unique([1, 2, 1])
        [1, 2]
    """
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def option_error(err: SessionConfigError, option: str | None = None) -> SessionConfigError:
    """Re-word a validator's ``field: problem`` as ``--option: problem``.

    Example:
        >>> print(option_error(SessionConfigError("ports: bad", field="ports", problem="bad")))
        --port: bad
    """
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
        raise option_error(err, "--env") from None


def resolve_cli_volume(volume: str) -> str:
    """``./data:/data`` on the command line means the current directory's ``data``.

    Example:
        >>> resolve_cli_volume("/srv:/data")
        '/srv:/data'
    """
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
        image=config.image if config.backend is not TMUX else None,
        runtime=config.runtime if config.backend is CONTAINER else None,
        managed=True,
    )


def discover(config: Any, given: str | None) -> tuple[list[str], set[str]]:
    """The user's live tmux servers (``tmux -L NAME``), and those of them nobody named.

    ``config`` is the :class:`~kstlib.ops.config.OpsConfig`; ``given`` the ``-L``
    socket. A server named by neither is asked with a short timeout
    (:func:`tmux_timeout`).

    Example:
        >>> from kstlib.ops.config import OpsConfig
        >>> sockets, unnamed = discover(OpsConfig(), None)
        >>> set(sockets) >= unnamed
        True
    """
    named = {config.tmux_socket, given, *(s.socket_name for s in config.sessions.values())}
    sockets = other_tmux_servers()
    return sockets, set(sockets) - named


def tmux_timeout(place: Location, unnamed: set[str]) -> float | None:
    """Seconds a tmux call of ``place`` may take: short for a server nobody named (``None``: default).

    Example:
        >>> tmux_timeout(Location(TMUX, socket_name="orion"), {"orion"})
        2.0
    """
    return discovery_timeout(place.socket_path is None and place.socket_name in unnamed)
